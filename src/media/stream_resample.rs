//! Streaming sample-rate conversion on the media path: one call's audio,
//! frame by frame, between the telephony rates (8, 16 and 48 kHz).
//!
//! Unlike [`crate::media::resample`] (whole prompts, once, at load time) this
//! runs every 20 ms per call, so every buffer is allocated in [`StreamResampler::new`]
//! and [`StreamResampler::process`] never allocates.
//!
//! It wraps rubato's windowed-sinc `SincFixedIn` with a chunk of one 20 ms
//! frame at the input rate. Because every supported ratio is a multiple of
//! 1/6, all interpolation points fall on a grid of sixths of an input sample;
//! an oversampling factor that is a multiple of 6 with nearest-point lookup
//! therefore hits the sinc table exactly, which is both the cheapest and the
//! most accurate interpolation rubato offers for these ratios.
//!
//! Input may arrive in any length (a 10 ms or a 60 ms Opus packet, say): what
//! does not fill a whole chunk waits in a preallocated FIFO for the next call.
//!
//! [`StreamResampler::delay_samples`] is measured at construction (an
//! impulse through the filter), and for downsampling a few samples of input
//! silence are primed so that the delay is a whole number of output samples
//! (found by calibrating against an ideal tone): a transcoded stream then
//! lines up sample for sample with its source once the delay is removed.

use rubato::{
    calculate_cutoff, Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// Sinc length in input samples when upsampling: 8 ms at 8 kHz, for a 4 ms
/// delay; a longer filter measured no better (the 8 kHz input is already
/// band-limited).
const SINC_LEN_UP: usize = 64;
/// Sinc length when downsampling (rubato scales it by the ratio): at 64 a
/// 6 kHz tone at 48 kHz leaked into 8 kHz only 45 dB down and a 1 kHz tone
/// came through at 32 dB SNR; at 128, 71 dB and 57 dB.
const SINC_LEN_DOWN: usize = 128;
/// Sinc table points per input sample; a multiple of 6 (see module docs).
const OVERSAMPLING: usize = 96;
/// The frame length the resampler is built around.
const FRAME_MS: usize = 20;
/// Extra output silence at the start (see `new`).
const LEAD_MARGIN: usize = 2;
/// Largest input accepted in one call: a 120 ms Opus packet at 48 kHz.
pub const MAX_INPUT_SAMPLES: usize = 5760;

/// Why a resampler could not be built or could not process.
#[derive(Debug, thiserror::Error)]
pub enum StreamResampleError {
    /// Only 8, 16 and 48 kHz (in any combination) are supported.
    #[error("unsupported streaming rate conversion {from_hz} Hz -> {to_hz} Hz")]
    BadRate {
        /// Source rate.
        from_hz: u32,
        /// Target rate.
        to_hz: u32,
    },
    /// More input in one call than [`MAX_INPUT_SAMPLES`].
    #[error("input of {0} samples exceeds the per-call limit")]
    InputTooLong(usize),
    /// The output slice cannot hold what this call produces.
    #[error("output buffer of {have} samples, {need} needed")]
    OutputTooSmall {
        /// Samples the call would write.
        need: usize,
        /// Length of the caller's buffer.
        have: usize,
    },
    /// rubato refused the parameters.
    #[error("resampler setup failed: {0}")]
    Setup(#[from] rubato::ResamplerConstructionError),
    /// rubato failed while processing.
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
}

/// A fixed-ratio mono resampler for a stream of 16-bit frames.
pub struct StreamResampler {
    from_hz: u32,
    to_hz: u32,
    inner: SincFixedIn<f32>,
    /// Input samples per rubato chunk (one 20 ms frame at `from_hz`).
    chunk_in: usize,
    /// Output samples per chunk (one 20 ms frame at `to_hz`).
    chunk_out: usize,
    /// Input waiting for a full chunk; only the first `pending` are valid.
    fifo: Vec<f32>,
    pending: usize,
    /// rubato's output for one chunk, before conversion to i16.
    scratch_out: Vec<f32>,
    /// Silence still to emit before rubato's first (short) chunk, so output
    /// always comes in whole frames.
    lead: usize,
    /// `lead` as built.
    lead_total: usize,
    /// Filter delay in output samples, measured at construction.
    delay: usize,
    /// Input silence primed into the FIFO on reset (see `new`).
    input_lead: usize,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from_hz", &self.from_hz)
            .field("to_hz", &self.to_hz)
            .field("pending", &self.pending)
            .finish()
    }
}

fn supported(hz: u32) -> bool {
    matches!(hz, 8000 | 16000 | 48000)
}

impl StreamResampler {
    /// Builds a resampler from `from_hz` to `to_hz` (each 8000, 16000 or 48000).
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, StreamResampleError> {
        if !supported(from_hz) || !supported(to_hz) {
            return Err(StreamResampleError::BadRate { from_hz, to_hz });
        }
        let chunk_in = from_hz as usize * FRAME_MS / 1000;
        let chunk_out = to_hz as usize * FRAME_MS / 1000;
        let window = WindowFunction::BlackmanHarris2;
        let sinc_len = if to_hz > from_hz {
            SINC_LEN_UP
        } else {
            SINC_LEN_DOWN
        };
        let params = SincInterpolationParameters {
            sinc_len,
            f_cutoff: calculate_cutoff(sinc_len, window),
            oversampling_factor: OVERSAMPLING,
            interpolation: SincInterpolationType::Nearest,
            window,
        };
        let ratio = f64::from(to_hz) / f64::from(from_hz);
        let mut inner = SincFixedIn::new(ratio, 1.0, params, chunk_in, 1)?;
        let mut scratch_out = vec![0.0; inner.output_frames_max()];
        // rubato's first chunk comes out short (its filter starts half a
        // length into the input); leading silence squares it up so the
        // output keeps pace with the input from the first frame. Later
        // chunks may still give one sample more or less (rubato tracks the
        // position in floating point, so counts dither but never drift); a
        // margin of two samples means a frame-by-frame consumer never finds
        // itself one sample short. A trial run measures the shortfall.
        let silence = vec![0.0; chunk_in];
        let (_, first) = inner.process_into_buffer(&[&silence], &mut [&mut scratch_out], None)?;
        inner.reset();
        let lead = chunk_out.saturating_sub(first) + LEAD_MARGIN;
        let mut r = StreamResampler {
            lead,
            lead_total: lead,
            delay: 0,
            input_lead: 0,
            from_hz,
            to_hz,
            inner,
            chunk_in,
            chunk_out,
            fifo: vec![0.0; MAX_INPUT_SAMPLES + chunk_in],
            pending: 0,
            scratch_out,
        };
        // When downsampling by D, the filter's delay in input samples need
        // not be a multiple of D, which puts the output a fraction of a
        // sample off the input grid. Leading input silence (under D samples)
        // fixes that; which amount is found by calibration: the one whose
        // output best matches an ideal tone at the measured delay.
        let decimation = (from_hz / to_hz).max(1) as usize;
        let mut best = (f64::MAX, 0usize, 0usize);
        for lead_in in 0..decimation {
            r.input_lead = lead_in;
            r.reset();
            let delay = r.impulse_peak()?;
            r.reset();
            let err = r.tone_error(delay)?;
            if err < best.0 {
                best = (err, lead_in, delay);
            }
        }
        r.input_lead = best.1;
        r.delay = best.2;
        r.reset();
        Ok(r)
    }
    /// Where an impulse at input time 0 peaks in the output.
    fn impulse_peak(&mut self) -> Result<usize, StreamResampleError> {
        let mut impulse = vec![0i16; self.chunk_in];
        if let Some(first) = impulse.first_mut() {
            *first = i16::MAX;
        }
        let silence = vec![0i16; self.chunk_in];
        let response = self.run_frames(|k| if k == 0 { &impulse } else { &silence })?;
        Ok((0..response.len())
            .max_by_key(|&i| response.get(i).map_or(0, |s| s.unsigned_abs()))
            .unwrap_or(0))
    }

    /// Squared error between the output for a 1 kHz tone and the ideal tone
    /// at the output rate delayed by `delay`.
    fn tone_error(&mut self, delay: usize) -> Result<f64, StreamResampleError> {
        let tone = |n: usize, hz: u32| {
            let phase = 2.0 * std::f64::consts::PI * 1000.0 * n as f64 / f64::from(hz);
            (phase.sin() * 8000.0) as i16
        };
        let frames: Vec<Vec<i16>> = (0..self.frames_for_filter())
            .map(|k| {
                (0..self.chunk_in)
                    .map(|i| tone(k * self.chunk_in + i, self.from_hz))
                    .collect()
            })
            .collect();
        let out = self.run_frames(|k| frames.get(k).map_or(&[][..], |f| &f[..]))?;
        // Compare after the filter has filled.
        let skip = delay * 2;
        Ok(out
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(m, &y)| {
                let ideal = tone(m - delay, self.to_hz);
                (f64::from(y) - f64::from(ideal)).powi(2)
            })
            .sum())
    }

    /// Enough frames for the whole filter (rubato lengthens it by the ratio
    /// when downsampling) plus some signal.
    fn frames_for_filter(&self) -> usize {
        4 + SINC_LEN_DOWN * 12 / self.chunk_in.max(1)
    }

    /// Runs `frames_for_filter` frames given by `frame(k)` and collects the
    /// output (construction-time only: it allocates).
    fn run_frames<'a>(
        &mut self,
        frame: impl Fn(usize) -> &'a [i16],
    ) -> Result<Vec<i16>, StreamResampleError> {
        let mut out = vec![0i16; self.chunk_out * 2];
        let mut all = Vec::new();
        for k in 0..self.frames_for_filter() {
            let n = self.process(frame(k), &mut out)?;
            all.extend_from_slice(out.get(..n).unwrap_or_default());
        }
        Ok(all)
    }

    /// The input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// The output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Latency of the filter in output samples: output sample `n + delay`
    /// corresponds to input time `n / to_hz`. Input held back in the FIFO
    /// waiting for a whole frame adds to this when input arrives in pieces.
    pub fn delay_samples(&self) -> usize {
        self.delay
    }

    /// The most samples one call with `input_len` samples can write: about
    /// 20 ms of output per 20 ms of input, give or take a sample.
    pub fn max_output_for(&self, input_len: usize) -> usize {
        let chunks = (self.pending + input_len) / self.chunk_in;
        if chunks == 0 {
            return 0;
        }
        chunks * self.scratch_out.len().max(self.chunk_out + 1) + self.lead
    }

    /// Resamples `input` into `out`, returning how many samples were written.
    ///
    /// Input is processed in 20 ms chunks; what is short of a chunk is kept
    /// for the next call. Each chunk gives 20 ms of output give or take a
    /// sample (the total never drifts). `out` must hold
    /// [`Self::max_output_for`] samples; nothing is consumed on error.
    pub fn process(
        &mut self,
        input: &[i16],
        out: &mut [i16],
    ) -> Result<usize, StreamResampleError> {
        if input.len() > MAX_INPUT_SAMPLES {
            return Err(StreamResampleError::InputTooLong(input.len()));
        }
        let need = self.max_output_for(input.len());
        let have = out.len();
        if need > have {
            return Err(StreamResampleError::OutputTooSmall { need, have });
        }
        let end = self.pending + input.len();
        let Some(slot) = self.fifo.get_mut(self.pending..end) else {
            return Err(StreamResampleError::InputTooLong(input.len()));
        };
        for (d, &s) in slot.iter_mut().zip(input) {
            *d = f32::from(s) / 32768.0;
        }
        self.pending = end;

        let mut consumed = 0;
        let mut written = 0;
        while self.pending - consumed >= self.chunk_in {
            let Some(chunk) = self.fifo.get(consumed..consumed + self.chunk_in) else {
                break;
            };
            let (used, produced) =
                self.inner
                    .process_into_buffer(&[chunk], &mut [&mut self.scratch_out[..]], None)?;
            consumed += used;
            if self.lead > 0 {
                let zeros = out.get_mut(written..written + self.lead).ok_or(
                    StreamResampleError::OutputTooSmall {
                        need: written + self.lead,
                        have,
                    },
                )?;
                zeros.fill(0);
                written += self.lead;
                self.lead = 0;
            }
            let dest = out.get_mut(written..written + produced).ok_or(
                StreamResampleError::OutputTooSmall {
                    need: written + produced,
                    have,
                },
            )?;
            for (d, &s) in dest.iter_mut().zip(&self.scratch_out) {
                *d = to_i16(s);
            }
            written += produced;
        }
        self.fifo.copy_within(consumed..self.pending, 0);
        self.pending -= consumed;
        Ok(written)
    }

    /// Forgets buffered input and filter history (e.g. on an SSRC change).
    pub fn reset(&mut self) {
        self.inner.reset();
        let lead = self.input_lead.min(self.fifo.len());
        self.fifo[..lead].fill(0.0);
        self.pending = lead;
        self.lead = self.lead_total;
    }
}

/// Converts a float sample to i16 with saturation (the filter can overshoot).
fn to_i16(s: f32) -> i16 {
    let scaled = (s * 32768.0).round();
    // `as` from f32 saturates, and NaN maps to 0.
    scaled as i16
}

#[cfg(test)]
mod tests;
