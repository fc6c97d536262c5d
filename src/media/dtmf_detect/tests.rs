//! Unit tests of the detector core; the Q.24 conformance suite and the
//! talk-off run live in `tests/dtmf_q24.rs` and `tests/dtmf_talkoff.rs`.

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
