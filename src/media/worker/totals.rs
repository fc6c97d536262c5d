//! What the media of ended calls added up to, for `/metrics`: RTP packets,
//! loss, the jitter buffer's decisions and delay, keys heard by source.
//! A call's counts are added once, when its media closes, so the tick
//! never touches a shared counter; a live call shows up when it ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::media::events::DigitSource;
use crate::media::jitter::JitterStats;
use crate::media::rtp_session::RtpStats;

/// Delay samples kept between two scrapes at most; beyond, they are
/// counted in `delays_dropped` and lost.
const MAX_DELAY_SAMPLES: usize = 65_536;

/// The sources of [`DigitSource`], in the order of `digits` below.
pub const DIGIT_SOURCES: [DigitSource; 4] = [
    DigitSource::Rfc4733,
    DigitSource::Signalling,
    DigitSource::InBand,
    DigitSource::Simulated,
];

pub fn digit_index(s: DigitSource) -> usize {
    match s {
        DigitSource::Rfc4733 => 0,
        DigitSource::Signalling => 1,
        DigitSource::InBand => 2,
        DigitSource::Simulated => 3,
    }
}

/// Shared by the workers of a pool; atomics, written once per leg.
#[derive(Debug, Default)]
pub struct MediaTotals {
    legs_closed: AtomicU64,
    packets_received: AtomicU64,
    packets_sent: AtomicU64,
    packets_lost: AtomicU64,
    packets_dropped: AtomicU64,
    jb_played: AtomicU64,
    jb_concealed: AtomicU64,
    jb_late: AtomicU64,
    jb_lost: AtomicU64,
    digits: [AtomicU64; 4],
    /// Each closed leg's final jitter-buffer target delay (seconds), for
    /// the scrape's histogram. One lock per leg's end, never per packet.
    delays: Mutex<Vec<f64>>,
    delays_dropped: AtomicU64,
}

/// The totals at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaSnapshot {
    pub legs_closed: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub packets_lost: u64,
    pub packets_dropped: u64,
    pub jb_played: u64,
    pub jb_concealed: u64,
    pub jb_late: u64,
    pub jb_lost: u64,
    /// By [`DIGIT_SOURCES`].
    pub digits: [u64; 4],
    pub delays_dropped: u64,
}

impl MediaTotals {
    /// Adds one leg's final counts (`rtp` is `None` for a B-channel).
    pub(super) fn add_leg(&self, rtp: Option<&RtpStats>, jb: &JitterStats, digits: &[u64; 4]) {
        let add = |a: &AtomicU64, v: u64| {
            a.fetch_add(v, Ordering::Relaxed);
        };
        add(&self.legs_closed, 1);
        if let Some(r) = rtp {
            add(&self.packets_received, r.packets_received);
            add(&self.packets_sent, r.packets_sent);
            // Duplicates make RFC 3550's cumulative loss negative.
            add(
                &self.packets_lost,
                u64::try_from(r.packets_lost).unwrap_or(0),
            );
            add(&self.packets_dropped, r.dropped.total());
        }
        add(&self.jb_played, jb.played);
        add(&self.jb_concealed, jb.concealed);
        add(&self.jb_late, jb.late);
        add(&self.jb_lost, jb.lost);
        for (slot, n) in self.digits.iter().zip(digits) {
            add(slot, *n);
        }
        let mut delays = self
            .delays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if delays.len() < MAX_DELAY_SAMPLES {
            delays.push(jb.target_delay.as_secs_f64());
        } else {
            add(&self.delays_dropped, 1);
        }
    }

    /// The delay samples since the last call (each is handed out once).
    pub fn take_delays(&self) -> Vec<f64> {
        let mut delays = self
            .delays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *delays)
    }

    pub fn snapshot(&self) -> MediaSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MediaSnapshot {
            legs_closed: get(&self.legs_closed),
            packets_received: get(&self.packets_received),
            packets_sent: get(&self.packets_sent),
            packets_lost: get(&self.packets_lost),
            packets_dropped: get(&self.packets_dropped),
            jb_played: get(&self.jb_played),
            jb_concealed: get(&self.jb_concealed),
            jb_late: get(&self.jb_late),
            jb_lost: get(&self.jb_lost),
            digits: [
                get(&self.digits[0]),
                get(&self.digits[1]),
                get(&self.digits[2]),
                get(&self.digits[3]),
            ],
            delays_dropped: get(&self.delays_dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn legs_add_up_and_delays_are_handed_out_once() {
        let t = MediaTotals::default();
        let mut rtp = RtpStats {
            packets_received: 100,
            packets_sent: 90,
            packets_lost: -2,
            ..RtpStats::default()
        };
        let mut jb = JitterStats {
            played: 95,
            concealed: 5,
            target_delay: Duration::from_millis(40),
            ..JitterStats::default()
        };
        t.add_leg(Some(&rtp), &jb, &[2, 0, 1, 0]);
        rtp.packets_lost = 3;
        jb.target_delay = Duration::from_millis(700);
        t.add_leg(Some(&rtp), &jb, &[0, 1, 0, 0]);
        let s = t.snapshot();
        assert_eq!(s.legs_closed, 2);
        assert_eq!(s.packets_received, 200);
        assert_eq!(s.packets_lost, 3, "negative loss counts as none");
        assert_eq!(s.jb_concealed, 10);
        assert_eq!(s.digits, [2, 1, 1, 0]);
        assert_eq!(t.take_delays(), [0.04, 0.7]);
        assert!(t.take_delays().is_empty(), "each sample is handed out once");
    }
}
