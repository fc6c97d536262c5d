//! Delay measurement of the jitter buffer: the RFC 3550 interarrival jitter
//! estimator, the target delay derived from it, and the base (fastest
//! recent) transit time that the current delay is measured against.
//!
//! All times are microseconds on the buffer's own axis; a packet's transit is
//! its arrival minus its media time, so it is offset by an unknown constant
//! and only differences matter.

/// Target delay = this many times the RFC 3550 jitter. The estimator is a
/// mean absolute deviation of consecutive transits; for the bounded jitter
/// we meet it sits near a third of the delay spread, so three times it
/// covers about 95 % of packets without buffering for the rare worst one.
const TARGET_JITTER_MULTIPLE: i64 = 3;

/// The base transit rises by this much per second when no faster packet
/// comes, so it follows a sender clock that runs slow by up to 0.6 %
/// (above the ±0.5 % we promise) while still forgetting stale minima.
const BASE_LEAK_PPM: i64 = 6_000;

/// The target falls by 1/2^9 of its excess per packet (a time constant of
/// about 10 s at 50 packets/s)...
const TARGET_SHRINK_SHIFT: u32 = 9;
/// ...and rises by 1/2^6 of its shortfall (about 1.3 s): grow fast, shrink
/// slowly. Rising at once would chase every noisy peak of the estimator.
const TARGET_GROW_SHIFT: u32 = 6;

/// RFC 3550 §6.4.1 jitter, target delay, and base transit.
#[derive(Debug, Clone)]
pub(super) struct DelayEstimator {
    /// Jitter in µs, scaled by 16 as in RFC 3550 appendix A.8.
    jitter_x16: i64,
    prev_transit: Option<i64>,
    /// (transit, arrival) of the minimum the leaky base hangs from.
    base: Option<(i64, i64)>,
    last_arrival_us: i64,
    target_us: i64,
    min_us: i64,
    max_us: i64,
}

impl DelayEstimator {
    pub fn new(min_delay_ms: u32, max_delay_ms: u32) -> Self {
        let min_us = i64::from(min_delay_ms) * 1000;
        let max_us = (i64::from(max_delay_ms) * 1000).max(min_us);
        Self {
            jitter_x16: 0,
            prev_transit: None,
            base: None,
            last_arrival_us: 0,
            target_us: min_us,
            min_us,
            max_us,
        }
    }

    /// Feeds one packet's arrival time and transit.
    pub fn on_arrival(&mut self, arrival_us: i64, transit_us: i64) {
        if let Some(prev) = self.prev_transit {
            let d = transit_us.saturating_sub(prev).saturating_abs();
            // J += (|D| - J) / 16, in the integer form of RFC 3550 A.8.
            self.jitter_x16 = self
                .jitter_x16
                .saturating_add(d)
                .saturating_sub((self.jitter_x16 + 8) >> 4)
                .max(0);
        }
        self.prev_transit = Some(transit_us);
        self.last_arrival_us = arrival_us;

        let below_base = self
            .base_at(arrival_us)
            .is_none_or(|base| transit_us <= base);
        if below_base {
            self.base = Some((transit_us, arrival_us));
        }

        let raw = (self.jitter_us().saturating_mul(TARGET_JITTER_MULTIPLE))
            .clamp(self.min_us, self.max_us);
        if raw >= self.target_us {
            self.target_us +=
                (raw - self.target_us + (1 << TARGET_GROW_SHIFT) - 1) >> TARGET_GROW_SHIFT;
        } else {
            // Rounding the step up lets the target reach `raw` exactly.
            self.target_us -=
                (self.target_us - raw + (1 << TARGET_SHRINK_SHIFT) - 1) >> TARGET_SHRINK_SHIFT;
        }
    }

    /// The base transit as seen at `now_us`: the leaky minimum of transits.
    pub fn base_at(&self, now_us: i64) -> Option<i64> {
        let (transit, at) = self.base?;
        let leak = now_us
            .saturating_sub(at)
            .max(0)
            .saturating_mul(BASE_LEAK_PPM)
            / 1_000_000;
        Some(transit.saturating_add(leak))
    }

    /// The base transit as of the last arrival. The leak only forgets old
    /// minima from one packet to the next; between an arrival and a tick it
    /// would just make the delay look shorter than it is.
    pub fn base(&self) -> Option<i64> {
        self.base_at(self.last_arrival_us)
    }

    /// The RFC 3550 interarrival jitter in µs.
    pub fn jitter_us(&self) -> i64 {
        self.jitter_x16 >> 4
    }

    /// The delay the buffer aims to keep, in µs.
    pub fn target_us(&self) -> i64 {
        self.target_us
    }

    /// Forgets the path timing (after a resynchronisation the transit offset
    /// changes) but keeps the jitter and target, which describe the network.
    pub fn reset_base(&mut self) {
        self.prev_transit = None;
        self.base = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_transit_has_zero_jitter_and_minimum_target() {
        let mut est = DelayEstimator::new(20, 300);
        for i in 0..100 {
            est.on_arrival(i * 20_000, 5_000);
        }
        assert_eq!(est.jitter_us(), 0);
        assert_eq!(est.target_us(), 20_000);
        // The last packet came at 1.98 s; 20 ms later the base has leaked.
        let leak = 20_000 * BASE_LEAK_PPM / 1_000_000;
        assert_eq!(est.base_at(2_000_000), Some(5_000 + leak));
    }

    #[test]
    fn alternating_transit_converges_to_rfc3550_jitter() {
        // |D| is always 10 ms, so J converges to 10 ms (RFC 3550 6.4.1).
        let mut est = DelayEstimator::new(0, 1000);
        for i in 0..1000 {
            est.on_arrival(i * 20_000, if i % 2 == 0 { 0 } else { 10_000 });
        }
        assert!(
            (est.jitter_us() - 10_000).abs() <= 20,
            "{}",
            est.jitter_us()
        );
        assert!((est.target_us() - 30_000).abs() <= 100);
    }

    #[test]
    fn target_grows_fast_shrinks_slowly_and_respects_bounds() {
        let mut est = DelayEstimator::new(10, 100);
        for i in 0..100 {
            est.on_arrival(i * 20_000, if i % 2 == 0 { 0 } else { 50_000 });
        }
        // Two seconds of 50 ms jitter: most of the way to the cap already.
        assert!(est.target_us() > 75_000, "{}", est.target_us());
        for i in 100..1000 {
            est.on_arrival(i * 20_000, if i % 2 == 0 { 0 } else { 50_000 });
        }
        assert_eq!(est.target_us(), 100_000, "capped at max");
        for i in 1000..1010 {
            est.on_arrival(i * 20_000, 0);
        }
        // Jitter has dropped a lot in ten calm packets; the target hardly.
        assert!(est.jitter_us() < 35_000);
        assert!(est.target_us() > 95_000);
        for i in 1010..5000 {
            est.on_arrival(i * 20_000, 0);
        }
        assert_eq!(est.target_us(), 10_000, "floored at min");
    }

    #[test]
    fn base_follows_a_rising_transit_and_drops_at_once() {
        let mut est = DelayEstimator::new(0, 100);
        // Transit rises 0.1 ms per 20 ms packet: a 0.5 % slow sender.
        for i in 0..500 {
            est.on_arrival(i * 20_000, i * 100);
        }
        assert_eq!(est.base_at(499 * 20_000), Some(499 * 100));
        est.on_arrival(500 * 20_000, -7_000);
        assert_eq!(est.base_at(500 * 20_000), Some(-7_000));
    }
}
