//! Special Information Tones: three segments, 913.8 or 985.2 Hz, then
//! 1370.6 or 1428.5 Hz, then 1776.7 Hz; the first two short (274 ms) or
//! long (380 ms). Frequency (low/high) and length (short/long) of the first
//! two segments name the code (Telcordia / ANSI T1.401; ITU-T E.180's
//! 950/1400/1800 Hz ±50 Hz generic SIT is heard as one of them).
//!
//! Analysed in 10 ms blocks so that segment lengths are known to ±10 ms
//! (short and long are 106 ms apart; the tolerance is ±5 %).

use crate::media::dtmf_detect::goertzel::GoertzelBank;

/// Samples per block (10 ms).
pub const BLOCK: usize = 80;
const FREQS: [f64; 5] = [913.8, 985.2, 1370.6, 1428.5, 1776.7];
/// Share of a block's power in its segment's filter for the block to count.
const TONAL_SHARE: f32 = 0.5;
/// Quietest SIT segment heard: a −40 dBFS sine (SIT is sent near −24 dBm0).
const MIN_POWER: f32 = 5.0e-5;
/// Between short (274 ms) and long (380 ms).
const LONG_FROM_MS: u32 = 327;
/// Shortest and longest first/second segment accepted.
const SEGMENT_MS: std::ops::RangeInclusive<u32> = 200..=480;
/// The third segment is confirmed after this much of it.
const THIRD_MS: u32 = 200;
/// Largest silence between segments (E.180 allows 30 ms; one block more
/// for the block boundaries).
const MAX_GAP_BLOCKS: u64 = 4;

/// The SIT codes (Telcordia names; the inter-LATA variants RO′ and NC′
/// fold into RO and NC, which mean the same to a dialler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SitCode {
    /// Intercept: vacant number, changed number.
    Ic,
    /// Vacant code: the number cannot exist.
    Vc,
    /// Reorder: equipment irregularity, try later.
    Ro,
    /// No circuit: congestion, try later.
    Nc,
    /// Ineffective other.
    Io,
    /// A SIT with an unassigned pattern.
    Other,
}

impl SitCode {
    pub fn as_str(self) -> &'static str {
        match self {
            SitCode::Ic => "ic",
            SitCode::Vc => "vc",
            SitCode::Ro => "ro",
            SitCode::Nc => "nc",
            SitCode::Io => "io",
            SitCode::Other => "other",
        }
    }

    /// From (first high, first long, second high, second long).
    fn from_segments(h1: bool, l1: bool, h2: bool, l2: bool) -> SitCode {
        match (h1, l1, h2, l2) {
            (false, false, false, false) => SitCode::Ic,
            (true, true, false, false) => SitCode::Vc,
            (false, false, true, true) | (true, false, false, true) => SitCode::Ro,
            (true, true, true, true) | (false, true, false, true) => SitCode::Nc,
            (false, true, false, false) => SitCode::Io,
            _ => SitCode::Other,
        }
    }
}

/// A run of blocks in one band.
#[derive(Debug, Clone, Copy)]
struct Segment {
    band: u8,
    high_votes: u32,
    blocks: u32,
    first: u64,
    last: u64,
}

impl Segment {
    fn ms(&self) -> u32 {
        self.blocks * 10
    }
    fn high(&self) -> bool {
        self.high_votes * 2 > self.blocks
    }
}

/// Sans-IO SIT decoder; time is the count of 10 ms blocks fed.
#[derive(Debug, Clone)]
pub struct SitDetector {
    bank: GoertzelBank<5>,
    blocks: u64,
    /// The last three segments, oldest first.
    segments: [Option<Segment>; 3],
    found: bool,
}

impl Default for SitDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl SitDetector {
    pub fn new() -> Self {
        Self {
            bank: GoertzelBank::new(FREQS, 8000.0, BLOCK),
            blocks: 0,
            segments: [None; 3],
            found: false,
        }
    }

    /// Whether the last block was part of a SIT-like tone (so that the
    /// announcement detector does not count it as speech).
    pub fn in_tone(&self) -> bool {
        self.segments[2].is_some_and(|s| s.last + 1 == self.blocks)
    }

    /// One 10 ms block; the code once, when the third segment is confirmed.
    pub fn block(&mut self, block: &[i16]) -> Option<SitCode> {
        let mut energy = 0.0f32;
        for &s in block {
            let x = f32::from(s) / 32768.0;
            energy += x * x;
            self.bank.push(x);
        }
        let p = self.bank.finish().map(|b| b.power());
        let now = self.blocks;
        self.blocks += 1;
        let power = energy / block.len().max(1) as f32;
        if power < MIN_POWER {
            return None;
        }
        let bands = [
            (0u8, p[0].max(p[1]), p[1] > p[0]),
            (1, p[2].max(p[3]), p[3] > p[2]),
            (2, p[4], false),
        ];
        let (band, strength, high) = bands
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0, false));
        if strength < TONAL_SHARE * power {
            return None;
        }
        match &mut self.segments[2] {
            Some(seg) if seg.band == band && seg.last + 1 == now => {
                seg.blocks += 1;
                seg.last = now;
                seg.high_votes += u32::from(high);
            }
            _ => {
                self.segments.rotate_left(1);
                self.segments[2] = Some(Segment {
                    band,
                    high_votes: u32::from(high),
                    blocks: 1,
                    first: now,
                    last: now,
                });
            }
        }
        self.check()
    }

    fn check(&mut self) -> Option<SitCode> {
        let [Some(a), Some(b), Some(c)] = self.segments else {
            return None;
        };
        if self.found || c.band != 2 || c.ms() != THIRD_MS {
            return None;
        }
        let ok = a.band == 0
            && b.band == 1
            && SEGMENT_MS.contains(&a.ms())
            && SEGMENT_MS.contains(&b.ms())
            && b.first.saturating_sub(a.last) <= MAX_GAP_BLOCKS
            && c.first.saturating_sub(b.last) <= MAX_GAP_BLOCKS;
        if !ok {
            return None;
        }
        self.found = true;
        Some(SitCode::from_segments(
            a.high(),
            a.ms() >= LONG_FROM_MS,
            b.high(),
            b.ms() >= LONG_FROM_MS,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, ms: f64) -> Vec<i16> {
        let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
        (0..(ms * 8.0) as usize)
            .map(|n| (3000.0 * (w * n as f64).sin()) as i16)
            .collect()
    }

    fn decode(f1: f64, d1: f64, f2: f64, d2: f64, scale: f64, gap_ms: f64) -> Option<SitCode> {
        let mut x = vec![0i16; 800];
        x.extend(sine(f1 * scale, d1));
        x.extend(vec![0i16; (gap_ms * 8.0) as usize]);
        x.extend(sine(f2 * scale, d2));
        x.extend(vec![0i16; (gap_ms * 8.0) as usize]);
        x.extend(sine(1776.7 * scale, 380.0));
        let mut d = SitDetector::new();
        x.chunks(BLOCK).find_map(|b| d.block(b))
    }

    #[test]
    fn the_codes_with_telcordia_tolerances() {
        let cases = [
            (913.8, 274.0, 1370.6, 274.0, SitCode::Ic),
            (985.2, 380.0, 1370.6, 274.0, SitCode::Vc),
            (913.8, 274.0, 1428.5, 380.0, SitCode::Ro),
            (985.2, 380.0, 1428.5, 380.0, SitCode::Nc),
            (913.8, 380.0, 1370.6, 274.0, SitCode::Io),
        ];
        for (f1, d1, f2, d2, code) in cases {
            for (scale, dur, gap) in [(1.0, 1.0, 0.0), (1.015, 0.95, 4.0), (0.985, 1.05, 30.0)] {
                let got = decode(f1, d1 * dur, f2, d2 * dur, scale, gap);
                assert_eq!(
                    got,
                    Some(code),
                    "{f1}/{d1} {f2}/{d2} ×{scale} ×{dur} gap {gap}"
                );
            }
        }
    }

    #[test]
    fn tones_out_of_order_or_too_short_are_not_sit() {
        assert_eq!(decode(1370.6, 274.0, 913.8, 274.0, 1.0, 0.0), None);
        assert_eq!(decode(913.8, 120.0, 1370.6, 120.0, 1.0, 0.0), None);
        assert_eq!(decode(913.8, 274.0, 1370.6, 274.0, 1.0, 120.0), None);
    }
}
