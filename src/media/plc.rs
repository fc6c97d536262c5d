//! Packet-loss concealment for 8 kHz PCM in the manner of ITU-T G.711
//! Appendix I: pitch-period repetition from a short history, with overlap-add
//! at every seam and a fade to silence over the first 60 ms of a loss.
//!
//! How it works, per the Appendix:
//! - the output runs 3.75 ms (30 samples) behind the input, so the start of a
//!   loss can be blended into the last good samples before they are played;
//! - at the first lost sample the pitch period (5–15 ms) is found by
//!   normalised cross-correlation of the last 20 ms against the history, and
//!   the last period is looped, its seam smoothed by a quarter-period
//!   overlap-add;
//! - after 10 and 20 ms one more period of history joins the loop (up to
//!   three), which avoids the buzz of a single repeated period;
//! - from 10 ms on the output is attenuated by 20 % per 10 ms: silent at 60 ms;
//! - the first good frame after a loss is cross-faded from the synthetic
//!   signal over a quarter period plus 4 ms per extra 10 ms lost.
//!
//! All state lives in fixed arrays: nothing allocates after `new`.

/// Shortest pitch period searched (200 Hz).
const PITCH_MIN: usize = 40;
/// Longest pitch period searched (66.7 Hz).
const PITCH_MAX: usize = 120;
/// Output delay, and the longest seam overlap (a quarter of `PITCH_MAX`).
const DELAY: usize = PITCH_MAX / 4;
/// History: three longest periods plus the overlap before them.
const HISTORY: usize = 3 * PITCH_MAX + DELAY;
/// Window correlated against the history in the pitch search (20 ms).
const CORR_LEN: usize = 160;
/// Span of history the pitch search reads.
const CORR_SPAN: usize = CORR_LEN + PITCH_MAX;
/// Energy floor of the correlation normaliser, per summed sample, so that
/// near-silence does not produce a confident pitch from noise.
const CORR_MIN_POWER_PER_SAMPLE: f32 = 3.125;
/// 10 ms: the unit of the attenuation schedule and of added periods.
const BLOCK: usize = 80;
/// Attenuation per sample once it starts (20 % per 10 ms).
const ATTEN_PER_SAMPLE: f32 = 0.2 / BLOCK as f32;
/// A loss longer than this is silence.
const SILENT_AFTER: usize = 6 * BLOCK;
/// Extra cross-fade into the first good frame per extra 10 ms lost.
const END_OVERLAP_STEP: usize = 32;

/// G.711 Appendix I-style concealment state for one 8 kHz stream.
#[derive(Debug, Clone)]
pub struct Plc {
    /// The most recent samples, newest last; the last `DELAY` of them have
    /// not been output yet.
    history: [i16; HISTORY],
    /// The history as floats at the start of a loss; its tail is the loop.
    pitch_buf: [f32; HISTORY],
    /// The original last quarter-period, kept to redo the loop seam.
    last_quarter: [f32; DELAY],
    /// Samples concealed in the current loss (0: no loss in progress).
    erased: usize,
    pitch: usize,
    overlap: usize,
    /// Length of the looped part (one to three periods) and read position.
    loop_len: usize,
    loop_pos: usize,
}

impl Default for Plc {
    fn default() -> Self {
        Self::new()
    }
}

impl Plc {
    /// A concealer with a silent history.
    pub fn new() -> Self {
        Self {
            history: [0; HISTORY],
            pitch_buf: [0.0; HISTORY],
            last_quarter: [0.0; DELAY],
            erased: 0,
            pitch: PITCH_MAX,
            overlap: DELAY,
            loop_len: PITCH_MAX,
            loop_pos: 0,
        }
    }

    /// The fixed delay between input and output, in samples (3.75 ms).
    pub const fn delay_samples() -> usize {
        DELAY
    }

    /// Feeds a decoded good frame; on return `pcm` holds the output, which
    /// is the input delayed by [`Plc::delay_samples`] and, right after a
    /// loss, cross-faded from the concealment.
    pub fn good_frame(&mut self, pcm: &mut [i16]) {
        if self.erased > 0 {
            self.blend_into_good(pcm);
            self.erased = 0;
        }
        for chunk in pcm.chunks_mut(BLOCK) {
            self.save(chunk);
        }
    }

    /// Fills `out` with concealment for lost samples (any length; 10 ms
    /// multiples follow the Appendix exactly).
    pub fn conceal(&mut self, out: &mut [i16]) {
        let mut done = 0;
        while done < out.len() {
            let into_block = self.erased % BLOCK;
            let len = (BLOCK - into_block).min(out.len() - done);
            let Some(seg) = out.get_mut(done..done + len) else {
                return;
            };
            self.conceal_segment(seg);
            self.save(seg);
            done += len;
        }
    }

    fn conceal_segment(&mut self, seg: &mut [i16]) {
        if self.erased >= SILENT_AFTER {
            seg.fill(0);
            self.erased += seg.len();
            return;
        }
        let mut synth = [0f32; BLOCK];
        let n = seg.len().min(BLOCK);
        if self.erased == 0 {
            self.start_loss();
            self.read_loop(&mut synth[..n]);
        } else if self.erased % BLOCK == 0 && self.erased <= 2 * BLOCK {
            // Keep where the loop was, to cross-fade the old loop into the
            // longer one.
            let mut old = [0f32; DELAY];
            let ov = self.overlap.min(n);
            let saved = self.loop_pos;
            self.read_loop(&mut old[..ov]);
            self.loop_pos = saved;
            self.add_period();
            self.read_loop(&mut synth[..n]);
            cross_fade(&old[..ov], &mut synth[..ov]);
        } else {
            self.read_loop(&mut synth[..n]);
        }
        for (i, (dst, s)) in seg.iter_mut().zip(&synth[..n]).enumerate() {
            *dst = to_i16(s * gain(self.erased + i));
        }
        self.erased += n;
    }

    /// First lost sample: find the pitch, make the last period a seamless
    /// loop, and blend that seam into the samples not yet played.
    fn start_loss(&mut self) {
        for (f, s) in self.pitch_buf.iter_mut().zip(&self.history) {
            *f = f32::from(*s);
        }
        self.pitch = self.find_pitch();
        self.overlap = self.pitch / 4;
        let tail = HISTORY - self.overlap;
        self.last_quarter[..self.overlap].copy_from_slice(&self.pitch_buf[tail..]);
        self.loop_len = self.pitch;
        self.loop_pos = 0;
        self.blend_loop_seam();
        for (h, f) in self.history[HISTORY - DELAY..]
            .iter_mut()
            .zip(&self.pitch_buf[HISTORY - DELAY..])
        {
            *h = to_i16(*f);
        }
    }

    /// Lengthens the loop by one period (at 10 and 20 ms of loss).
    fn add_period(&mut self) {
        while self.loop_pos > self.pitch {
            self.loop_pos -= self.pitch;
        }
        self.loop_len = (self.loop_len + self.pitch).min(3 * self.pitch);
        self.blend_loop_seam();
    }

    /// Fades the end of the history from its original last quarter-period
    /// into the quarter-period just before the loop start, so that wrapping
    /// from the end to the start is continuous.
    fn blend_loop_seam(&mut self) {
        let ov = self.overlap;
        let start = HISTORY - self.loop_len;
        let step = 1.0 / ov.max(1) as f32;
        for i in 0..ov {
            let rw = step * (i + 1) as f32;
            let before_start = self.pitch_buf[start - ov + i];
            self.pitch_buf[HISTORY - ov + i] =
                (1.0 - rw) * self.last_quarter[i] + rw * before_start;
        }
    }

    fn read_loop(&mut self, out: &mut [f32]) {
        let start = HISTORY - self.loop_len;
        for o in out.iter_mut() {
            *o = self.pitch_buf[start + self.loop_pos];
            self.loop_pos += 1;
            if self.loop_pos >= self.loop_len {
                self.loop_pos = 0;
            }
        }
    }

    /// Cross-fades the concealment into the first good frame after a loss.
    fn blend_into_good(&mut self, pcm: &mut [i16]) {
        let blocks_lost = self.erased.div_ceil(BLOCK);
        let len = (self.overlap + blocks_lost.saturating_sub(1) * END_OVERLAP_STEP)
            .min(BLOCK)
            .min(pcm.len());
        let mut synth = [0f32; BLOCK];
        self.read_loop(&mut synth[..len]);
        for (i, s) in synth[..len].iter_mut().enumerate() {
            *s *= gain(self.erased + i);
        }
        let step = 1.0 / len.max(1) as f32;
        for (i, (p, s)) in pcm.iter_mut().zip(&synth[..len]).enumerate() {
            let rw = step * (i + 1) as f32;
            *p = to_i16((1.0 - rw) * s + rw * f32::from(*p));
        }
    }

    /// Appends up to `BLOCK` samples to the history and replaces them with
    /// the samples `DELAY` older.
    fn save(&mut self, chunk: &mut [i16]) {
        let n = chunk.len().min(BLOCK);
        self.history.copy_within(n.., 0);
        self.history[HISTORY - n..].copy_from_slice(&chunk[..n]);
        chunk[..n].copy_from_slice(&self.history[HISTORY - n - DELAY..HISTORY - DELAY]);
    }

    /// Pitch period in samples: the lag in `PITCH_MIN..=PITCH_MAX` whose
    /// history best matches the last 20 ms by normalised cross-correlation;
    /// a coarse search on every other sample, then a fine one around it.
    fn find_pitch(&self) -> usize {
        let buf = &self.pitch_buf;
        let recent = &buf[HISTORY - CORR_LEN..];
        let first = HISTORY - CORR_SPAN;
        let score = |offset: usize, step: usize| -> f32 {
            let past = &buf[first + offset..first + offset + CORR_LEN];
            let (mut corr, mut energy) = (0f32, 0f32);
            for i in (0..CORR_LEN).step_by(step) {
                corr += past[i] * recent[i];
                energy += past[i] * past[i];
            }
            let floor = CORR_MIN_POWER_PER_SAMPLE * (CORR_LEN / step) as f32;
            corr / energy.max(floor).sqrt()
        };
        let max_offset = PITCH_MAX - PITCH_MIN;
        // Ties go to the shorter period (larger offset), so a multiple of
        // the period never wins over the period itself.
        let mut best = (0usize, f32::MIN);
        for offset in (0..=max_offset).step_by(2) {
            let s = score(offset, 2);
            if s >= best.1 {
                best = (offset, s);
            }
        }
        let coarse = best.0;
        let mut fine = (coarse, f32::MIN);
        for offset in coarse.saturating_sub(1)..=(coarse + 1).min(max_offset) {
            let s = score(offset, 1);
            if s >= fine.1 {
                fine = (offset, s);
            }
        }
        PITCH_MAX - fine.0
    }
}

/// Attenuation at `pos` samples into a loss: 1 for 10 ms, then −20 % per
/// 10 ms, 0 from 60 ms.
fn gain(pos: usize) -> f32 {
    if pos < BLOCK {
        return 1.0;
    }
    (1.0 - (pos - BLOCK) as f32 * ATTEN_PER_SAMPLE).max(0.0)
}

/// `to[i] = (1 - w) * from[i] + w * to[i]` with `w` rising linearly to 1.
fn cross_fade(from: &[f32], to: &mut [f32]) {
    let step = 1.0 / from.len().max(1) as f32;
    for (i, (t, f)) in to.iter_mut().zip(from).enumerate() {
        let rw = step * (i + 1) as f32;
        *t = (1.0 - rw) * f + rw * *t;
    }
}

fn to_i16(v: f32) -> i16 {
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vowel-like harmonic series: `f0` and 7 overtones at 1/k amplitude.
    fn vowel(f0: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 8000.0;
                let v: f64 = (1..=8)
                    .map(|k| {
                        let k = f64::from(k);
                        (2.0 * std::f64::consts::PI * f0 * k * t + 0.3 * k).sin() / k
                    })
                    .sum();
                (v * 6000.0) as i16
            })
            .collect()
    }

    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (f64::from(*x), f64::from(*y));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        ab / (aa * bb).sqrt().max(1e-9)
    }

    /// Runs `signal` through the PLC in 20 ms frames, losing frame `lost`
    /// (and `extra` more); returns the output stream.
    fn run(signal: &[i16], lost: std::ops::Range<usize>) -> Vec<i16> {
        let mut plc = Plc::new();
        let mut out = Vec::with_capacity(signal.len());
        for (k, frame) in signal.chunks(160).enumerate() {
            let mut buf = frame.to_vec();
            if lost.contains(&k) {
                plc.conceal(&mut buf);
            } else {
                plc.good_frame(&mut buf);
            }
            out.extend_from_slice(&buf);
        }
        out
    }

    #[test]
    fn finds_the_pitch_of_harmonic_signals() {
        for period in [40usize, 50, 64, 80, 100, 120] {
            let f0 = 8000.0 / period as f64;
            let mut plc = Plc::new();
            let mut x = vowel(f0, 800);
            plc.good_frame(&mut x);
            for (f, s) in plc.pitch_buf.iter_mut().zip(&plc.history) {
                *f = f32::from(*s);
            }
            assert_eq!(plc.find_pitch(), period, "f0 {f0}");
        }
    }

    #[test]
    fn output_is_the_input_delayed_by_3_75_ms() {
        let x = vowel(125.0, 1600);
        let y = run(&x, 0..0);
        assert_eq!(&y[DELAY..], &x[..x.len() - DELAY]);
        assert!(y[..DELAY].iter().all(|s| *s == 0));
    }

    #[test]
    fn concealed_20ms_correlates_with_the_lost_original() {
        for f0 in [125.0, 130.0, 180.0] {
            let x = vowel(f0, 160 * 30);
            let y = run(&x, 20..21);
            // Output sample n stands for input n - DELAY; the samples that
            // replace the lost frame are output 160*20+DELAY .. 160*21+DELAY.
            let (a, b) = (160 * 20 + DELAY, 160 * 21 + DELAY);
            let r = correlation(&y[a..b], &x[a - DELAY..b - DELAY]);
            println!("f0 {f0} Hz: correlation of 20 ms concealment = {r:.3}");
            assert!(r > 0.9, "f0 {f0}: correlation {r}");
        }
    }

    #[test]
    fn energy_fades_to_silence_by_60ms() {
        let x = vowel(140.0, 160 * 30);
        let y = run(&x, 10..30);
        let start = 160 * 10 + DELAY; // first synthetic output sample
        let energy = |from: usize| -> f64 {
            y[start + from..start + from + BLOCK]
                .iter()
                .map(|s| f64::from(*s).powi(2))
                .sum::<f64>()
        };
        let blocks: Vec<f64> = (0..6).map(|b| energy(b * BLOCK)).collect();
        println!("energy per 10 ms of loss: {blocks:?}");
        // Gains 1, 1→.8, .8→.6, … so each block from the second is quieter.
        for w in blocks[1..].windows(2) {
            assert!(w[1] < w[0], "{blocks:?}");
        }
        assert!(blocks[5] < blocks[0] * 0.05, "{blocks:?}");
        assert!(y[start + SILENT_AFTER..].iter().all(|s| *s == 0));
    }

    #[test]
    fn no_discontinuity_into_and_out_of_a_loss() {
        // A pure 150 Hz tone has a small natural step and a period of 53.3
        // samples, so a seam that is not blended shows up as a jump.
        let tone: Vec<i16> = (0..160 * 40)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 150.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let signals = [vowel(130.0, 160 * 40), tone];
        for (x, lost) in signals
            .iter()
            .flat_map(|x| [(x, 20..21), (x, 20..22), (x, 20..25)])
        {
            let y = run(x, lost.clone());
            let max_step = |s: &[i16]| -> i32 {
                s.windows(2)
                    .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
                    .max()
                    .unwrap_or(0)
            };
            let natural = max_step(x);
            let around = max_step(&y[160 * 19..160 * (lost.end + 2)]);
            println!("loss {lost:?}: max step {around} vs signal's own {natural}");
            assert!(around <= natural * 3 / 2, "step {around} vs {natural}");
        }
    }

    #[test]
    fn silence_history_conceals_as_silence() {
        let mut plc = Plc::new();
        let mut buf = [0i16; 160];
        plc.good_frame(&mut buf);
        plc.conceal(&mut buf);
        assert!(buf.iter().all(|s| *s == 0));
    }

    #[test]
    fn odd_frame_sizes_and_extreme_samples_do_not_panic() {
        let mut plc = Plc::new();
        let mut state = 0x1234_5678u32;
        for round in 0..400 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let len = (state >> 20) as usize % 700;
            let mut buf: Vec<i16> = (0..len)
                .map(|i| {
                    if (i + round) % 2 == 0 {
                        i16::MAX
                    } else {
                        i16::MIN
                    }
                })
                .collect();
            if state % 3 == 0 {
                plc.conceal(&mut buf);
            } else {
                plc.good_frame(&mut buf);
            }
        }
    }
}
