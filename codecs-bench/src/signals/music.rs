//! Music-like talk-off material generated from a seed: chords, tone sweeps
//! and sustained notes with harmonics (scanned by
//! `codecs-bench/tests/dtmf_talkoff.rs` and by the `report` binary), and a
//! speech-like multi-tone for throughput runs when espeak-ng is not
//! installed.

use std::f64::consts::TAU;

const RATE: f64 = 8000.0;

/// splitmix64: small, seeded, the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let i = (self.next_f64() * items.len() as f64) as usize;
        items.get(i.min(items.len().saturating_sub(1)))
    }
}

/// Peak-normalised to −1 dBFS.
pub fn normalise(x: &[f64]) -> Vec<i16> {
    let peak = x.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    let gain = 32767.0 * 10f64.powf(-1.0 / 20.0) / peak;
    x.iter().map(|v| (v * gain).round() as i16).collect()
}

fn midi_hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

/// 20 ms attack, 80 ms release.
fn envelope(n: usize, len: usize) -> f64 {
    let (n, len) = (n as f64, len as f64);
    (n / (0.02 * RATE))
        .min(1.0)
        .min((len - n) / (0.08 * RATE))
        .max(0.0)
}

/// Adds a note with partial amplitudes (index 0 = fundamental), partials
/// above 3.8 kHz left out as a telephone channel would.
fn add_note(out: &mut [f64], freq: f64, partials: &[f64], vibrato: f64, rng: &mut Rng) {
    let len = out.len();
    let offsets: Vec<f64> = partials.iter().map(|_| rng.range(0.0, TAU)).collect();
    let mut phase = 0.0;
    for (n, v) in out.iter_mut().enumerate() {
        let t = n as f64 / RATE;
        let f = freq * (1.0 + vibrato * (TAU * 5.5 * t).sin());
        phase += TAU * f / RATE;
        let mut s = 0.0;
        for (k, (&a, &p0)) in partials.iter().zip(&offsets).enumerate() {
            let harmonic = (k + 1) as f64;
            if f * harmonic < 3800.0 {
                s += a * (harmonic * phase + p0).sin();
            }
        }
        *v += s * envelope(n, len);
    }
}

/// Chords of 3–4 equally loud notes in common voicings, sine or rich.
pub fn chords(rng: &mut Rng, seconds: f64) -> Vec<i16> {
    const SHAPES: &[&[f64]] = &[
        &[0.0, 4.0, 7.0],
        &[0.0, 3.0, 7.0],
        &[0.0, 3.0, 6.0],
        &[0.0, 4.0, 8.0],
        &[0.0, 5.0, 7.0],
        &[0.0, 4.0, 7.0, 10.0],
        &[0.0, 4.0, 7.0, 11.0],
        &[0.0, 3.0, 7.0, 10.0],
        &[0.0, 4.0, 7.0, 12.0],
        &[0.0, 7.0, 16.0],
        &[0.0, 7.0, 12.0, 16.0],
    ];
    const RICH: &[f64] = &[1.0, 0.5, 0.33, 0.25, 0.2, 0.16];
    let mut out = Vec::new();
    while (out.len() as f64) < seconds * RATE {
        let mut buf = vec![0.0; (rng.range(0.4, 2.0) * RATE) as usize];
        let root = rng.range(48.0, 84.0).round();
        let shape = rng.pick(SHAPES).copied().unwrap_or(&[0.0]);
        let partials: &[f64] = if rng.next_f64() < 0.5 { RICH } else { &[1.0] };
        for (i, &interval) in shape.iter().enumerate() {
            let octave = if i > 0 && rng.next_f64() < 0.3 {
                12.0
            } else {
                0.0
            };
            add_note(
                &mut buf,
                midi_hz(root + interval + octave),
                partials,
                0.0,
                rng,
            );
        }
        out.extend(normalise(&buf));
    }
    out
}

/// Sweeps of a sine or a harmonic tone, up or down, linear or exponential.
pub fn sweeps(rng: &mut Rng, seconds: f64) -> Vec<i16> {
    let mut out = Vec::new();
    while (out.len() as f64) < seconds * RATE {
        let len = (rng.range(0.5, 4.0) * RATE) as usize;
        let (lo, hi) = (rng.range(150.0, 800.0), rng.range(1000.0, 3600.0));
        let (from, to) = if rng.next_f64() < 0.5 {
            (lo, hi)
        } else {
            (hi, lo)
        };
        let exponential = rng.next_f64() < 0.5;
        let harmonics = rng.next_f64() < 0.4;
        let mut phase = 0.0;
        let mut buf = vec![0.0; len];
        for (n, v) in buf.iter_mut().enumerate() {
            let x = n as f64 / len as f64;
            let f = if exponential {
                from * (to / from).powf(x)
            } else {
                from + (to - from) * x
            };
            phase += TAU * f / RATE;
            let mut s = phase.sin();
            if harmonics {
                for k in 2..6 {
                    if f * k as f64 <= 3800.0 {
                        s += (k as f64 * phase).sin() / k as f64;
                    }
                }
            }
            *v = s * envelope(n, len);
        }
        out.extend(normalise(&buf));
    }
    out
}

/// Sustained notes with harmonics of random strength, some with vibrato.
pub fn sustained(rng: &mut Rng, seconds: f64) -> Vec<i16> {
    let mut out = Vec::new();
    while (out.len() as f64) < seconds * RATE {
        let mut buf = vec![0.0; (rng.range(0.5, 3.0) * RATE) as usize];
        let f0 = rng.range(90.0, 1000.0);
        let count = 3 + (rng.next_f64() * 8.0) as usize;
        let partials: Vec<f64> = (0..count)
            .map(|k| rng.range(0.2, 1.0) / (k as f64 + 1.0).powf(rng.range(0.3, 1.2)))
            .collect();
        let vibrato = if rng.next_f64() < 0.5 {
            rng.range(0.002, 0.01)
        } else {
            0.0
        };
        add_note(&mut buf, f0, &partials, vibrato, rng);
        out.extend(normalise(&buf));
    }
    out
}

/// Seed of the talk-off material, fixed so every run scans the same notes.
pub const TALKOFF_SEED: u64 = 0x7a1c_0ff5;

/// The music-like talk-off material, 5 minutes in all: 120 s of chords,
/// 90 s of sweeps and 90 s of sustained notes, each with its table label.
pub fn talkoff_corpus() -> [(&'static str, Vec<i16>); 3] {
    let mut rng = Rng(TALKOFF_SEED);
    [
        ("chords", chords(&mut rng, 120.0)),
        ("tone sweeps", sweeps(&mut rng, 90.0)),
        ("sustained notes", sustained(&mut rng, 90.0)),
    ]
}

/// A speech-like stand-in: a gliding harmonic source (100–250 Hz) with
/// syllable-rate amplitude modulation and noise, at speech levels.
pub fn multitone(seconds: f64, seed: u64) -> Vec<i16> {
    let mut rng = Rng(seed);
    let len = (seconds * RATE) as usize;
    let mut phase = 0.0;
    let x: Vec<f64> = (0..len)
        .map(|n| {
            let t = n as f64 / RATE;
            let f0 = 175.0 + 75.0 * (TAU * 0.7 * t).sin();
            phase += TAU * f0 / RATE;
            let voiced: f64 = (1..=15)
                .filter(|&k| f64::from(k) * f0 < 3800.0)
                .map(|k| (f64::from(k) * phase).sin() / f64::from(k))
                .sum();
            let syllable = (0.5 + 0.5 * (TAU * 4.0 * t).sin()).powi(2);
            syllable * (voiced + 0.1 * rng.gaussian())
        })
        .collect();
    let mut pcm = normalise(&x);
    // Speech peaks high but averages about −20 dBFS; scale down 10 dB.
    for s in &mut pcm {
        *s /= 3;
    }
    pcm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_fill_the_requested_time_at_minus_1_dbfs() {
        let mut rng = Rng(7);
        for (name, pcm) in [
            ("chords", chords(&mut rng, 5.0)),
            ("sweeps", sweeps(&mut rng, 5.0)),
            ("sustained", sustained(&mut rng, 5.0)),
        ] {
            assert!(pcm.len() >= 40_000, "{name}: {}", pcm.len());
            let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!((29_000..=29_300).contains(&peak), "{name}: peak {peak}");
        }
    }

    #[test]
    fn same_seed_same_signal() {
        assert_eq!(chords(&mut Rng(3), 2.0), chords(&mut Rng(3), 2.0));
        assert_ne!(chords(&mut Rng(3), 2.0), chords(&mut Rng(4), 2.0));
    }

    #[test]
    fn multitone_is_speech_level() {
        let pcm = multitone(2.0, 1);
        assert_eq!(pcm.len(), 16_000);
        let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 16_000.0).sqrt();
        let dbfs = 20.0 * (rms / 32768.0).log10();
        assert!((-30.0..-15.0).contains(&dbfs), "{dbfs} dBFS");
    }
}
