//! Calls through a `;transport=tcp` trunk (issue 10 §2), with SIPp as the
//! carrier on TCP (`-t t1`: one connection): rivr connects on demand, its
//! INVITE carries `Via: SIP/2.0/TCP` and a Contact with `;transport=tcp`
//! and is sent once (no timer A on a reliable transport), the answer,
//! media and rivr's BYE go over that connection; a digest challenge is
//! answered on it; a trunk nobody listens on ends the attempt as
//! `unreachable` at once instead of after timer B.
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
use common::sipp::free_port;

const MIN_NCC: f64 = 0.9;

const PLAY_MENU: &str = r#"
play("main_menu");
"#;

/// The value of the first header `name` of a message.
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// SIPp answers over TCP after 300 ms of ringing; rivr plays `main_menu`
/// (NCC ≥ 0.9 where it arrives) and hangs up with a BYE that reaches SIPp
/// on the same connection. One INVITE, Via TCP, Contact `;transport=tcp`.
#[test]
fn tcp_trunk_call_is_answered_with_media_and_ended_by_rivr() {
    require_sipp!();
    let dir = Scratch::new("out-tcp");
    let menu = prompt("main_menu");
    let mut peer = RtpPeer::bind();
    let mut carrier = Carrier::start_with(
        dir.path(),
        "tcp",
        "uas_answer.xml",
        300,
        &[("rtp_port", peer.port.to_string()), ("codec", "0".into())],
        &["-t", "t1"],
    );
    let started = Instant::now();
    let mut call = Dialer::start(
        dir.path(),
        "tcp",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: ";transport=tcp",
            trunk_extra: "",
            script: Some(PLAY_MENU),
            args: &[],
            number: "15550160",
        },
    );
    let offer = carrier.wait_offer(SIGNALLING);
    carrier
        .wait_log("acked", SIGNALLING)
        .unwrap_or_else(|| panic!("rivr never ACKed the 200:\n{}", carrier.diagnostics()));
    peer.start_sending(offer.rtp, 0, EVENT_PT);
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);

    let packets = peer.packets();
    let heard = Heard::decode(&packets, 0);
    let (lag, ncc) = align(&heard.samples, &to_f32(menu.pcm_8k()));
    let invites = carrier.received("INVITE");
    let byes = carrier.received("BYE");
    println!(
        "[tcp] call took {:?}; heard {:.2} s in {} packets, main_menu {} ms in, NCC = {ncc:.4}; \
         ring_ms {} talk_ms {}; {} INVITE, {} BYE over TCP",
        started.elapsed(),
        heard.samples.len() as f64 / 8000.0,
        packets.len(),
        lag / 8,
        placed.ms("ring_ms"),
        placed.ms("talk_ms"),
        invites.len(),
        byes.len()
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(placed.json["q850"], 16, "rivr's BYE: normal clearing");
    assert!(
        ncc >= MIN_NCC,
        "the audio at the carrier's socket is not main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );
    assert_eq!(
        invites.len(),
        1,
        "one INVITE: no timer A retransmission on TCP (RFC 3261 §17.1.1.2)"
    );
    let invite = &invites[0];
    let via = header(invite, "Via").unwrap_or_default();
    assert!(via.starts_with("SIP/2.0/TCP "), "Via over TCP: {via}");
    let contact = header(invite, "Contact").unwrap_or_default();
    assert!(
        contact.contains(";transport=tcp"),
        "the Contact asks for TCP: {contact}"
    );
    assert!(
        invite.starts_with("INVITE sip:15550160@127.0.0.1:") && invite.contains(";transport=tcp"),
        "Request-URI names the number at the TCP trunk: {}",
        invite.lines().next().unwrap_or_default()
    );
    assert_eq!(byes.len(), 1, "rivr's BYE reached SIPp over the connection");
    assert!(
        carrier.messages().contains("TCP message received"),
        "SIPp read rivr's requests from TCP"
    );
}

/// SIPp (TCP) challenges with 401 and checks the MD5 digest with
/// `verifyauth`; rivr answers the challenge on the same connection and the
/// call is answered.
#[test]
fn tcp_trunk_answers_a_digest_challenge() {
    require_sipp!();
    let dir = Scratch::new("out-tcp-auth");
    let peer = RtpPeer::bind();
    let mut carrier = Carrier::start_with(
        dir.path(),
        "tcp-auth",
        "uas_auth.xml",
        0,
        &[
            ("challenge_line", "SIP/2.0 401 Unauthorized".into()),
            ("challenge_header", "WWW-Authenticate".into()),
            ("user", "acct".into()),
            ("password", "s3cret".into()),
            ("rtp_port", peer.port.to_string()),
        ],
        &["-t", "t1"],
    );
    let mut call = Dialer::start(
        dir.path(),
        "tcp-auth",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: ";transport=tcp",
            trunk_extra: "username = \"acct\"\npassword = \"s3cret\"\n",
            script: None,
            args: &[],
            number: "15550161",
        },
    );
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);
    let invites = carrier.received("INVITE");
    println!(
        "[tcp-auth] outcome {}; {} INVITEs over TCP",
        placed.outcome(),
        invites.len()
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert!(
        carrier.log().contains("auth_valid"),
        "SIPp's verifyauth accepted the digest:\n{}",
        carrier.diagnostics()
    );
    assert_eq!(
        invites.len(),
        2,
        "the INVITE and its retry with credentials"
    );
    assert!(
        header(&invites[1], "Authorization").is_some_and(|a| a.starts_with("Digest ")),
        "the retry carries the digest: {}",
        invites[1]
    );
}

/// Nothing listens on the trunk's TCP port: the connect is refused, and
/// the attempt ends `unreachable` within a few seconds, not after timer B
/// (32 s).
#[test]
fn tcp_trunk_connect_failure_is_unreachable_at_once() {
    let dir = Scratch::new("out-tcp-refused");
    let port = free_port();
    let mut call = Dialer::start(
        dir.path(),
        "tcp-refused",
        &CallSetup {
            trunk_port: port,
            trunk_params: ";transport=tcp",
            trunk_extra: "",
            script: None,
            args: &[],
            number: "15550162",
        },
    );
    let placed = call.finish(Duration::from_secs(30));
    println!(
        "[tcp-refused] outcome {} after {:?}",
        placed.outcome(),
        placed.elapsed
    );
    assert_eq!(placed.outcome(), "unreachable", "{}", placed.json);
    assert!(
        placed.elapsed < Duration::from_secs(10),
        "a refused connect ends the attempt at once, not at timer B: {:?}",
        placed.elapsed
    );
    assert!(
        placed.stderr.contains("TCP connect failed"),
        "the refused connect is logged:\n{}",
        placed.stderr
    );
}
