//! The ITU-T Q.24 receiver cases, generated in one place for rivr's
//! conformance test (`codecs-bench/tests/dtmf_q24.rs`) and for the `report`
//! binary, so that every detector is run on exactly the same signals:
//! frequency deviation ±1.5 % (accept) and ±3.5 % (reject), 40 ms (accept)
//! and 20 ms (reject), a 10 ms break (bridged), twist +8 dB normal and 4 dB
//! reverse (accept), −36…−4 dBm0 (accept) and −50 dBm0 (reject), white
//! Gaussian noise at 15 dB SNR, and 40 ms pauses between keys; each through
//! a linear, a µ-law and an A-law channel, for all 16 keys.
//!
//! Tones are plain `sin` at the Q.23 frequencies written out here (not
//! rivr's tone generator or tables, which are under test), with levels in
//! dBm0 by the G.711 convention (a full-scale sine is +3.14 dBm0). The
//! building blocks ([`Burst`], [`render`], [`add_noise`], [`through`]) are
//! public so the test can add cases beyond Q.24 from the same parts.

use std::fmt;

use rivr::media::g711;
use rivr::media::g711::Law;
use rivr::media::tone::FULL_SCALE_SINE_DBM0;

use crate::signals::music::Rng;

/// The 16 keys in keypad order.
pub const KEYS: &str = "123A456B789C*0#D";
const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Samples per millisecond at 8 kHz.
pub const MS: usize = 8;
/// Burst offsets relative to rivr's 102-sample analysis blocks.
pub const ALIGNMENTS: [usize; 7] = [0, 17, 34, 51, 68, 85, 101];
/// Signal-to-noise ratio of the noisy cases: the two tones' total power to
/// the noise's, full band.
pub const SNR_DB: f64 = 15.0;

/// Which Q.24 requirement a case exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// One or both tones ±1.5 % off nominal: accept.
    SmallDeviation,
    /// One or both tones ±3.5 % off nominal, 200 ms long: reject.
    LargeDeviation,
    /// 40 ms tone at seven block alignments: accept.
    Tone40Ms,
    /// 20 ms tone at the same alignments: reject.
    Tone20Ms,
    /// 100 ms of tone with a 10 ms break: one key.
    Break10Ms,
    /// High group 8 dB louder, or low group 4 dB louder: accept.
    Twist,
    /// −36 to −4 dBm0 per tone in 2 dB steps: accept.
    Levels,
    /// −50 dBm0 per tone: reject.
    Faint,
    /// All 16 keys in a run, in white Gaussian noise at [`SNR_DB`].
    Noise,
    /// Key runs with 40 ms pauses: every key, in order.
    Pauses,
}

impl Group {
    /// Every group, in table order.
    pub const ALL: [Group; 10] = [
        Group::SmallDeviation,
        Group::LargeDeviation,
        Group::Tone40Ms,
        Group::Tone20Ms,
        Group::Break10Ms,
        Group::Twist,
        Group::Levels,
        Group::Faint,
        Group::Noise,
        Group::Pauses,
    ];

    /// Row label of the report.
    pub fn name(self) -> &'static str {
        match self {
            Group::SmallDeviation => "±1.5 % deviation, accept",
            Group::LargeDeviation => "±3.5 % deviation, reject",
            Group::Tone40Ms => "40 ms tone, accept",
            Group::Tone20Ms => "20 ms tone, reject",
            Group::Break10Ms => "10 ms break, one key",
            Group::Twist => "twist +8 / −4 dB, accept",
            Group::Levels => "−36…−4 dBm0, accept",
            Group::Faint => "−50 dBm0, reject",
            Group::Noise => "15 dB SNR, 16-key runs",
            Group::Pauses => "40 ms pauses, key runs",
        }
    }

    /// Position in [`Group::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The channel a case is sent through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// 16-bit linear PCM.
    Linear,
    /// Encoded and decoded by rivr's G.711 (bit-exact with ITU-T G.191).
    G711(Law),
}

/// The three channels every case is sent through.
pub const CHANNELS: [Channel; 3] = [
    Channel::Linear,
    Channel::G711(Law::Ulaw),
    Channel::G711(Law::Alaw),
];

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Linear => "linear",
            Channel::G711(Law::Ulaw) => "µ-law",
            Channel::G711(Law::Alaw) => "A-law",
        })
    }
}

/// One generated case.
pub struct Case {
    /// The requirement it exercises.
    pub group: Group,
    /// The channel `pcm` went through.
    pub channel: Channel,
    /// Its parameters, for failure messages (key, shift, level, channel…).
    pub label: String,
    /// The tone bursts in it, in time order.
    pub bursts: Vec<Burst>,
    /// 8 kHz audio, ending in at least 100 ms of silence.
    pub pcm: Vec<i16>,
    /// The keys a conforming receiver reports, in order ("" = reject).
    pub expected: String,
}

fn freqs(key: char) -> (f64, f64) {
    let i = KEYS.find(key).unwrap_or(0);
    (ROWS[i / 4], COLS[i % 4])
}

/// Peak amplitude of a sine at `level_dbm0`.
pub fn peak(level_dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((level_dbm0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

/// Noise standard deviation that puts a key at `level_dbm0` per tone
/// `snr_db` above the noise (both tones' power, peak²/2 each).
pub fn noise_sigma(level_dbm0: f64, snr_db: f64) -> f64 {
    (peak(level_dbm0).powi(2) / 10f64.powf(snr_db / 10.0)).sqrt()
}

/// One two-tone burst.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// Row tone (Hz).
    pub low_hz: f64,
    /// Column tone (Hz).
    pub high_hz: f64,
    /// Row tone level (dBm0).
    pub low_dbm0: f64,
    /// Column tone level (dBm0).
    pub high_dbm0: f64,
    /// First sample.
    pub start: usize,
    /// Length in samples.
    pub len: usize,
}

impl Burst {
    /// `key` at its nominal frequencies, both tones at `level_dbm0`.
    pub fn key(key: char, level_dbm0: f64, start: usize, len: usize) -> Self {
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

    /// The same burst with each tone moved by a fraction of its frequency.
    pub fn shifted(mut self, low: f64, high: f64) -> Self {
        self.low_hz *= 1.0 + low;
        self.high_hz *= 1.0 + high;
        self
    }

    fn add_to(&self, buf: &mut [f64]) {
        let (a, b) = (peak(self.low_dbm0), peak(self.high_dbm0));
        let w = |f: f64| std::f64::consts::TAU * f / 8000.0;
        let end = (self.start + self.len).min(buf.len());
        // Arbitrary but fixed starting phases, as a real phone has.
        for (n, v) in buf.iter_mut().enumerate().take(end).skip(self.start) {
            let t = (n - self.start) as f64;
            *v += a * (w(self.low_hz) * t + 0.3).sin() + b * (w(self.high_hz) * t + 1.1).sin();
        }
    }
}

/// `total` samples with `bursts` added in, before any channel.
pub fn render(bursts: &[Burst], total: usize) -> Vec<f64> {
    let mut buf = vec![0.0; total];
    for b in bursts {
        b.add_to(&mut buf);
    }
    buf
}

/// Adds seeded white Gaussian noise of standard deviation `sigma`.
pub fn add_noise(x: &mut [f64], sigma: f64, seed: u64) {
    let mut rng = Rng(seed);
    for v in x {
        *v += sigma * rng.gaussian();
    }
}

/// `x` rounded to 16-bit PCM and sent through `channel`.
pub fn through(channel: Channel, x: &[f64]) -> Vec<i16> {
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

/// Renders the cases of the wanted groups and hands each to `visit`.
struct Generator<'a, F> {
    groups: &'a [Group],
    visit: F,
}

impl<F: FnMut(&Case)> Generator<'_, F> {
    /// One signal, through every channel; `noise` is (sigma, seed).
    fn emit(
        &mut self,
        group: Group,
        label: String,
        bursts: Vec<Burst>,
        total: usize,
        expected: &str,
        noise: Option<(f64, u64)>,
    ) {
        if !self.groups.contains(&group) {
            return;
        }
        let mut x = render(&bursts, total);
        if let Some((sigma, seed)) = noise {
            add_noise(&mut x, sigma, seed);
        }
        for channel in CHANNELS {
            (self.visit)(&Case {
                group,
                channel,
                label: format!("{label} {channel}"),
                bursts: bursts.clone(),
                pcm: through(channel, &x),
                expected: expected.to_owned(),
            });
        }
    }

    /// One burst followed by 100 ms of silence.
    fn single(&mut self, group: Group, label: String, b: Burst, expected: &str) {
        let total = b.start + b.len + 100 * MS;
        self.emit(group, label, vec![b], total, expected, None);
    }
}

/// Calls `visit` with every case of `groups`, one at a time (the whole set
/// is several million samples); other groups are not rendered.
pub fn for_each_case(groups: &[Group], visit: impl FnMut(&Case)) {
    let mut g = Generator { groups, visit };
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
            let b = Burst::key(key, -10.0, 40 * MS, 60 * MS).shifted(dl, dh);
            let label = format!("{key} low {dl:+} high {dh:+}");
            g.single(Group::SmallDeviation, label, b, &k);
        }
        for (dl, dh) in LARGE {
            for level in [-4.0, -10.0, -30.0] {
                let b = Burst::key(key, level, 40 * MS, 200 * MS).shifted(dl, dh);
                let label = format!("{key} low {dl:+} high {dh:+} {level} dBm0");
                g.single(Group::LargeDeviation, label, b, "");
            }
        }
        for lead in ALIGNMENTS {
            for level in [-4.0, -20.0, -36.0] {
                let b = Burst::key(key, level, 400 + lead, 40 * MS);
                let label = format!("{key} 40 ms +{lead} {level} dBm0");
                g.single(Group::Tone40Ms, label, b, &k);
                let b = Burst::key(key, level, 400 + lead, 20 * MS);
                let label = format!("{key} 20 ms +{lead} {level} dBm0");
                g.single(Group::Tone20Ms, label, b, "");
            }
            for gap_at_ms in [20, 30, 45, 60, 70] {
                let start = 400 + lead;
                let before = Burst::key(key, -12.0, start, gap_at_ms * MS);
                let after_start = start + (gap_at_ms + 10) * MS;
                let after = Burst::key(key, -12.0, after_start, (90 - gap_at_ms) * MS);
                let label = format!("{key} gap at {gap_at_ms} ms +{lead}");
                let total = after_start + 200 * MS;
                g.emit(
                    Group::Break10Ms,
                    label,
                    vec![before, after],
                    total,
                    &k,
                    None,
                );
            }
        }
        for weak in [-12.0, -24.0] {
            // Normal twist: the low group is the louder one (a long line
            // attenuates the high group more); reverse: the high group.
            let mut normal = Burst::key(key, weak, 40 * MS, 50 * MS);
            normal.low_dbm0 = weak + 8.0;
            g.single(Group::Twist, format!("{key} {weak} dBm0 +8 dB"), normal, &k);
            let mut reverse = Burst::key(key, weak, 40 * MS, 50 * MS);
            reverse.high_dbm0 = weak + 4.0;
            g.single(
                Group::Twist,
                format!("{key} {weak} dBm0 -4 dB"),
                reverse,
                &k,
            );
        }
        for level in (-36..=-4).step_by(2) {
            let b = Burst::key(key, f64::from(level), 40 * MS, 45 * MS);
            g.single(Group::Levels, format!("{key} {level} dBm0"), b, &k);
        }
        let b = Burst::key(key, -50.0, 40 * MS, 200 * MS);
        g.single(Group::Faint, format!("{key} -50 dBm0"), b, "");
    }
    for seed in 1..=4u64 {
        for (level, on_ms) in [(-10.0, 50), (-24.0, 50), (-10.0, 40)] {
            let slot = (on_ms + 60) * MS;
            let bursts: Vec<Burst> = KEYS
                .chars()
                .enumerate()
                .map(|(i, k)| Burst::key(k, level, 200 + i * slot, on_ms * MS))
                .collect();
            let noise = (noise_sigma(level, SNR_DB), seed * 7919 + on_ms as u64);
            g.emit(
                Group::Noise,
                format!("seed {seed} {level} dBm0 {on_ms} ms"),
                bursts,
                400 + KEYS.len() * slot,
                KEYS,
                Some(noise),
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
            let label = format!("{pattern} {level} dBm0 +{lead}");
            g.emit(Group::Pauses, label, bursts, total, pattern, None);
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
        let mut counts = [0usize; Group::ALL.len()];
        let mut channels = [0usize; CHANNELS.len()];
        let mut accept_keys = 0;
        for_each_case(&Group::ALL, |case| {
            counts[case.group.index()] += 1;
            channels[CHANNELS.iter().position(|&c| c == case.channel).unwrap()] += 1;
            accept_keys += case.expected.len();
            assert!(case.pcm.len() >= 100 * MS);
            // The tail is tone-free, so a receiver has time to report.
            if case.group != Group::Noise {
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
        assert_eq!(channels, [counts.iter().sum::<usize>() / 3; 3]);
        assert!(accept_keys > 5000);
    }

    #[test]
    fn only_the_wanted_groups_are_generated() {
        let mut seen = Vec::new();
        for_each_case(&[Group::Faint, Group::Pauses], |case| {
            if !seen.contains(&case.group) {
                seen.push(case.group);
            }
        });
        assert_eq!(seen, [Group::Faint, Group::Pauses]);
    }

    #[test]
    fn a_deviated_burst_really_is_off_nominal() {
        let b = Burst::key('1', -10.0, 0, 800).shifted(0.035, 0.0);
        assert!((b.low_hz - 697.0 * 1.035).abs() < 1e-9);
        assert!((b.high_hz - 1209.0).abs() < 1e-9);
    }

    #[test]
    fn noise_is_set_by_snr() {
        let mut x = vec![0.0; 200_000];
        add_noise(&mut x, noise_sigma(-10.0, SNR_DB), 1);
        let noise_power = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let snr = 10.0 * (peak(-10.0).powi(2) / noise_power).log10();
        assert!((snr - SNR_DB).abs() < 0.1, "{snr} dB");
    }
}
