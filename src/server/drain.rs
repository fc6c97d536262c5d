//! Graceful drain: stop taking new calls, let the calls in progress end on
//! their own up to `[server] drain_timeout_s`, then stop (docs/config.md,
//! "Stopping rivr").
//!
//! Two parts. [`Drain`] is the handle the outside holds: the SIGTERM
//! handler and, later, `POST /drain` call [`Drain::start`]; `/ready`
//! reads [`Drain::is_draining`]. [`DrainClock`] is the sans-IO decision:
//! given `now` and the calls still held, it says whether to wait (and
//! until when) or that the drain is over and why. The server's loop in
//! `server::Server::drain` is the glue between them: it refuses new calls
//! (503 + Retry-After to INVITE and OPTIONS), keeps serving the calls in
//! progress, and asks the clock after every event.

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The drain switch shared by whoever may start a drain and whoever must
/// know of one. Cloning gives another handle on the same switch; it only
/// ever goes from serving to draining.
#[derive(Debug, Clone)]
pub struct Drain {
    tx: watch::Sender<bool>,
}

impl Drain {
    pub fn new() -> Self {
        Drain {
            tx: watch::Sender::new(false),
        }
    }

    /// Asks the server to drain. True for the call that started it, false
    /// when it was already draining.
    pub fn start(&self) -> bool {
        self.tx
            .send_if_modified(|draining| !std::mem::replace(draining, true))
    }

    pub fn is_draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once a drain was asked for (at once if it already was).
    pub async fn started(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = rx.wait_for(|draining| *draining).await;
    }

    /// A receiver for code that would rather watch the switch itself.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// Every call ended on its own.
    Empty,
    /// The timeout passed with `left` calls still held; they are ended
    /// (BYE, CANCEL, a final response) by the shutdown that follows.
    Deadline { left: usize },
    /// A second signal cut it short with `left` calls held.
    Interrupted { left: usize },
}

/// What a drain did, for the last log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub end: DrainEnd,
    pub took: Duration,
    /// Calls held at the start (the most seen at once).
    pub peak: usize,
    /// New calls refused 503 during the drain.
    pub refused_invites: u64,
    /// OPTIONS pings answered 503 during the drain.
    pub refused_options: u64,
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep serving the calls in progress; ask again after any event, and
    /// at the latest at this instant.
    WaitUntil(Instant),
    Done(DrainEnd),
}

/// The drain's decision, sans-IO: time and the count of calls held come
/// in, the step comes out.
#[derive(Debug)]
pub struct DrainClock {
    started: Instant,
    deadline: Instant,
    /// How often a progress line is due while calls are held.
    report_every: Duration,
    next_report: Instant,
    /// The most calls held at any ask (the count at the start, normally).
    peak: usize,
}

/// How often a drain in progress logs the calls it still waits for.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

impl DrainClock {
    /// A drain that started at `now` and gives calls `timeout` to end.
    pub fn new(now: Instant, timeout: Duration) -> Self {
        DrainClock {
            started: now,
            deadline: now + timeout,
            report_every: REPORT_EVERY,
            next_report: now + REPORT_EVERY,
            peak: 0,
        }
    }

    /// What a refused caller is told to wait (`Retry-After`): the time
    /// left before this process is gone at the latest, at least a second.
    #[must_use]
    pub fn retry_after(&self, now: Instant) -> Duration {
        self.deadline
            .saturating_duration_since(now)
            .max(Duration::from_secs(1))
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The most calls seen held during the drain.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// With `held` calls not yet closed (signalling up, or a script still
    /// running): wait, or the drain is over. A call that ends at the very
    /// deadline counts as ended.
    #[must_use]
    pub fn poll(&mut self, now: Instant, held: usize) -> Step {
        self.peak = self.peak.max(held);
        if held == 0 {
            return Step::Done(DrainEnd::Empty);
        }
        if now >= self.deadline {
            return Step::Done(DrainEnd::Deadline { left: held });
        }
        Step::WaitUntil(self.deadline.min(self.next_report))
    }

    /// True once per `REPORT_EVERY` while calls are held: time for a
    /// progress line.
    pub fn report_due(&mut self, now: Instant) -> bool {
        if now < self.next_report {
            return false;
        }
        while self.next_report <= now {
            self.next_report += self.report_every;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn waits_for_calls_and_ends_when_the_last_one_does() {
        let t0 = Instant::now();
        let mut d = DrainClock::new(t0, s(60));
        assert_eq!(d.poll(t0, 50), Step::WaitUntil(t0 + REPORT_EVERY));
        assert_eq!(d.poll(t0 + s(3), 20), Step::WaitUntil(t0 + REPORT_EVERY));
        assert_eq!(d.poll(t0 + s(8), 1), Step::WaitUntil(t0 + REPORT_EVERY));
        assert_eq!(d.poll(t0 + s(8), 0), Step::Done(DrainEnd::Empty));
        assert_eq!(d.peak(), 50);
    }

    #[test]
    fn no_calls_at_the_start_is_done_at_once() {
        let t0 = Instant::now();
        let mut d = DrainClock::new(t0, s(60));
        assert_eq!(d.poll(t0, 0), Step::Done(DrainEnd::Empty));
    }

    #[test]
    fn the_deadline_ends_it_with_the_calls_left_and_not_a_moment_before() {
        let t0 = Instant::now();
        let mut d = DrainClock::new(t0, s(30));
        let mut now = t0;
        // Step to each wake-up the clock asks for, as the server's loop does
        // when nothing else happens.
        let mut wakes = Vec::new();
        loop {
            match d.poll(now, 7) {
                Step::WaitUntil(t) => {
                    assert!(t > now, "a wake-up in the past would spin the loop");
                    if d.report_due(t) {
                        wakes.push(t.duration_since(t0));
                    }
                    now = t;
                }
                Step::Done(end) => {
                    assert_eq!(end, DrainEnd::Deadline { left: 7 });
                    break;
                }
            }
        }
        assert_eq!(now, t0 + s(30));
        assert_eq!(wakes, vec![s(10), s(20), s(30)]);
        assert_eq!(
            d.poll(t0 + s(29) + Duration::from_millis(999), 7),
            Step::WaitUntil(t0 + s(30))
        );
    }

    #[test]
    fn a_zero_timeout_ends_at_once_with_the_calls_held() {
        let t0 = Instant::now();
        let mut d = DrainClock::new(t0, Duration::ZERO);
        assert_eq!(d.poll(t0, 3), Step::Done(DrainEnd::Deadline { left: 3 }));
    }

    #[test]
    fn retry_after_is_the_time_left_and_never_below_a_second() {
        let t0 = Instant::now();
        let d = DrainClock::new(t0, s(60));
        assert_eq!(d.retry_after(t0), s(60));
        assert_eq!(d.retry_after(t0 + s(45)), s(15));
        assert_eq!(d.retry_after(t0 + s(60)), s(1));
        assert_eq!(d.retry_after(t0 + s(90)), s(1));
    }

    #[test]
    fn the_handle_starts_once_and_every_clone_sees_it() {
        let d = Drain::new();
        let api = d.clone();
        let mut ready = d.subscribe();
        assert!(!api.is_draining());
        assert!(api.start());
        assert!(!d.start(), "a second start is not a new drain");
        assert!(d.is_draining());
        assert!(*ready.borrow_and_update());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        // Already started: completes at once.
        rt.block_on(d.started());
    }
}
