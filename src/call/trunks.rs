//! The trunks outbound calls go through, as the call layer sees them —
//! whatever carries them (SIP today, PRI next): channels in use against
//! `max_channels`, new calls paced to `cps` with no burst above it, and
//! whether the trunk is up (its transport says so: OPTIONS keepalives,
//! registration, a PRI D-channel). Sans-IO; the registry asks it.

use std::time::{Duration, Instant};

use crate::call::cause::Cause;
use crate::rate::TokenBucket;

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
            match t.pace.try_take(now) {
                Ok(()) => {
                    t.in_use += 1;
                    return Ok(t.limits.name.clone());
                }
                Err(w) => {
                    let at = now + w;
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
        assert!((419..=421).contains(&starts.len()), "{}", starts.len());
    }
}
