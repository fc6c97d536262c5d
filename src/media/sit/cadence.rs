//! Ringback and busy by their cadence: a steady tone below 650 Hz (425 Hz
//! in Europe, 440+480 / 480+620 Hz in North America, 400+450 Hz in the UK)
//! switched on and off. Ringback: one burst of at least 700 ms, or the
//! UK's double ring (two bursts of 300–500 ms, 150–300 ms apart). Busy and
//! reorder: at least three bursts of 200–650 ms, separated by quiet of
//! 200–650 ms, each within 25 % of the first.

use crate::media::dtmf_detect::goertzel::GoertzelBank;

/// Samples per frame (20 ms): the filters sit on its DFT bins, 50 Hz apart,
/// so their powers add up to the band's share of the frame's power.
pub const FRAME: usize = 160;
/// DFT bins 350..=650 Hz.
const FREQS: [f64; 7] = [350.0, 400.0, 450.0, 500.0, 550.0, 600.0, 650.0];
/// Share of the power in the band for a frame to be call-progress tone.
const BAND_SHARE: f32 = 0.75;
/// Quietest tone: −45 dBFS.
const MIN_POWER: f32 = 1.6e-5;
/// A frame this far below the burst (−20 dB) is the cadence's quiet part.
const QUIET_BELOW_BURST: f32 = 0.01;

/// What the cadence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Ringback,
    Busy,
}

#[derive(Debug, Clone, Copy, Default)]
struct Burst {
    frames: u32,
    power: f32,
}

/// Sans-IO cadence detector; time is the count of 20 ms frames.
#[derive(Debug, Clone)]
pub struct CadenceDetector {
    bank: GoertzelBank<7>,
    burst: Option<Burst>,
    /// Frames of quiet since the last burst (None: not after a burst).
    quiet: Option<u32>,
    /// Completed (burst ms, following quiet ms), newest last.
    history: Vec<(u32, u32)>,
    last_burst_power: f32,
}

impl Default for CadenceDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl CadenceDetector {
    pub fn new() -> Self {
        Self {
            bank: GoertzelBank::new(FREQS, 8000.0, FRAME),
            burst: None,
            quiet: None,
            history: Vec::with_capacity(8),
            last_burst_power: 0.0,
        }
    }

    /// Whether the last frame was part of a tone burst.
    pub fn in_burst(&self) -> bool {
        self.burst.is_some()
    }

    /// One 20 ms frame; a cadence when one is recognised (may repeat).
    pub fn frame(&mut self, frame: &[i16]) -> Option<Cadence> {
        let mut energy = 0.0f32;
        for &s in frame {
            let x = f32::from(s) / 32768.0;
            energy += x * x;
            self.bank.push(x);
        }
        let bins = self.bank.finish().map(|b| b.power());
        let power = energy / frame.len().max(1) as f32;
        let band: f32 = bins.iter().sum();
        let tone = power >= MIN_POWER && band >= BAND_SHARE * power;
        match (tone, self.burst) {
            (true, Some(mut b)) => {
                b.frames += 1;
                b.power = b.power.max(power);
                self.burst = Some(b);
                (b.frames * 20 >= 700).then_some(Cadence::Ringback)
            }
            (true, _) => {
                self.end_burst();
                if let Some(q) = self.quiet.take() {
                    if let Some(last) = self.history.last_mut() {
                        last.1 = q * 20;
                    }
                }
                self.burst = Some(Burst { frames: 1, power });
                self.classify()
            }
            (false, _) => {
                self.end_burst();
                if let Some(q) = self.quiet.as_mut() {
                    if power <= self.last_burst_power * QUIET_BELOW_BURST || power < MIN_POWER {
                        *q += 1;
                    } else {
                        // Neither tone nor quiet: the cadence is broken.
                        self.quiet = None;
                        self.history.clear();
                    }
                }
                None
            }
        }
    }

    fn end_burst(&mut self) {
        if let Some(b) = self.burst.take() {
            if self.history.len() == 8 {
                self.history.remove(0);
            }
            self.history.push((b.frames * 20, 0));
            self.quiet = Some(0);
            self.last_burst_power = b.power;
        }
    }

    /// At the start of a burst: do the completed bursts make a cadence?
    fn classify(&self) -> Option<Cadence> {
        let h = &self.history;
        if let [.., (on1, off1), (on2, off2)] = h[..] {
            let double = |on: u32| (300..=500).contains(&on);
            if double(on1) && double(on2) && (150..=300).contains(&off1) && off2 > 1000 {
                return Some(Cadence::Ringback);
            }
        }
        if let [.., a, b, c] = h[..] {
            let busy =
                |(on, off): (u32, u32)| (200..=650).contains(&on) && (200..=650).contains(&off);
            let near = |x: u32| x.abs_diff(a.0) * 4 <= a.0;
            if busy(a) && busy(b) && busy(c) && near(b.0) && near(c.0) {
                return Some(Cadence::Busy);
            }
        }
        None
    }
}
