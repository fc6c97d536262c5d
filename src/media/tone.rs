//! Tone generation for in-band signalling: DTMF digits, beeps and ringback.
//!
//! A [`ToneGenerator`] is one or two phase-continuous sine oscillators gated
//! by an on/off cadence. It never allocates: callers pull samples into their
//! own frame buffer with [`ToneGenerator::fill`], in frames of any size.
//!
//! # Level convention
//!
//! Levels are in dBm0 per frequency with the G.711 convention used by
//! spandsp: a full-scale 16-bit sine (peak 32767) is +3.14 dBm0, so a 0 dBm0
//! sine has a peak of 32767 × 10^(−3.14/20) ≈ 22 827. The DTMF detector
//! ([`crate::media::dtmf_detect`]) measures levels with the same reference
//! ([`dbm0_to_peak`]).

/// Sample rate of everything in this module.
pub const SAMPLE_RATE_HZ: u32 = 8000;

/// Level in dBm0 of a full-scale 16-bit sine (the G.711 µ-law convention).
#[expect(
    clippy::approx_constant,
    reason = "3.14 dBm0 is the G.711 full-scale sine level, not π"
)]
pub const FULL_SCALE_SINE_DBM0: f64 = 3.14;

/// DTMF low-group (row) frequencies, Hz (ITU-T Q.23).
pub const DTMF_ROWS_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];

/// DTMF high-group (column) frequencies, Hz (ITU-T Q.23).
pub const DTMF_COLS_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The keypad: `DTMF_KEYS[row][col]`.
pub const DTMF_KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Row and column index of a DTMF key (`0-9 * # A-D`, letters in either case).
pub fn dtmf_position(digit: char) -> Option<(usize, usize)> {
    let digit = digit.to_ascii_uppercase();
    DTMF_KEYS
        .iter()
        .enumerate()
        .find_map(|(row, keys)| keys.iter().position(|&k| k == digit).map(|col| (row, col)))
}

/// Low and high frequency of a DTMF key, Hz.
pub fn dtmf_frequencies(digit: char) -> Option<(f64, f64)> {
    let (row, col) = dtmf_position(digit)?;
    Some((*DTMF_ROWS_HZ.get(row)?, *DTMF_COLS_HZ.get(col)?))
}

/// Peak amplitude (16-bit scale) of a sine at `level_dbm0`.
pub fn dbm0_to_peak(level_dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((level_dbm0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

/// Ringback tone plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// North America: 440 + 480 Hz, 2 s on, 4 s off.
    Us,
    /// United Kingdom: 400 + 450 Hz, 0.4 s on, 0.2 s off, 0.4 s on, 2 s off.
    Uk,
    /// Most of Europe (ETSI TR 101 041): 425 Hz, 1 s on, 4 s off.
    Eu,
}

/// Ringback level per frequency, dBm0 (Telcordia GR-506 uses −19 dBm0).
const RINGBACK_DBM0: f32 = -19.0;

/// One sine oscillator: a unit phasor rotated by a fixed step each sample,
/// which is cheaper than `sin()` and keeps phase across calls to `fill`.
#[derive(Debug, Clone, Copy)]
struct Oscillator {
    re: f64,
    im: f64,
    step_re: f64,
    step_im: f64,
    peak: f64,
}

impl Oscillator {
    fn new(freq_hz: f64, level_dbm0: f64) -> Self {
        let w = 2.0 * std::f64::consts::PI * freq_hz / f64::from(SAMPLE_RATE_HZ);
        Self {
            re: 1.0,
            im: 0.0,
            step_re: w.cos(),
            step_im: w.sin(),
            peak: dbm0_to_peak(level_dbm0),
        }
    }

    const SILENT: Self = Self {
        re: 1.0,
        im: 0.0,
        step_re: 1.0,
        step_im: 0.0,
        peak: 0.0,
    };

    #[inline]
    fn next(&mut self) -> f64 {
        let out = self.peak * self.im;
        let re = self.re * self.step_re - self.im * self.step_im;
        let im = self.re * self.step_im + self.im * self.step_re;
        // First-order renormalisation keeps |z| = 1 without a sqrt; rounding
        // would otherwise make the amplitude drift over a long ringback.
        let gain = 1.5 - 0.5 * (re * re + im * im);
        self.re = re * gain;
        self.im = im * gain;
        out
    }
}

/// Most segments a cadence can have (on, off, on, off).
const MAX_SEGMENTS: usize = 4;

/// A phase-continuous one- or two-frequency tone with an on/off cadence.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    oscillators: [Oscillator; 2],
    /// Segment lengths in samples; even indices are tone, odd are silence.
    cadence: [u32; MAX_SEGMENTS],
    segment: usize,
    remaining: u32,
    repeat: bool,
    finished: bool,
}

fn ms_to_samples(ms: u32) -> u32 {
    ms.saturating_mul(SAMPLE_RATE_HZ / 1000)
}

impl ToneGenerator {
    /// One DTMF key press: `on_ms` of tone then `off_ms` of silence, both
    /// frequencies at `level_dbm0`. `None` if `digit` is not a DTMF key.
    pub fn dtmf(digit: char, on_ms: u32, off_ms: u32, level_dbm0: f32) -> Option<Self> {
        let (low, high) = dtmf_frequencies(digit)?;
        Some(Self::dual(low, high, level_dbm0, level_dbm0, on_ms, off_ms))
    }

    /// Two frequencies with their own levels (twist), played once:
    /// `on_ms` of tone then `off_ms` of silence.
    pub fn dual(
        freq1_hz: f64,
        freq2_hz: f64,
        level1_dbm0: f32,
        level2_dbm0: f32,
        on_ms: u32,
        off_ms: u32,
    ) -> Self {
        Self::build(
            [
                Oscillator::new(freq1_hz, f64::from(level1_dbm0)),
                Oscillator::new(freq2_hz, f64::from(level2_dbm0)),
            ],
            [ms_to_samples(on_ms), ms_to_samples(off_ms), 0, 0],
            false,
        )
    }

    /// A single-frequency beep of `ms` milliseconds (e.g. before recording).
    pub fn beep(freq_hz: f32, ms: u32, level_dbm0: f32) -> Self {
        Self::build(
            [
                Oscillator::new(f64::from(freq_hz), f64::from(level_dbm0)),
                Oscillator::SILENT,
            ],
            [ms_to_samples(ms), 0, 0, 0],
            false,
        )
    }

    /// Ringback (audible ringing) for `region`; repeats until dropped.
    pub fn ringback(region: Region) -> Self {
        let level = f64::from(RINGBACK_DBM0);
        let (oscillators, cadence_ms) = match region {
            Region::Us => (
                [Oscillator::new(440.0, level), Oscillator::new(480.0, level)],
                [2000, 4000, 0, 0],
            ),
            Region::Uk => (
                [Oscillator::new(400.0, level), Oscillator::new(450.0, level)],
                [400, 200, 400, 2000],
            ),
            Region::Eu => (
                [Oscillator::new(425.0, level), Oscillator::SILENT],
                [1000, 4000, 0, 0],
            ),
        };
        Self::build(oscillators, cadence_ms.map(ms_to_samples), true)
    }

    fn build(oscillators: [Oscillator; 2], cadence: [u32; MAX_SEGMENTS], repeat: bool) -> Self {
        let total = cadence.iter().fold(0u32, |a, &b| a.saturating_add(b));
        let mut generator = Self {
            oscillators,
            cadence,
            segment: 0,
            remaining: cadence[0],
            repeat,
            finished: total == 0,
        };
        generator.skip_empty_segments();
        generator
    }

    /// Moves past zero-length segments; ends a one-shot tone after its last.
    fn skip_empty_segments(&mut self) {
        // Bounded: at most one full pass over the cadence (total > 0 is
        // checked at construction, so a repeating cadence has a non-empty one).
        for _ in 0..=MAX_SEGMENTS {
            if self.finished || self.remaining > 0 {
                return;
            }
            self.segment += 1;
            if self.segment >= MAX_SEGMENTS {
                if !self.repeat {
                    self.finished = true;
                    return;
                }
                self.segment = 0;
            }
            self.remaining = self.cadence.get(self.segment).copied().unwrap_or(0);
        }
    }

    /// True once a one-shot tone has produced all its samples.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Writes the next samples into `out`; returns how many were written
    /// (less than `out.len()` only at the end; 0 once finished).
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while written < out.len() && !self.finished {
            let run = (self.remaining as usize).min(out.len() - written);
            let chunk = &mut out[written..written + run];
            if self.segment % 2 == 0 {
                let [a, b] = &mut self.oscillators;
                for sample in chunk.iter_mut() {
                    let v = (a.next() + b.next()).round();
                    *sample = v.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
                }
            } else {
                chunk.fill(0);
            }
            written += run;
            // run <= remaining, so this cannot underflow; u32 fits usize.
            self.remaining -= run as u32;
            self.skip_empty_segments();
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(mut generator: ToneGenerator, frame: usize, limit: usize) -> Vec<i16> {
        let mut out = Vec::new();
        let mut buf = vec![0i16; frame];
        while out.len() < limit {
            let n = generator.fill(&mut buf);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Power (mean square, 16-bit units) of `x` at `freq` by correlation.
    fn tone_power(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
        let (mut re, mut im) = (0.0, 0.0);
        for (n, &s) in x.iter().enumerate() {
            re += f64::from(s) * (w * n as f64).cos();
            im += f64::from(s) * (w * n as f64).sin();
        }
        let len = x.len() as f64;
        2.0 * (re * re + im * im) / (len * len)
    }

    fn level_dbm0(power: f64) -> f64 {
        let reference = dbm0_to_peak(0.0).powi(2) / 2.0;
        10.0 * (power / reference).log10()
    }

    #[test]
    fn keypad_maps_to_q23_frequencies() {
        assert_eq!(dtmf_frequencies('1'), Some((697.0, 1209.0)));
        assert_eq!(dtmf_frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(dtmf_frequencies('9'), Some((852.0, 1477.0)));
        assert_eq!(dtmf_frequencies('0'), Some((941.0, 1336.0)));
        assert_eq!(dtmf_frequencies('*'), Some((941.0, 1209.0)));
        assert_eq!(dtmf_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(dtmf_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(dtmf_frequencies('x'), None);
        assert!(ToneGenerator::dtmf('E', 50, 50, -10.0).is_none());
    }

    #[test]
    fn zero_dbm0_reference_matches_g711_convention() {
        // 3.14 dBm0 is full scale, so 0 dBm0 is 3.14 dB below 32767.
        assert!((dbm0_to_peak(FULL_SCALE_SINE_DBM0) - 32767.0).abs() < 1e-6);
        assert!((dbm0_to_peak(0.0) - 22826.6).abs() < 0.5);
    }

    #[test]
    fn dtmf_has_requested_duration_level_and_frequencies() {
        let x = render(
            ToneGenerator::dtmf('6', 100, 50, -10.0).unwrap(),
            160,
            100_000,
        );
        assert_eq!(x.len(), 1200);
        let on = &x[..800];
        assert!(x[800..].iter().all(|&s| s == 0));
        let low = level_dbm0(tone_power(on, 770.0));
        let high = level_dbm0(tone_power(on, 1477.0));
        assert!((low + 10.0).abs() < 0.1, "low group at {low:.2} dBm0");
        assert!((high + 10.0).abs() < 0.1, "high group at {high:.2} dBm0");
        // Nothing at a neighbouring row: the tone is clean.
        assert!(level_dbm0(tone_power(on, 852.0)) < -40.0);
    }

    #[test]
    fn output_does_not_depend_on_frame_size() {
        let whole = render(ToneGenerator::ringback(Region::Uk), 48_000, 48_000);
        for frame in [1, 7, 160, 1000] {
            let framed = render(ToneGenerator::ringback(Region::Uk), frame, 48_000);
            assert_eq!(&framed[..48_000], &whole[..], "frame size {frame}");
        }
    }

    #[test]
    fn uk_ringback_cadence_repeats() {
        let x = render(ToneGenerator::ringback(Region::Uk), 160, 2 * 24_000);
        let active = |from_ms: usize, to_ms: usize| {
            x[from_ms * 8..to_ms * 8]
                .iter()
                .map(|&s| i32::from(s).abs())
                .max()
                .unwrap()
        };
        for cycle_ms in [0, 3000] {
            assert!(active(cycle_ms + 10, cycle_ms + 390) > 1000);
            assert_eq!(active(cycle_ms + 400, cycle_ms + 600), 0);
            assert!(active(cycle_ms + 610, cycle_ms + 990) > 1000);
            assert_eq!(active(cycle_ms + 1000, cycle_ms + 3000), 0);
        }
    }

    #[test]
    fn us_ringback_level_stays_put_over_a_long_call() {
        let mut generator = ToneGenerator::ringback(Region::Us);
        let mut buf = [0i16; 160];
        // Ten minutes of 20 ms frames; only on-periods move the phasor.
        for _ in 0..30_000 {
            assert_eq!(generator.fill(&mut buf), 160);
        }
        let x = render(generator, 160, 16_000);
        let level = level_dbm0(tone_power(&x[..16_000], 440.0));
        assert!((level - f64::from(RINGBACK_DBM0)).abs() < 0.1, "{level}");
    }

    #[test]
    fn beep_finishes_and_then_writes_nothing() {
        let mut generator = ToneGenerator::beep(1000.0, 25, -6.0);
        let mut buf = [0i16; 160];
        assert_eq!(generator.fill(&mut buf), 160);
        assert_eq!(generator.fill(&mut buf), 40);
        assert!(generator.is_finished());
        assert_eq!(generator.fill(&mut buf), 0);
        let empty = ToneGenerator::dtmf('1', 0, 0, -6.0).unwrap();
        assert!(empty.is_finished());
        let silence_only = render(ToneGenerator::dtmf('1', 0, 10, -6.0).unwrap(), 7, 1000);
        assert_eq!(silence_only, vec![0; 80]);
    }

    #[test]
    fn loud_dual_tone_saturates_instead_of_wrapping() {
        const FULL: f32 = FULL_SCALE_SINE_DBM0 as f32;
        let x = render(
            ToneGenerator::dual(1000.0, 1000.0, FULL, FULL, 10, 0),
            80,
            80,
        );
        assert!(x.contains(&i16::MAX));
        assert!(x.contains(&i16::MIN));
    }
}
