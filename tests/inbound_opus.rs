//! An Opus call end to end (issue 3): SIPp offers Opus first (payload type
//! 111, RFC 7587 fmtp, telephone-event at 48 kHz), rivr must answer Opus
//! with its own fmtp, send the menu prompt from its pre-encoded Opus cache
//! with a 48 kHz RTP clock, and the caller — decoding with libopus, as a
//! phone would — must hear audio that correlates with the prompt.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::Duration;

use common::audio::{align, decode_opus, to_f32};
use common::caller::{prompt, SIGNALLING};
use common::rtp::RtpPeer;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// The bar for an Opus call hearing the prompt.
const MIN_NCC: f64 = 0.85;
const OPUS_PT: u8 = 111;

#[test]
fn an_opus_caller_gets_opus_and_hears_the_menu_prompt() {
    require_sipp!();
    let rivr = Rivr::start("opus", RivrConfig::default());
    let menu = prompt("main_menu");
    let hold_ms = menu.duration_ms() + 3000;
    let peer = RtpPeer::bind();
    let mut sipp = Sipp::start(
        rivr.dir.path(),
        "opus",
        rivr.sip_port,
        &CallSpec {
            scenario: "uac_opus_hangup.xml",
            number: "1000",
            rtp_port: peer.port,
            hold_ms,
            ..CallSpec::default()
        },
    );
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(
        answer.payload_type, OPUS_PT,
        "Opus was offered first: rivr must answer with it"
    );
    sipp.expect_pass(SIGNALLING + Duration::from_millis(hold_ms));

    // The answer's SDP, as SIPp received it.
    let messages = sipp.messages();
    let ok = messages
        .split("SIP/2.0 200 OK")
        .nth(1)
        .expect("SIPp logged the 200 OK");
    for line in [
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 maxplaybackrate=16000; sprop-maxcapturerate=16000; stereo=0; sprop-stereo=0; useinbandfec=1; ptime=20",
        "a=rtpmap:110 telephone-event/48000",
    ] {
        assert!(ok.contains(line), "the 200 OK lacks {line:?}:\n{ok}");
    }

    let packets = peer.packets();
    assert!(!packets.is_empty(), "rivr sent no RTP");
    assert!(
        packets.iter().all(|p| p.payload_type == OPUS_PT),
        "rivr sent a payload type other than the negotiated Opus"
    );
    let (heard, decoded, lost) = decode_opus(&packets, OPUS_PT);
    let (lag, ncc) = align(&to_f32(&heard), &to_f32(menu.pcm_8k()));
    let mean = packets.iter().map(|p| p.payload.len()).sum::<usize>() as f64 / decoded as f64;
    println!(
        "[opus] {decoded} packets ({lost} missing), mean payload {mean:.1} bytes \
         ({:.1} kb/s), main_menu starts {} ms in, NCC = {ncc:.4}",
        mean * 8.0 * 50.0 / 1000.0,
        lag / 8
    );
    assert!(
        ncc >= MIN_NCC,
        "the decoded Opus audio does not correlate with main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );
    let cdr = rivr.wait_cdr(&answer.call_id, SIGNALLING);
    assert_eq!(cdr["answered"], true, "{cdr}");
}

/// A late offer answered with Opus in the ACK: the call's media is switched
/// to Opus (48 kHz clock, libopus decoder) only when the ACK arrives.
#[test]
fn a_late_offer_answered_with_opus_in_the_ack_plays_opus() {
    require_sipp!();
    let rivr = Rivr::start("late-opus", RivrConfig::default());
    let menu = prompt("main_menu");
    let hold_ms = 6000;
    let peer = RtpPeer::bind();
    let mut sipp = Sipp::start(
        rivr.dir.path(),
        "late-opus",
        rivr.sip_port,
        &CallSpec {
            scenario: "uac_late_offer_opus.xml",
            number: "1000",
            rtp_port: peer.port,
            hold_ms,
            ..CallSpec::default()
        },
    );
    sipp.wait_answer(SIGNALLING);
    sipp.expect_pass(SIGNALLING + Duration::from_millis(hold_ms));
    let packets = peer.packets();
    assert!(!packets.is_empty(), "no RTP after the ACK's answer");
    assert!(
        packets.iter().all(|p| p.payload_type == OPUS_PT),
        "rivr must send the codec the ACK chose (Opus, 111)"
    );
    let (heard, decoded, _) = decode_opus(&packets, OPUS_PT);
    let head = &menu.pcm_8k()[..8000 * 4];
    let (lag, ncc) = align(&to_f32(&heard), &to_f32(head));
    println!(
        "[late-opus] {decoded} Opus packets; main_menu NCC = {ncc:.4} at {} ms",
        lag / 8
    );
    assert!(
        ncc >= MIN_NCC,
        "main_menu not heard over Opus after a late offer: NCC {ncc:.4}"
    );
}
