//! In-band DTMF detection (ITU-T Q.23 tones, Q.24 receiver limits) on
//! decoded 8 kHz audio.
//!
//! [`DtmfDetector`] is sans-IO: the media worker feeds it every decoded frame
//! of a call, of any size, and gets each key press once, at its onset. Time
//! is the sample count since the detector started, so it needs no clock.
//!
//! How a key is recognised (see `analysis` for the per-block checks):
//!
//! 1. Every 102-sample block (12.75 ms) is classified as one key or none.
//! 2. A key is confirmed by two consecutive blocks naming it whose tone
//!    levels agree within 3 dB (a block only partly covered by a short tone
//!    is much weaker, so a 20 ms burst never confirms while any 40 ms tone
//!    contains two full blocks) and whose phase advance shows each tone
//!    within 2 % of nominal (so ±1.5 % is accepted and ±3.5 % rejected).
//!    2 % rather than the midpoint 2.5 %: the pairs 697/1336, 770/1477 and
//!    852/1633 Hz are 1.92:1, so a single note whose second harmonic is
//!    6 dB down could pass as a key if both were allowed 2.1 % off.
//! 3. A confirmed key stays down until three consecutive blocks miss it. A
//!    10 ms interruption spoils at most two blocks, so it is bridged; a
//!    40 ms pause always contains three missing blocks, so the next press,
//!    even of the same key, is reported.
//! 4. Audio made up by loss concealment ([`DtmfDetector::process_concealed`])
//!    is analysed like any other, so it can help confirm a key, but up to
//!    four blocks (51 ms) touched by it do not count as misses: a PLC
//!    that fades or garbles a tone over a lost packet or two must not split
//!    one press into two. Longer concealment counts as usual.
//!
//! Levels follow the convention of [`crate::media::tone`] (full-scale sine =
//! +3.14 dBm0).

mod analysis;
pub(crate) mod goertzel;
mod wav;

pub use wav::{detect_wav, WavError};

use analysis::{Analysis, Candidate, FilterBank, BLOCK_LEN};

use crate::media::tone::{DTMF_COLS_HZ, DTMF_KEYS, DTMF_ROWS_HZ, SAMPLE_RATE_HZ};

/// Largest accepted gap between a tone's frequency and nominal, as a fraction
/// (the column guard filters in `analysis` put the same bound at ±4 % / 2).
const MAX_DEVIATION: f64 = 0.02;
/// Phase across one block is ambiguous beyond ±fs/(2N) ≈ 39 Hz; the column
/// guard filters handle large column deviations, this bounds the rest.
const MAX_PHASE_DEVIATION_HZ: f64 = 32.0;
/// Largest level change (dB) between the two blocks that confirm a key.
const MAX_CONFIRM_LEVEL_STEP_DB: f64 = 3.0;
/// Consecutive missing blocks that end a key press.
const MISSES_TO_RELEASE: u8 = 3;
/// Consecutive blocks with concealed audio that are not counted as misses.
const CONCEALED_BLOCKS_FORGIVEN: u8 = 4;
/// Pending detections; one 20 ms frame can confirm at most one key, so this
/// only fills if a caller feeds many seconds at once without polling.
const QUEUE_LEN: usize = 16;

/// A key press found in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// `0-9`, `*`, `#` or `A-D`.
    pub digit: char,
    /// Estimated onset, in samples since the detector started (8 kHz).
    pub start_sample: u64,
}

impl Detected {
    /// Onset in seconds since the detector started.
    pub fn start_seconds(&self) -> f64 {
        self.start_sample as f64 / f64::from(SAMPLE_RATE_HZ)
    }
}

/// One classified block, remembered for the checks across blocks.
#[derive(Debug, Clone, Copy)]
struct Block {
    start: u64,
    analysis: Analysis,
}

impl Block {
    fn candidate(&self) -> Option<Candidate> {
        self.analysis.candidate
    }

    /// Summed power at a key's two frequencies, whether or not the block
    /// named that key.
    fn power_at(&self, row: usize, col: usize) -> f32 {
        let row_power = self.analysis.row_powers.get(row).copied().unwrap_or(0.0);
        let col_power = self.analysis.col_powers.get(col).copied().unwrap_or(0.0);
        row_power + col_power
    }
}

/// Per-frequency limits for the phase check, in radians per block.
#[derive(Debug, Clone, Copy)]
struct PhaseLimits {
    /// Phase a nominal tone advances in one block, wrapped to (−π, π].
    expected: f32,
    /// Largest accepted departure from `expected`.
    tolerance: f32,
}

impl PhaseLimits {
    fn new(freq_hz: f64, max_dev_hz: f64) -> Self {
        let per_hz = 2.0 * std::f64::consts::PI * BLOCK_LEN as f64 / f64::from(SAMPLE_RATE_HZ);
        Self {
            expected: wrap_phase(per_hz * freq_hz) as f32,
            tolerance: (per_hz * max_dev_hz) as f32,
        }
    }

    fn accepts(&self, advance: f32) -> bool {
        (wrap_phase(f64::from(advance - self.expected)) as f32).abs() <= self.tolerance
    }
}

fn wrap_phase(x: f64) -> f64 {
    use std::f64::consts::PI;
    let wrapped = (x + PI).rem_euclid(2.0 * PI) - PI;
    if wrapped <= -PI {
        wrapped + 2.0 * PI
    } else {
        wrapped
    }
}

/// Fixed-capacity FIFO of detections (no allocation).
#[derive(Debug, Clone)]
struct Queue {
    items: [Option<Detected>; QUEUE_LEN],
    head: usize,
    len: usize,
    dropped: u64,
}

impl Queue {
    fn new() -> Self {
        Self {
            items: [None; QUEUE_LEN],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, d: Detected) {
        if self.len == QUEUE_LEN {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        if let Some(slot) = self.items.get_mut((self.head + self.len) % QUEUE_LEN) {
            *slot = Some(d);
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<Detected> {
        if self.len == 0 {
            return None;
        }
        let item = self.items.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % QUEUE_LEN;
        self.len -= 1;
        item
    }
}

/// In-band DTMF detector for one 8 kHz audio stream.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    bank: FilterBank,
    row_phase: [PhaseLimits; 4],
    col_phase: [PhaseLimits; 4],
    max_level_step: f32,
    /// Samples consumed so far.
    position: u64,
    /// The last two classified blocks, newest first.
    history: [Option<Block>; 2],
    /// The key currently held down (row, column).
    active: Option<(usize, usize)>,
    misses: u8,
    /// The block being filled holds concealed audio.
    block_concealed: bool,
    /// Consecutive blocks with concealed audio before this one.
    concealed_run: u8,
    queue: Queue,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector for 8 kHz audio.
    pub fn new() -> Self {
        Self {
            bank: FilterBank::new(),
            row_phase: DTMF_ROWS_HZ
                .map(|f| PhaseLimits::new(f, (f * MAX_DEVIATION).min(MAX_PHASE_DEVIATION_HZ))),
            col_phase: DTMF_COLS_HZ
                .map(|f| PhaseLimits::new(f, (f * MAX_DEVIATION).min(MAX_PHASE_DEVIATION_HZ))),
            max_level_step: 10f64.powf(MAX_CONFIRM_LEVEL_STEP_DB / 10.0) as f32,
            position: 0,
            history: [None; 2],
            active: None,
            misses: 0,
            block_concealed: false,
            concealed_run: 0,
            queue: Queue::new(),
        }
    }

    /// Feeds samples. Returns a key press once, when it is confirmed (about
    /// 26–38 ms after its onset). If this call confirmed more than one, the
    /// rest come from [`DtmfDetector::poll`].
    pub fn process(&mut self, pcm: &[i16]) -> Option<Detected> {
        self.feed(pcm, false)
    }

    /// Feeds samples that loss concealment made up in place of lost audio
    /// (G.711 PLC, Opus PLC): as [`DtmfDetector::process`], except that a
    /// key held down is not released by a few blocks of them.
    pub fn process_concealed(&mut self, pcm: &[i16]) -> Option<Detected> {
        self.feed(pcm, true)
    }

    fn feed(&mut self, pcm: &[i16], concealed: bool) -> Option<Detected> {
        let mut rest = pcm;
        while !rest.is_empty() {
            let taken = self.bank.fill(rest);
            rest = rest.get(taken..).unwrap_or(&[]);
            self.position = self.position.saturating_add(taken as u64);
            self.block_concealed |= concealed && taken > 0;
            if self.bank.is_full() {
                let analysis = self.bank.finish();
                let start = self.position.saturating_sub(BLOCK_LEN as u64);
                let concealed = std::mem::take(&mut self.block_concealed);
                self.on_block(Block { start, analysis }, concealed);
            }
        }
        self.queue.pop()
    }

    /// Next pending key press, if `process` confirmed several at once.
    #[must_use]
    pub fn poll(&mut self) -> Option<Detected> {
        self.queue.pop()
    }

    /// Key presses lost because nobody polled (only possible when feeding
    /// many seconds in one call).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped
    }

    fn on_block(&mut self, block: Block, concealed: bool) {
        let candidate = block.candidate();
        let key = candidate.map(|c| (c.row, c.col));
        let confirmation = match (candidate, self.history[0]) {
            (Some(cur), Some(prev)) => prev
                .candidate()
                .filter(|p| (p.row, p.col) == (cur.row, cur.col) && self.confirms(p, &cur))
                .map(|_| (cur, prev)),
            _ => None,
        };

        let held = self.active.is_some() && block.analysis.held == self.active;
        if (key.is_some() && key == self.active) || (held && key.is_none()) {
            self.misses = 0;
        } else if let Some((cur, prev)) = confirmation {
            self.press(&cur, &prev);
        } else if self.active.is_some() {
            if concealed && self.concealed_run < CONCEALED_BLOCKS_FORGIVEN {
                // forgiven: made-up audio is no evidence the key was let go
            } else {
                self.misses = self.misses.saturating_add(1);
                if self.misses >= MISSES_TO_RELEASE {
                    self.active = None;
                }
            }
        }
        self.concealed_run = if concealed {
            self.concealed_run.saturating_add(1)
        } else {
            0
        };
        self.history = [Some(block), self.history[0]];
    }

    /// Whether two consecutive blocks naming the same key show a steady tone
    /// pair close enough to nominal frequency.
    fn confirms(&self, prev: &Candidate, cur: &Candidate) -> bool {
        let steady = |a: f32, b: f32| a <= b * self.max_level_step && b <= a * self.max_level_step;
        if !steady(prev.row_power, cur.row_power) || !steady(prev.col_power, cur.col_power) {
            return false;
        }
        let row_ok = self
            .row_phase
            .get(cur.row)
            .is_some_and(|l| l.accepts(cur.row_bin.phase_since(prev.row_bin)));
        let col_ok = self
            .col_phase
            .get(cur.col)
            .is_some_and(|l| l.accepts(cur.col_bin.phase_since(prev.col_bin)));
        row_ok && col_ok
    }

    /// Reports a newly confirmed key; `prev` is the first of its two blocks.
    fn press(&mut self, cur: &Candidate, prev: &Block) {
        self.active = Some((cur.row, cur.col));
        self.misses = 0;
        let Some(digit) = DTMF_KEYS.get(cur.row).and_then(|r| r.get(cur.col)).copied() else {
            return;
        };
        let start_sample = self.onset(cur, prev);
        self.queue.push(Detected {
            digit,
            start_sample,
        });
    }

    /// Onset estimate: a tone covering a fraction `c` of a block shows an
    /// amplitude about `c` times that of a full block, so the partial block
    /// at the leading edge tells where inside it the tone began. That block
    /// is either the one before `prev` (which then shows some tone) or
    /// `prev` itself.
    fn onset(&self, cur: &Candidate, prev: &Block) -> u64 {
        let full = cur.row_power + cur.col_power;
        let coverage = |b: &Block| {
            let p = b.power_at(cur.row, cur.col);
            if full > 0.0 {
                (p / full).sqrt().clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let n = BLOCK_LEN as f32;
        // history[1] is the block just before `prev` (history[0] is `prev`).
        let before = self.history[1]
            .filter(|b| b.start.saturating_add(BLOCK_LEN as u64) == prev.start)
            .map_or(0.0, |b| coverage(&b));
        if before >= 0.15 {
            return prev.start.saturating_sub((before * n).round() as u64);
        }
        // Sidelobes of one group's tone beat with the other group's filter,
        // so full blocks differ by up to ~20 % in power: only a clearly
        // weaker `prev` is taken as partial.
        let prev_cover = coverage(prev);
        if prev_cover < 0.85 {
            return prev
                .start
                .saturating_add(((1.0 - prev_cover) * n).round() as u64);
        }
        prev.start
    }
}

#[cfg(test)]
mod tests;
