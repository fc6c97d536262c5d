//! Whole-buffer sample-rate conversion for prompts: decoded once at load
//! time, so quality matters more than speed and nothing here is on the
//! per-packet media path.
//!
//! The resampler is rubato's windowed-sinc `SincFixedIn` with:
//! - a 512-tap sinc: with 256 taps the transition band starts early enough
//!   to take 0.6 dB off 3.4 kHz (the top of the G.711 telephone band) when
//!   going from 44.1 kHz to 8 kHz; at 512 the band is flat to 0.01 dB;
//! - a squared Blackman-Harris window for deep stop-band attenuation: a
//!   5 kHz tone at 48 kHz comes out 67 dB down at 8 kHz, far below G.711's
//!   own quantisation noise (about 38 dB SNR);
//! - the cutoff from `calculate_cutoff` for that window and length, i.e. as
//!   close to the output Nyquist as the filter's transition band allows;
//! - 256× oversampled sinc tables with cubic interpolation between them, so
//!   any ratio (22.05 kHz, 44.1 kHz, …) is handled without rational-ratio
//!   tricks.
//!
//! The resampler's offset is removed, so output sample `n` lines up with
//! input time `n / to_hz`, and the output length is
//! `ceil(len * to_hz / from_hz)`.

use rubato::{
    calculate_cutoff, Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// Length of the sinc filter in input samples.
const SINC_LEN: usize = 512;
/// Sinc table oversampling; cubic interpolation fills the gaps.
const OVERSAMPLING: usize = 256;
/// Input frames handed to rubato per call.
const CHUNK: usize = 1024;
/// Largest accepted rate, far above any real audio file; bounds the ratio.
const MAX_RATE_HZ: u32 = 768_000;

/// Why a buffer could not be resampled.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// A rate was zero or unreasonably high.
    #[error("unsupported sample rate conversion {from_hz} Hz -> {to_hz} Hz")]
    BadRate {
        /// Source rate.
        from_hz: u32,
        /// Target rate.
        to_hz: u32,
    },
    /// rubato refused the parameters.
    #[error("resampler setup failed: {0}")]
    Setup(#[from] rubato::ResamplerConstructionError),
    /// rubato failed while processing.
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
}

/// Resamples a whole mono buffer from `from_hz` to `to_hz`, compensating the
/// resampler's offset so output sample `n` sits at input time `n / to_hz`.
pub fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, ResampleError> {
    if from_hz == 0 || to_hz == 0 || from_hz > MAX_RATE_HZ || to_hz > MAX_RATE_HZ {
        return Err(ResampleError::BadRate { from_hz, to_hz });
    }
    if from_hz == to_hz || input.is_empty() {
        return Ok(input.to_vec());
    }
    let ratio = f64::from(to_hz) / f64::from(from_hz);
    // Exact integer arithmetic: len * to / from, rounded up.
    let wanted = (input.len() as u128 * u128::from(to_hz)).div_ceil(u128::from(from_hz));
    let wanted = usize::try_from(wanted).map_err(|_| ResampleError::BadRate { from_hz, to_hz })?;

    let window = WindowFunction::BlackmanHarris2;
    let params = SincInterpolationParameters {
        sinc_len: SINC_LEN,
        f_cutoff: calculate_cutoff(SINC_LEN, window),
        oversampling_factor: OVERSAMPLING,
        interpolation: SincInterpolationType::Cubic,
        window,
    };
    let mut resampler = SincFixedIn::<f32>::new(ratio, 1.0, params, CHUNK, 1)?;

    // rubato's `SincFixedIn` puts output frame `m` at input time
    // `(m + 1) / ratio - 1` (in input samples; measured, and checked by the
    // alignment tests below), which is a fractional offset for most ratios.
    // Prepending `lead` zeros with `lead + 1` a multiple of `from / gcd`
    // makes that offset a whole number of output frames, `skip`, which is
    // then dropped: output `n` lands exactly on input time `n / ratio`.
    let g = gcd(from_hz, to_hz);
    let lead = (from_hz / g) as usize - 1;
    let skip = (to_hz / g) as usize - 1;
    let mut padded = Vec::with_capacity(lead.saturating_add(input.len()));
    padded.resize(lead, 0.0);
    padded.extend_from_slice(input);

    let needed = wanted.saturating_add(skip);
    let mut out = Vec::with_capacity(needed.saturating_add(2 * CHUNK));
    let mut block = resampler.output_buffer_allocate(true);
    let mut rest = padded.as_slice();
    while rest.len() >= resampler.input_frames_next() {
        let (chunk, tail) = rest.split_at(resampler.input_frames_next());
        let (_, produced) = resampler.process_into_buffer(&[chunk], &mut block, None)?;
        out.extend(
            block
                .first()
                .and_then(|b| b.get(..produced))
                .unwrap_or_default(),
        );
        rest = tail;
    }
    // The remainder, then silence, until the filter has let the end of the
    // signal through. Each round yields about CHUNK * ratio frames; the
    // bound only matters if rubato stopped producing output.
    let per_round = ((CHUNK as f64 * ratio) as usize).max(1);
    let rounds = needed.saturating_sub(out.len()) / per_round + 4;
    for round in 0..rounds {
        if out.len() >= needed {
            break;
        }
        let produced = if round == 0 && !rest.is_empty() {
            resampler
                .process_partial_into_buffer(Some(&[rest]), &mut block, None)?
                .1
        } else {
            resampler
                .process_partial_into_buffer(None::<&[&[f32]]>, &mut block, None)?
                .1
        };
        out.extend(
            block
                .first()
                .and_then(|b| b.get(..produced))
                .unwrap_or_default(),
        );
    }
    out.drain(..skip.min(out.len()));
    out.resize(wanted, 0.0);
    Ok(out)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::TAU;

    fn tone(freq: f32, rate: u32, len: usize, amp: f32) -> Vec<f32> {
        (0..len)
            .map(|n| amp * (TAU * freq * n as f32 / rate as f32).sin())
            .collect()
    }

    /// Largest difference from the ideal tone, away from the buffer edges
    /// where the filter sees the implicit silence around the signal.
    fn max_error_vs_ideal(out: &[f32], freq: f32, rate: u32, amp: f32, edge: usize) -> f32 {
        let ideal = tone(freq, rate, out.len(), amp);
        out.iter()
            .zip(&ideal)
            .skip(edge)
            .take(out.len().saturating_sub(2 * edge))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn output_is_aligned_with_input_and_has_the_right_length() {
        for from in [
            11_025, 16_000, 22_050, 32_000, 44_100, 44_101, 48_000, 96_000,
        ] {
            let input = tone(440.0, from, from as usize / 2, 0.5);
            let out = resample(&input, from, 8000).unwrap();
            assert_eq!(out.len(), 4000, "{from}");
            // A misalignment of a tenth of an output sample would already
            // give an error of about 0.017 here.
            let err = max_error_vs_ideal(&out, 440.0, 8000, 0.5, 200);
            println!("{from} Hz -> 8 kHz, 440 Hz tone: max error {err:.5}");
            assert!(err < 0.002, "{from}: {err}");
        }
    }

    #[test]
    fn upsampling_is_aligned_too() {
        let input = tone(1000.0, 8000, 4000, 0.5);
        let out = resample(&input, 8000, 48_000).unwrap();
        assert_eq!(out.len(), 24_000);
        let err = max_error_vs_ideal(&out, 1000.0, 48_000, 0.5, 1200);
        println!("8 kHz -> 48 kHz, 1 kHz tone: max error {err:.5}");
        assert!(err < 0.005, "{err}");
    }

    #[test]
    fn content_above_the_new_nyquist_is_removed() {
        // 5 kHz cannot exist at 8 kHz; unfiltered it would alias to 3 kHz.
        let input = tone(5000.0, 48_000, 48_000, 0.5);
        let out = resample(&input, 48_000, 8000).unwrap();
        let peak = out[400..7600].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        println!("5 kHz at 48 kHz -> 8 kHz: residual peak {peak:.6}");
        assert!(peak < 0.001, "alias peak {peak}");
    }

    #[test]
    fn inputs_of_whole_chunks_keep_their_tail() {
        // Exactly two rubato chunks after the lead-in: the end of the signal
        // must still come out of the filter, not be cut or left stale.
        let input = vec![0.5f32; 2 * CHUNK - 5];
        let out = resample(&input, 48_000, 8000).unwrap();
        assert_eq!(out.len(), (2 * CHUNK - 5).div_ceil(6));
        let mid = &out[20..out.len() - 20];
        assert!(mid.iter().all(|s| (s - 0.5).abs() < 0.002), "{mid:?}");
    }

    #[test]
    fn the_telephone_band_passes_flat() {
        // G.711 carries 300-3400 Hz; downsampling must not eat into it.
        for freq in [300.0, 1000.0, 3000.0, 3400.0] {
            let input = tone(freq, 44_100, 44_100, 0.5);
            let out = resample(&input, 44_100, 8000).unwrap();
            let mid = &out[1000..7000];
            let rms = (mid.iter().map(|s| s * s).sum::<f32>() / mid.len() as f32).sqrt();
            let gain_db = 20.0 * (rms / (0.5 / 2f32.sqrt())).log10();
            println!("44.1 kHz -> 8 kHz, {freq} Hz: gain {gain_db:+.3} dB");
            assert!(gain_db.abs() < 0.1, "{freq} Hz: {gain_db} dB");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(24))]
        #[test]
        fn any_rate_and_length_gives_the_promised_length(
            len in 0usize..5000,
            from in 1000u32..200_000,
            to in proptest::sample::select(vec![8000u32, 16_000, 48_000]),
        ) {
            let input: Vec<f32> = (0..len).map(|n| ((n * 7919) % 200) as f32 / 100.0 - 1.0).collect();
            let out = resample(&input, from, to).unwrap();
            let want = (len as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
            proptest::prop_assert_eq!(out.len(), want);
            proptest::prop_assert!(out.iter().all(|s| s.is_finite() && s.abs() < 2.0));
        }
    }

    #[test]
    fn length_rounds_up_and_short_inputs_work() {
        assert_eq!(resample(&[0.1; 3], 44_100, 8000).unwrap().len(), 1);
        assert_eq!(resample(&[0.1; 6], 44_100, 8000).unwrap().len(), 2);
        assert_eq!(resample(&[], 44_100, 8000).unwrap().len(), 0);
        assert_eq!(resample(&[0.25; 5], 8000, 8000).unwrap(), vec![0.25; 5]);
    }

    #[test]
    fn bad_rates_are_errors() {
        assert!(matches!(
            resample(&[0.0; 10], 0, 8000),
            Err(ResampleError::BadRate { .. })
        ));
        assert!(matches!(
            resample(&[0.0; 10], 8000, 0),
            Err(ResampleError::BadRate { .. })
        ));
        assert!(resample(&[0.0; 10], u32::MAX, 8000).is_err());
    }
}
