//! The call control timers: their durations (Q.931 Tables 9-1 and 9-2,
//! with rivr's choice where a table gives a range) and the table of the
//! timers one call is running. The global call reference's T316 lives
//! with the restart procedure (`restart.rs`).

use std::time::{Duration, Instant};

use super::calls::Side;

/// The durations of the call control timers. Every field is a Q.931
/// default unless its comment says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    /// T301, ALERTING received → CONNECT: on expiry the call is cleared
    /// with cause 19 (no answer). Q.931 asks for at least 3 minutes;
    /// `None` leaves ringing unbounded (the layer above then times out).
    pub t301: Option<Duration>,
    /// T302, SETUP ACKNOWLEDGE sent → more digits (overlap receiving).
    /// 15 s, the top of Q.931's 10–15 s: callers dial slowly.
    pub t302: Duration,
    /// T303, SETUP sent → first answer; the SETUP is sent twice at most.
    pub t303: Duration,
    /// T304, SETUP ACKNOWLEDGE received or INFORMATION sent → the peer's
    /// next step (overlap sending).
    pub t304: Duration,
    /// T305, DISCONNECT sent → RELEASE or DISCONNECT.
    pub t305: Duration,
    /// T308, RELEASE sent → RELEASE COMPLETE; RELEASE is sent twice at
    /// most, then the channel is restarted (it is in an unknown state).
    pub t308: Duration,
    /// T309, data link lost → re-established, for active calls. 90 s
    /// in Q.931 and EN 300 403 alike; B-channel media keeps flowing
    /// meanwhile, so a short link outage never costs a call.
    pub t309: Duration,
    /// T310, CALL PROCEEDING received → ALERTING, CONNECT, PROGRESS or
    /// DISCONNECT. User side: 30 s, the bottom of Q.931's 30–120 s (a
    /// call still silent after half a minute is stuck, and the layer
    /// above would rather retry); network side: 10 s (Table 9-1).
    pub t310: Duration,
    /// T313, CONNECT sent (user side) → CONNECT ACKNOWLEDGE.
    pub t313: Duration,
    /// T316, RESTART sent → RESTART ACKNOWLEDGE.
    pub t316: Duration,
    /// How many times a RESTART is sent before giving up (`n316 - 1`
    /// retransmissions).
    pub n316: u8,
    /// T322, STATUS ENQUIRY sent → STATUS (sent twice at most, then the
    /// call is released with cause 41).
    pub t322: Duration,
}

impl Timers {
    /// The defaults of a side.
    pub fn defaults(side: Side) -> Timers {
        let s = Duration::from_secs;
        Timers {
            t301: Some(s(180)),
            t302: s(15),
            t303: s(4),
            t304: match side {
                Side::User => s(30),
                Side::Network => s(20),
            },
            t305: s(30),
            t308: s(4),
            t309: s(90),
            t310: match side {
                Side::User => s(30),
                Side::Network => s(10),
            },
            t313: s(4),
            t316: s(120),
            n316: 2,
            t322: s(4),
        }
    }
}

/// The timers a call can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallTimer {
    T301,
    T302,
    T303,
    T304,
    T305,
    T308,
    T309,
    T310,
    T313,
    T322,
}

const N: usize = 10;

impl CallTimer {
    /// In the order simultaneous expiries are handled: supervision of
    /// the call's progress before clearing, link recovery last.
    const ALL: [CallTimer; N] = [
        CallTimer::T301,
        CallTimer::T302,
        CallTimer::T303,
        CallTimer::T304,
        CallTimer::T305,
        CallTimer::T308,
        CallTimer::T309,
        CallTimer::T310,
        CallTimer::T313,
        CallTimer::T322,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One call's timers: a deadline per timer.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallTimers([Option<Instant>; N]);

impl CallTimers {
    pub(crate) fn set(&mut self, t: CallTimer, at: Instant) {
        self.0[t.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, t: CallTimer) {
        self.0[t.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.0 = [None; N];
    }

    pub(crate) fn is_running(&self, t: CallTimer) -> bool {
        self.0[t.index()].is_some()
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// The first timer due at `now`, stopped; `None` when none is due,
    /// so a spurious wake-up does nothing.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<CallTimer> {
        let t = CallTimer::ALL
            .into_iter()
            .find(|t| self.0[t.index()].is_some_and(|at| at <= now))?;
        self.stop(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_expires_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = CallTimers::default();
        assert_eq!(t.next(), None);
        t.set(CallTimer::T310, t0 + Duration::from_secs(30));
        t.set(CallTimer::T303, t0 + Duration::from_secs(4));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(4)));
        assert_eq!(t.take_expired(t0), None);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(t.take_expired(later), Some(CallTimer::T303));
        assert_eq!(t.take_expired(later), Some(CallTimer::T310));
        assert_eq!(t.take_expired(later), None);
        t.set(CallTimer::T309, later);
        assert!(t.is_running(CallTimer::T309));
        t.stop_all();
        assert_eq!(t.next(), None);
    }
}
