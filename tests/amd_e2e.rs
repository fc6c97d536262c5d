//! Answering-machine detection end to end: `rivr call --amd` through a
//! `[[trunk]]` whose far end is SIPp (`tests/sipp/uas_answer.xml`) with
//! the test's RTP socket as its media. The socket plays an espeak-ng
//! voicemail greeting and a beep (or a person's "hello?"); rivr's script
//! branches on `call.answered_by`, waits for the beep and leaves its
//! message; the socket's recording shows when the message starts.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::caller::{EVENT_PT, SIGNALLING};
use common::carrier::Carrier;
use common::dialer::{CallSetup, Dialer};
use common::rtp::RtpPeer;
use common::scratch::Scratch;
use rivr::media::g711::{self, Law};

const SCRIPT: &str = r##"
set_result("amd", call.answered_by);
if call.answered_by == "machine" {
    let b = wait_for_beep(#{ timeout_ms: 15000 });
    set_result("beep", `${b.beep}`);
    set_result("beep_hz", `${b.freq_hz}`);
}
play("main_menu");
"##;

/// `text` spoken by espeak-ng at 8 kHz, with `lead_ms` of silence before,
/// then a `beep_hz` beep of 500 ms after a 300 ms pause if `beep_hz` > 0,
/// then 3 s of silence; and where the speech (and beep) end, in samples.
fn clip(dir: &Path, text: &str, lead_ms: usize, beep_hz: u32) -> (Vec<i16>, usize) {
    let raw = dir.join("raw.wav");
    let speech = dir.join("speech.wav");
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("run espeak-ng (make deps)")
        .success();
    assert!(ok, "espeak-ng failed");
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&speech)
        .args([
            "norm", "-6", "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02",
            "0.5%", "reverse",
        ])
        .status()
        .expect("run sox (make deps)")
        .success();
    assert!(ok, "sox failed");
    let mut r = hound::WavReader::open(&speech).expect("read speech");
    let mut pcm = vec![0i16; lead_ms * 8];
    pcm.extend(r.samples::<i16>().map(|s| s.expect("sample")));
    if beep_hz > 0 {
        pcm.extend(vec![0i16; 300 * 8]);
        let w = 2.0 * std::f64::consts::PI * f64::from(beep_hz) / 8000.0;
        pcm.extend((0..4000).map(|n| (8000.0 * (w * n as f64).sin()) as i16));
    }
    let end = pcm.len();
    pcm.extend(vec![0i16; 3 * 8000]);
    (pcm, end)
}

/// When rivr's audio at the socket first carries sound (mean |x| > 300).
fn first_sound(peer: &RtpPeer, after: Instant) -> Option<Instant> {
    let mut pcm = [0i16; 160];
    peer.packets()
        .iter()
        .filter(|p| p.arrival >= after && p.payload_type == 0)
        .find(|p| {
            let n = p.payload.len().min(160);
            g711::decode(Law::Ulaw, &p.payload[..n], &mut pcm[..n]);
            pcm[..n].iter().map(|&x| i64::from(x).abs()).sum::<i64>() / n.max(1) as i64 > 300
        })
        .map(|p| p.arrival)
}

fn run(
    label: &str,
    text: &str,
    beep_hz: u32,
) -> (common::dialer::Placed, Duration, Option<Duration>) {
    let dir = Scratch::new(label);
    let (pcm, end) = clip(dir.path(), text, 400, beep_hz);
    let mut peer = RtpPeer::bind();
    let mut carrier = Carrier::start(
        dir.path(),
        label,
        "uas_answer.xml",
        300,
        &[("rtp_port", peer.port.to_string()), ("codec", "0".into())],
    );
    let mut call = Dialer::start(
        dir.path(),
        label,
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: Some(SCRIPT),
            args: &["--amd"],
            number: "15550100",
        },
    );
    let offer = carrier.wait_offer(SIGNALLING);
    carrier
        .wait_log("acked", SIGNALLING)
        .unwrap_or_else(|| panic!("rivr never ACKed the 200:\n{}", carrier.diagnostics()));
    peer.start_sending(offer.rtp, 0, EVENT_PT);
    let started = peer.play_pcm(pcm);
    let greeting_end = started + Duration::from_millis(end as u64 / 8);
    carrier.expect_pass(Duration::from_secs(30));
    let placed = call.finish(SIGNALLING);
    let onset = first_sound(&peer, started).expect("rivr's message never reached the socket");
    let after_end = onset.checked_duration_since(greeting_end);
    println!(
        "[{label}] {}; greeting/beep ended {} ms after the clip started; message heard {} ms after it",
        placed.json,
        end / 8,
        after_end.map_or(-1, |d| d.as_millis() as i64)
    );
    (placed, onset.saturating_duration_since(started), after_end)
}

/// A voicemail greeting and a 1 kHz beep: `machine`, the beep is heard,
/// and the message starts within 500 ms of the beep's end (not before).
#[test]
fn machine_greeting_then_beep_gets_the_message_after_the_beep() {
    require_sipp!();
    let (placed, _, after_beep) = run(
        "amd-machine",
        "Hi, you have reached the voicemail of Sarah. I can't take your call right now. Please leave a message after the tone.",
        1000,
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(placed.json["answered_by"], "machine", "{}", placed.json);
    assert_eq!(placed.result("beep"), Some("true"), "{}", placed.json);
    let after = after_beep.expect("the message started before the beep ended");
    assert!(
        after <= Duration::from_millis(500),
        "message {} ms after the beep",
        after.as_millis()
    );
}

/// A person's "hello?": `human`, and the live flow runs at once.
#[test]
fn human_hello_runs_the_live_flow() {
    require_sipp!();
    let (placed, onset, _) = run("amd-human", "Hello?", 0);
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(placed.json["answered_by"], "human", "{}", placed.json);
    assert_eq!(placed.result("beep"), None, "{}", placed.json);
    assert!(
        onset <= Duration::from_millis(3500),
        "the flow started {} ms after the answer",
        onset.as_millis()
    );
}
