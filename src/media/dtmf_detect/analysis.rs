//! Per-block analysis: which DTMF key (if any) one 102-sample block holds.
//!
//! Each block runs a Goertzel filter on every row frequency and five on every
//! column frequency (the nominal one, ±1.5 % to measure the energy of an
//! off-nominal tone without scalloping loss, and ±4 % to reject tones more
//! than 2 % off). A block names a key only if all of these hold:
//!
//! - each tone is above the level floor;
//! - the two tones carry most of the block's energy (talk-off: speech and
//!   music spread energy over many frequencies and harmonics);
//! - each is well above the other frequencies of its group (relative peak);
//! - the twist is within limits;
//! - the column tone is nearer its nominal frequency than ±4 % (rows are
//!   checked by phase across blocks, in the state machine, because at
//!   ~700 Hz a 102-sample block cannot tell 1.5 % from 3.5 % by energy).

use super::goertzel::{Bin, GoertzelBank};
use crate::media::tone::{dbm0_to_peak, DTMF_COLS_HZ, DTMF_ROWS_HZ, SAMPLE_RATE_HZ};

/// Samples per analysis block: 12.75 ms, which puts each row frequency near
/// a spectral null of its neighbours' filters.
pub(super) const BLOCK_LEN: usize = 102;

/// Column filter frequencies relative to nominal. Index `COL_CENTER` is the
/// nominal one; the outer two bound the accepted deviation.
const COL_OFFSETS: [f64; 5] = [0.96, 0.985, 1.0, 1.015, 1.04];
const COL_CENTER: usize = 2;
const COL_LOW_GUARD: usize = 0;
const COL_HIGH_GUARD: usize = 4;
/// Filters in the bank: the four rows, then five per column.
const FILTERS: usize = 4 + 4 * COL_OFFSETS.len();

/// Lowest accepted level of each tone, dBm0.
const MIN_TONE_DBM0: f64 = -42.0;
/// Share of the block's energy the two tones must carry.
const MIN_TONE_SHARE: f32 = 0.8;
/// How far (dB) the strongest filter of a group must be above the others.
const RELATIVE_PEAK_DB: f64 = 8.0;
/// The same for the column (high) group, lower: under 8 dB of normal
/// twist the louder row tone leaks into the nearest column filter (941 Hz
/// into 1209 Hz reads 7.8 dB under the 1336 Hz tone of key 0 in a
/// 102-sample block), and a real key must not fail on that.
const RELATIVE_PEAK_COL_DB: f64 = 6.0;
/// Normal twist: the low group louder than the high group (a long line
/// loses more of the high group), dB. Q.24's North American limit (and
/// spandsp's and Asterisk's default) is 8 dB; one dB more, because a
/// 12.75 ms block measures a tone pair's ratio to within about ±0.7 dB
/// (key 1 sent at exactly 8 dB reads 8.5 dB), so a key at the limit is
/// always taken and one 2 dB past it never.
const MAX_NORMAL_TWIST_DB: f64 = 9.0;
/// Reverse twist: the high group louder than the low group, dB (4 dB in
/// Q.24's North American limits, spandsp and Asterisk; the same margin).
const MAX_REVERSE_TWIST_DB: f64 = 5.0;

/// How much wider (3 dB, as a power ratio) the twist limits are for a key
/// already held (`Analysis::held`).
const HELD_TWIST_WIDENING: f32 = 2.0;

fn db_to_power_ratio(db: f64) -> f32 {
    10f64.powf(db / 10.0) as f32
}

/// A key heard in one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Candidate {
    pub row: usize,
    pub col: usize,
    /// Nominal-frequency filter outputs, for the phase check across blocks.
    pub row_bin: Bin,
    pub col_bin: Bin,
    /// Tone powers (mean square, full scale = 1.0).
    pub row_power: f32,
    pub col_power: f32,
}

/// What one block holds: the key it names, if any, and the tone powers of
/// every row and column (kept to locate onsets inside partial blocks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Analysis {
    pub candidate: Option<Candidate>,
    /// The key the block would name with the twist limits 3 dB wider: a
    /// key already held is not let go for a block measured just past a
    /// limit (without it a key sent near the limit flickers and is
    /// reported twice).
    pub held: Option<(usize, usize)>,
    pub row_powers: [f32; 4],
    pub col_powers: [f32; 4],
}

/// The filters and energy accumulator for the block being filled.
#[derive(Debug, Clone)]
pub(super) struct FilterBank {
    /// Rows at 0..4, then column `c`'s filter `k` at `4 + 5c + k`.
    filters: GoertzelBank<FILTERS>,
    energy: f32,
    filled: usize,
    min_tone_power: f32,
    relative_peak: f32,
    relative_peak_col: f32,
    max_normal_twist: f32,
    max_reverse_twist: f32,
}

impl FilterBank {
    pub fn new() -> Self {
        let rate = f64::from(SAMPLE_RATE_HZ);
        let floor_peak = dbm0_to_peak(MIN_TONE_DBM0) / 32768.0;
        Self {
            filters: GoertzelBank::new(filter_freqs(), rate, BLOCK_LEN),
            energy: 0.0,
            filled: 0,
            min_tone_power: (floor_peak * floor_peak / 2.0) as f32,
            relative_peak: db_to_power_ratio(RELATIVE_PEAK_DB),
            relative_peak_col: db_to_power_ratio(RELATIVE_PEAK_COL_DB),
            max_normal_twist: db_to_power_ratio(MAX_NORMAL_TWIST_DB),
            max_reverse_twist: db_to_power_ratio(MAX_REVERSE_TWIST_DB),
        }
    }

    /// Adds samples until the block is full; returns how many were taken.
    pub fn fill(&mut self, pcm: &[i16]) -> usize {
        let take = (BLOCK_LEN - self.filled).min(pcm.len());
        for &s in pcm.iter().take(take) {
            let x = f32::from(s) * (1.0 / 32768.0);
            self.energy += x * x;
            self.filters.push(x);
        }
        self.filled += take;
        take
    }

    pub fn is_full(&self) -> bool {
        self.filled >= BLOCK_LEN
    }

    /// Analyses the full block and resets for the next one.
    pub fn finish(&mut self) -> Analysis {
        let bins = self.filters.finish();
        let bin = |i: usize| bins.get(i).copied().unwrap_or_default();
        let rows: [Bin; 4] = std::array::from_fn(bin);
        let cols: [[Bin; 5]; 4] =
            std::array::from_fn(|c| std::array::from_fn(|k| bin(4 + 5 * c + k)));
        let mean_energy = self.energy / BLOCK_LEN as f32;
        self.energy = 0.0;
        self.filled = 0;
        let row_powers = rows.map(Bin::power);
        // Energy of a column tone: the best of the filters within ±1.5 %.
        let col_powers = cols.map(|c| {
            c[COL_CENTER - 1..=COL_CENTER + 1]
                .iter()
                .map(|b| b.power())
                .fold(0.0f32, f32::max)
        });
        let (candidate, held) = self.classify(&rows, &cols, &row_powers, &col_powers, mean_energy);
        Analysis {
            candidate,
            held,
            row_powers,
            col_powers,
        }
    }

    fn classify(
        &self,
        rows: &[Bin; 4],
        cols: &[[Bin; 5]; 4],
        row_powers: &[f32; 4],
        col_powers: &[f32; 4],
        mean_energy: f32,
    ) -> (Option<Candidate>, Option<(usize, usize)>) {
        let (Some(row), Some(col)) = (strongest(row_powers), strongest(col_powers)) else {
            return (None, None);
        };
        let row_power = row_powers[row];
        let col_power = col_powers[col];

        if row_power < self.min_tone_power || col_power < self.min_tone_power {
            return (None, None);
        }
        if row_power + col_power < MIN_TONE_SHARE * mean_energy {
            return (None, None);
        }
        let peak_ok = |powers: &[f32; 4], best: usize, peak: f32| {
            powers
                .iter()
                .enumerate()
                .all(|(i, &p)| i == best || p * peak <= powers[best])
        };
        if !peak_ok(row_powers, row, self.relative_peak)
            || !peak_ok(col_powers, col, self.relative_peak_col)
        {
            return (None, None);
        }
        let col_bins = &cols[col];
        let centre = col_bins[COL_CENTER].power();
        if centre < col_bins[COL_LOW_GUARD].power() || centre < col_bins[COL_HIGH_GUARD].power() {
            return (None, None);
        }
        let within = |widen: f32| {
            row_power <= col_power * self.max_normal_twist * widen
                && col_power <= row_power * self.max_reverse_twist * widen
        };
        let held = within(HELD_TWIST_WIDENING).then_some((row, col));
        if !within(1.0) {
            return (None, held);
        }
        let candidate = Candidate {
            row,
            col,
            row_bin: rows[row],
            col_bin: col_bins[COL_CENTER],
            row_power,
            col_power,
        };
        (Some(candidate), held)
    }
}

/// The bank's frequencies, in its order: rows, then each column's five.
fn filter_freqs() -> [f64; FILTERS] {
    std::array::from_fn(|i| match i.checked_sub(4) {
        None => DTMF_ROWS_HZ.get(i).copied().unwrap_or(0.0),
        Some(j) => {
            let col = DTMF_COLS_HZ
                .get(j / COL_OFFSETS.len())
                .copied()
                .unwrap_or(0.0);
            col * COL_OFFSETS
                .get(j % COL_OFFSETS.len())
                .copied()
                .unwrap_or(1.0)
        }
    })
}

/// Index of the largest value (the first on ties); `None` if all are zero.
fn strongest(powers: &[f32; 4]) -> Option<usize> {
    let mut best = 0;
    for (i, &p) in powers.iter().enumerate() {
        if p > powers[best] {
            best = i;
        }
    }
    (powers[best] > 0.0).then_some(best)
}
