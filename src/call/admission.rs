//! Call admission: whether the server takes one more call, given the calls
//! it already holds and how many it took in the last second
//! (`[limits] max_calls`, `max_cps`). Sans-IO and free of SIP: it answers
//! admit, or refuse with how long the caller should wait; the signalling
//! layer turns that into 503 + Retry-After (or a Q.850 cause on PRI).
//!
//! While the server drains (`server::drain`) every new call is refused
//! with the wait the drain names, whatever the counts.
//!
//! The count of calls in progress comes from the caller, who owns the
//! calls: a call counts from admission until its signalling has ended
//! *and* its script has returned, so the cap bounds script threads and RTP
//! ports too.

use std::time::{Duration, Instant};

use crate::rate::TokenBucket;

/// How long a caller refused for `max_calls` is asked to wait. Short:
/// calls end all the time, and a proxy honouring Retry-After sends this
/// server nothing at all for that long (RFC 3261 §21.5.4).
pub const FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Calls in progress at once.
    pub max_calls: usize,
    /// New calls per second, whole server (also the burst).
    pub max_cps: u32,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_calls` calls are in progress.
    Full,
    /// `max_cps` calls were taken within the last second.
    TooFast,
    /// The server is draining: it takes no new call at all.
    Draining,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admit,
    Refuse { why: Refusal, retry_after: Duration },
}

/// Counters for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AdmissionStats {
    pub admitted: u64,
    pub refused_full: u64,
    pub refused_too_fast: u64,
    pub refused_draining: u64,
}

#[derive(Debug)]
pub struct Admission {
    cfg: AdmissionConfig,
    new_calls: TokenBucket,
    stats: AdmissionStats,
    /// `Some(retry_after)` while the server drains.
    draining: Option<Duration>,
}

impl Admission {
    pub fn new(cfg: AdmissionConfig) -> Self {
        Admission {
            new_calls: TokenBucket::new(cfg.max_cps, cfg.max_cps),
            cfg,
            stats: AdmissionStats::default(),
            draining: None,
        }
    }

    /// Refuse every new call from now on, asking callers to wait
    /// `retry_after` (`None`: take calls again).
    pub fn set_draining(&mut self, retry_after: Option<Duration>) {
        self.draining = retry_after;
    }

    pub fn config(&self) -> AdmissionConfig {
        self.cfg
    }

    pub fn stats(&self) -> &AdmissionStats {
        &self.stats
    }

    /// Whether a new call would be refused for a reason that outlasts the
    /// moment (draining, or `max_calls` reached), and how long to wait:
    /// what a load balancer's OPTIONS probe is told. A per-second refusal
    /// (`max_cps`) is left out: it clears within the second, and a probe
    /// answered 503 for it would take the node out for a whole probing
    /// round.
    pub fn unavailable(&self, in_progress: usize) -> Option<Duration> {
        self.draining
            .or((in_progress >= self.cfg.max_calls).then_some(FULL_RETRY_AFTER))
    }

    /// One new call, with `in_progress` calls already held. A refused call
    /// takes nothing from the per-second allowance.
    pub fn decide(&mut self, now: Instant, in_progress: usize) -> Decision {
        if let Some(retry_after) = self.draining {
            self.stats.refused_draining += 1;
            return Decision::Refuse {
                why: Refusal::Draining,
                retry_after,
            };
        }
        if in_progress >= self.cfg.max_calls {
            self.stats.refused_full += 1;
            return Decision::Refuse {
                why: Refusal::Full,
                retry_after: FULL_RETRY_AFTER,
            };
        }
        match self.new_calls.try_take(now) {
            Ok(()) => {
                self.stats.admitted += 1;
                Decision::Admit
            }
            Err(wait) => {
                self.stats.refused_too_fast += 1;
                Decision::Refuse {
                    why: Refusal::TooFast,
                    retry_after: wait,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_calls: usize, max_cps: u32) -> Admission {
        Admission::new(AdmissionConfig { max_calls, max_cps })
    }

    #[test]
    fn refuses_the_call_past_max_calls_until_one_ends() {
        let t0 = Instant::now();
        let mut a = admission(2, 100);
        assert_eq!(a.decide(t0, 0), Decision::Admit);
        assert_eq!(a.decide(t0, 1), Decision::Admit);
        assert_eq!(
            a.decide(t0, 2),
            Decision::Refuse {
                why: Refusal::Full,
                retry_after: FULL_RETRY_AFTER
            }
        );
        assert_eq!(a.decide(t0, 1), Decision::Admit, "one ended");
        assert_eq!(a.stats().refused_full, 1);
        assert_eq!(a.stats().admitted, 3);
    }

    #[test]
    fn max_cps_takes_a_second_of_calls_then_paces() {
        let t0 = Instant::now();
        let mut a = admission(10_000, 10);
        for _ in 0..10 {
            assert_eq!(a.decide(t0, 0), Decision::Admit);
        }
        assert_eq!(
            a.decide(t0 + Duration::from_millis(30), 0),
            Decision::Refuse {
                why: Refusal::TooFast,
                retry_after: Duration::from_millis(70)
            }
        );
        assert_eq!(
            a.decide(t0 + Duration::from_millis(100), 0),
            Decision::Admit
        );
        // 100 attempts/s for 10 s: 10 + 10 per second, never more.
        let mut b = admission(10_000, 10);
        let admitted = (0..1000)
            .filter(|i| b.decide(t0 + Duration::from_millis(i * 10), 0) == Decision::Admit)
            .count();
        assert_eq!(admitted, 10 + 99);
    }

    #[test]
    fn draining_refuses_every_new_call_with_its_wait_and_spends_no_rate() {
        let t0 = Instant::now();
        let mut a = admission(10, 1);
        a.set_draining(Some(Duration::from_secs(42)));
        for _ in 0..5 {
            assert_eq!(
                a.decide(t0, 0),
                Decision::Refuse {
                    why: Refusal::Draining,
                    retry_after: Duration::from_secs(42)
                }
            );
        }
        assert_eq!(a.stats().refused_draining, 5);
        a.set_draining(None);
        assert_eq!(a.unavailable(0), None);
        assert_eq!(a.decide(t0, 0), Decision::Admit, "the token is still there");
    }

    #[test]
    fn a_call_refused_for_being_full_spends_no_rate() {
        let t0 = Instant::now();
        let mut a = admission(1, 1);
        for _ in 0..50 {
            assert!(matches!(
                a.decide(t0, 1),
                Decision::Refuse {
                    why: Refusal::Full,
                    ..
                }
            ));
        }
        assert_eq!(a.decide(t0, 0), Decision::Admit);
    }
}
