//! The beep at the end of a voicemail greeting: one sustained tone between
//! 350 and 2000 Hz. Every 20 ms frame goes through a bank of Goertzel
//! filters 25 Hz apart; a frame is tonal when one filter holds most of the
//! frame's power (a pure tone puts at least 81 % of it in the nearest filter;
//! speech spreads it over its harmonics and formants, music over its notes).
//! A beep is at least 120 ms of tonal frames at one frequency (±25 Hz); it
//! is reported once when it is confirmed and once when it ends.

use crate::media::dtmf_detect::goertzel::GoertzelBank;

/// Samples per analysis frame (20 ms at 8 kHz).
pub const FRAME: usize = 160;
const LOW_HZ: f64 = 350.0;
const STEP_HZ: f64 = 25.0;
/// Filters from 350 to 2000 Hz, 25 Hz apart.
const BINS: usize = 67;
/// Share of a frame's power in its strongest filter for the frame to be a tone.
const TONAL_SHARE: f32 = 0.7;
/// Quietest tone heard as a beep: mean square of a −45 dBFS sine.
const MIN_POWER: f32 = 1.6e-5;
/// Frames at one frequency that make a beep (120 ms).
const MIN_FRAMES: u32 = 6;
/// Filters a beep's frequency may wander between frames (±25 Hz; a
/// voice's harmonics glide further).
const MAX_DRIFT_BINS: usize = 1;

/// A beep heard, times in milliseconds since the detector started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beep {
    pub freq_hz: f32,
    pub start_ms: u64,
    /// `None` while the tone is still on.
    pub end_ms: Option<u64>,
}

/// What one frame said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeepEvent {
    /// A tone has lasted long enough to be a beep.
    Started,
    /// The beep confirmed earlier has ended.
    Ended,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    bin: usize,
    start_frame: u64,
    frames: u32,
}

/// Sans-IO beep detector; time is the count of 20 ms frames fed.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    bank: GoertzelBank<BINS>,
    frames: u64,
    run: Option<Run>,
    beep: Option<Beep>,
}

impl Default for BeepDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl BeepDetector {
    pub fn new() -> Self {
        let freqs = std::array::from_fn(|i| LOW_HZ + STEP_HZ * i as f64);
        Self {
            bank: GoertzelBank::new(freqs, 8000.0, FRAME),
            frames: 0,
            run: None,
            beep: None,
        }
    }

    /// The last beep confirmed, ended or not.
    pub fn beep(&self) -> Option<Beep> {
        self.beep
    }

    /// Analyses one 20 ms frame (a shorter one is analysed as it is).
    pub fn frame(&mut self, frame: &[i16]) -> Option<BeepEvent> {
        let mut energy = 0.0f32;
        for &s in frame {
            let x = f32::from(s) / 32768.0;
            energy += x * x;
            self.bank.push(x);
        }
        let bins = self.bank.finish();
        let now = self.frames;
        self.frames += 1;
        let n = frame.len().max(1) as f32;
        let power = energy / n;
        let peak = bins
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.power() * (FRAME as f32 / n).powi(2)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let tonal = match peak {
            Some((bin, p)) if power >= MIN_POWER && p >= TONAL_SHARE * power => Some(bin),
            _ => None,
        };
        match (tonal, self.run) {
            (Some(bin), Some(mut run)) if bin.abs_diff(run.bin) <= MAX_DRIFT_BINS => {
                run.frames += 1;
                self.run = Some(run);
                if run.frames == MIN_FRAMES {
                    self.beep = Some(Beep {
                        freq_hz: (LOW_HZ + STEP_HZ * run.bin as f64) as f32,
                        start_ms: run.start_frame * 20,
                        end_ms: None,
                    });
                    return Some(BeepEvent::Started);
                }
                None
            }
            (tonal, previous) => {
                self.run = tonal.map(|bin| Run {
                    bin,
                    start_frame: now,
                    frames: 1,
                });
                match (previous, &mut self.beep) {
                    (Some(run), Some(beep))
                        if run.frames >= MIN_FRAMES && beep.end_ms.is_none() =>
                    {
                        beep.end_ms = Some(now * 20);
                        Some(BeepEvent::Ended)
                    }
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, ms: usize, amplitude: f64) -> Vec<i16> {
        let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
        (0..ms * 8)
            .map(|n| (amplitude * (w * n as f64).sin()) as i16)
            .collect()
    }

    fn run(signal: &[i16]) -> (BeepDetector, Vec<(u64, BeepEvent)>) {
        let mut d = BeepDetector::new();
        let mut events = Vec::new();
        for (i, f) in signal.chunks(FRAME).enumerate() {
            if let Some(e) = d.frame(f) {
                events.push((i as u64 * 20, e));
            }
        }
        (d, events)
    }

    #[test]
    fn beeps_across_the_band_are_found_with_their_end() {
        for freq in [350.0, 440.0, 987.0, 1000.0, 1412.0, 2000.0] {
            let mut signal = vec![0i16; 8 * 300];
            signal.extend(sine(freq, 400, 6000.0));
            signal.extend(vec![0i16; 8 * 500]);
            let (d, events) = run(&signal);
            let beep = d.beep().expect("beep");
            assert!(
                (beep.freq_hz - freq as f32).abs() <= 50.0,
                "{freq}: {beep:?}"
            );
            assert_eq!(beep.start_ms, 300, "{freq}");
            assert_eq!(beep.end_ms, Some(700), "{freq}");
            assert_eq!(events.len(), 2, "{freq}: {events:?}");
        }
    }

    #[test]
    fn short_tones_two_tones_and_quiet_tones_are_not_beeps() {
        assert!(run(&sine(1000.0, 100, 6000.0)).0.beep().is_none());
        assert!(run(&sine(1000.0, 500, 150.0)).0.beep().is_none());
        let chord: Vec<i16> = sine(440.0, 500, 4000.0)
            .iter()
            .zip(sine(620.0, 500, 4000.0))
            .map(|(a, b)| a + b)
            .collect();
        assert!(run(&chord).0.beep().is_none());
    }
}
