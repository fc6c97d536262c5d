//! Outbound calls end to end, media side (issue 10): `rivr call` places a
//! call through a `[[trunk]]` whose far end is SIPp (`tests/sipp/uas_*.xml`)
//! on 127.0.0.1, with the carrier's RTP socket owned by the test — the
//! prompt rivr's script plays is measured where it arrives (correlation
//! with its source), the keys the far end sends reach the script's
//! `gather`, and the outcome line `rivr call` prints is checked against
//! what the carrier saw.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::{Duration, Instant};

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, EVENT_PT, SIGNALLING};
use common::carrier::Carrier;
use common::dialer::{CallSetup, Dialer};
use common::rtp::RtpPeer;
use common::scratch::Scratch;

/// The issue's bar for "the audio heard is the prompt".
const MIN_NCC: f64 = 0.9;

/// Plays `main_menu`, then gathers what the far end keyed during and
/// after it (type-ahead is kept), and reports it.
const MENU_GATHER: &str = r##"
set_result("direction", call.direction);
set_result("campaign", call.vars.campaign);
play("main_menu");
let keys = gather(#{ max_digits: 3, timeout: 8000, finish_on: "#" });
set_result("keys", keys);
"##;

/// The carrier rings for 600 ms, answers with SDP pointing at the
/// test's socket; rivr's script plays `main_menu` (NCC ≥ 0.9 at the
/// socket) and gathers the RFC 4733 keys the socket sends; the outcome is
/// `answered` with ring and talk times that fit what happened, and rivr's
/// BYE ends the carrier's scenario.
#[test]
fn answered_call_plays_the_prompt_and_gathers_rfc4733_keys() {
    require_sipp!();
    let dir = Scratch::new("out-answer");
    let menu = prompt("main_menu");
    let mut peer = RtpPeer::bind();
    let mut carrier = Carrier::start(
        dir.path(),
        "answer",
        "uas_answer.xml",
        600,
        &[("rtp_port", peer.port.to_string()), ("codec", "0".into())],
    );
    let mut call = Dialer::start(
        dir.path(),
        "answer",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: Some(MENU_GATHER),
            args: &["--var", "campaign=spring"],
            number: "15550100",
        },
    );
    let offer = carrier.wait_offer(SIGNALLING);
    assert_eq!(
        offer.payload_types.first(),
        Some(&0),
        "rivr offers PCMU first by default: {offer:?}"
    );
    assert!(
        offer.payload_types.contains(&EVENT_PT),
        "rivr offers telephone-event as 101: {offer:?}"
    );
    carrier
        .wait_log("acked", SIGNALLING)
        .unwrap_or_else(|| panic!("rivr never ACKed the 200:\n{}", carrier.diagnostics()));
    let answered_at = Instant::now();
    peer.start_sending(offer.rtp, 0, EVENT_PT);

    // Type-ahead: keys while the prompt plays (a plain `play` is not
    // interrupted), 1.5 s in, so the whole prompt is still heard.
    assert!(
        peer.wait_count(75, SIGNALLING),
        "no prompt audio from rivr within {SIGNALLING:?}"
    );
    for key in ['4', '2', '#'] {
        peer.press(key, 100);
        std::thread::sleep(Duration::from_millis(150));
    }
    carrier.expect_pass(SIGNALLING);
    let bye_seen = Instant::now();
    let placed = call.finish(SIGNALLING);

    let packets = peer.packets();
    let heard = Heard::decode(&packets, 0);
    let (lag, ncc) = align(&heard.samples, &to_f32(menu.pcm_8k()));
    println!(
        "[answer] heard {:.2} s in {} packets from {}; main_menu starts {} ms in, NCC = {ncc:.4}; \
         ring_ms {} talk_ms {} (test saw ACK→BYE in {} ms)",
        heard.samples.len() as f64 / 8000.0,
        packets.len(),
        packets
            .first()
            .map(|p| p.from.to_string())
            .unwrap_or_default(),
        lag / 8,
        placed.ms("ring_ms"),
        placed.ms("talk_ms"),
        bye_seen.saturating_duration_since(answered_at).as_millis()
    );
    assert!(
        ncc >= MIN_NCC,
        "the audio at the carrier's socket is not main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );
    assert!(
        packets.iter().all(|p| p.payload_type == 0),
        "rivr sent a payload type other than the answered PCMU"
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(placed.json["q850"], 16, "rivr's BYE: normal clearing");
    assert_eq!(placed.json["trunk"], "carrier", "{}", placed.json);
    assert_eq!(placed.json["number"], "15550100", "{}", placed.json);
    assert_eq!(placed.result("keys"), Some("42"), "{}", placed.json);
    assert_eq!(
        placed.result("direction"),
        Some("outbound"),
        "{}",
        placed.json
    );
    assert_eq!(placed.result("campaign"), Some("spring"), "{}", placed.json);
    let ring = placed.ms("ring_ms");
    assert!(
        (550..5_000).contains(&ring),
        "the carrier rang 600 ms before answering; ring_ms {ring}"
    );
    let talk = placed.ms("talk_ms");
    let prompt_ms = menu.duration_ms();
    assert!(
        talk >= prompt_ms && talk <= prompt_ms + 10_000,
        "talk_ms {talk}: the prompt alone is {prompt_ms} ms, and the call ended right after it"
    );
    let invites = carrier.received("INVITE");
    assert_eq!(invites.len(), 1, "one INVITE (no retransmission needed)");
    assert!(
        invites[0].contains("sip:15550100@127.0.0.1:"),
        "Request-URI names the number at the trunk: {}",
        invites[0]
    );
}

/// Records that the script saw the hangup (`on_hangup`), and whether the
/// prompt ever finished (it must not: the far end hangs up during it).
const HANGUP_WATCH: &str = r#"
fn on_hangup() {
    set_result("hangup_seen", "yes");
}
set_result("started", "yes");
play("main_menu");
set_result("prompt_finished", "yes");
"#;

/// The carrier answers, listens for 2 s of `main_menu` and hangs up:
/// rivr answers its BYE 200, the script's `on_hangup` runs and the prompt
/// never finishes, rivr stops sending, and the outcome is `answered` with
/// about 2 s of talk.
#[test]
fn far_end_bye_mid_prompt_ends_the_script_and_is_answered() {
    require_sipp!();
    let dir = Scratch::new("out-bye");
    let menu = prompt("main_menu");
    let mut peer = RtpPeer::bind();
    let talk_ms = 2000;
    let mut carrier = Carrier::start(
        dir.path(),
        "bye",
        "uas_answer_bye.xml",
        talk_ms,
        &[("rtp_port", peer.port.to_string()), ("codec", "8".into())],
    );
    let mut call = Dialer::start(
        dir.path(),
        "bye",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "codecs = [\"pcma\", \"pcmu\"]",
            script: Some(HANGUP_WATCH),
            args: &[],
            number: "15550101",
        },
    );
    let offer = carrier.wait_offer(SIGNALLING);
    assert_eq!(
        offer.payload_types.first(),
        Some(&8),
        "the trunk's codecs put PCMA first: {offer:?}"
    );
    peer.start_sending(offer.rtp, 8, EVENT_PT);
    let bye_sent = carrier
        .wait_log("bye_sent", SIGNALLING)
        .unwrap_or_else(|| panic!("the carrier never hung up:\n{}", carrier.diagnostics()));
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);

    let packets = peer.packets();
    let last = packets.last().expect("rivr sent RTP");
    let after_bye = packets.iter().filter(|p| p.arrival > bye_sent).count();
    let heard = Heard::decode(&packets, 8);
    let head = to_f32(menu.pcm_8k().get(..12_000).expect("main_menu > 1.5 s"));
    let (lag, ncc) = align(&heard.samples, &head);
    println!(
        "[bye] heard {:.2} s of main_menu (first 1.5 s at {} ms: NCC = {ncc:.4}); \
         {after_bye} packets arrived after the BYE, the last {} ms after it; talk_ms {}",
        heard.samples.len() as f64 / 8000.0,
        lag / 8,
        last.arrival.saturating_duration_since(bye_sent).as_millis(),
        placed.ms("talk_ms")
    );
    assert!(
        ncc >= MIN_NCC,
        "the start of main_menu was not heard: NCC {ncc:.4}"
    );
    assert!(
        packets.iter().all(|p| p.payload_type == 8),
        "rivr sent a payload type other than the answered PCMA"
    );
    assert!(
        last.arrival.saturating_duration_since(bye_sent) < Duration::from_millis(500),
        "rivr kept sending RTP {} ms after the far end's BYE",
        last.arrival.saturating_duration_since(bye_sent).as_millis()
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(placed.result("started"), Some("yes"), "{}", placed.json);
    assert_eq!(
        placed.result("hangup_seen"),
        Some("yes"),
        "on_hangup did not run: {}",
        placed.json
    );
    assert_eq!(
        placed.result("prompt_finished"),
        None,
        "the script went on past a hangup: {}",
        placed.json
    );
    assert_eq!(placed.json["q850"], 16, "normal clearing: {}", placed.json);
    let talk = placed.ms("talk_ms");
    assert!(
        (talk_ms - 100..talk_ms + 1500).contains(&talk),
        "the carrier talked {talk_ms} ms; talk_ms {talk}"
    );
    assert!(
        carrier.log().contains("bye_answered"),
        "rivr did not answer the BYE 200"
    );
}

/// Plays a short prompt, then gathers one key.
const SHORT_GATHER: &str = r##"
play("opening_hours");
let keys = gather(#{ max_digits: 1, timeout: 8000 });
set_result("keys", keys);
"##;

/// 183 with SDP, 1.5 s of early media (the carrier's socket sends audio
/// and a key meanwhile), then a 200 without SDP: the 183's answer stands,
/// so after the answer the prompt is heard at the socket (NCC ≥ 0.9) and
/// the socket's key reaches `gather`, without a second SDP. What rivr sends
/// before the answer is counted and printed.
#[test]
fn early_media_183_then_200_without_sdp_keeps_the_media_path() {
    require_sipp!();
    let dir = Scratch::new("out-early");
    let hours = prompt("opening_hours");
    let mut peer = RtpPeer::bind();
    let early_ms = 1500;
    let mut carrier = Carrier::start(
        dir.path(),
        "early",
        "uas_early_media.xml",
        early_ms,
        &[("rtp_port", peer.port.to_string()), ("codec", "0".into())],
    );
    let mut call = Dialer::start(
        dir.path(),
        "early",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: Some(SHORT_GATHER),
            args: &[],
            number: "15550102",
        },
    );
    let offer = carrier.wait_offer(SIGNALLING);
    let early_at = carrier
        .wait_log("early_sent", SIGNALLING)
        .unwrap_or_else(|| panic!("no 183 sent:\n{}", carrier.diagnostics()));
    // The carrier's early media (an announcement would be here), and a
    // key in it: no script runs before the answer.
    peer.start_sending(offer.rtp, 0, EVENT_PT);
    std::thread::sleep(Duration::from_millis(300));
    peer.press('9', 100);
    let answer_at = carrier
        .wait_log("answer_sent", SIGNALLING)
        .unwrap_or_else(|| panic!("no 200 sent:\n{}", carrier.diagnostics()));
    let early: Vec<_> = peer
        .packets()
        .into_iter()
        .filter(|p| p.arrival < answer_at)
        .collect();
    let early_packets = early.len();
    let early_peak = Heard::decode(&early, 0)
        .samples
        .iter()
        .fold(0f32, |m, s| m.max(s.abs()));
    // After the prompt (and its 8 s gather timeout is not near), one key.
    let frames = usize::try_from(hours.duration_ms() / 20).unwrap_or(0);
    assert!(
        peer.wait_count(early_packets + frames + 10, SIGNALLING),
        "the prompt did not reach the carrier's socket after the 200"
    );
    peer.press('5', 100);
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);

    let packets = peer.packets();
    let after: Vec<_> = packets
        .iter()
        .filter(|p| p.arrival >= answer_at)
        .cloned()
        .collect();
    let heard = Heard::decode(&after, 0);
    let (lag, ncc) = align(&heard.samples, &to_f32(hours.pcm_8k()));
    println!(
        "[early] 183 at +0, 200 at +{} ms; rivr sent {early_packets} RTP packets before the 200 \
         (peak sample {early_peak}); after it opening_hours starts {} ms in, NCC = {ncc:.4}; \
         ring_ms {}; keys {:?}",
        answer_at.saturating_duration_since(early_at).as_millis(),
        lag / 8,
        placed.ms("ring_ms"),
        placed.result("keys")
    );
    assert!(
        ncc >= MIN_NCC,
        "after a 200 without SDP the prompt is not heard at the 183's address: NCC {ncc:.4}"
    );
    assert!(
        early_peak < 64.0,
        "no script runs before the answer, yet rivr sent sound (peak {early_peak}) in early media"
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert!(
        placed
            .stderr
            .contains("keys heard before the answer are not type-ahead"),
        "the key sent during the 183 was not heard (so dropping it proves nothing):\n{}",
        placed.stderr
    );
    assert_eq!(
        placed.result("keys"),
        Some("5"),
        "the key after the prompt must be gathered (and the early-media key not typed ahead): {}",
        placed.json
    );
    let ring = placed.ms("ring_ms");
    assert!(
        (early_ms - 100..early_ms + 2000).contains(&ring),
        "the carrier answered {early_ms} ms after its 183; ring_ms {ring}"
    );
    let acks = carrier.received("ACK");
    assert_eq!(acks.len(), 1, "one ACK for the 200");
    assert!(
        !acks[0].contains("application/sdp"),
        "rivr offered in the INVITE, so its ACK carries no SDP: {}",
        acks[0]
    );
}
