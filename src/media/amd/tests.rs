//! The classifier on synthetic calls, on the virtual clock of samples fed.

use super::*;

/// Syllable-like voice: eight harmonics of a pitch that wanders with the
/// seed, shaped by a 4 Hz envelope that never quite falls silent.
fn voice(ms: usize, seed: &mut u32) -> Vec<i16> {
    *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    let f0 = 110.0 + (*seed >> 24) as f32 / 4.0;
    (0..ms * 8)
        .map(|n| {
            let t = n as f32 / 8000.0;
            let tau = 2.0 * std::f32::consts::PI;
            let env = 0.6 + 0.4 * (tau * 4.0 * t).sin();
            let x: f32 = (1..=8)
                .map(|k| (tau * f0 * k as f32 * t).sin() / k as f32)
                .sum();
            (x * 2500.0 * env) as i16
        })
        .collect()
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 8]
}

fn sine(freq: f64, ms: usize) -> Vec<i16> {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    (0..ms * 8)
        .map(|n| (8000.0 * (w * n as f64).sin()) as i16)
        .collect()
}

fn classify(cfg: AmdConfig, parts: &[Vec<i16>]) -> AmdVerdict {
    let mut amd = Amd::new(cfg);
    for part in parts {
        // Odd-sized pushes: the framing must not depend on packet size.
        for chunk in part.chunks(77) {
            if let Some(v) = amd.push(chunk) {
                return v;
            }
        }
    }
    amd.push(&silence(10_000))
        .expect("decided within total analysis time")
}

#[test]
fn a_short_hello_then_silence_is_a_human() {
    let mut seed = 1;
    let v = classify(AmdConfig::rivr(), &[silence(500), voice(450, &mut seed)]);
    assert_eq!(v.answered_by, AnsweredBy::Human);
    assert_eq!(v.cause, AmdCause::AfterGreetingSilence);
    assert!((1700..=1800).contains(&v.at_ms), "{v:?}");
}

#[test]
fn a_long_greeting_is_a_machine_after_greeting_ms_of_voice() {
    let mut seed = 2;
    let v = classify(AmdConfig::rivr(), &[silence(300), voice(4000, &mut seed)]);
    assert_eq!(v.answered_by, AnsweredBy::Machine);
    assert_eq!(v.cause, AmdCause::LongGreeting);
    assert!((1790..=1820).contains(&v.at_ms), "{v:?}");
}

#[test]
fn many_words_are_a_machine() {
    let mut seed = 3;
    let mut parts = vec![silence(200)];
    for _ in 0..6 {
        parts.push(voice(200, &mut seed));
        parts.push(silence(200));
    }
    let v = classify(AmdConfig::rivr(), &parts);
    assert_eq!(
        (v.answered_by, v.cause),
        (AnsweredBy::Machine, AmdCause::MaxWords)
    );
}

#[test]
fn dead_air_is_unsure_for_rivr_and_a_machine_for_asterisk() {
    let v = classify(AmdConfig::rivr(), &[silence(6000)]);
    assert_eq!(
        (v.answered_by, v.cause, v.at_ms),
        (AnsweredBy::Unsure, AmdCause::InitialSilence, 2500)
    );
    let v = classify(AmdConfig::asterisk(), &[silence(6000)]);
    assert_eq!(v.answered_by, AnsweredBy::Machine);
}

#[test]
fn a_beep_after_a_short_greeting_is_a_machine() {
    let mut seed = 4;
    let v = classify(
        AmdConfig::rivr(),
        &[
            silence(200),
            voice(700, &mut seed),
            silence(200),
            sine(1000.0, 500),
        ],
    );
    assert_eq!(
        (v.answered_by, v.cause),
        (AnsweredBy::Machine, AmdCause::Beep)
    );
    assert!(v.at_ms <= 1250, "{v:?}");
}

#[test]
fn voice_never_ending_is_decided_within_the_total_analysis_time() {
    let cfg = AmdConfig {
        greeting_ms: 60_000,
        max_words: 1000,
        max_word_ms: 60_000,
        ..AmdConfig::rivr()
    };
    let mut seed = 5;
    let v = classify(cfg, &[voice(8000, &mut seed)]);
    assert_eq!(
        (v.answered_by, v.cause, v.at_ms),
        (AnsweredBy::Unsure, AmdCause::TooLong, 5000)
    );
}

#[test]
fn beep_wait_ends_at_the_beep_end_or_after_silence() {
    let mut seed = 6;
    let mut w = BeepWait::new(1500);
    let mut out = None;
    for part in [
        voice(1000, &mut seed),
        silence(300),
        sine(850.0, 400),
        silence(1000),
    ] {
        out = out.or(w.push(&part));
    }
    match out {
        Some(BeepWaitOutcome::Beep { freq_hz, at_ms }) => {
            assert!(freq_hz.abs_diff(850) <= 50);
            assert_eq!(at_ms, 1700);
        }
        other => panic!("{other:?}"),
    }
    let mut w = BeepWait::new(1500);
    let mut out = None;
    for part in [voice(1000, &mut seed), silence(3000)] {
        out = out.or(w.push(&part));
    }
    assert_eq!(out.map(|o| o.at_ms()), Some(2500));
}
