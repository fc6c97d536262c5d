//! Voice activity by level, 10 ms at a time: Asterisk's rule (mean absolute
//! sample above a fixed silence threshold) and rivr's, which also tracks the
//! line's noise floor so that a noisy line is not heard as one long word.

/// Samples per level frame (10 ms at 8 kHz).
pub const FRAME: usize = 80;

/// The voiced/silent decision for one frame.
#[derive(Debug, Clone)]
pub struct Level {
    /// Mean absolute sample (0..32767) a frame must exceed to be voice.
    threshold: f32,
    /// Follow the noise floor (rivr) or not (Asterisk's fixed threshold).
    adaptive: bool,
    /// Estimated mean absolute level of the line's noise; `None` until
    /// the first frame, which seeds it (capped so that a call that starts
    /// with voice or music is still heard). Only frames that sound like
    /// noise (many zero crossings) raise it.
    floor: Option<f32>,
}

/// How far above the noise floor a frame must be to count as voice (+9.5 dB).
const ABOVE_FLOOR: f32 = 3.0;
/// Weight of a new frame below the floor: the floor follows quiet quickly.
const FLOOR_FALL: f32 = 0.3;
/// Zero crossings per sample above which a frame sounds like noise (white
/// line noise in the phone band crosses about every second sample; voiced
/// speech and music, whose power sits below 1 kHz, far less often).
const NOISY_ZCR: f32 = 0.35;
/// Weight of a noise-like frame above the floor: a noisy line is learnt in
/// a quarter of a second...
const FLOOR_FOLLOW: f32 = 0.05;
/// ...unless the frame is loud enough to be voice, which is more likely a
/// fricative than a noise step: followed much more slowly.
const FLOOR_FOLLOW_LOUD: f32 = 0.01;

impl Level {
    pub fn new(threshold: u16, adaptive: bool) -> Self {
        Self {
            threshold: f32::from(threshold),
            adaptive,
            floor: None,
        }
    }

    /// Whether the frame (any length; normally [`FRAME`]) is voice.
    pub fn voiced(&mut self, frame: &[i16]) -> bool {
        let e = mean_abs(frame);
        if !self.adaptive {
            return e > self.threshold;
        }
        let floor = *self
            .floor
            .get_or_insert(e.min(self.threshold / ABOVE_FLOOR));
        let voiced = e > self.threshold.max(floor * ABOVE_FLOOR);
        let next = if e < floor {
            floor + (e - floor) * FLOOR_FALL
        } else if zero_crossings(frame) >= NOISY_ZCR {
            let w = if voiced {
                FLOOR_FOLLOW_LOUD
            } else {
                FLOOR_FOLLOW
            };
            floor + (e - floor) * w
        } else {
            floor
        };
        self.floor = Some(next);
        voiced
    }
}

/// Sign changes per sample.
fn zero_crossings(frame: &[i16]) -> f32 {
    let n = frame
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    n as f32 / frame.len().max(1) as f32
}

/// Mean absolute sample value of `frame`, 0 for an empty one.
pub fn mean_abs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: u64 = frame.iter().map(|&s| u64::from(s.unsigned_abs())).sum();
    sum as f32 / frame.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(amplitude: f32, n: usize, seed: &mut u32) -> Vec<i16> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                (u * amplitude) as i16
            })
            .collect()
    }

    #[test]
    fn fixed_threshold_hears_loud_noise_as_voice() {
        let mut seed = 1;
        let mut asterisk = Level::new(256, false);
        let mut rivr = Level::new(256, true);
        let line = noise(700.0, FRAME * 200, &mut seed);
        let a = line.chunks(FRAME).filter(|f| asterisk.voiced(f)).count();
        let r = line.chunks(FRAME).filter(|f| rivr.voiced(f)).count();
        assert_eq!(a, 200);
        assert!(r <= 20, "{r} frames: the floor is learnt within 200 ms");
    }

    #[test]
    fn speech_over_noise_is_voice() {
        let mut seed = 7;
        let mut rivr = Level::new(256, true);
        for f in noise(300.0, FRAME * 100, &mut seed).chunks(FRAME) {
            rivr.voiced(f);
        }
        // A vowel: harmonics of 150 Hz, few zero crossings.
        let vowel: Vec<i16> = (0..FRAME * 100)
            .map(|n| {
                let w = 2.0 * std::f32::consts::PI * 150.0 * n as f32 / 8000.0;
                ((1..=6)
                    .map(|k| (w * k as f32).sin() / k as f32)
                    .sum::<f32>()
                    * 2000.0) as i16
            })
            .collect();
        assert!(vowel.chunks(FRAME).all(|f| rivr.voiced(f)));
    }
}
