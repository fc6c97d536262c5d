//! When the next RTCP report is due: the RFC 3550 §6.2/A.7 interval with a
//! cheap seeded generator for the 0.5–1.5 randomisation.
//!
//! The e − 3/2 division of A.7 is left out on purpose: it compensates for
//! timer reconsideration converging below the intended bandwidth in large
//! groups, and a SIP call is a fixed two-member session where
//! reconsideration never runs. The result is the plain §6.2 rule: at least
//! 5 s (2.5 s before the first report), times a uniform factor in [0.5, 1.5].

use std::time::Duration;

/// RFC 3550 §6.2 minimum interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// Inputs of the deterministic part of the interval (A.7 `rtcp_interval`).
#[derive(Debug, Clone, Copy)]
pub struct IntervalInputs {
    /// Session members (2 in a call).
    pub members: u32,
    /// Members that sent RTP recently.
    pub senders: u32,
    /// RTCP bandwidth, in octets per second (5% of the session bandwidth).
    pub rtcp_bandwidth: f64,
    /// Whether we sent RTP since the last report.
    pub we_sent: bool,
    /// Average compound RTCP size, in octets, with UDP/IP overhead.
    pub avg_rtcp_size: f64,
    /// Before our first report.
    pub initial: bool,
}

/// The interval before randomisation, in seconds.
pub fn deterministic_interval(i: &IntervalInputs) -> f64 {
    let min = if i.initial {
        MIN_INTERVAL.as_secs_f64() / 2.0
    } else {
        MIN_INTERVAL.as_secs_f64()
    };
    let mut n = f64::from(i.members.max(1));
    let mut bw = i.rtcp_bandwidth;
    // Senders get a quarter of the RTCP bandwidth when they are a quarter or
    // fewer of the members (§6.2).
    if f64::from(i.senders) <= f64::from(i.members) * 0.25 {
        if i.we_sent {
            bw *= 0.25;
            n = f64::from(i.senders.max(1));
        } else {
            bw *= 0.75;
            n = f64::from(i.members.saturating_sub(i.senders).max(1));
        }
    }
    if bw <= 0.0 || !bw.is_finite() {
        return min;
    }
    let t = i.avg_rtcp_size * n / bw;
    if t.is_finite() && t > min {
        t
    } else {
        min
    }
}

/// xorshift64*: deterministic for a given seed, cheap, no allocation.
#[derive(Debug, Clone)]
pub struct Jitterer(u64);

impl Jitterer {
    /// Seeded generator (a zero seed is replaced, xorshift needs a nonzero
    /// state).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Uniform in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `seconds` times a uniform factor in [0.5, 1.5).
    pub fn randomise(&mut self, seconds: f64) -> Duration {
        let t = seconds * (0.5 + self.next_unit());
        Duration::try_from_secs_f64(t).unwrap_or(MIN_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> IntervalInputs {
        IntervalInputs {
            members: 2,
            senders: 2,
            rtcp_bandwidth: 500.0,
            we_sent: true,
            avg_rtcp_size: 100.0,
            initial: false,
        }
    }

    #[test]
    fn minimum_dominates_for_a_call() {
        assert_eq!(deterministic_interval(&inputs()), 5.0);
        let first = IntervalInputs {
            initial: true,
            ..inputs()
        };
        assert_eq!(deterministic_interval(&first), 2.5);
    }

    #[test]
    fn bandwidth_limited_interval_follows_a7() {
        // 2 members, both senders (no split): 200 octets * 2 / 20 octet/s.
        let slow = IntervalInputs {
            rtcp_bandwidth: 20.0,
            avg_rtcp_size: 200.0,
            ..inputs()
        };
        assert_eq!(deterministic_interval(&slow), 20.0);
        // 8 members, 1 sender (us): senders share 25%: 200 * 1 / 5.
        let big = IntervalInputs {
            members: 8,
            senders: 1,
            ..slow
        };
        assert_eq!(deterministic_interval(&big), 40.0);
        // ...and a receiver shares 75% among 7: 200 * 7 / 15.
        let recv = IntervalInputs {
            we_sent: false,
            ..big
        };
        assert!((deterministic_interval(&recv) - 200.0 * 7.0 / 15.0).abs() < 1e-9);
        let broken = IntervalInputs {
            rtcp_bandwidth: 0.0,
            ..inputs()
        };
        assert_eq!(deterministic_interval(&broken), 5.0);
    }

    #[test]
    fn randomisation_stays_in_range_and_spreads() {
        let mut j = Jitterer::new(42);
        let (mut lo, mut hi) = (f64::MAX, 0.0f64);
        for _ in 0..10_000 {
            let t = j.randomise(5.0).as_secs_f64();
            assert!((2.5..7.5).contains(&t), "{t}");
            lo = lo.min(t);
            hi = hi.max(t);
        }
        assert!(lo < 2.6 && hi > 7.4, "{lo} {hi}");
        let a: Vec<_> = (0..5).map(|_| Jitterer::new(7).randomise(5.0)).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "seeded: reproducible");
        assert_ne!(Jitterer::new(0).next_unit(), 0.0);
    }
}
