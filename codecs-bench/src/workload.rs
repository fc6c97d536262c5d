//! Work that the criterion benches (`benches/media.rs`) and the `report`
//! binary both time, defined once so their figures describe the same thing:
//! the rate pairs resampling is measured on, speech moved to another rate,
//! and the jitter buffer's packet pattern.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rivr::media::jitter::JitterBuffer;
use rivr::media::resample::{self, ResampleError};

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;

/// Rate pairs measured: 8 ↔ 16 ↔ 48 kHz.
pub const RATE_PAIRS: [(u32, u32); 6] = [
    (8000, 16_000),
    (16_000, 8000),
    (8000, 48_000),
    (48_000, 8000),
    (16_000, 48_000),
    (48_000, 16_000),
];

/// 8 kHz `pcm` at `hz` (through the whole-buffer resampler), as 16-bit
/// samples; at 8 kHz, the same samples.
pub fn at_rate(pcm: &[i16], hz: u32) -> Result<Vec<i16>, ResampleError> {
    let narrow: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
    Ok(resample::resample(&narrow, 8000, hz)?
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// One 20 ms G.711 packet pushed and one frame popped per tick of a
/// virtual clock, in order or with every 8th pair of packets swapped.
pub struct JitterFeed {
    base: Instant,
    tick: u64,
    reorder: bool,
    payload: [u8; FRAME],
}

impl JitterFeed {
    /// A feed starting at tick 0.
    pub fn new(reorder: bool) -> Self {
        Self {
            base: Instant::now(),
            tick: 0,
            reorder,
            payload: [0xFF; FRAME],
        }
    }

    /// Pushes the next packet into `jb` and pops one frame.
    pub fn step(&mut self, jb: &mut JitterBuffer) {
        let tick = self.tick;
        let i = match (self.reorder, tick % 8) {
            (true, 0) => tick + 1,
            (true, 1) => tick - 1,
            _ => tick,
        };
        let now = self.base + Duration::from_millis(20 * tick);
        black_box(jb.push(
            now,
            i as u16,
            (i * FRAME as u64) as u32,
            0x5eed,
            false,
            &self.payload,
        ));
        black_box(jb.pop(now));
        self.tick += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivr::media::jitter::JitterConfig;

    #[test]
    fn at_8_khz_the_samples_are_unchanged() {
        let pcm: Vec<i16> = (0..800).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
        assert_eq!(at_rate(&pcm, 8000).unwrap(), pcm);
        assert_eq!(at_rate(&pcm, 48_000).unwrap().len(), 4800);
    }

    #[test]
    fn the_feed_keeps_a_jitter_buffer_playing() {
        for reorder in [false, true] {
            let mut jb = JitterBuffer::new(JitterConfig::g711_20ms());
            let mut feed = JitterFeed::new(reorder);
            for _ in 0..400 {
                feed.step(&mut jb);
            }
            let early = jb.stats().clone();
            for _ in 0..400 {
                feed.step(&mut jb);
            }
            // The feed really reorders when asked, and what is timed is
            // steady playout: once the buffer has adapted to the swaps, no
            // packet is late and every one plays.
            let stats = jb.stats();
            assert_eq!(stats.reordered > 0, reorder, "{stats:?}");
            assert_eq!(stats.late, early.late, "{stats:?}");
            assert_eq!(stats.played - early.played, 400, "{stats:?}");
        }
    }
}
