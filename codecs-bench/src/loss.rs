//! A G.711 round trip with seeded frame loss, for the PESQ table while
//! `rivr media impair` is not there yet: 20 ms frames are encoded, some are
//! dropped (independently, or in Gilbert bursts of a given mean length),
//! and each gap is filled with silence or concealed by rivr's PLC or by
//! spandsp's (the reference).
//!
//! It models loss only: no jitter, reordering or drift (that is the jitter
//! buffer's work, measured through `rivr media impair`).

use rivr::media::g711;
use rivr::media::g711::Law;
use rivr::media::plc::Plc;

use crate::signals::music::Rng;
use crate::spandsp;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// How a lost frame is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conceal {
    /// Silence (zero-fill), the baseline concealment must beat.
    Zero,
    /// `rivr::media::plc::Plc` (G.711 Appendix I style).
    Rivr,
    /// spandsp's `plc_fillin` (pitch repetition, G.711 Appendix I style).
    Spandsp,
}

/// The concealer behind a [`Conceal`] choice.
enum Concealer {
    Zero,
    Rivr(Box<Plc>),
    Spandsp(spandsp::Plc),
}

impl Concealer {
    fn new(how: Conceal) -> Self {
        match how {
            Conceal::Zero => Concealer::Zero,
            Conceal::Rivr => Concealer::Rivr(Box::default()),
            Conceal::Spandsp => spandsp::Plc::new().map_or(Concealer::Zero, Concealer::Spandsp),
        }
    }

    fn received(&mut self, pcm: &mut [i16]) {
        match self {
            Concealer::Zero => {}
            Concealer::Rivr(plc) => plc.good_frame(pcm),
            Concealer::Spandsp(plc) => plc.received(pcm),
        }
    }

    fn lost(&mut self, pcm: &mut [i16]) {
        match self {
            Concealer::Zero => pcm.fill(0),
            Concealer::Rivr(plc) => plc.conceal(pcm),
            Concealer::Spandsp(plc) => plc.conceal(pcm),
        }
    }

    /// Samples the output runs behind the input.
    fn delay(&self) -> usize {
        match self {
            Concealer::Rivr(_) => Plc::delay_samples(),
            _ => 0,
        }
    }
}

/// Seeded frame-loss pattern.
#[derive(Debug, Clone)]
pub struct LossPattern {
    rng: Rng,
    /// Probability a frame is lost after a received one.
    enter: f64,
    /// Probability a frame is received after a lost one.
    leave: f64,
    lost: bool,
}

impl LossPattern {
    /// `loss_pct` percent of frames lost on average, in bursts of mean
    /// length `burst` frames (≤ 1: independent losses), from `seed`.
    pub fn new(loss_pct: f64, burst: f64, seed: u64) -> Self {
        let p = (loss_pct / 100.0).clamp(0.0, 0.99);
        let (enter, leave) = if burst <= 1.0 {
            (p, 1.0 - p)
        } else {
            // Two-state Gilbert chain: stationary loss p = enter/(enter+leave).
            let leave = 1.0 / burst;
            ((p * leave / (1.0 - p)).min(1.0), leave)
        };
        Self {
            rng: Rng(seed ^ 0x5EED_F00D),
            enter,
            leave,
            lost: false,
        }
    }

    /// Whether the next frame is lost.
    pub fn next_lost(&mut self) -> bool {
        let u = self.rng.next_f64();
        self.lost = if self.lost {
            u >= self.leave
        } else {
            u < self.enter
        };
        self.lost
    }
}

/// Encodes `pcm` with `codec` in 20 ms frames, loses frames by `pattern`,
/// decodes and conceals. Returns the audio (re-aligned with the input if
/// the concealer delays it) and the number of frames lost.
pub fn round_trip(
    codec: Law,
    pcm: &[i16],
    pattern: &mut LossPattern,
    conceal: Conceal,
) -> (Vec<i16>, usize) {
    let mut concealer = Concealer::new(conceal);
    let delay = concealer.delay();
    // The delayed concealer needs `delay` more samples to flush the input.
    let mut padded = pcm.to_vec();
    padded.resize(pcm.len() + delay, 0);
    let mut out = vec![0i16; padded.len()];
    let mut payload = [0u8; FRAME];
    let mut lost = 0;
    for (input, output) in padded.chunks(FRAME).zip(out.chunks_mut(FRAME)) {
        let n = input.len();
        if pattern.next_lost() {
            lost += 1;
            concealer.lost(output);
        } else {
            g711::encode(codec, input, &mut payload[..n]);
            g711::decode(codec, &payload[..n], output);
            concealer.received(output);
        }
    }
    out.drain(..delay);
    (out, lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voiced(len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let t = n as f64 / 8000.0;
                let f = std::f64::consts::TAU * 150.0 * t;
                (4000.0 * (f.sin() + 0.5 * (2.0 * f).sin() + 0.3 * (3.0 * f).sin())) as i16
            })
            .collect()
    }

    #[test]
    fn loss_rate_and_burst_length_match_the_request() {
        for (pct, burst) in [(5.0, 1.0), (5.0, 3.0), (20.0, 2.0)] {
            let mut p = LossPattern::new(pct, burst, 11);
            let frames = 200_000;
            let (mut lost, mut bursts, mut prev) = (0, 0, false);
            for _ in 0..frames {
                let l = p.next_lost();
                lost += usize::from(l);
                bursts += usize::from(l && !prev);
                prev = l;
            }
            let rate = 100.0 * lost as f64 / frames as f64;
            let mean_burst = lost as f64 / bursts as f64;
            assert!((rate - pct).abs() < 0.1 * pct, "{pct} % -> {rate:.2} %");
            let want = if burst <= 1.0 {
                1.0 / (1.0 - pct / 100.0)
            } else {
                burst
            };
            assert!(
                (mean_burst - want).abs() < 0.1 * want,
                "burst {burst} -> {mean_burst:.2}"
            );
        }
    }

    #[test]
    fn no_loss_is_a_plain_g711_round_trip_for_every_concealer() {
        let pcm = voiced(8000);
        for how in [Conceal::Zero, Conceal::Rivr, Conceal::Spandsp] {
            let (out, lost) = round_trip(Law::Ulaw, &pcm, &mut LossPattern::new(0.0, 1.0, 1), how);
            assert_eq!((lost, out.len()), (0, pcm.len()));
            for (&a, &b) in pcm.iter().zip(&out) {
                assert_eq!(b, g711::ulaw_to_linear(g711::linear_to_ulaw(a)), "{how:?}");
            }
        }
    }

    #[test]
    fn concealment_is_closer_to_the_original_than_silence() {
        let pcm = voiced(16_000);
        let err = |conceal| {
            let (out, lost) = round_trip(
                Law::Alaw,
                &pcm,
                &mut LossPattern::new(10.0, 1.0, 5),
                conceal,
            );
            assert!(lost > 0);
            pcm.iter()
                .zip(&out)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
        };
        let zero = err(Conceal::Zero);
        for how in [Conceal::Rivr, Conceal::Spandsp] {
            let plc = err(how);
            assert!(plc < 0.5 * zero, "{how:?} {plc:.3e} vs zero {zero:.3e}");
        }
    }
}
