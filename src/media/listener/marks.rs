//! One bit per sample of the listener's FIFO: which samples were
//! concealed. A bool per sample was 1,120 bytes of every call's media
//! state; the bits are 144.

/// Bits for `N` samples (`N` at most 64 × 18).
#[derive(Debug, Clone)]
pub(super) struct SampleMarks<const N: usize> {
    words: [u64; WORDS],
}

const WORDS: usize = 18;

impl<const N: usize> SampleMarks<N> {
    const FITS: () = assert!(N <= WORDS * 64);

    pub fn new() -> Self {
        let () = Self::FITS;
        Self { words: [0; WORDS] }
    }

    /// Marks (or clears) samples `start..end`; what lies past `N` is ignored.
    pub fn fill(&mut self, start: usize, end: usize, on: bool) {
        let end = end.min(N);
        let mut i = start;
        // A word at a time: a tick marks 160 samples or more.
        while i < end {
            let (w, b) = (i / 64, i % 64);
            let n = (64 - b).min(end - i);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1 << n) - 1) << b
            };
            if let Some(word) = self.words.get_mut(w) {
                if on {
                    *word |= mask;
                } else {
                    *word &= !mask;
                }
            }
            i += n;
        }
    }

    /// Whether any of the first `n` samples is marked.
    pub fn any_below(&self, n: usize) -> bool {
        let n = n.min(N);
        let full = n / 64;
        let rest = n % 64;
        let whole = self.words.iter().take(full).any(|&w| w != 0);
        let part = rest > 0
            && self
                .words
                .get(full)
                .is_some_and(|&w| w & ((1 << rest) - 1) != 0);
        whole || part
    }

    /// Drops the first `n` samples: sample `i + n` becomes sample `i`.
    pub fn shift_down(&mut self, n: usize) {
        let (skip, bits) = (n / 64, n % 64);
        for i in 0..WORDS {
            let lo = self.words.get(i + skip).copied().unwrap_or(0);
            let hi = self.words.get(i + skip + 1).copied().unwrap_or(0);
            let w = if bits == 0 {
                lo
            } else {
                (lo >> bits) | (hi << (64 - bits))
            };
            if let Some(word) = self.words.get_mut(i) {
                *word = w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bits against a bool per sample, through random fills and shifts.
    #[test]
    fn behaves_like_a_bool_per_sample() {
        const N: usize = 1120;
        let mut marks = SampleMarks::<N>::new();
        let mut bools = vec![false; N];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for _ in 0..5_000 {
            match next(3) {
                0 => {
                    let a = next(N + 10);
                    let b = a + next(300);
                    let on = next(2) == 1;
                    marks.fill(a, b, on);
                    for x in bools.iter_mut().take(b.min(N)).skip(a) {
                        *x = on;
                    }
                }
                1 => {
                    let n = [160, 64, 1, 0, 200][next(5)];
                    marks.shift_down(n);
                    bools.drain(..n.min(N));
                    bools.resize(N, false);
                }
                _ => {}
            }
            for n in [0, 1, 63, 64, 65, 160, 1119, 1120, 2000] {
                assert_eq!(
                    marks.any_below(n),
                    bools.iter().take(n).any(|&b| b),
                    "n {n}"
                );
            }
        }
    }
}
