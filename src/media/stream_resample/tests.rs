use super::*;
use crate::media::transcode::test_signal::{best_correlation, rms, sine};

const RATES: [u32; 3] = [8000, 16000, 48000];

/// Runs `input` through a fresh resampler frame by frame.
fn run(from: u32, to: u32, input: &[i16]) -> (Vec<i16>, usize) {
    let mut r = StreamResampler::new(from, to).unwrap();
    let frame = from as usize / 50;
    let mut out = Vec::new();
    let mut buf = vec![0i16; r.max_output_for(frame)];
    for chunk in input.chunks(frame) {
        let n = r.process(chunk, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    (out, r.delay_samples())
}

#[test]
fn one_frame_in_gives_one_frame_out_for_every_pair() {
    for &from in &RATES {
        for &to in &RATES {
            if from == to {
                continue;
            }
            let mut r = StreamResampler::new(from, to).unwrap();
            let input = sine(440.0, from, from as usize / 50, 8000.0);
            let mut out = vec![0i16; r.max_output_for(input.len())];
            let frame_out = to as usize / 50;
            let mut total = 0;
            for k in 1..=200 {
                let n = r.process(&input, &mut out).unwrap();
                assert!(n.abs_diff(frame_out) <= 1 || k == 1, "{from}->{to}: {n}");
                total += n;
                // Output keeps pace: never behind, never more than the
                // start-up margin ahead.
                let expected = k * frame_out;
                assert!(
                    total >= expected && total <= expected + 3,
                    "{from}->{to}: {total} after {k}"
                );
            }
        }
    }
}

#[test]
fn a_tone_comes_through_clean_at_the_reported_delay() {
    // 1 kHz is inside every band; after the delay the output must match the
    // ideal tone at the new rate sample for sample.
    for &from in &RATES {
        for &to in &RATES {
            if from == to {
                continue;
            }
            let input = sine(1000.0, from, from as usize, 10_000.0);
            let (out, delay) = run(from, to, &input);
            let ideal = sine(1000.0, to, to as usize, 10_000.0);
            // Skip the filter's start-up, compare 0.5 s.
            let start = to as usize / 10;
            let len = to as usize / 2;
            let err: Vec<i16> = (start..start + len)
                .map(|i| out[i + delay].saturating_sub(ideal[i]))
                .collect();
            let snr = 20.0 * (rms(&ideal[start..start + len]) / rms(&err).max(1e-9)).log10();
            println!("{from}->{to}: delay {delay} samples, SNR {snr:.1} dB");
            assert!(snr > 40.0, "{from}->{to}: SNR {snr:.1} dB at delay {delay}");
        }
    }
}

#[test]
fn the_reported_delay_is_where_the_correlation_peaks() {
    // Down then up, so both delays are whole samples at the final rate. The
    // speech-like signal has nothing above 3.4 kHz, so 8 kHz loses nothing.
    let input = crate::media::transcode::test_signal::speech_like(48000, 1.0);
    let (low, d_down) = run(48000, 8000, &input);
    let (back, d_up) = run(8000, 48000, &low);
    let expected = d_down * 6 + d_up;
    let (lag, r) = best_correlation(&input, &back, 2000);
    println!("48->8->48 round trip: lag {lag}, reported {expected}, r {r:.4}");
    assert!(r > 0.999, "r {r}");
    assert_eq!(lag, expected);
}

#[test]
fn downsampling_rejects_what_the_lower_rate_cannot_carry() {
    // 6 kHz at 48 kHz would alias to 2 kHz at 8 kHz without the filter.
    let input = sine(6000.0, 48000, 48000, 10_000.0);
    let (out, _) = run(48000, 8000, &input);
    let tail = &out[2000..];
    let atten = 20.0 * (rms(&input) / rms(tail).max(1e-9)).log10();
    println!("48k->8k, 6 kHz tone attenuated by {atten:.1} dB");
    assert!(atten > 40.0, "only {atten:.1} dB");
}

#[test]
fn input_in_any_pieces_gives_the_same_output_as_whole_frames() {
    let input = sine(700.0, 16000, 16000, 9000.0);
    let (whole, _) = run(16000, 48000, &input);
    let mut r = StreamResampler::new(16000, 48000).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0i16; 48000];
    let sizes = [1usize, 7, 160, 320, 333, 960, 2, 640];
    let mut pos = 0;
    let mut k = 0;
    while pos < input.len() {
        let n = sizes[k % sizes.len()].min(input.len() - pos);
        let m = r.process(&input[pos..pos + n], &mut buf).unwrap();
        out.extend_from_slice(&buf[..m]);
        pos += n;
        k += 1;
    }
    assert_eq!(out, whole);
}

#[test]
fn errors_are_typed_and_consume_nothing() {
    assert!(matches!(
        StreamResampler::new(44100, 8000),
        Err(StreamResampleError::BadRate { .. })
    ));
    assert!(matches!(
        StreamResampler::new(8000, 0),
        Err(StreamResampleError::BadRate { .. })
    ));
    let mut r = StreamResampler::new(8000, 48000).unwrap();
    let frame = vec![100i16; 160];
    let mut small = vec![0i16; 959];
    assert!(matches!(
        r.process(&frame, &mut small),
        Err(StreamResampleError::OutputTooSmall { have: 959, .. })
    ));
    let too_long = vec![0i16; MAX_INPUT_SAMPLES + 1];
    assert!(matches!(
        r.process(&too_long, &mut small),
        Err(StreamResampleError::InputTooLong(_))
    ));
    // Nothing was consumed: a partial frame now produces nothing.
    assert_eq!(r.process(&frame[..100], &mut small).unwrap(), 0);
    assert!(r.max_output_for(60) >= 960);
    assert_eq!(r.max_output_for(59), 0);
}

proptest::proptest! {
    #[test]
    fn any_audio_any_split_never_panics_and_output_is_whole_frames(
        samples in proptest::collection::vec(proptest::num::i16::ANY, 0..4000),
        split in 1usize..700,
        from_i in 0usize..3,
        to_i in 0usize..3,
    ) {
        let (from, to) = (RATES[from_i], RATES[to_i]);
        proptest::prop_assume!(from != to);
        let mut r = StreamResampler::new(from, to).unwrap();
        let mut buf = vec![0i16; 6 * 700 + 960];
        let mut total = 0;
        for chunk in samples.chunks(split) {
            let need = r.max_output_for(chunk.len());
            let n = r.process(chunk, &mut buf).unwrap();
            proptest::prop_assert!(n <= need);
            total += n;
        }
        // Up to 5 samples of input lead may complete one more frame; the
        // output never runs behind the input nor ahead by more than the
        // start-up margin.
        let (fin, fout) = (from as usize / 50, to as usize / 50);
        let chunks = samples.len() / fin;
        let ok = (chunks * fout..=(chunks + 1) * fout + 3).contains(&total) || (chunks == 0 && total <= fout + 3);
        proptest::prop_assert!(ok, "{} samples in, {} out", samples.len(), total);
    }
}
