//! The session's timer table: one slot per kind, the earliest is the
//! session's next wake-up.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Time to open a new connection (after the reconnect backoff).
    Reconnect = 0,
    /// A bind_resp must have arrived by now.
    BindResp = 1,
    /// Time to send the next enquire_link.
    EnquireLink = 2,
    /// The outstanding enquire_link must be answered by now.
    EnquireLinkResp = 3,
    /// The unbind_resp must have arrived by now.
    UnbindResp = 4,
    /// ESME_RTHROTTLED / ESME_RMSGQFUL backoff ends.
    Backpressure = 5,
    /// The throttle (messages per second) allows the next submit_sm.
    NextSend = 6,
    /// The oldest outstanding submit_sm must be answered by now.
    SubmitResp = 7,
}

const N: usize = 8;
const ALL: [Timer; N] = [
    Timer::Reconnect,
    Timer::BindResp,
    Timer::EnquireLink,
    Timer::EnquireLinkResp,
    Timer::UnbindResp,
    Timer::Backpressure,
    Timer::NextSend,
    Timer::SubmitResp,
];

#[derive(Debug, Default)]
pub(crate) struct Timers([Option<Instant>; N]);

impl Timers {
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
    pub(crate) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t as usize]
    }
    /// True (and the slot cleared) when `t` is set and due at `now`.
    pub(crate) fn expired(&mut self, t: Timer, now: Instant) -> bool {
        match self.0[t as usize] {
            Some(at) if at <= now => {
                self.0[t as usize] = None;
                true
            }
            _ => false,
        }
    }
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
    pub(crate) fn clear_link_timers(&mut self) {
        for t in ALL {
            if t != Timer::Reconnect && t != Timer::Backpressure {
                self.stop(t);
            }
        }
    }
}
