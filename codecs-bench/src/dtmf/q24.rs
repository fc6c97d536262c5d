//! The ITU-T Q.24 receiver cases of rivr's `tests/dtmf_q24.rs`, generated
//! here so that any detector can be run on exactly the same signals:
//! frequency deviation ±1.5 % (accept) and ±3.5 % (reject), 40 ms (accept)
//! and 20 ms (reject), a 10 ms break (bridged), twist +8 dB normal and 4 dB
//! reverse (accept), −36…−4 dBm0 (accept) and −50 dBm0 (reject), white
//! Gaussian noise at 15 dB SNR, and 40 ms pauses between keys; each through
//! a linear, a µ-law and an A-law channel, for all 16 keys.
//!
//! Tones are plain `sin` at the Q.23 frequencies, with levels in dBm0 by the
//! G.711 convention (a full-scale sine is +3.14 dBm0).

use rivr::media::g711;
use rivr::media::g711::Law;
use rivr::media::tone::FULL_SCALE_SINE_DBM0;

use crate::signals::music::Rng;

/// The 16 keys in keypad order.
pub const KEYS: &str = "123A456B789C*0#D";
const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Samples per millisecond at 8 kHz.
const MS: usize = 8;
/// Burst offsets relative to rivr's 102-sample analysis blocks.
const ALIGNMENTS: [usize; 7] = [0, 17, 34, 51, 68, 85, 101];

/// One generated case.
pub struct Case {
    /// Which Q.24 requirement it exercises (see [`GROUPS`]).
    pub group: usize,
    /// 8 kHz audio, ending in at least 100 ms of silence.
    pub pcm: Vec<i16>,
    /// The keys a conforming receiver reports, in order ("" = reject).
    pub expected: String,
}

/// Names of the case groups, indexed by [`Case::group`].
pub const GROUPS: [&str; 10] = [
    "±1.5 % deviation, accept",
    "±3.5 % deviation, reject",
    "40 ms tone, accept",
    "20 ms tone, reject",
    "10 ms break, one key",
    "twist +8 / −4 dB, accept",
    "−36…−4 dBm0, accept",
    "−50 dBm0, reject",
    "15 dB SNR, 16-key runs",
    "40 ms pauses, key runs",
];

fn freqs(key: char) -> (f64, f64) {
    let i = KEYS.find(key).unwrap_or(0);
    (ROWS[i / 4], COLS[i % 4])
}

/// Peak amplitude of a sine at `level_dbm0`.
pub fn peak(level_dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((level_dbm0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

#[derive(Clone, Copy)]
struct Burst {
    low_hz: f64,
    high_hz: f64,
    low_dbm0: f64,
    high_dbm0: f64,
    start: usize,
    len: usize,
}

impl Burst {
    fn key(key: char, level_dbm0: f64, start: usize, len: usize) -> Self {
        let (low_hz, high_hz) = freqs(key);
        Self {
            low_hz,
            high_hz,
            low_dbm0: level_dbm0,
            high_dbm0: level_dbm0,
            start,
            len,
        }
    }

    fn shifted(mut self, low: f64, high: f64) -> Self {
        self.low_hz *= 1.0 + low;
        self.high_hz *= 1.0 + high;
        self
    }

    fn add_to(&self, buf: &mut [f64]) {
        let (a, b) = (peak(self.low_dbm0), peak(self.high_dbm0));
        let w = |f: f64| std::f64::consts::TAU * f / 8000.0;
        let end = (self.start + self.len).min(buf.len());
        for (n, v) in buf.iter_mut().enumerate().take(end).skip(self.start) {
            let t = (n - self.start) as f64;
            *v += a * (w(self.low_hz) * t + 0.3).sin() + b * (w(self.high_hz) * t + 1.1).sin();
        }
    }
}

fn render(bursts: &[Burst], total: usize) -> Vec<f64> {
    let mut buf = vec![0.0; total];
    for b in bursts {
        b.add_to(&mut buf);
    }
    buf
}

/// The three channels every case is sent through.
#[derive(Clone, Copy)]
enum Channel {
    Linear,
    G711(Law),
}

const CHANNELS: [Channel; 3] = [
    Channel::Linear,
    Channel::G711(Law::Ulaw),
    Channel::G711(Law::Alaw),
];

fn through(channel: Channel, x: &[f64]) -> Vec<i16> {
    let pcm: Vec<i16> = x
        .iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    match channel {
        Channel::Linear => pcm,
        Channel::G711(codec) => {
            let mut bytes = vec![0u8; pcm.len()];
            g711::encode(codec, &pcm, &mut bytes);
            let mut back = vec![0i16; pcm.len()];
            g711::decode(codec, &bytes, &mut back);
            back
        }
    }
}

/// Calls `visit` with every case, one at a time (the whole set is several
/// million samples).
pub fn for_each_case(mut visit: impl FnMut(&Case)) {
    let mut emit = |group: usize,
                    bursts: &[Burst],
                    total: usize,
                    expected: String,
                    noise: Option<(f64, u64)>| {
        let mut x = render(bursts, total);
        if let Some((sigma, seed)) = noise {
            let mut rng = Rng(seed);
            for v in &mut x {
                *v += sigma * rng.gaussian();
            }
        }
        for channel in CHANNELS {
            visit(&Case {
                group,
                pcm: through(channel, &x),
                expected: expected.clone(),
            });
        }
    };
    let single = |b: Burst| (b.start + b.len + 100 * MS, b);
    const SMALL: [(f64, f64); 8] = [
        (0.015, 0.0),
        (-0.015, 0.0),
        (0.0, 0.015),
        (0.0, -0.015),
        (0.015, 0.015),
        (-0.015, -0.015),
        (0.015, -0.015),
        (-0.015, 0.015),
    ];
    const LARGE: [(f64, f64); 6] = [
        (0.035, 0.0),
        (-0.035, 0.0),
        (0.0, 0.035),
        (0.0, -0.035),
        (0.035, 0.035),
        (-0.035, -0.035),
    ];
    for key in KEYS.chars() {
        let k = key.to_string();
        for (dl, dh) in SMALL {
            let (total, b) = single(Burst::key(key, -10.0, 40 * MS, 60 * MS).shifted(dl, dh));
            emit(0, &[b], total, k.clone(), None);
        }
        for (dl, dh) in LARGE {
            for level in [-4.0, -10.0, -30.0] {
                let (total, b) = single(Burst::key(key, level, 40 * MS, 200 * MS).shifted(dl, dh));
                emit(1, &[b], total, String::new(), None);
            }
        }
        for lead in ALIGNMENTS {
            for level in [-4.0, -20.0, -36.0] {
                let (total, b) = single(Burst::key(key, level, 400 + lead, 40 * MS));
                emit(2, &[b], total, k.clone(), None);
                let (total, b) = single(Burst::key(key, level, 400 + lead, 20 * MS));
                emit(3, &[b], total, String::new(), None);
            }
            for gap_at_ms in [20, 30, 45, 60, 70] {
                let start = 400 + lead;
                let before = Burst::key(key, -12.0, start, gap_at_ms * MS);
                let after_start = start + (gap_at_ms + 10) * MS;
                let after = Burst::key(key, -12.0, after_start, (90 - gap_at_ms) * MS);
                emit(4, &[before, after], after_start + 200 * MS, k.clone(), None);
            }
        }
        for weak in [-12.0, -24.0] {
            let mut normal = Burst::key(key, weak, 40 * MS, 50 * MS);
            normal.high_dbm0 = weak + 8.0;
            let (total, b) = single(normal);
            emit(5, &[b], total, k.clone(), None);
            let mut reverse = Burst::key(key, weak, 40 * MS, 50 * MS);
            reverse.low_dbm0 = weak + 4.0;
            let (total, b) = single(reverse);
            emit(5, &[b], total, k.clone(), None);
        }
        for level in (-36..=-4).step_by(2) {
            let (total, b) = single(Burst::key(key, f64::from(level), 40 * MS, 45 * MS));
            emit(6, &[b], total, k.clone(), None);
        }
        let (total, b) = single(Burst::key(key, -50.0, 40 * MS, 200 * MS));
        emit(7, &[b], total, String::new(), None);
    }
    for seed in 1..=4u64 {
        for (level, on_ms) in [(-10.0, 50), (-24.0, 50), (-10.0, 40)] {
            let slot = (on_ms + 60) * MS;
            let bursts: Vec<Burst> = KEYS
                .chars()
                .enumerate()
                .map(|(i, k)| Burst::key(k, level, 200 + i * slot, on_ms * MS))
                .collect();
            // SNR of the two tones' total power to the noise's, full band.
            let signal_power = peak(level).powi(2);
            let sigma = (signal_power / 10f64.powf(1.5)).sqrt();
            let total = 400 + KEYS.len() * slot;
            emit(
                8,
                &bursts,
                total,
                KEYS.to_owned(),
                Some((sigma, seed * 7919 + on_ms as u64)),
            );
        }
    }
    for (pattern, level) in [(KEYS, -10.0), ("1111", -20.0), ("#*#*00", -30.0)] {
        for lead in ALIGNMENTS {
            let bursts: Vec<Burst> = pattern
                .chars()
                .enumerate()
                .map(|(i, k)| Burst::key(k, level, lead + 80 * MS * i, 40 * MS))
                .collect();
            let total = lead + 80 * MS * pattern.len() + 100 * MS;
            emit(9, &bursts, total, pattern.to_owned(), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_g711_dbm0_convention() {
        // G.711: a full-scale sine is +3.14 dBm0, so 0 dBm0 is 3.14 dB below.
        let full_scale_dbm0 = 314.0 / 100.0;
        assert!((peak(full_scale_dbm0) - 32767.0).abs() < 1e-6);
        assert!((peak(0.0) - 32767.0 * 10f64.powf(-full_scale_dbm0 / 20.0)).abs() < 1e-6);
    }

    #[test]
    fn every_group_is_generated_for_every_channel() {
        let mut counts = [0usize; GROUPS.len()];
        let mut accept_keys = 0;
        for_each_case(|case| {
            counts[case.group] += 1;
            accept_keys += case.expected.len();
            assert!(case.pcm.len() >= 100 * MS);
            // The tail is tone-free, so a receiver has time to report.
            if case.group != 8 {
                assert!(case.pcm[case.pcm.len() - 50 * MS..]
                    .iter()
                    .all(|&s| s.abs() < 16));
            }
        });
        // Per key: 8 small deviations, 18 large, 21+21 durations, 35 breaks,
        // 4 twists, 17 levels, 1 faint; then 12 noisy runs and 21 paced runs.
        let per_key = [8, 18, 21, 21, 35, 4, 17, 1].map(|n| n * KEYS.len() * 3);
        assert_eq!(counts[..8], per_key);
        assert_eq!(counts[8..], [12 * 3, 21 * 3]);
        assert!(accept_keys > 5000);
    }

    #[test]
    fn a_deviated_burst_really_is_off_nominal() {
        let b = Burst::key('1', -10.0, 0, 800).shifted(0.035, 0.0);
        assert!((b.low_hz - 697.0 * 1.035).abs() < 1e-9);
        assert!((b.high_hz - 1209.0).abs() < 1e-9);
    }
}
