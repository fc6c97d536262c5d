//! A token bucket for rate limits (calls per second, INVITEs per second per
//! source), written as GCRA: one instant per bucket, no floating point, no
//! refill loop. Sans-IO: time is passed in.
//!
//! The bucket holds `burst` tokens and refills at `rate` per second. It is
//! shared by `call::admission` (new calls per second) and `sip::flood`
//! (INVITEs per second per source), and fits the campaign pacer too.
//!
//! A paced bucket keeps its schedule when takes come a little late, so
//! some 1 s window can hold one start more than the rate; where "never
//! more than `n` in any window" is the rule (trunk and campaign cps), a
//! [`SlidingWindow`] sits beside the bucket and has the last word.

use std::time::{Duration, Instant};

/// The shape of a token bucket: `burst` tokens refilled at `rate` per
/// second. A bucket's state is one `Option<Instant>` (its theoretical
/// arrival time, GCRA), so a table of many buckets (`sip::flood`) keeps
/// one `Rate` and an instant per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Time one token takes to refill (1 s / rate).
    interval: Duration,
    /// How far ahead of `now` the theoretical arrival time may run: the
    /// whole bucket's worth of tokens.
    depth: Duration,
    /// How late a take may be and still count from its slot rather than
    /// from `now` (see [`Rate::paced`]); zero for plain buckets.
    slack: Duration,
}

impl Rate {
    /// `rate` tokens per second (at least 1), `burst` tokens deep (at least 1).
    pub fn new(rate: u32, burst: u32) -> Self {
        // Rounded up, so `rate` tokens never fit in less than a second.
        let rate = u64::from(rate.max(1));
        let interval = Duration::from_nanos(1_000_000_000_u64.div_ceil(rate));
        Rate {
            interval,
            depth: interval.saturating_mul(burst.max(1)),
            slack: Duration::ZERO,
        }
    }

    /// A pacer: `rate` per second, one at a time (burst 1), that keeps its
    /// schedule when a take comes a little late. A timer that wakes the
    /// taker 1 ms after each slot would otherwise push every slot back by
    /// that much (50/s became 47/s on a loaded box); a take up to a tenth
    /// of the interval late counts from its slot instead, so the long-run
    /// rate is `rate` and no two takes are closer than 90 % of the interval.
    pub fn paced(rate: u32) -> Self {
        let r = Rate::new(rate, 1);
        Rate {
            slack: r.interval / 10,
            ..r
        }
    }

    /// Takes one token from the bucket whose state is `tat` (`None`: full,
    /// never used): `Ok` if there was one, else `Err(wait)` with how long
    /// until the next one (nothing is taken then).
    pub fn try_take(&self, tat: &mut Option<Instant>, now: Instant) -> Result<(), Duration> {
        let earliest = now.checked_sub(self.slack).unwrap_or(now);
        let start = tat.map_or(now, |t| t.max(earliest));
        let next = start + self.interval;
        let ahead = next.saturating_duration_since(now);
        if ahead <= self.depth {
            *tat = Some(next);
            Ok(())
        } else {
            Err(ahead - self.depth)
        }
    }

    /// True when the bucket is back to `burst` tokens (nothing to remember).
    pub fn is_full(tat: Option<Instant>, now: Instant) -> bool {
        tat.is_none_or(|t| t <= now)
    }
}

/// One token bucket: a [`Rate`] and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    rate: Rate,
    tat: Option<Instant>,
}

impl TokenBucket {
    /// `rate` tokens per second (at least 1), `burst` tokens deep (at least 1).
    pub fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            rate: Rate::new(rate, burst),
            tat: None,
        }
    }

    /// A pacer: see [`Rate::paced`].
    pub fn paced(rate: u32) -> Self {
        TokenBucket {
            rate: Rate::paced(rate),
            tat: None,
        }
    }

    /// Takes one token: `Ok` if there was one, else `Err(wait)` with how long
    /// until the next one (nothing is taken then).
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.rate.try_take(&mut self.tat, now)
    }

    /// True when the bucket is back to `burst` tokens.
    pub fn is_full(&self, now: Instant) -> bool {
        Rate::is_full(self.tat, now)
    }

    /// A pacer at a new `rate` that keeps this one's schedule: the next
    /// token is not earlier than it would have been.
    pub fn repaced(&self, rate: u32) -> Self {
        TokenBucket {
            rate: Rate::paced(rate),
            tat: self.tat,
        }
    }
}

/// At most `n` events in any window of length `window`, checked over
/// every window (sliding, not fixed one-second buckets). It keeps the
/// last `n` event times in a ring allocated once, so recording an event
/// never allocates. Windows are half-open: an event exactly `window`
/// after the `n`-th last one is allowed (`n` per second means the
/// `n+1`-th start comes a full second after the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingWindow {
    window: Duration,
    /// The last `n` event times, oldest at `next` once the ring is full.
    times: Box<[Option<Instant>]>,
    /// Where the next event goes: the oldest of the last `n`.
    next: usize,
    /// How many of the newest events are counted at the instant they were
    /// decided and not yet at the instant they left ([`Self::confirm`]).
    unconfirmed: usize,
}

impl SlidingWindow {
    /// The most events a window may count (trunk cps is bounded to this
    /// by the config); a larger `n` is cut down to it.
    pub const MAX_EVENTS: u32 = 10_000;

    /// At most `n` (1 ..= [`Self::MAX_EVENTS`]) events in any `window`.
    pub fn new(n: u32, window: Duration) -> Self {
        let n = n.clamp(1, Self::MAX_EVENTS) as usize;
        SlidingWindow {
            window,
            times: vec![None; n].into_boxed_slice(),
            next: 0,
            unconfirmed: 0,
        }
    }

    /// At most `n` per second.
    pub fn per_second(n: u32) -> Self {
        SlidingWindow::new(n, Duration::from_secs(1))
    }

    /// How much longer than a second a window of requests on their way to
    /// a peer is kept. Each request is counted at the instant it was
    /// handed to the transport ([`Self::confirm`]), but the peer counts
    /// when it reads it, and its reading lags by a varying amount (its
    /// own scheduling, the network's jitter): a first request of a window
    /// read late and a last one read at once shrink the window the peer
    /// sees. Without a guard, on loopback, a carrier counting any 1 s of
    /// arrivals saw `n + 1` (26 at 25 cps in 998.8 ms); with 10 ms and
    /// requests counted when decided, a loaded 2-core CI machine saw it
    /// again. 20 ms absorbs that much lag and costs at most 2 % of the
    /// rate, only while the window binds.
    pub const WIRE_GUARD: Duration = Duration::from_millis(20);

    /// At most `n` in any second as the peer counts them: a window of one
    /// second and [`Self::WIRE_GUARD`].
    pub fn per_second_on_the_wire(n: u32) -> Self {
        SlidingWindow::new(n, Duration::from_secs(1) + Self::WIRE_GUARD)
    }

    /// The same window for at most `n` events, keeping the newest of the
    /// events already counted (as many as fit): a lower limit takes effect
    /// at once, with no burst let through by forgetting the past.
    pub fn resized(&self, n: u32) -> SlidingWindow {
        let mut w = SlidingWindow::new(n, self.window);
        let len = self.times.len();
        let keep = w.times.len().min(len);
        for k in (0..keep).rev() {
            if let Some(t) = self.times[(self.next + len - 1 - k) % len] {
                w.record(t);
            }
        }
        w.unconfirmed = self.unconfirmed.min(keep);
        w
    }

    /// How many events any window may hold.
    pub fn limit(&self) -> u32 {
        // At most MAX_EVENTS, so it fits.
        u32::try_from(self.times.len()).unwrap_or(u32::MAX)
    }

    /// `Ok` if one more event at `now` keeps every window at `n` or
    /// fewer, else `Err(earliest)`: the first instant it would.
    pub fn check(&self, now: Instant) -> Result<(), Instant> {
        match self.times.get(self.next).copied().flatten() {
            Some(oldest) => {
                let free_at = oldest + self.window;
                if now >= free_at {
                    Ok(())
                } else {
                    Err(free_at)
                }
            }
            None => Ok(()),
        }
    }

    /// Counts an event at `now` (whether or not [`Self::check`] allowed it:
    /// an event that happened is counted). Times are expected in order; an
    /// earlier time than the last is taken as the last.
    pub fn record(&mut self, now: Instant) {
        let len = self.times.len();
        let last = self.times[(self.next + len - 1) % len];
        let at = last.map_or(now, |l| l.max(now));
        self.times[self.next] = Some(at);
        self.next = (self.next + 1) % len;
        self.unconfirmed = (self.unconfirmed + 1).min(len);
    }

    /// The events recorded since the last confirmation happened at `at`
    /// (their requests left then, later than decided): each is counted
    /// from `at` if that is later. Times only move later, so every window
    /// stays as strict as before, and the order is kept.
    pub fn confirm(&mut self, at: Instant) {
        let len = self.times.len();
        for k in 0..std::mem::take(&mut self.unconfirmed) {
            let i = (self.next + len - 1 - k) % len;
            if let Some(t) = self.times[i].as_mut() {
                *t = (*t).max(at);
            }
        }
    }

    /// Whether some recorded events wait for [`Self::confirm`].
    pub fn has_unconfirmed(&self) -> bool {
        self.unconfirmed > 0
    }

    /// `check`, then `record` when allowed.
    pub fn try_record(&mut self, now: Instant) -> Result<(), Instant> {
        self.check(now)?;
        self.record(now);
        Ok(())
    }
}

/// Lets a repeated log line through at most once per interval, and counts
/// the ones it held back, so a flood of the same event (an accept error, a
/// refused connection) costs one line per interval, not one per event.
#[derive(Debug, Clone)]
pub struct LogThrottle {
    interval: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            last: None,
            held_back: 0,
        }
    }

    /// One more event: `Some(n)` when it is to be logged now, with `n`
    /// events held back since the last line; `None` to stay quiet.
    pub fn event(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                self.held_back = self.held_back.saturating_add(1);
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

/// A wait as a `Retry-After` value: whole seconds, rounded up, at least 1
/// (RFC 3261 §20.33 has no fractions, and 0 would invite an instant retry).
pub fn retry_after_secs(wait: Duration) -> u32 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5);
        for i in 0..5 {
            assert_eq!(b.try_take(t0), Ok(()), "token {i} of the burst");
        }
        assert_eq!(b.try_take(t0), Err(Duration::from_millis(100)));
        assert!(!b.is_full(t0));
        // One token per 100 ms afterwards, never two.
        let t = t0 + Duration::from_millis(100);
        assert_eq!(b.try_take(t), Ok(()));
        assert_eq!(b.try_take(t), Err(Duration::from_millis(100)));
        // Refilled completely after burst / rate.
        let t = t + Duration::from_millis(500);
        assert!(b.is_full(t));
        for _ in 0..5 {
            assert_eq!(b.try_take(t), Ok(()));
        }
        assert!(b.try_take(t).is_err());
    }

    #[test]
    fn refused_takes_do_not_push_the_refill_back() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, 1);
        assert!(b.try_take(t0).is_ok());
        for ms in [1, 100, 200, 499] {
            assert!(b.try_take(t0 + Duration::from_millis(ms)).is_err());
        }
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn count_over_a_long_run_matches_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 20);
        // 1,000 attempts per second for 10 s: the burst at once, then one
        // token every 50 ms (at 50, 100, …, 9950 ms).
        let taken = (0..10_000)
            .filter(|i| b.try_take(t0 + Duration::from_millis(*i)).is_ok())
            .count();
        assert_eq!(taken, 20 + 199);
    }

    /// A taker that always wakes 1.2 ms after it was told to (a timer on a
    /// loaded box) still takes 50 per second on average, never two closer
    /// than 90 % of the interval; a plain burst-1 bucket drifts to 47/s.
    #[test]
    fn a_pacer_keeps_its_rate_when_every_take_comes_late() {
        let t0 = Instant::now();
        let late = Duration::from_micros(1_200);
        let run = |mut b: TokenBucket| {
            let mut now = t0;
            let mut taken = vec![];
            while taken.len() < 501 {
                match b.try_take(now) {
                    Ok(()) => taken.push(now),
                    Err(wait) => now += wait + late,
                }
            }
            taken
        };
        let paced = run(TokenBucket::paced(50));
        let span = paced[500] - paced[0];
        assert!(
            span <= Duration::from_millis(10_002),
            "500 intervals took {span:?}"
        );
        let min_gap = paced.windows(2).map(|w| w[1] - w[0]).min();
        assert!(min_gap >= Some(Duration::from_millis(18)), "{min_gap:?}");
        let plain = run(TokenBucket::new(50, 1));
        assert!(plain[500] - plain[0] >= Duration::from_millis(10_500));
    }

    #[test]
    fn sliding_window_holds_n_in_any_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = SlidingWindow::per_second(3);
        assert_eq!(w.limit(), 3);
        for t in [0, 10, 20] {
            assert_eq!(w.try_record(t0 + ms(t)), Ok(()));
        }
        // A fourth inside the second of the first is refused, with when.
        assert_eq!(w.check(t0 + ms(500)), Err(t0 + ms(1000)));
        assert_eq!(w.check(t0 + ms(999)), Err(t0 + ms(1000)));
        // Half-open: exactly one second after the first is fine.
        assert_eq!(w.try_record(t0 + ms(1000)), Ok(()));
        assert_eq!(w.check(t0 + ms(1005)), Err(t0 + ms(1010)));
        assert_eq!(w.try_record(t0 + ms(1010)), Ok(()));
        assert_eq!(w.try_record(t0 + ms(1020)), Ok(()));
        assert_eq!(w.check(t0 + ms(1500)), Err(t0 + ms(2000)));
        // A record that was not allowed still counts.
        w.record(t0 + ms(1500));
        assert_eq!(w.check(t0 + ms(2000)), Err(t0 + ms(2010)));
    }

    /// Requests decided at one instant and handed to the transport later
    /// are counted from when they left: the next may go only a window
    /// after that, and earlier confirmed times stay as they were.
    #[test]
    fn sliding_window_counts_confirmed_events_from_when_they_left() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = SlidingWindow::per_second(2);
        w.record(t0);
        w.confirm(t0 + ms(3));
        assert!(!w.has_unconfirmed());
        w.record(t0 + ms(500));
        assert!(w.has_unconfirmed());
        // Decided at 500 ms, left at 540 ms (a slow turn of the loop).
        w.confirm(t0 + ms(540));
        assert!(!w.has_unconfirmed());
        assert_eq!(w.check(t0 + ms(1003)), Ok(()));
        w.record(t0 + ms(1003));
        // Confirming at an earlier time than decided changes nothing.
        w.confirm(t0 + ms(1000));
        assert_eq!(w.check(t0 + ms(1539)), Err(t0 + ms(1540)));
        assert_eq!(w.check(t0 + ms(1540)), Ok(()));
        // Two decided in one turn, confirmed together.
        let mut w = SlidingWindow::per_second(2);
        w.record(t0);
        w.record(t0);
        w.confirm(t0 + ms(7));
        assert_eq!(w.check(t0 + ms(1006)), Err(t0 + ms(1007)));
    }

    #[test]
    fn a_resized_window_keeps_its_newest_events() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = SlidingWindow::per_second(4);
        for t in [0, 100, 200, 300] {
            w.record(t0 + ms(t));
        }
        // Down to 2: the newest two (200, 300) still count.
        let small = w.resized(2);
        assert_eq!(small.limit(), 2);
        assert_eq!(small.check(t0 + ms(400)), Err(t0 + ms(1200)));
        // Up to 6: all four count, two more fit now.
        let mut big = w.resized(6);
        assert_eq!(big.try_record(t0 + ms(400)), Ok(()));
        assert_eq!(big.try_record(t0 + ms(500)), Ok(()));
        assert_eq!(big.check(t0 + ms(600)), Err(t0 + ms(1000)));
        // An empty window stays empty.
        assert_eq!(SlidingWindow::per_second(3).resized(1).check(t0), Ok(()));
    }

    #[test]
    fn sliding_window_clamps_n_and_takes_out_of_order_times_as_the_last() {
        let t0 = Instant::now();
        assert_eq!(SlidingWindow::per_second(0).limit(), 1);
        assert_eq!(
            SlidingWindow::per_second(u32::MAX).limit(),
            SlidingWindow::MAX_EVENTS
        );
        let mut w = SlidingWindow::per_second(1);
        w.record(t0 + Duration::from_secs(5));
        w.record(t0);
        assert_eq!(
            w.check(t0 + Duration::from_secs(5)),
            Err(t0 + Duration::from_secs(6))
        );
    }

    /// Brute force against the ring: random event times, each recorded
    /// when allowed; every window of the accepted times is counted.
    #[test]
    fn sliding_window_agrees_with_counting_every_window() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let t0 = Instant::now();
        for n in [1, 2, 5, 10] {
            let mut w = SlidingWindow::new(n, Duration::from_millis(100));
            let mut now = t0;
            let mut accepted: Vec<Instant> = vec![];
            for _ in 0..2000 {
                now += Duration::from_micros(rng.gen_range(0..30_000));
                let counted = accepted
                    .iter()
                    .filter(|&&a| now.saturating_duration_since(a) < Duration::from_millis(100))
                    .count();
                let allowed = w.check(now).is_ok();
                assert_eq!(allowed, counted < n as usize, "n {n}");
                if allowed {
                    w.record(now);
                    accepted.push(now);
                } else if let Err(at) = w.check(now) {
                    // The earliest time is exact: one tick before is refused.
                    assert!(at > now);
                    assert!(w.check(at - Duration::from_nanos(1)).is_err());
                    assert!(w.check(at).is_ok());
                }
            }
        }
    }

    #[test]
    fn log_throttle_lets_one_line_through_per_interval() {
        let t0 = Instant::now();
        let mut l = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(l.event(t0), Some(0));
        for i in 1..1000 {
            assert_eq!(l.event(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(l.event(t0 + Duration::from_secs(10)), Some(999));
        assert_eq!(l.event(t0 + Duration::from_secs(11)), None);
        assert_eq!(l.event(t0 + Duration::from_secs(30)), Some(1));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(50)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
