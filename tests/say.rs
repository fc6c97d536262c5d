//! Issue 14 §3, "How it is shown": `say()` over a real call. A SIPp caller
//! dials a flow that says a sentence; what rivr sends (PCMU over RTP)
//! correlates with the same text synthesized here by espeak-ng and turned
//! into a prompt by rivr's own code (decode, resample to 8 kHz). A second
//! call with the same text is a cache hit: `/metrics` shows one synthesis
//! and one memory hit.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;
#[path = "http/client.rs"]
mod http;
#[path = "http/prom.rs"]
mod prom;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::audio::{align, to_f32, Heard};
use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;
use http::{Client, READ};
use prom::{promtool, sample};
use rivr::media::prompt::{decode_bytes, Prompt};

const TEXT: &str = "Thank you for calling rivr. Your balance is 1250 dollars.";

/// The sentence as espeak-ng says it with rivr's defaults (voice en, 160
/// words per minute), made into a prompt the way rivr makes one.
fn offline_reference() -> Prompt {
    let out = Command::new("espeak-ng")
        .args(["-b", "1", "-v", "en", "-s", "160", "--stdout", "--", TEXT])
        .output()
        .expect("espeak-ng is required (`make deps` installs it)");
    assert!(out.status.success(), "espeak-ng failed: {out:?}");
    let (samples, rate) = decode_bytes(out.stdout, Path::new("offline.wav")).expect("a WAV");
    Prompt::from_samples("offline", &samples, rate, PathBuf::from("offline.wav")).expect("8 kHz")
}

fn metrics(api: &Client) -> String {
    let m = api.get("/metrics", Some(READ));
    assert_eq!(m.status, 200, "{}", m.text);
    m.text
}

/// Places one call to the flow and returns how well what it heard matches
/// `reference`, and when (ms into the call's audio).
fn call_and_measure(rivr: &Rivr, label: &str, reference: &[f32]) -> (f64, usize) {
    let mut caller = Caller::answered(
        rivr,
        label,
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            codecs: "0",
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let heard = Heard::decode(&caller.peer.packets(), 0);
    let (lag, ncc) = align(&heard.samples, reference);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["script"], "hangup", "{cdr}");
    (ncc, lag / 8)
}

#[test]
fn said_text_is_heard_as_espeak_says_it_and_the_second_call_is_a_cache_hit() {
    require_sipp!();
    let reference = offline_reference();
    let extra = format!(
        "[store]\nurl = \"sqlite://rivr.db\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\ntoken = \"{READ}\"\nrole = \"read\"\n"
    );
    let rivr = Rivr::start(
        "say",
        RivrConfig {
            extra_tables: extra,
            ..RivrConfig::default()
        }
        .script(
            "3000",
            "say.rhai",
            &format!("answer();\nsay({TEXT:?});\nhangup();\n"),
        ),
    );
    let api = Client::new(rivr.http.expect("the HTTP API address"));
    let r = to_f32(reference.pcm_8k());

    let (first, at) = call_and_measure(&rivr, "say-1", &r);
    let m = metrics(&api);
    let (ok, lint) = promtool(&m);
    assert!(ok, "promtool check metrics: {lint}");
    assert_eq!(sample(&m, "rivr_tts_synth_seconds_count", &[]), 1.0, "{m}");
    let synth = sample(&m, "rivr_tts_synth_total", &[("result", "ok")]);
    let synth_s = sample(&m, "rivr_tts_synth_seconds_sum", &[]);
    println!(
        "[say] first call: NCC {first:.4} at {at} ms; {} ms of speech synthesized in {:.1} ms",
        reference.duration_ms(),
        synth_s * 1000.0
    );
    assert!(first >= 0.9, "the said text was not heard: NCC {first:.4}");
    assert_eq!(synth, 1.0, "one synthesis:\n{m}");
    assert_eq!(
        sample(&m, "rivr_tts_cache_hits_total", &[]),
        0.0,
        "no hit yet:\n{m}"
    );

    let (second, at) = call_and_measure(&rivr, "say-2", &r);
    let m = metrics(&api);
    println!("[say] second call: NCC {second:.4} at {at} ms");
    assert!(
        second >= 0.9,
        "the cached text was not heard: NCC {second:.4}"
    );
    assert_eq!(
        sample(&m, "rivr_tts_synth_total", &[("result", "ok")]),
        1.0,
        "no second synthesis:\n{m}"
    );
    assert_eq!(
        sample(&m, "rivr_tts_cache_hits_total", &[("where", "memory")]),
        1.0,
        "the second call was a cache hit:\n{m}"
    );
    assert!(sample(&m, "rivr_tts_cache_bytes", &[]) > 0.0, "{m}");
    let logged = rivr.stderr().matches("tts: synthesized").count();
    assert_eq!(logged, 1, "one synthesis in the log");
}
