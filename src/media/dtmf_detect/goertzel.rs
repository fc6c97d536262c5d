//! Goertzel filters: the DFT at one arbitrary frequency over a block of
//! samples, kept as the complex value so phase can be compared across blocks.

/// A complex spectral value, scaled so that `power()` is the mean-square
/// power of a sine at the filter frequency (the same units as the block's
/// mean-square energy).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Bin {
    pub re: f32,
    pub im: f32,
}

impl Bin {
    /// Mean-square power of the sine this bin sees.
    pub fn power(self) -> f32 {
        self.re * self.re + self.im * self.im
    }

    /// Phase of `self` relative to `earlier`, radians in (−π, π].
    pub fn phase_since(self, earlier: Bin) -> f32 {
        // self × conj(earlier)
        let re = self.re * earlier.re + self.im * earlier.im;
        let im = self.im * earlier.re - self.re * earlier.im;
        im.atan2(re)
    }
}

/// `N` Goertzel resonators over the same samples, their state kept in
/// arrays so that one sample updates them all in a loop the compiler
/// vectorizes (the detector's 24 filters cost about a fifth of what 24
/// separate resonators did: docs/performance.md).
#[derive(Debug, Clone)]
pub(crate) struct GoertzelBank<const N: usize> {
    coeff: [f32; N],
    cos: [f32; N],
    sin: [f32; N],
    /// `sqrt(2) / block_len`: makes `|bin|²` a mean-square power.
    scale: f32,
    s1: [f32; N],
    s2: [f32; N],
}

impl<const N: usize> GoertzelBank<N> {
    pub fn new(freqs_hz: [f64; N], sample_rate_hz: f64, block_len: usize) -> Self {
        let w = freqs_hz.map(|f| 2.0 * std::f64::consts::PI * f / sample_rate_hz);
        Self {
            coeff: w.map(|w| (2.0 * w.cos()) as f32),
            cos: w.map(|w| w.cos() as f32),
            sin: w.map(|w| w.sin() as f32),
            scale: (std::f64::consts::SQRT_2 / block_len as f64) as f32,
            s1: [0.0; N],
            s2: [0.0; N],
        }
    }

    /// Runs every resonator over `x`.
    #[inline]
    pub fn push(&mut self, x: f32) {
        for ((s1, s2), c) in self.s1.iter_mut().zip(self.s2.iter_mut()).zip(&self.coeff) {
            let s0 = x + c * *s1 - *s2;
            *s2 = *s1;
            *s1 = s0;
        }
    }

    /// Each resonator's value for the block, then resets for the next one.
    ///
    /// This is `e^{jωN}·X(ω)` for the block's DFT `X`; the constant rotation
    /// is the same every block, so phase differences between blocks are the
    /// true ones.
    pub fn finish(&mut self) -> [Bin; N] {
        let mut bins = [Bin::default(); N];
        for (i, bin) in bins.iter_mut().enumerate() {
            let (Some(&s1), Some(&s2), Some(&cos), Some(&sin)) = (
                self.s1.get(i),
                self.s2.get(i),
                self.cos.get(i),
                self.sin.get(i),
            ) else {
                continue;
            };
            *bin = Bin {
                re: (cos * s1 - s2) * self.scale,
                im: (sin * s1) * self.scale,
            };
        }
        self.s1 = [0.0; N];
        self.s2 = [0.0; N];
        bins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(freq: f64, signal_freq: f64, amplitude: f64, offset: usize) -> Bin {
        let mut g = GoertzelBank::new([freq], 8000.0, 102);
        let w = 2.0 * std::f64::consts::PI * signal_freq / 8000.0;
        for n in offset..offset + 102 {
            g.push((amplitude * (w * n as f64).sin()) as f32);
        }
        g.finish()[0]
    }

    #[test]
    fn on_frequency_power_is_mean_square() {
        for f in [697.0, 941.0, 1209.0, 1633.0] {
            let p = run(f, f, 0.5, 0).power();
            // A sine of peak 0.5 has mean square 0.125; the residue is the
            // negative-frequency image leaking through a 102-sample block.
            assert!((p - 0.125).abs() < 0.125 * 0.05, "{f} Hz: {p}");
        }
    }

    #[test]
    fn phase_advances_by_block_length() {
        let f = 770.0 + 10.0;
        let a = run(770.0, f, 0.5, 0);
        let b = run(770.0, f, 0.5, 102);
        let expected = 2.0 * std::f64::consts::PI * f * 102.0 / 8000.0;
        let wrapped = (expected + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
            - std::f64::consts::PI;
        assert!((f64::from(b.phase_since(a)) - wrapped).abs() < 0.05);
    }

    #[test]
    fn reset_between_blocks() {
        let mut g = GoertzelBank::new([1000.0, 697.0], 8000.0, 102);
        for _ in 0..102 {
            g.push(1.0);
        }
        let _ = g.finish();
        assert_eq!(g.finish().map(Bin::power), [0.0, 0.0]);
    }

    #[test]
    fn a_bank_gives_each_filter_what_it_alone_would() {
        let freqs = [697.0, 941.0, 1209.0, 1633.0, 1000.0];
        let mut bank = GoertzelBank::new(freqs, 8000.0, 102);
        let w = 2.0 * std::f64::consts::PI * 1209.0 / 8000.0;
        for n in 0..102 {
            bank.push((0.3 * (w * n as f64).sin()) as f32);
        }
        let bins = bank.finish();
        for (i, f) in freqs.iter().enumerate() {
            let alone = run(*f, 1209.0, 0.3, 0);
            assert!((bins[i].re - alone.re).abs() < 1e-6, "{f}");
            assert!((bins[i].im - alone.im).abs() < 1e-6, "{f}");
        }
    }
}
