//! Hostile traffic during a live call: garbage and malformed datagrams on
//! rivr's SIP port, and malformed or foreign RTP on the call's media port
//! from another address (the "RTP bleed" attack: a stranger's packets must
//! not steal the media). The call must not notice: the caller still hears
//! main_menu whole, no RTP goes to the attacker, and rivr still answers.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// Datagrams no SIP parser should choke on.
fn hostile_sip(rivr: SocketAddr) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0u8; 1],
        vec![0xff; 1500],
        b"\r\n\r\n".to_vec(),
        b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n".to_vec(),
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        b"BYE sip:rivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbye\r\n\
          From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: nobody\r\nCSeq: 1 BYE\r\n\
          Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
        format!(
            "INVITE sip:1000@{rivr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbig\r\n\
             X-Long: {}\r\n\r\n",
            "A".repeat(60_000)
        )
        .into_bytes(),
    ];
    // Every prefix of a valid INVITE with SDP.
    let invite = format!(
        "INVITE sip:1000@{rivr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKcut\r\n\
         From: <sip:a@127.0.0.1>;tag=9\r\nTo: <sip:1000@{rivr}>\r\nCall-ID: cut@x\r\n\
         CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n\
         Content-Length: 60\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 9 RTP/AVP 0\r\n"
    );
    let bytes = invite.as_bytes();
    for cut in (0..bytes.len()).step_by(7) {
        out.push(bytes[..cut].to_vec());
    }
    out
}

/// RTP packets from a stranger: malformed headers, then a run of
/// well-formed, in-sequence loud packets with another SSRC.
fn hostile_rtp() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80],
        vec![0x80, 0x00, 0x00],
        vec![0x40; 172], // version 1
        [vec![0x8f, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], vec![0; 8]].concat(), // 15 CSRCs, short
        [vec![
            0x90, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff,
        ]]
        .concat(), // huge extension
        [
            vec![0xa0, 0x00, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1],
            vec![0xff; 4],
            vec![200],
        ]
        .concat(), // padding > payload
        [
            vec![0x80, 0x65, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1],
            vec![1, 0x8a],
        ]
        .concat(), // short telephone-event
    ];
    for i in 0..150u16 {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&(1000 + i).to_be_bytes());
        p.extend_from_slice(&(u32::from(i) * 160).to_be_bytes());
        p.extend_from_slice(&0xbad0_beefu32.to_be_bytes());
        p.extend(std::iter::repeat_n(0x80, 160)); // full-scale µ-law
        out.push(p);
    }
    out
}

#[test]
fn garbage_on_sip_and_rtp_ports_does_not_disturb_a_call() {
    require_sipp!();
    let rivr = Rivr::start("hostile", RivrConfig::default());
    let menu = prompt("main_menu");
    let hold_ms = menu.duration_ms() + 3000;
    let mut caller = Caller::answered(
        &rivr,
        "hostile",
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "1000",
            hold_ms,
            ..CallSpec::default()
        },
    );
    assert!(caller.peer.wait_count(50, SIGNALLING), "no RTP from rivr");

    // SIP junk and RTP junk come from different sockets, so SIP answers
    // to the junk are not mistaken for media sent to the attacker. The SIP
    // junk (~50 INVITE prefixes at once) comes from another address than
    // the caller's: from the caller's own address it would (rightly) get
    // that address silenced by the per-source flood control (sip::flood).
    let sip_attacker = UdpSocket::bind("127.0.0.3:0").expect("bind SIP attacker");
    let attacker = UdpSocket::bind("127.0.0.1:0").expect("bind RTP attacker");
    attacker
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let sip: SocketAddr = ([127, 0, 0, 1], rivr.sip_port).into();
    let sip_junk = hostile_sip(sip);
    let rtp_junk = hostile_rtp();
    for d in &sip_junk {
        let _ = sip_attacker.send_to(d, sip);
    }
    let mut buf = [0u8; 2048];
    let mut to_attacker = 0;
    for p in &rtp_junk {
        let _ = attacker.send_to(p, caller.answer.rtp);
        // Paced like a phone, so a latching rule that wants a run of
        // in-sequence packets sees one.
        if attacker.recv_from(&mut buf).is_ok() {
            to_attacker += 1;
        }
    }
    caller
        .sipp
        .expect_pass(SIGNALLING + Duration::from_millis(hold_ms));
    attacker
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    while attacker.recv_from(&mut buf).is_ok() {
        to_attacker += 1;
    }

    let packets = caller.peer.packets();
    let heard = Heard::decode(&packets, 0);
    let (_, ncc) = align(&heard.samples, &to_f32(menu.pcm_8k()));
    let max_gap = packets
        .windows(2)
        .map(|w| w[1].arrival.saturating_duration_since(w[0].arrival))
        .max()
        .unwrap_or_default();
    println!(
        "[hostile] sent {} SIP and {} RTP junk datagrams; main_menu NCC = {ncc:.4}; \
         max RTP gap {} ms; datagrams rivr sent to the attacker: {to_attacker}",
        sip_junk.len(),
        rtp_junk.len(),
        max_gap.as_millis()
    );
    assert!(ncc >= 0.9, "the call's audio suffered: NCC {ncc:.4}");
    assert!(
        max_gap < Duration::from_millis(200),
        "rivr's RTP to the caller paused {} ms during the attack",
        max_gap.as_millis()
    );
    assert_eq!(
        to_attacker, 0,
        "rivr sent datagrams to a stranger: RTP latched on to unsolicited packets?"
    );
    let spec = CallSpec {
        scenario: "uac_options.xml",
        ..CallSpec::default()
    };
    Sipp::start(rivr.dir.path(), "hostile-options", rivr.sip_port, &spec).expect_pass(SIGNALLING);
    let log = rivr.stderr();
    assert!(!log.contains("panicked"), "rivr logged a panic:\n{log}");
}
