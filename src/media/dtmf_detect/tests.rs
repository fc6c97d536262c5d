//! Unit tests of the detector core; the Q.24 conformance suite and the
//! talk-off run live in `codecs-bench/tests/dtmf_q24.rs` and
//! `codecs-bench/tests/dtmf_talkoff.rs`.

use super::*;
use crate::media::tone::ToneGenerator;

fn press(digit: char, on_ms: u32, off_ms: u32, level: f32) -> Vec<i16> {
    let mut generator = ToneGenerator::dtmf(digit, on_ms, off_ms, level).unwrap();
    let mut out = vec![0i16; (on_ms + off_ms) as usize * 8];
    let written = generator.fill(&mut out);
    assert_eq!(written, out.len());
    out
}

fn run(pcm: &[i16], frame: usize) -> Vec<Detected> {
    let mut detector = DtmfDetector::new();
    let mut found = Vec::new();
    for chunk in pcm.chunks(frame) {
        found.extend(detector.process(chunk));
        while let Some(d) = detector.poll() {
            found.push(d);
        }
    }
    found
}

#[test]
fn every_key_is_found_once_with_its_onset() {
    for digit in "0123456789*#ABCD".chars() {
        for lead in [0usize, 37, 101] {
            let mut pcm = vec![0i16; lead];
            pcm.extend(press(digit, 60, 60, -10.0));
            let found = run(&pcm, 160);
            assert_eq!(found.len(), 1, "{digit} after {lead}: {found:?}");
            assert_eq!(found[0].digit, digit);
            let error = found[0].start_sample.abs_diff(lead as u64);
            assert!(
                error <= 12,
                "{digit}: onset {} vs {lead}",
                found[0].start_sample
            );
        }
    }
}

#[test]
fn frame_size_does_not_change_results() {
    let mut pcm = Vec::new();
    for d in "147*2580369#ABCD".chars() {
        pcm.extend(press(d, 50, 45, -12.0));
    }
    let reference = run(&pcm, 160);
    assert_eq!(
        reference.iter().map(|d| d.digit).collect::<String>(),
        "147*2580369#ABCD"
    );
    for frame in [1, 80, 101, 102, 103, 1000] {
        assert_eq!(run(&pcm, frame), reference, "frame {frame}");
    }
}

#[test]
fn whole_recording_in_one_call_is_queued() {
    let mut pcm = Vec::new();
    for d in "12345".chars() {
        pcm.extend(press(d, 50, 50, -12.0));
    }
    let mut detector = DtmfDetector::new();
    let first = detector.process(&pcm).map(|d| d.digit);
    let mut digits: String = first.into_iter().collect();
    while let Some(d) = detector.poll() {
        digits.push(d.digit);
    }
    assert_eq!(digits, "12345");
    assert_eq!(detector.dropped(), 0);
}

#[test]
fn silence_and_extremes_give_nothing() {
    assert!(run(&[0; 8000], 160).is_empty());
    assert!(run(&[i16::MAX; 8000], 160).is_empty());
    let square: Vec<i16> = (0..8000)
        .map(|n| if (n / 4) % 2 == 0 { i16::MIN } else { i16::MAX })
        .collect();
    assert!(run(&square, 160).is_empty());
}

#[test]
fn single_tone_is_not_a_key() {
    let mut generator = ToneGenerator::beep(697.0, 500, -10.0);
    let mut pcm = vec![0i16; 4000];
    generator.fill(&mut pcm);
    assert!(run(&pcm, 160).is_empty());
}

#[test]
fn phase_wraps_into_half_open_interval() {
    use std::f64::consts::PI;
    assert!((wrap_phase(3.0 * PI) - PI).abs() < 1e-9);
    assert!((wrap_phase(-PI) - PI).abs() < 1e-9);
    assert!(wrap_phase(0.5).abs() - 0.5 < 1e-12);
    assert!((wrap_phase(-7.0) - (-7.0 + 2.0 * PI)).abs() < 1e-9);
}

#[test]
fn white_noise_alone_gives_nothing() {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        // xorshift64*: cheap, seeded, uniform-ish noise is enough here.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 48) as u16 as i16
    };
    for shift in [0u32, 4, 8, 12] {
        let pcm: Vec<i16> = (0..8000 * 20).map(|_| next() >> shift).collect();
        assert!(run(&pcm, 160).is_empty(), "noise >> {shift}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_audio_never_panics_and_framing_is_irrelevant(
            pcm in proptest::collection::vec(any::<i16>(), 0..4000),
            frame in 1usize..400,
        ) {
            let whole = run(&pcm, pcm.len().max(1));
            prop_assert_eq!(run(&pcm, frame), whole);
        }

        #[test]
        fn a_key_survives_any_framing_and_offset(
            key in proptest::sample::select("0123456789*#ABCD".chars().collect::<Vec<_>>()),
            lead in 0usize..400,
            frame in 1usize..400,
            level in -30.0f32..-4.0,
        ) {
            let mut pcm = vec![0i16; lead];
            pcm.extend(press(key, 45, 60, level));
            let found = run(&pcm, frame);
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(found[0].digit, key);
            prop_assert!(found[0].start_sample.abs_diff(lead as u64) <= ONSET_TOLERANCE);
        }

        #[test]
        fn generator_accepts_any_parameters(
            f1 in any::<f64>(), f2 in any::<f64>(),
            l1 in any::<f32>(), l2 in any::<f32>(),
            on in 0u32..50, off in 0u32..50,
            frame in 1usize..300,
        ) {
            let mut generator = ToneGenerator::dual(f1, f2, l1, l2, on, off);
            let mut buf = vec![0i16; frame];
            let mut total = 0usize;
            loop {
                let n = generator.fill(&mut buf);
                if n == 0 { break; }
                total += n;
            }
            prop_assert_eq!(total, (on + off) as usize * 8);
        }
    }
}

/// The onset estimate reads the leading partial block's power; coverage
/// under 15 % of a 102-sample block is not resolved and full blocks differ
/// by up to ~20 % in power, so the bound is a third of a block: 32 samples
/// (4 ms). Every key, every lead across one block, four levels (worst seen:
/// 29 samples, '*', lead 91, -30 dBm0).
#[test]
fn onset_is_within_4_ms_for_every_key_lead_and_level() {
    for key in "0123456789*#ABCD".chars() {
        for lead in 0..408usize {
            for level in [-30.0f32, -20.0, -10.0, -4.0] {
                let mut pcm = vec![0i16; lead];
                pcm.extend(press(key, 45, 60, level));
                let found = run(&pcm, 160);
                assert_eq!(found.len(), 1, "{key} lead {lead} level {level}");
                let e = found[0].start_sample.abs_diff(lead as u64);
                assert!(e <= ONSET_TOLERANCE, "{key} lead {lead} level {level}: {e}");
            }
        }
    }
}

const ONSET_TOLERANCE: u64 = 32;

/// One press over a lossy link, as the media worker hears it: 20 ms frames
/// of a key (after `lead` samples of silence) through G.711 PLC, with the
/// frames in `lost` replaced by concealment and one more concealed frame
/// inserted before frame `stretch` (the jitter buffer growing its delay);
/// concealment goes to `process_concealed`. Returns the digits heard and
/// whether the key was reported before the first concealed frame.
fn press_through_loss(
    digit: char,
    (lead, on_ms, level): (usize, u32, f32),
    lost: &[usize],
    stretch: Option<usize>,
) -> (String, bool) {
    use crate::media::plc::Plc;
    let mut pcm = vec![0i16; lead];
    pcm.extend(press(digit, on_ms, 300, level));
    let mut plc = Plc::new();
    let mut detector = DtmfDetector::new();
    let mut heard = String::new();
    let mut before_loss = None;
    for (k, chunk) in pcm.chunks_exact(160).enumerate() {
        let mut frames = [None, Some(chunk)];
        if stretch == Some(k) {
            frames[0] = Some(&[][..]);
        }
        if lost.contains(&k) {
            frames[1] = Some(&[][..]);
        }
        for frame in frames.into_iter().flatten() {
            let mut out = [0i16; 160];
            let found = if frame.is_empty() {
                before_loss.get_or_insert(!heard.is_empty());
                plc.conceal(&mut out);
                detector.process_concealed(&out)
            } else {
                out.copy_from_slice(frame);
                plc.good_frame(&mut out);
                detector.process(&out)
            };
            heard.extend(found.map(|d| d.digit));
            while let Some(d) = detector.poll() {
                heard.push(d.digit);
            }
        }
    }
    (heard, before_loss.unwrap_or(true))
}

#[test]
fn concealed_frames_do_not_split_a_press() {
    let mut confirmed_first = 0;
    for digit in "0123456789*#ABCD".chars() {
        for shape in [(0, 80, -8.0), (40, 100, -20.0), (100, 120, -14.0)] {
            // One or two frames lost, or a stretch, anywhere in the press.
            let patterns = (1usize..7).flat_map(|k| {
                [
                    (vec![k], Some(k)),
                    (vec![k], None),
                    (vec![k, k + 1], None),
                    (vec![], Some(k)),
                ]
            });
            for (lost, stretch) in patterns {
                let lost = &lost[..];
                let (heard, before_loss) = press_through_loss(digit, shape, lost, stretch);
                let case = format!("{digit} {shape:?}: frames {lost:?} lost, stretch {stretch:?}");
                // Never two presses; and one the audio before the loss
                // confirmed is not lost to concealment after it.
                assert!(heard.len() <= 1, "{case}: {heard:?}");
                assert!(heard.chars().all(|d| d == digit), "{case}: {heard:?}");
                if before_loss {
                    confirmed_first += 1;
                    assert_eq!(heard, digit.to_string(), "{case}");
                }
            }
        }
    }
    assert!(
        confirmed_first >= 500,
        "{confirmed_first} cases confirmed before the loss"
    );
}

#[test]
fn long_concealment_still_ends_a_press() {
    // A key, then 120 ms of nothing but concealment, then the same key:
    // two presses (concealment beyond four blocks counts as misses).
    use crate::media::plc::Plc;
    let mut plc = Plc::new();
    let mut detector = DtmfDetector::new();
    let mut heard = String::new();
    let first = press('5', 100, 0, -10.0);
    let second = press('5', 100, 100, -10.0);
    for chunk in first.chunks_exact(160) {
        let mut f = [0i16; 160];
        f.copy_from_slice(chunk);
        plc.good_frame(&mut f);
        heard.extend(detector.process(&f).map(|d| d.digit));
    }
    for _ in 0..6 {
        let mut f = [0i16; 160];
        plc.conceal(&mut f);
        heard.extend(detector.process_concealed(&f).map(|d| d.digit));
    }
    for chunk in second.chunks_exact(160) {
        let mut f = [0i16; 160];
        f.copy_from_slice(chunk);
        plc.good_frame(&mut f);
        heard.extend(detector.process(&f).map(|d| d.digit));
    }
    assert_eq!(heard, "55");
}
