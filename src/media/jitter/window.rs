//! A sliding-window percentile of the jitter buffer's relative delays: the
//! last `capacity` values in a ring, a histogram of them, and the bin of a
//! fixed percentile kept up to date as values come and go, so that each
//! packet costs O(1) amortized and no allocation once the histogram covers
//! the largest delay seen: its bins are added (doubling, up to the range)
//! as larger values arrive — a quiet path needs a few, the whole 400 ms
//! range 1,602 of them (3.2 kB of every call, most never counted in).

/// Bins the histogram starts with: delays up to 4 ms at 250 µs.
const FIRST_BINS: usize = 16;

/// Percentile of the last `capacity` values, to `bin_us` resolution.
#[derive(Debug, Clone)]
pub(super) struct PercentileWindow {
    /// Bin index of each value in the window, oldest at `pos` once full.
    ring: Box<[u16]>,
    /// How many values of the window fall in each bin, up to the largest
    /// bin a value has fallen in so far.
    counts: Vec<u16>,
    /// Bins of the whole range; larger values count in the top one.
    bins: usize,
    len: usize,
    pos: usize,
    bin_us: i64,
    /// The percentile, in parts per million.
    ppm: u64,
    /// The bin the percentile falls in...
    qbin: usize,
    /// ...and how many values lie in bins below it.
    below: usize,
}

impl PercentileWindow {
    /// A window of `capacity` values (at most 65 535) binned by `bin_us`
    /// from 0 to `range_us`; larger values count in the top bin.
    pub fn new(capacity: usize, bin_us: i64, range_us: i64, ppm: u64) -> Self {
        let capacity = capacity.clamp(1, usize::from(u16::MAX));
        let bin_us = bin_us.max(1);
        let bins = usize::try_from(range_us.max(0) / bin_us + 2)
            .unwrap_or(usize::MAX)
            .min(usize::from(u16::MAX));
        Self {
            ring: vec![0; capacity].into_boxed_slice(),
            counts: vec![0; FIRST_BINS.min(bins)],
            bins,
            len: 0,
            pos: 0,
            bin_us,
            ppm: ppm.min(1_000_000),
            qbin: 0,
            below: 0,
        }
    }

    /// The window holds `capacity` values.
    pub fn is_full(&self) -> bool {
        self.len == self.ring.len()
    }

    /// Adds `value_us` (negative counts as 0), evicting the oldest value
    /// once the window is full.
    pub fn push(&mut self, value_us: i64) {
        // Round up: a bin's value never understates the delays in it, and
        // an exact 0 (a path without jitter) stays 0.
        let bin = (value_us.max(0).saturating_add(self.bin_us - 1) / self.bin_us)
            .min(self.bins as i64 - 1)
            .max(0);
        let bin = bin as u16;
        if usize::from(bin) >= self.counts.len() {
            // Bins past the old top held nothing, so the percentile's bin
            // and the count below it stay right.
            let len = (usize::from(bin) + 1)
                .max(self.counts.len().saturating_mul(2))
                .min(self.bins);
            self.counts.resize(len, 0);
        }
        if self.is_full() {
            let old = self.ring.get(self.pos).copied().unwrap_or(0);
            if let Some(c) = self.counts.get_mut(usize::from(old)) {
                *c = c.saturating_sub(1);
            }
            if usize::from(old) < self.qbin {
                self.below = self.below.saturating_sub(1);
            }
        } else {
            self.len += 1;
        }
        if let Some(slot) = self.ring.get_mut(self.pos) {
            *slot = bin;
        }
        self.pos = (self.pos + 1) % self.ring.len();
        if let Some(c) = self.counts.get_mut(usize::from(bin)) {
            *c = c.saturating_add(1);
        }
        if usize::from(bin) < self.qbin {
            self.below += 1;
        }
        self.settle();
    }

    /// The percentile of the window in µs (0 when empty): the smallest
    /// bin value that at least `ppm` of the values do not exceed.
    pub fn value_us(&self) -> i64 {
        self.qbin as i64 * self.bin_us
    }

    /// Moves the percentile bin to where rank `ceil(ppm * len)` falls.
    fn settle(&mut self) {
        let rank = (self.len as u64 * self.ppm).div_ceil(1_000_000).max(1) as usize;
        loop {
            let here = usize::from(self.counts.get(self.qbin).copied().unwrap_or(0));
            if self.below >= rank && self.qbin > 0 {
                self.qbin -= 1;
                let c = self.counts.get(self.qbin).copied().unwrap_or(0);
                self.below = self.below.saturating_sub(usize::from(c));
            } else if self.below + here < rank && self.qbin + 1 < self.counts.len() {
                self.below += here;
                self.qbin += 1;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentile the slow way, for comparison.
    fn reference(values: &[i64], bin_us: i64, ppm: u64) -> i64 {
        let mut bins: Vec<i64> = values
            .iter()
            .map(|v| (v.max(&0) + bin_us - 1) / bin_us * bin_us)
            .collect();
        bins.sort_unstable();
        let rank = (bins.len() as u64 * ppm).div_ceil(1_000_000).max(1) as usize;
        bins[rank - 1]
    }

    #[test]
    fn empty_and_constant_windows() {
        let mut w = PercentileWindow::new(10, 250, 10_000, 990_000);
        assert_eq!(w.value_us(), 0);
        for _ in 0..25 {
            w.push(0);
        }
        assert_eq!((w.len, w.value_us()), (10, 0));
        w.push(1);
        assert_eq!(w.value_us(), 250, "rounds up: 1 µs is not 0");
    }

    #[test]
    fn high_percentile_of_a_short_window_is_its_maximum() {
        let mut w = PercentileWindow::new(500, 250, 100_000, 995_000);
        for v in [3_000, 12_000, 7_000] {
            w.push(v);
        }
        assert_eq!(w.value_us(), 12_000);
    }

    #[test]
    fn matches_a_sorted_reference_as_values_slide_through() {
        let mut rng = crate::media::netem::SplitMix64::new(7);
        for (cap, ppm) in [(50usize, 970_000u64), (500, 995_000), (7, 500_000)] {
            let mut w = PercentileWindow::new(cap, 250, 80_000, ppm);
            let mut all = Vec::new();
            for i in 0..3000 {
                // A slow drift of the distribution, plus spikes and clipping.
                let spread = 1 + (i / 300) as u64 * 4_000;
                let mut v = (rng.next_u64() % spread) as i64;
                if rng.next_u64() % 50 == 0 {
                    v += 150_000;
                }
                if rng.next_u64() % 40 == 0 {
                    v = -5;
                }
                w.push(v);
                all.push(v.min(80_000 + 250));
                let start = all.len().saturating_sub(cap);
                assert_eq!(
                    w.value_us(),
                    reference(&all[start..], 250, ppm),
                    "cap {cap} ppm {ppm} after {i}"
                );
            }
        }
    }
}
