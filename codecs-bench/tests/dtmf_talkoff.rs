//! Talk-off: rivr's in-band DTMF detector must report no key for speech or
//! music. The material is `codecs_bench::signals`, the corpus the `report`
//! binary scores rivr and spandsp on: speech synthesised at test time by
//! espeak-ng (10 languages, two voices each) and resampled to 8 kHz by sox,
//! and music-like signals (chords of 3–4 notes, tone sweeps, sustained
//! notes with harmonics) generated from a fixed seed. Every signal is
//! scanned loud (peak at −1 dBFS) and 20 dB quieter, as decoded G.711 would
//! deliver it.

use codecs_bench::dtmf::{rivr_keys, scaled, TALKOFF_GAINS_DB};
use codecs_bench::signals::{music, speech};

const RATE: f64 = 8000.0;

struct Scan {
    seconds: f64,
    false_keys: Vec<String>,
}

impl Scan {
    fn new() -> Self {
        Self {
            seconds: 0.0,
            false_keys: Vec::new(),
        }
    }

    /// Runs the detector over `pcm` at each talk-off gain.
    fn run(&mut self, name: &str, pcm: &[i16]) {
        for gain_db in TALKOFF_GAINS_DB {
            for d in rivr_keys(&scaled(pcm, gain_db)) {
                self.false_keys.push(format!(
                    "{name} ({gain_db} dB): '{}' at {:.3} s",
                    d.digit,
                    d.start_seconds()
                ));
            }
        }
        self.seconds += pcm.len() as f64 / RATE;
    }
}

#[test]
fn music_like_signals_give_no_key() {
    let mut scan = Scan::new();
    for (name, pcm) in music::talkoff_corpus() {
        scan.run(name, &pcm);
    }
    println!(
        "music-like talk-off: {:.1} minutes, {} false keys",
        scan.seconds / 60.0,
        scan.false_keys.len()
    );
    assert!(scan.seconds >= 300.0);
    assert!(scan.false_keys.is_empty(), "{:#?}", scan.false_keys);
}

#[test]
fn speech_in_several_voices_and_languages_gives_no_key() {
    if !speech::tools_available() {
        assert!(
            std::env::var_os("RIVR_SKIP_SOX").is_some_and(|v| v == "1"),
            "espeak-ng and sox are required (`make deps` installs them); \
             set RIVR_SKIP_SOX=1 to skip the speech talk-off on purpose"
        );
        eprintln!(
            "\n*** SKIPPED speech talk-off (RIVR_SKIP_SOX=1): espeak-ng or sox missing ***\n"
        );
        return;
    }
    let voices = speech::talkoff_corpus().expect("espeak-ng and sox make the corpus");
    let mut scan = Scan::new();
    for voice in &voices {
        scan.run(&voice.label, &voice.pcm);
    }
    println!(
        "speech talk-off: {:.1} minutes, {} voice/language combinations, {} false keys",
        scan.seconds / 60.0,
        voices.len(),
        scan.false_keys.len()
    );
    assert_eq!(voices.len(), 2 * speech::PASSAGES.len());
    assert!(
        scan.seconds >= 300.0,
        "only {:.0} s of speech",
        scan.seconds
    );
    assert!(scan.false_keys.is_empty(), "{:#?}", scan.false_keys);
}

#[test]
fn scan_reports_a_real_key_hidden_in_music() {
    // Control: the same scan over the same kind of material does report a
    // key when one is there, so "zero false keys" above means something.
    let mut pcm = music::chords(&mut music::Rng(42), 3.0);
    let mut generator = rivr::media::tone::ToneGenerator::dtmf('7', 60, 0, -6.0).expect("key");
    let mut key = vec![0i16; 480];
    generator.fill(&mut key);
    let at = 2 * 8000;
    pcm.splice(at..at, key);
    let mut scan = Scan::new();
    scan.run("chords with a key", &pcm);
    assert!(
        !scan.false_keys.is_empty() && scan.false_keys.iter().all(|k| k.contains("'7'")),
        "{:?}",
        scan.false_keys
    );
}
