//! Goertzel filters: the DFT at one arbitrary frequency over a block of
//! samples, kept as the complex value so phase can be compared across blocks.

/// A complex spectral value, scaled so that `power()` is the mean-square
/// power of a sine at the filter frequency (the same units as the block's
/// mean-square energy).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Bin {
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

/// One Goertzel resonator.
#[derive(Debug, Clone, Copy)]
pub(super) struct Goertzel {
    coeff: f32,
    cos: f32,
    sin: f32,
    /// `sqrt(2) / block_len`: makes `|bin|²` a mean-square power.
    scale: f32,
    s1: f32,
    s2: f32,
}

impl Goertzel {
    pub fn new(freq_hz: f64, sample_rate_hz: f64, block_len: usize) -> Self {
        let w = 2.0 * std::f64::consts::PI * freq_hz / sample_rate_hz;
        Self {
            coeff: (2.0 * w.cos()) as f32,
            cos: w.cos() as f32,
            sin: w.sin() as f32,
            scale: (std::f64::consts::SQRT_2 / block_len as f64) as f32,
            s1: 0.0,
            s2: 0.0,
        }
    }

    #[inline]
    pub fn push(&mut self, x: f32) {
        let s0 = x + self.coeff * self.s1 - self.s2;
        self.s2 = self.s1;
        self.s1 = s0;
    }

    /// The block's value, then resets for the next block.
    ///
    /// This is `e^{jωN}·X(ω)` for the block's DFT `X`; the constant rotation
    /// is the same every block, so phase differences between blocks are the
    /// true ones.
    pub fn finish(&mut self) -> Bin {
        let bin = Bin {
            re: (self.cos * self.s1 - self.s2) * self.scale,
            im: (self.sin * self.s1) * self.scale,
        };
        self.s1 = 0.0;
        self.s2 = 0.0;
        bin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(freq: f64, signal_freq: f64, amplitude: f64, offset: usize) -> Bin {
        let mut g = Goertzel::new(freq, 8000.0, 102);
        let w = 2.0 * std::f64::consts::PI * signal_freq / 8000.0;
        for n in offset..offset + 102 {
            g.push((amplitude * (w * n as f64).sin()) as f32);
        }
        g.finish()
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
        let mut g = Goertzel::new(1000.0, 8000.0, 102);
        for _ in 0..102 {
            g.push(1.0);
        }
        let _ = g.finish();
        assert_eq!(g.finish().power(), 0.0);
    }
}
