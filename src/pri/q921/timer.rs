//! The data link's timer table (Q.921 §5.9): T200, the acknowledgement and
//! retransmission timer, and T203, the idle-link timer.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    T200 = 0,
    T203 = 1,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Timers([Option<Instant>; 2]);

impl Timers {
    /// Starts (or restarts) `t` to fire at `at`; `None` (a deadline past
    /// the end of `Instant`) leaves it stopped rather than panicking.
    pub(super) fn start(&mut self, t: Timer, at: Option<Instant>) {
        self.0[t as usize] = at;
    }
    pub(super) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    pub(super) fn running(&self, t: Timer) -> bool {
        self.0[t as usize].is_some()
    }
    /// True (and the slot cleared) when `t` is due at `now`.
    pub(super) fn expired(&mut self, t: Timer, now: Instant) -> bool {
        match self.0[t as usize] {
            Some(at) if at <= now => {
                self.0[t as usize] = None;
                true
            }
            _ => false,
        }
    }
    pub(super) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}
