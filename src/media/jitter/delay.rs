//! Delay measurement of the jitter buffer: the base (fastest recent)
//! transit that delays are measured against, a sliding-window percentile of
//! the transit above that base which sets the target delay, and the RFC 3550
//! interarrival jitter, kept for statistics and RTCP.
//!
//! All times are microseconds on the buffer's own axis; a packet's transit is
//! its arrival minus its media time, so it is offset by an unknown constant
//! and only differences matter.

use super::base::BaseWindow;
use super::window::PercentileWindow;

/// In-order packets the target percentile is taken over: 10 s at 50
/// packets/s, long enough for a rare spike to count once per window rather
/// than to set the delay, short enough to follow a changing path.
const WINDOW_PACKETS: usize = 500;
/// The target covers this share (ppm) of the window: a packet later than
/// that is concealed. Over a full window that leaves the two slowest of 500
/// out; the playout lands somewhere in the frame above the target (delay
/// moves in whole frames), so in practice fewer than 0.5 % arrive late.
const TARGET_PERCENTILE_PPM: u64 = 995_000;
/// Histogram resolution of the window.
const BIN_US: i64 = 250;

/// The base is the fastest transit of the last this-many µs: long enough to
/// contain a packet near the path's true minimum (so the base wobbles
/// little), short enough that a 0.5 % slow sender puts only 10 ms of drift
/// into the transits above it.
const BASE_WINDOW_US: i64 = 2_000_000;
/// Candidates the base window holds: 2 s of 10 ms packets, with room.
const BASE_CAPACITY: usize = 256;

/// The target falls by 1/2^9 of its excess per in-order packet (a time
/// constant of about 10 s at 50 packets/s): shrink slowly, since a delay
/// given back too early costs late packets. It rises at once: the window
/// percentile already ignores single spikes.
const TARGET_SHRINK_SHIFT: u32 = 9;

/// The start target fades out over this many in-order packets (2 s at 50
/// packets/s): by then the window's percentile, which is its maximum while
/// the window is short, has seen enough of the path to take over.
const START_PACKETS: u64 = 100;

/// Base transit, target delay and RFC 3550 jitter.
#[derive(Debug, Clone)]
pub(super) struct DelayEstimator {
    /// Jitter in µs, scaled by 16 as in RFC 3550 appendix A.8.
    jitter_x16: i64,
    prev_transit: Option<i64>,
    base: BaseWindow,
    /// Transit above the base of recent in-order packets.
    window: PercentileWindow,
    /// The target the window has earned: follows its percentile up at
    /// once and down slowly.
    measured_us: i64,
    /// The start target, and the in-order packets measured so far.
    start_us: i64,
    measured: u64,
    min_us: i64,
    max_us: i64,
}

impl DelayEstimator {
    /// `start_delay_ms` is the target before any packet has been measured,
    /// clamped to the bounds.
    pub fn new(min_delay_ms: u32, max_delay_ms: u32, start_delay_ms: u32) -> Self {
        let min_us = i64::from(min_delay_ms) * 1000;
        let max_us = (i64::from(max_delay_ms) * 1000).max(min_us);
        Self {
            jitter_x16: 0,
            prev_transit: None,
            base: BaseWindow::new(BASE_WINDOW_US, BASE_CAPACITY),
            window: PercentileWindow::new(WINDOW_PACKETS, BIN_US, max_us, TARGET_PERCENTILE_PPM),
            measured_us: min_us,
            start_us: (i64::from(start_delay_ms) * 1000).clamp(min_us, max_us),
            measured: 0,
            min_us,
            max_us,
        }
    }

    /// Feeds one packet's arrival time and transit. `in_order` is false for
    /// a packet that came after a later one: reordering is not jitter of the
    /// path (WebRTC's NetEq keeps it out of its delay histogram too), so it
    /// moves the jitter and the base but not the target; a packet held back
    /// beyond the target is concealed rather than delaying every other one.
    pub fn on_arrival(&mut self, arrival_us: i64, transit_us: i64, in_order: bool) {
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
        // Measured against the base the buffer held its delay against while
        // this packet was on its way (`base()` as of the previous arrival):
        // a packet is on time exactly when this is within that delay. It
        // also carries the base's own drift, so a slow sender's rising
        // transit shows up as delay to cover.
        let above_base = self
            .base()
            .map_or(0, |base| transit_us.saturating_sub(base));
        self.base.push(arrival_us, transit_us);
        if !in_order {
            return;
        }
        self.window.push(above_base);
        self.measured = self.measured.saturating_add(1);
        let raw = self.window.value_us().clamp(self.min_us, self.max_us);
        if raw >= self.measured_us {
            self.measured_us = raw;
        } else {
            // Rounding the step up lets the target reach `raw` exactly.
            self.measured_us -=
                (self.measured_us - raw + (1 << TARGET_SHRINK_SHIFT) - 1) >> TARGET_SHRINK_SHIFT;
        }
    }

    /// The base transit as of the last arrival: the fastest recent one.
    pub fn base(&self) -> Option<i64> {
        self.base.get()
    }

    /// The RFC 3550 interarrival jitter in µs.
    pub fn jitter_us(&self) -> i64 {
        self.jitter_x16 >> 4
    }

    /// The delay the buffer aims to keep, in µs.
    pub fn target_us(&self) -> i64 {
        let left = START_PACKETS.saturating_sub(self.measured) as i64;
        let start = self.start_us * left / START_PACKETS as i64;
        self.measured_us.max(start)
    }

    /// The window percentile the target follows, in µs.
    #[cfg(test)]
    pub fn percentile_us(&self) -> i64 {
        self.window.value_us()
    }

    /// Forgets the path timing (after a resynchronisation the transit offset
    /// changes) but keeps the jitter, the window and the target, which
    /// describe the network.
    pub fn reset_base(&mut self) {
        self.prev_transit = None;
        self.base.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::netem::SplitMix64;

    /// Packets every 20 ms on a virtual clock, each with `extra(k)` µs of
    /// path delay on top of a constant, all in order.
    fn feed(est: &mut DelayEstimator, from: i64, to: i64, mut extra: impl FnMut(i64) -> i64) {
        for k in from..to {
            let delay = 30_000 + extra(k);
            est.on_arrival(k * 20_000 + delay, delay, true);
        }
    }

    /// Triangular on [0, 2 * half]: the path delay of netem's jitter.
    fn triangular(rng: &mut SplitMix64, half: i64) -> i64 {
        ((rng.next_u64() % half as u64) + (rng.next_u64() % half as u64)) as i64
    }

    #[test]
    fn starts_at_the_start_target_and_gives_it_back_on_a_calm_path() {
        let mut est = DelayEstimator::new(0, 400, 40);
        assert_eq!(est.target_us(), 40_000, "before any packet");
        feed(&mut est, 0, 50, |_| 0);
        // Half-way through the start phase, half of the start target left.
        assert_eq!(est.target_us(), 20_000);
        feed(&mut est, 50, 100, |_| 0);
        assert_eq!(est.target_us(), 0);
        assert_eq!(est.jitter_us(), 0);
        assert_eq!(est.base(), Some(30_000));
    }

    #[test]
    fn start_target_is_clamped_to_the_bounds() {
        assert_eq!(DelayEstimator::new(50, 400, 40).target_us(), 50_000);
        assert_eq!(DelayEstimator::new(0, 30, 40).target_us(), 30_000);
    }

    #[test]
    fn a_short_window_is_covered_to_its_maximum() {
        // Three packets in, the percentile of the window is its slowest.
        let mut est = DelayEstimator::new(0, 400, 0);
        for (k, extra) in [(0, 0), (1, 12_000), (2, 3_000)] {
            est.on_arrival(k * 20_000 + 30_000 + extra, 30_000 + extra, true);
        }
        assert_eq!(est.percentile_us(), 12_000);
        assert_eq!(est.target_us(), 12_000, "grows at once");
    }

    #[test]
    fn target_covers_the_p995_of_a_steady_jitter() {
        // 20±10 ms triangular jitter, as netem makes it: 99.5 % of the
        // delays lie within 19 ms of the fastest.
        let mut rng = SplitMix64::new(11);
        let mut est = DelayEstimator::new(0, 400, 40);
        feed(&mut est, 0, 3_000, |_| triangular(&mut rng, 10_000));
        let t = est.target_us();
        assert!((17_000..=20_000).contains(&t), "{t}");
        // J of the same path is a much smaller figure (RFC 3550).
        assert!(
            (2_000..6_000).contains(&est.jitter_us()),
            "{}",
            est.jitter_us()
        );
    }

    #[test]
    fn rare_spikes_do_not_set_the_target() {
        // 0.2 % of packets 150 ms late: fewer than the 0.5 % left out.
        let mut est = DelayEstimator::new(0, 400, 0);
        feed(
            &mut est,
            0,
            5_000,
            |k| if k % 500 == 7 { 150_000 } else { 0 },
        );
        assert_eq!(est.target_us(), 0);
    }

    #[test]
    fn grows_at_once_shrinks_over_seconds_within_bounds() {
        let mut est = DelayEstimator::new(10, 100, 0);
        feed(&mut est, 0, 500, |_| 0);
        assert_eq!(est.target_us(), 10_000, "floored at min");
        // A path change: every other packet 60 ms slower.
        feed(&mut est, 500, 510, |k| if k % 2 == 1 { 60_000 } else { 0 });
        assert_eq!(est.target_us(), 60_000, "grown at once");
        feed(&mut est, 510, 520, |k| if k % 2 == 1 { 150_000 } else { 0 });
        assert_eq!(est.target_us(), 100_000, "capped at max");
        // Calm again: the spikes must leave the 500-packet window first,
        // then the target falls with a time constant of about 10 s.
        feed(&mut est, 520, 1_010, |_| 0);
        assert_eq!(est.target_us(), 100_000, "spikes 511..=519 still in");
        feed(&mut est, 1_010, 1_020 + 250, |_| 0);
        let t = est.target_us();
        assert!((50_000..100_000).contains(&t), "5 s later: {t}");
        feed(&mut est, 1_270, 4_000, |_| 0);
        assert_eq!(est.target_us(), 10_000, "back at min");
    }

    #[test]
    fn reordered_packets_do_not_move_the_target() {
        let mut est = DelayEstimator::new(0, 400, 0);
        feed(&mut est, 0, 100, |_| 0);
        // A packet held back 40 ms and overtaken, every 20th.
        for k in 100..1_000 {
            let extra = if k % 20 == 0 { 40_000 } else { 0 };
            est.on_arrival(k * 20_000 + 30_000 + extra, 30_000 + extra, k % 20 != 0);
        }
        assert_eq!(est.target_us(), 0);
        assert!(est.jitter_us() > 1_000, "J still sees them");
    }

    #[test]
    fn a_slow_sender_is_covered_by_its_drift_in_the_window() {
        // Transit rises 100 µs per packet (a 0.5 % slow clock): the base
        // lags 2 s behind, so the target is the 10 ms that lag adds, and
        // base + target stays on the newest packet's transit.
        let mut est = DelayEstimator::new(0, 400, 0);
        feed(&mut est, 0, 2_000, |k| k * 100);
        let newest = 30_000 + 1_999 * 100;
        let covered = est.base().unwrap() + est.target_us();
        assert!(
            (newest..=newest + 500).contains(&covered),
            "{covered} vs {newest}"
        );
    }

    #[test]
    fn a_fast_sender_needs_no_delay() {
        // Transit falls 100 µs per packet: each packet is the new base.
        let mut est = DelayEstimator::new(0, 400, 0);
        feed(&mut est, 0, 2_000, |k| -k * 100);
        assert_eq!(est.target_us(), 0);
        assert_eq!(est.base(), Some(30_000 - 1_999 * 100));
    }

    #[test]
    fn reset_forgets_the_base_but_keeps_the_target() {
        let mut est = DelayEstimator::new(0, 400, 0);
        feed(&mut est, 0, 200, |k| if k % 2 == 1 { 30_000 } else { 0 });
        let target = est.target_us();
        est.reset_base();
        assert_eq!(est.base(), None);
        assert_eq!(est.target_us(), target);
        // A new stream with a transit offset a minute away.
        est.on_arrival(60_000_000, 60_000_000, true);
        assert_eq!(est.base(), Some(60_000_000));
        assert_eq!(est.target_us(), target);
    }
}
