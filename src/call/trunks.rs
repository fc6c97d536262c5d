//! The trunks outbound calls go through, as the call layer sees them —
//! whatever carries them (SIP today, PRI next): channels in use against
//! `max_channels`, new calls paced to `cps` with no burst above it (a
//! paced bucket for the spacing, a sliding 1 s window so no second ever
//! holds more than `cps` starts), and
//! whether the trunk is up (its transport says so: OPTIONS keepalives,
//! registration, a PRI D-channel). Sans-IO; the registry asks it.

use std::time::{Duration, Instant};

use crate::call::cause::Cause;
use crate::rate::{SlidingWindow, TokenBucket};

/// A trunk's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkLimits {
    pub name: String,
    pub max_channels: u32,
    pub cps: u32,
    pub ring_timeout: Duration,
    /// The default caller id for calls through it.
    pub caller_id: Option<String>,
}

#[derive(Debug)]
struct Trunk {
    limits: TrunkLimits,
    in_use: u32,
    pace: TokenBucket,
    /// The paced bucket keeps its slots when takes are a little late, so
    /// alone it could let `cps + 1` starts into some 1 s window; this
    /// window refuses that one.
    window: SlidingWindow,
    up: bool,
}

/// Why no trunk takes a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTrunk {
    /// Try again at this time (cps pacing): not a failure.
    Wait(Instant),
    /// Refused with this cause (no such trunk, all down, all full).
    Refused(Cause),
}

#[derive(Debug, Default)]
pub struct Trunks {
    list: Vec<Trunk>,
}

impl Trunks {
    pub fn new(limits: Vec<TrunkLimits>) -> Self {
        Trunks {
            list: limits
                .into_iter()
                .map(|l| Trunk {
                    // One at a time, `cps` a second on average, each at
                    // least 90 % of 1/cps after the one before.
                    pace: TokenBucket::paced(l.cps.max(1)),
                    window: SlidingWindow::per_second_on_the_wire(l.cps),
                    limits: l,
                    in_use: 0,
                    up: true,
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn limits(&self, name: &str) -> Option<&TrunkLimits> {
        self.list
            .iter()
            .find(|t| t.limits.name == name)
            .map(|t| &t.limits)
    }

    pub fn in_use(&self, name: &str) -> u32 {
        self.list
            .iter()
            .find(|t| t.limits.name == name)
            .map_or(0, |t| t.in_use)
    }

    pub fn is_up(&self, name: &str) -> bool {
        self.list.iter().any(|t| t.limits.name == name && t.up)
    }

    /// The transport says the trunk is up or down.
    pub fn set_up(&mut self, name: &str, up: bool) {
        for t in self.list.iter_mut().filter(|t| t.limits.name == name) {
            if t.up != up {
                tracing::warn!(trunk = ?name, up, "trunk state changed");
            }
            t.up = up;
        }
    }

    /// A trunk for a new call: `wanted` (only that one) or the first in
    /// the list that is up, has a free channel and may start a call now.
    /// Takes the channel and the pacing token.
    pub fn pick(&mut self, now: Instant, wanted: Option<&str>) -> Result<String, NoTrunk> {
        let mut wait: Option<Instant> = None;
        let mut any_up = false;
        let mut known = false;
        for t in self.list.iter_mut() {
            if wanted.is_some_and(|w| w != t.limits.name) {
                continue;
            }
            known = true;
            if !t.up {
                continue;
            }
            any_up = true;
            if t.in_use >= t.limits.max_channels {
                continue;
            }
            // The window first: a refused take leaves the bucket as it was.
            let taken = t
                .window
                .check(now)
                .and_then(|()| t.pace.try_take(now).map_err(|w| now + w));
            match taken {
                Ok(()) => {
                    t.window.record(now);
                    t.in_use += 1;
                    return Ok(t.limits.name.clone());
                }
                Err(at) => {
                    wait = Some(wait.map_or(at, |x| x.min(at)));
                }
            }
        }
        match (known, any_up, wait) {
            // An unknown trunk or none at all: no route.
            (false, _, _) => Err(NoTrunk::Refused(Cause::NO_ROUTE_DESTINATION)),
            // Every trunk down: no route now, so the attempt is
            // unreachable, without a packet sent.
            (true, false, _) => Err(NoTrunk::Refused(Cause::NO_ROUTE_DESTINATION)),
            (true, true, Some(at)) => Err(NoTrunk::Wait(at)),
            (true, true, None) => Err(NoTrunk::Refused(Cause::NO_CIRCUIT_AVAILABLE)),
        }
    }

    /// New caps for `name` — this node's share of cluster-wide caps
    /// (`cluster::share`) — keeping what the old ones counted: calls up
    /// stay up (more than the new `max_channels` only blocks new calls
    /// until enough end), the newest starts stay in the 1 s window and the
    /// next start keeps its slot, so lowering `cps` lets no burst through.
    pub fn set_caps(&mut self, name: &str, max_channels: u32, cps: u32) {
        for t in self.list.iter_mut().filter(|t| t.limits.name == name) {
            if t.limits.cps != cps {
                t.pace = t.pace.repaced(cps.max(1));
                t.window = t.window.resized(cps);
            }
            t.limits.cps = cps;
            t.limits.max_channels = max_channels;
        }
    }

    /// The calls started since the last confirmation left at `at`: their
    /// starts count from then (see [`SlidingWindow::confirm`]).
    pub fn confirm_sent(&mut self, at: Instant) {
        for t in self.list.iter_mut() {
            t.window.confirm(at);
        }
    }

    /// A call through `name` ended: its channel is free.
    pub fn release(&mut self, name: &str) {
        for t in self.list.iter_mut().filter(|t| t.limits.name == name) {
            t.in_use = t.in_use.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(name: &str, channels: u32, cps: u32) -> TrunkLimits {
        TrunkLimits {
            name: name.into(),
            max_channels: channels,
            cps,
            ring_timeout: Duration::from_secs(45),
            caller_id: None,
        }
    }

    #[test]
    fn cps_paces_with_no_burst_and_channels_cap() {
        let t0 = Instant::now();
        let mut t = Trunks::new(vec![limits("a", 3, 10)]);
        assert_eq!(t.pick(t0, None), Ok("a".into()));
        // The next call waits 100 ms: no burst above 10/s.
        assert_eq!(
            t.pick(t0, None),
            Err(NoTrunk::Wait(t0 + Duration::from_millis(100)))
        );
        assert_eq!(
            t.pick(t0 + Duration::from_millis(100), None),
            Ok("a".into())
        );
        assert_eq!(
            t.pick(t0 + Duration::from_millis(200), None),
            Ok("a".into())
        );
        // Three channels in use: full.
        assert_eq!(
            t.pick(t0 + Duration::from_secs(1), None),
            Err(NoTrunk::Refused(Cause::NO_CIRCUIT_AVAILABLE))
        );
        t.release("a");
        assert_eq!(t.pick(t0 + Duration::from_secs(1), None), Ok("a".into()));
        assert_eq!(t.in_use("a"), 3);
    }

    #[test]
    fn a_down_trunk_hands_calls_to_the_next_and_all_down_is_refused() {
        let t0 = Instant::now();
        let mut t = Trunks::new(vec![limits("a", 10, 100), limits("b", 10, 100)]);
        t.set_up("a", false);
        assert_eq!(t.pick(t0, None), Ok("b".into()));
        assert_eq!(
            t.pick(t0, Some("a")),
            Err(NoTrunk::Refused(Cause::NO_ROUTE_DESTINATION))
        );
        t.set_up("b", false);
        assert_eq!(
            t.pick(t0, None),
            Err(NoTrunk::Refused(Cause::NO_ROUTE_DESTINATION))
        );
        assert_eq!(
            t.pick(t0, Some("zz")),
            Err(NoTrunk::Refused(Cause::NO_ROUTE_DESTINATION))
        );
        t.set_up("a", true);
        assert_eq!(t.pick(t0, None), Ok("a".into()));
    }

    #[test]
    fn new_caps_keep_the_calls_up_and_the_windows_history() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Trunks::new(vec![limits("a", 4, 4)]);
        for k in 0..4 {
            assert_eq!(t.pick(t0 + ms(300 * k), None), Ok("a".into()));
        }
        // A share of 2 channels and 2 cps: the 4 calls up stay counted.
        t.set_caps("a", 2, 2);
        assert_eq!(t.limits("a").map(|l| (l.max_channels, l.cps)), Some((2, 2)));
        assert_eq!(t.in_use("a"), 4);
        t.release("a");
        t.release("a");
        t.release("a");
        // One up of 2: a channel is free, but the starts at 600 and 900 ms
        // are still in the new 2-call window.
        match t.pick(t0 + ms(1000), None) {
            Err(NoTrunk::Wait(at)) => assert!(at >= t0 + ms(1600), "{at:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.pick(t0 + ms(1620), None), Ok("a".into()));
    }

    #[test]
    fn over_a_minute_the_rate_is_never_exceeded() {
        let t0 = Instant::now();
        let mut t = Trunks::new(vec![limits("a", 100_000, 7)]);
        let mut starts = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(60) {
            match t.pick(now, None) {
                Ok(_) => starts.push(now),
                Err(NoTrunk::Wait(at)) => now = at,
                Err(e) => panic!("{e:?}"),
            }
        }
        for w in starts.windows(8) {
            assert!(
                w[7] - w[0] >= Duration::from_secs(1),
                "8 calls within a second"
            );
        }
        // 7 in every 1.02 s window (the wire guard's 20 ms) for 60 s:
        // 411.8.
        assert!((409..=415).contains(&starts.len()), "{}", starts.len());
    }

    /// Starts taken by a taker that asks again as soon as it is allowed
    /// and always comes back late by a random amount up to `late_us`.
    fn drive(
        mut take: impl FnMut(Instant) -> Result<(), Instant>,
        late_us: u64,
        seed: u64,
    ) -> Vec<Instant> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut now = Instant::now();
        let mut starts = Vec::new();
        while starts.len() < 2000 {
            match take(now) {
                Ok(()) => starts.push(now),
                Err(at) => now = at.max(now),
            }
            now += Duration::from_micros(rng.gen_range(0..=late_us));
        }
        starts
    }

    /// The most starts any 1 s window holds, checked ending at every start.
    fn most_in_a_second(starts: &[Instant]) -> usize {
        let mut first = 0;
        let mut most = 0;
        for (i, s) in starts.iter().enumerate() {
            while *s - starts[first] >= Duration::from_secs(1) {
                first += 1;
            }
            most = most.max(i + 1 - first);
        }
        most
    }

    fn per_second(starts: &[Instant]) -> f64 {
        let span = (starts[starts.len() - 1] - starts[0]).as_secs_f64();
        (starts.len() - 1) as f64 / span
    }

    fn trunk_take(t: &mut Trunks) -> impl FnMut(Instant) -> Result<(), Instant> + '_ {
        |now| match t.pick(now, None) {
            Ok(_) => Ok(()),
            Err(NoTrunk::Wait(at)) => Err(at),
            Err(e) => panic!("{e:?}"),
        }
    }

    /// A taker that comes back late by a random amount each time, up to a
    /// tenth of the interval (what the paced bucket forgives) or 20 ms,
    /// whichever is less: 2,000
    /// starts, no 1 s window (sliding, ending at every start) holds more
    /// than `cps`, and the rate stays at or above 95 % of `cps`.
    #[test]
    fn late_takers_never_put_more_than_cps_starts_in_a_second() {
        for cps in [1, 3, 7, 10, 50, 100] {
            let mut t = Trunks::new(vec![limits("a", 100_000, cps)]);
            let late_us = (100_000 / u64::from(cps)).min(20_000);
            let starts = drive(trunk_take(&mut t), late_us, u64::from(cps));
            let most = most_in_a_second(&starts);
            let rate = per_second(&starts);
            eprintln!("cps {cps}, late up to {late_us} us: at most {most} in any 1 s, {rate:.3}/s");
            assert!(
                most <= cps as usize,
                "cps {cps}: {most} starts in one second"
            );
            assert!(rate >= 0.95 * f64::from(cps), "cps {cps}: {rate:.3}/s");
        }
    }

    /// Later than the bucket forgives (up to 5 ms, half the interval at
    /// 100 cps): the window still holds, and it costs no rate beyond what
    /// the paced bucket alone loses to the lateness.
    #[test]
    fn very_late_takers_keep_the_window_and_the_buckets_rate() {
        for cps in [10, 50, 100] {
            let mut t = Trunks::new(vec![limits("a", 100_000, cps)]);
            let starts = drive(trunk_take(&mut t), 5_000, 3);
            let mut bare = TokenBucket::paced(cps);
            let bare_starts = drive(|now| bare.try_take(now).map_err(|w| now + w), 5_000, 3);
            let (most, rate) = (most_in_a_second(&starts), per_second(&starts));
            let bare_rate = per_second(&bare_starts);
            eprintln!(
                "cps {cps}, late up to 5 ms: at most {most} in any 1 s, {rate:.3}/s \
                 (the bucket alone: {} in 1 s, {bare_rate:.3}/s)",
                most_in_a_second(&bare_starts)
            );
            assert!(
                most <= cps as usize,
                "cps {cps}: {most} starts in one second"
            );
            // The wire guard costs up to 2 % when the window binds
            // (cps per 1.02 s), a little more with the lateness.
            assert!(
                rate >= 0.975 * bare_rate,
                "cps {cps}: {rate:.3}/s vs {bare_rate:.3}/s"
            );
        }
    }
}
