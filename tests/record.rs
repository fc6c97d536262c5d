//! `record()` end to end (issue 14 §4): a SIPp caller whose RTP (PCMU)
//! the test sends — a spoken prompt between silences and RFC 4733 keys —
//! calls a flow that records it. The WAV rivr wrote is compared with what
//! was sent (normalised cross-correlation with the µ-law round trip of
//! the speech), for each way a recording ends: silence, the `#` key, its
//! maximum, the caller hanging up. Disk errors — a file where the
//! recordings folder should be, and a full disk (the part file a link to
//! `/dev/full`) — fail the verb where the script can catch it, and the
//! call goes on. A recording played back in the same call is heard as it
//! was recorded.
//!
//! The measure is the NCC of 200 ms segments of the speech, each aligned
//! on its own (as tests/common/phone.rs's `segment_ncc` does for
//! bridges): the listener gives back its start delay by dropping a quiet
//! frame (or, after 2 s without a pause, one of speech), which shifts what
//! follows by 20 ms — the whole-stream NCC then falls well below 1 though
//! nothing was lost; it is printed beside.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::path::{Path, PathBuf};

use rivr::codec::Codec;

use common::audio::{align, g711_roundtrip, ncc_at, to_f32};
use common::caller::SIGNALLING;
use common::phone::{speech, Phone, Script};
use common::server::{Rivr, RivrConfig};
use common::sipp::{Answer, CallSpec, Sipp};

/// The issue's bar: what was recorded is what was sent.
const MIN_NCC: f64 = 0.95;
/// Seconds of speech the caller says.
const SPEECH_S: f32 = 3.0;
/// Silence the caller sends between its key and its speech: time for the
/// listener to give back its start delay in a pause, not in the speech.
const LEAD_MS: usize = 1000;

/// The caller waits for this key before recording starts, so the test
/// knows where the recording begins in what the phone sends.
const PREAMBLE: &str = "answer();\ngather(#{ max_digits: 1, timeout: 20000, finish_on: \"\" });\n";

struct Call {
    rivr: Rivr,
    phone: Phone,
    sipp: Sipp,
    answer: Answer,
}

/// Starts rivr with `flow` on 7000 (after `prepare` has set up its
/// folder), places a PCMU call with `scenario`, and sends `audio` once
/// answered.
fn call(
    label: &str,
    flow: &str,
    prepare: impl FnOnce(&Path),
    scenario: &str,
    hold_ms: u64,
    audio: impl FnOnce(&mut Script),
) -> Call {
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script("7000", "record.rhai", &format!("{PREAMBLE}{flow}")),
    );
    prepare(rivr.dir.path());
    let phone = Phone::bind();
    let mut sipp = Sipp::start(
        rivr.dir.path(),
        "caller",
        rivr.sip_port,
        &CallSpec {
            scenario,
            number: "7000",
            rtp_port: phone.addr().port(),
            codecs: "0",
            hold_ms,
            ..CallSpec::default()
        },
    );
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 0, "PCMU");
    let mut phone = phone;
    let mut s = Script::new(Codec::Pcmu);
    s.press('1', 100);
    audio(&mut s);
    phone.play(&mut s, answer.rtp);
    Call {
        rivr,
        phone,
        sipp,
        answer,
    }
}

/// The call's results (its CDR's `results`), once it has ended.
fn results(c: &mut Call) -> serde_json::Map<String, serde_json::Value> {
    c.sipp.expect_pass(SIGNALLING);
    let cdr = c.rivr.wait_cdr(&c.answer.call_id, SIGNALLING);
    println!("  CDR results: {}", cdr["results"]);
    assert!(
        !c.rivr.stderr().contains("the disk fell behind"),
        "no frame was lost on the way to the file"
    );
    cdr["results"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("no results in {cdr}"))
}

fn text<'a>(r: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> &'a str {
    r.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no result {key:?} in {r:?}"))
}

fn recordings(dir: &Path) -> PathBuf {
    dir.join("recordings")
}

/// A WAV rivr wrote: 8 kHz mono 16-bit, read whole (a file not closed
/// properly fails here).
fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a valid WAV: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16),
        "{}",
        path.display()
    );
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    assert_eq!(
        r.duration() as usize,
        samples.len(),
        "the header's length is the data's"
    );
    samples
}

/// How well `got` carries `sent` (as the phone µ-law coded it): the
/// NCC of the best fit of the whole, and of each 200 ms segment with
/// speech, aligned on its own within ±60 ms of the whole's lag — the
/// jitter buffer may add or give back a frame of delay when the phone's
/// packets come late on a loaded machine, which shifts what follows and
/// loses nothing. A segment the shift falls in is also read as two halves,
/// each aligned on its own. Returns the segments' mean; asserts none is
/// lost (below 0.8).
fn ncc(what: &str, got: &[f32], sent: &[i16]) -> f64 {
    const SEG: usize = 1600;
    const SLACK: usize = 480;
    let r = g711_roundtrip(sent, 0);
    let (lag, whole) = align(got, &r);
    let best = |part: &[f32], at: usize| {
        (at.saturating_sub(SLACK)..=at + SLACK)
            .map(|l| ncc_at(got, part, l))
            .fold(f64::MIN, f64::max)
    };
    let energy = |x: &[f32]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let mut segs = Vec::new();
    for (k, seg) in r.chunks_exact(SEG).enumerate() {
        if energy(seg) / (SEG as f64) < 300.0 * 300.0 {
            continue;
        }
        let at = lag + k * SEG;
        let (h1, h2) = seg.split_at(SEG / 2);
        let (e1, e2) = (energy(h1), energy(h2));
        let halves = (best(h1, at) * e1 + best(h2, at + SEG / 2) * e2) / (e1 + e2).max(1.0);
        segs.push(best(seg, at).max(halves));
    }
    assert!(segs.len() >= 4, "{what}: too little speech to measure");
    let mean = segs.iter().sum::<f64>() / segs.len() as f64;
    let min = segs.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "  {what}: whole NCC {whole:.4} at {} ms; {} segments of 200 ms: mean {mean:.4}, lowest {min:.4} ({} ms of speech in {} ms)",
        lag / 8,
        segs.len(),
        sent.len() / 8,
        got.len() / 8
    );
    assert!(min >= 0.8, "{what}: a segment lost ({min:.4})");
    mean
}

/// Where the speech starts in a recording, in ms.
fn speech_at(wav: &[i16], sent: &[i16]) -> u64 {
    ms_of(align(&to_f32(wav), &g711_roundtrip(sent, 0)).0)
}

fn ms_of(samples: usize) -> u64 {
    samples as u64 / 8
}

/// Ended by silence (2 s of it after the speech), then played back in
/// the same call: the recording holds the speech, and the caller hears
/// it again.
#[test]
fn ended_by_silence_and_played_back() {
    require_sipp!();
    let said = speech("water_info", SPEECH_S);
    let flow = r#"
let r = record(#{ silence_ms: 2000, max_ms: 30000 });
set_result("ended_by", r.ended_by);
set_result("duration_ms", r.duration_ms);
set_result("id", r.id);
play("rec:" + r.id);
hangup();
"#;
    let mut c = call(
        "rec-silence",
        flow,
        |_| {},
        "uac_wait_bye.xml",
        0,
        |s| {
            s.silence(LEAD_MS).audio(&said).silence(12_000);
        },
    );
    let r = results(&mut c);
    assert_eq!(text(&r, "ended_by"), "silence");
    let id = text(&r, "id").to_string();
    assert_eq!(text(&r, "recordings"), id, "listed in the CDR's results");
    let wav = read_wav(&recordings(c.rivr.dir.path()).join(format!("{id}.wav")));
    let duration: u64 = text(&r, "duration_ms").parse().unwrap();
    assert_eq!(duration, ms_of(wav.len()));
    // From where the speech starts in the file (the record's own start
    // varies with the machine's load): up to its last loud frame (above
    // rivr's threshold, RMS 300), then the 2 s of silence that end it.
    let after = duration.saturating_sub(speech_at(&wav, &said));
    let loud_until = said
        .chunks(160)
        .rposition(|f| {
            f.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 160.0 >= 300.0 * 300.0
        })
        .map_or(0, |i| (i as u64 + 1) * 20);
    println!(
        "  {after} ms recorded from the speech on; its last loud frame ends at {loud_until} ms"
    );
    assert!(
        after.abs_diff(loud_until + 2000) <= 200,
        "recorded {after} ms from the speech on, for {loud_until} ms of speech + 2 s of silence"
    );
    assert!(ncc("recorded vs sent", &to_f32(&wav), &said) >= MIN_NCC);

    let heard = c.phone.heard(Codec::Pcmu);
    let speech_part = &wav[..wav.len().saturating_sub(16_000)];
    let back = ncc("played back vs recorded", &heard, speech_part);
    assert!(back >= MIN_NCC, "the playback is the recording ({back:.4})");
    assert!(
        ncc("played back vs sent", &heard, &said) >= MIN_NCC,
        "the caller hears what they said"
    );
}

/// Ended by `#`: the key is not in the recording, a key pressed before it
/// is left for the next gather.
#[test]
fn ended_by_the_hash_key() {
    require_sipp!();
    let said = speech("survey_intro", SPEECH_S);
    let flow = r#"
let r = record(#{ silence_ms: 0 });
set_result("ended_by", r.ended_by);
set_result("key", r.key);
set_result("duration_ms", r.duration_ms);
set_result("id", r.id);
set_result("next", gather(#{ max_digits: 1, timeout: 100 }));
hangup();
"#;
    let mut c = call(
        "rec-key",
        flow,
        |_| {},
        "uac_wait_bye.xml",
        0,
        |s| {
            s.silence(LEAD_MS)
                .audio(&said)
                .silence(300)
                .press('7', 100)
                .silence(200)
                .press('#', 100)
                .silence(3000);
        },
    );
    let r = results(&mut c);
    assert_eq!((text(&r, "ended_by"), text(&r, "key")), ("key", "#"));
    assert_eq!(
        text(&r, "next"),
        "7",
        "a key during the recording is type-ahead"
    );
    let id = text(&r, "id");
    let wav = read_wav(&recordings(c.rivr.dir.path()).join(format!("{id}.wav")));
    // From where the speech starts in the file: 3.0 + 0.3 + 0.14 (the 7)
    // + 0.2 s until the #.
    let after = ms_of(wav.len()).saturating_sub(speech_at(&wav, &said));
    assert!(
        (3400..=3900).contains(&after),
        "recorded {after} ms from the speech on until the #"
    );
    assert!(ncc("recorded vs sent", &to_f32(&wav), &said) >= MIN_NCC);
}

/// Ended by `max_ms` while the caller still talks: exactly that long.
#[test]
fn ended_by_max_ms() {
    require_sipp!();
    let said = speech("water_info", SPEECH_S);
    let flow = r#"
let r = record(#{ max_ms: 2500, silence_ms: 0 });
set_result("ended_by", r.ended_by);
set_result("duration_ms", r.duration_ms);
set_result("id", r.id);
hangup();
"#;
    let mut c = call(
        "rec-max",
        flow,
        |_| {},
        "uac_wait_bye.xml",
        0,
        |s| {
            s.silence(LEAD_MS).audio(&said).silence(2000);
        },
    );
    let r = results(&mut c);
    assert_eq!(text(&r, "ended_by"), "max");
    assert_eq!(text(&r, "duration_ms"), "2500");
    let wav = read_wav(&recordings(c.rivr.dir.path()).join(format!("{}.wav", text(&r, "id"))));
    assert_eq!(wav.len(), 20_000);
    // The first 1.2 s of the speech are in it.
    assert!(
        ncc(
            "recorded vs sent (first 1.2 s)",
            &to_f32(&wav),
            &said[..9600]
        ) >= MIN_NCC
    );
}

/// The caller hangs up mid-sentence: the file is kept, closed properly
/// (a valid WAV whose header gives its length) and listed in the CDR.
#[test]
fn ended_by_hangup_keeps_a_valid_file() {
    require_sipp!();
    let said = speech("water_info", SPEECH_S);
    let flow = r#"
let r = record(#{ silence_ms: 0 });
set_result("not_reached", "yes");
"#;
    // SIPp hangs up 3.5 s after its ACK.
    let mut c = call(
        "rec-hangup",
        flow,
        |_| {},
        "uac_hangup.xml",
        3500,
        |s| {
            s.silence(LEAD_MS).audio(&said).silence(2000);
        },
    );
    let r = results(&mut c);
    assert!(!r.contains_key("not_reached"), "the hangup ends the script");
    let id = text(&r, "recordings").to_string();
    let wav = read_wav(&recordings(c.rivr.dir.path()).join(format!("{id}.wav")));
    let duration = ms_of(wav.len());
    println!("  recorded {duration} ms before the hangup");
    assert!((2800..=3600).contains(&duration), "{duration} ms");
    assert!(
        ncc(
            "recorded vs sent (first 1.6 s)",
            &to_f32(&wav),
            &said[..12_800]
        ) >= MIN_NCC
    );
    assert!(
        !recordings(c.rivr.dir.path())
            .join(format!("{id}.wav.part"))
            .exists(),
        "no part file left"
    );
}

/// The recordings folder cannot be made (a file is where it should be):
/// the script catches the error and the call goes on.
#[test]
fn a_folder_that_cannot_be_made_fails_the_verb_not_the_call() {
    require_sipp!();
    let flow = r#"
try {
    record(#{ silence_ms: 1000 });
    set_result("recorded", "yes");
} catch (e) {
    set_result("error", e);
}
play("tone:beep");
set_result("after", "yes");
hangup();
"#;
    let block = |dir: &Path| std::fs::write(recordings(dir), b"a file, not a folder").unwrap();
    let mut c = call("rec-notdir", flow, block, "uac_wait_bye.xml", 0, |s| {
        s.silence(3000);
    });
    let r = results(&mut c);
    let e = text(&r, "error");
    assert!(
        e.contains("[media] recordings") && e.contains("recordings"),
        "the error names the folder and the key: {e}"
    );
    assert_eq!(text(&r, "after"), "yes", "the call went on");
    assert!(!r.contains_key("recorded") && !r.contains_key("recordings"));
}

/// A full disk: every write fails with ENOSPC (the part file is a link
/// to `/dev/full`). The verb fails with the reason, nothing is kept or
/// listed, the call goes on.
#[test]
fn a_full_disk_fails_the_verb_not_the_call() {
    require_sipp!();
    assert!(Path::new("/dev/full").exists(), "/dev/full is needed");
    let said = speech("water_info", SPEECH_S);
    let flow = r#"
try {
    record(#{ name: "full", silence_ms: 0, max_ms: 3000 });
    set_result("recorded", "yes");
} catch (e) {
    set_result("error", e);
}
set_result("after", "yes");
hangup();
"#;
    let full = |dir: &Path| {
        std::fs::create_dir_all(recordings(dir)).unwrap();
        std::os::unix::fs::symlink("/dev/full", recordings(dir).join("full.wav.part")).unwrap();
    };
    let mut c = call("rec-full", flow, full, "uac_wait_bye.xml", 0, |s| {
        s.silence(LEAD_MS).audio(&said).silence(2000);
    });
    let r = results(&mut c);
    let e = text(&r, "error");
    assert!(e.contains("No space left on device"), "{e}");
    assert_eq!(text(&r, "after"), "yes", "the call went on");
    assert!(!r.contains_key("recordings"));
    let dir = recordings(c.rivr.dir.path());
    assert!(!dir.join("full.wav").exists() && !dir.join("full.wav.part").exists());
}
