//! Reflection and amplification (issue 9 §4): an INVITE whose SDP names
//! someone else's address (a "victim") must not turn rivr into a media
//! cannon aimed at it. rivr sends no RTP or RTCP to an address until the
//! dialog is confirmed (the ACK) or RTP has come from that address, and
//! early media to an address not yet verified stops after
//! `[rtp] early_media_unverified_ms`.
//!
//! The INVITEs are written by hand (one datagram, no SIPp), as an attacker
//! would; the victim is a test-owned RTP/RTCP socket pair that counts what
//! reaches it. Figures are printed; run with `--nocapture` to see them.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::audio::{align, to_f32, Heard};
use common::caller::prompt;
use common::rtp::RtpPeer;
use common::server::{Rivr, RivrConfig};

/// 64·T1 with the default T1 of 500 ms: how long rivr waits for an ACK.
const ACK_WAIT: Duration = Duration::from_secs(32);
/// Generous: a debug rivr on a loaded 2-core machine.
const SIGNALLING: Duration = Duration::from_secs(30);

/// The early-media cap the early-media tests configure.
const TEST_CAP_MS: u64 = 1000;

/// A SIP client socket that counts what comes back and keeps the text of
/// each response, so the test can read rivr's SDP and To tag.
struct SipPeer {
    sock: UdpSocket,
    rivr: SocketAddr,
    datagrams: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    responses: Arc<std::sync::Mutex<Vec<String>>>,
}

impl SipPeer {
    fn new(rivr: &Rivr) -> SipPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the SIP socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let datagrams = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicUsize::new(0));
        let responses = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (rx, d, b, r) = (
            sock.try_clone().expect("clone the SIP socket"),
            datagrams.clone(),
            bytes.clone(),
            responses.clone(),
        );
        // Ends when the test's process does; a test is short-lived.
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                if let Ok((n, _)) = rx.recv_from(&mut buf) {
                    d.fetch_add(1, Ordering::Relaxed);
                    b.fetch_add(n, Ordering::Relaxed);
                    if let Ok(mut r) = r.lock() {
                        r.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    }
                }
            }
        });
        SipPeer {
            sock,
            rivr: ([127, 0, 0, 1], rivr.sip_port).into(),
            datagrams,
            bytes,
            responses,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().expect("SIP socket address").port()
    }

    /// An INVITE to `number` offering PCMU and telephone-events at
    /// 127.0.0.1:`media_port`. Returns its size.
    fn invite(&self, number: &str, call_id: &str, media_port: u16) -> usize {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {media_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        );
        let msg = format!(
            "INVITE sip:{number}@{rivr} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-{tag};rport\r\n\
             From: <sip:a@127.0.0.1>;tag=f-{tag}\r\nTo: <sip:{number}@{rivr}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:{me}>\r\n\
             Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            rivr = self.rivr,
            me = self.port(),
            len = sdp.len(),
            tag = token(call_id),
        );
        self.sock
            .send_to(msg.as_bytes(), self.rivr)
            .expect("send the INVITE");
        msg.len()
    }

    /// Waits for a response whose status line starts with `status`
    /// ("SIP/2.0 200").
    fn wait_response(&self, status: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self.responses.lock() {
                if let Some(m) = r.iter().find(|m| m.starts_with(status)) {
                    return m.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {status:?} within {timeout:?}; got {:?}",
                self.responses.lock().map(|r| r.clone()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The ACK for `ok`, the 200 to our INVITE.
    fn ack(&self, ok: &str, call_id: &str) {
        let to = header(ok, "To").expect("To in the 200");
        let contact = header(ok, "Contact").expect("Contact in the 200");
        let target = contact
            .split('<')
            .nth(1)
            .and_then(|c| c.split('>').next())
            .expect("Contact URI");
        let msg = format!(
            "ACK {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-ack-{tag};rport\r\n\
             From: <sip:a@127.0.0.1>;tag=f-{tag}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            me = self.port(),
            tag = token(call_id),
        );
        self.sock
            .send_to(msg.as_bytes(), self.rivr)
            .expect("send the ACK");
    }
}

/// `call_id` with only token characters, for tags and branches.
fn token(call_id: &str) -> String {
    call_id.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// rivr's RTP address from the SDP in `msg`.
fn sdp_media(msg: &str) -> SocketAddr {
    let port: u16 = msg
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio in {msg:?}"));
    ([127, 0, 0, 1], port).into()
}

/// What reached the victim.
struct Reached {
    rtp_packets: usize,
    rtp_bytes: usize,
    rtcp_packets: usize,
    rtcp_bytes: usize,
}

fn reached(victim: &RtpPeer) -> Reached {
    let packets = victim.packets();
    Reached {
        rtp_packets: packets.len(),
        // rivr's RTP carries no CSRC or extension: a 12-byte header.
        rtp_bytes: packets.iter().map(|p| 12 + p.payload.len()).sum(),
        rtcp_packets: victim.rtcp_count(),
        rtcp_bytes: victim.rtcp_bytes(),
    }
}

/// One INVITE to the menu (which answers at once), its SDP aimed at the
/// victim, never acknowledged: nothing may reach the victim while rivr
/// retransmits its 200 and finally gives up.
#[test]
fn one_unacknowledged_invite_sends_no_media_to_its_sdp_address() {
    let rivr = Rivr::start("reflect-ack", RivrConfig::default());
    let victim = RtpPeer::bind();
    let attacker = SipPeer::new(&rivr);
    let call_id = "reflect-1@attacker";
    let invite_bytes = attacker.invite("1000", call_id, victim.port);
    let sent_at = Instant::now();
    attacker.wait_response("SIP/2.0 200", SIGNALLING);

    let cdr = rivr.wait_cdr(call_id, ACK_WAIT + SIGNALLING);
    assert_eq!(cdr["end"], "ack-timeout", "CDR: {cdr}");
    // Anything still in flight (an RTCP BYE at close) lands within this.
    std::thread::sleep(Duration::from_secs(2));
    let r = reached(&victim);
    let total = r.rtp_bytes + r.rtcp_bytes;
    eprintln!(
        "one {invite_bytes}-byte INVITE, no ACK, {:.1} s until rivr gave up: the victim got \
         {} RTP packets ({} bytes) and {} RTCP packets ({} bytes): {} bytes, amplification \
         ×{:.1}; the INVITE's source got {} SIP datagrams ({} bytes, ×{:.1})",
        sent_at.elapsed().as_secs_f64(),
        r.rtp_packets,
        r.rtp_bytes,
        r.rtcp_packets,
        r.rtcp_bytes,
        total,
        total as f64 / invite_bytes as f64,
        attacker.datagrams.load(Ordering::Relaxed),
        attacker.bytes.load(Ordering::Relaxed),
        attacker.bytes.load(Ordering::Relaxed) as f64 / invite_bytes as f64,
    );
    assert_eq!(
        (r.rtp_packets, r.rtcp_packets),
        (0, 0),
        "media reached an address that never proved it wanted it"
    );
}

/// A normal call whose ACK comes late: nothing before it, and right after
/// it the caller hears the menu prompt from its first word (the answered
/// call's media waited for the peer instead of playing to nobody).
#[test]
fn audio_starts_when_the_ack_arrives() {
    let rivr = Rivr::start("reflect-late-ack", RivrConfig::default());
    let caller = RtpPeer::bind();
    let sip = SipPeer::new(&rivr);
    let call_id = "late-ack@caller";
    sip.invite("1000", call_id, caller.port);
    let ok = sip.wait_response("SIP/2.0 200", SIGNALLING);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        (caller.count(), caller.rtcp_count()),
        (0, 0),
        "media before the ACK"
    );
    sip.ack(&ok, call_id);
    let acked = Instant::now();
    assert!(
        caller.wait_count(1, Duration::from_secs(5)),
        "no RTP after the ACK"
    );
    let first = caller.packets()[0].arrival.saturating_duration_since(acked);
    // Two seconds of the prompt, then measure.
    let menu = prompt("main_menu");
    let head = &to_f32(menu.pcm_8k())[..2 * 8000];
    assert!(caller.wait_count(130, Duration::from_secs(10)));
    let heard = Heard::decode(&caller.packets(), 0);
    let (lag, ncc) = align(&heard.samples, head);
    eprintln!(
        "late ACK: first RTP {} ms after it; main_menu starts {} ms into what was heard, \
         NCC {ncc:.4}",
        first.as_millis(),
        lag / 8
    );
    assert!(
        first < Duration::from_millis(300),
        "RTP {first:?} after the ACK"
    );
    assert!(ncc >= 0.9, "what was heard is not main_menu: NCC {ncc:.4}");
    assert!(
        lag <= 8 * 60,
        "main_menu starts {} ms in: its start was lost",
        lag / 8
    );
}

/// A route that plays a prompt as early media, then refuses the call.
fn early_media_rivr(label: &str) -> Rivr {
    Rivr::start(
        label,
        RivrConfig {
            rtp_table: format!("early_media_unverified_ms = {TEST_CAP_MS}"),
            ..RivrConfig::default()
        }
        .script(
            "3000",
            "early.rhai",
            "progress();\nplay(\"health_info\");\nreject(480);\n",
        ),
    )
}

/// Early media to a phone that sends nothing (or to a victim): it plays for
/// the cap, then stops; the script still moves on when the prompt is over.
#[test]
fn unverified_early_media_stops_at_the_cap() {
    let rivr = early_media_rivr("reflect-early-unverified");
    let victim = RtpPeer::bind();
    let attacker = SipPeer::new(&rivr);
    let call_id = "early-unverified@attacker";
    let invite_bytes = attacker.invite("3000", call_id, victim.port);
    attacker.wait_response("SIP/2.0 183", SIGNALLING);
    let progress_at = Instant::now();
    let prompt_ms = prompt("health_info").duration_ms();
    attacker.wait_response("SIP/2.0 480", Duration::from_millis(prompt_ms) + SIGNALLING);
    let rejected_after = progress_at.elapsed();
    std::thread::sleep(Duration::from_secs(1));

    let packets = victim.packets();
    let r = reached(&victim);
    let span = match (packets.first(), packets.last()) {
        (Some(a), Some(b)) => b.arrival.saturating_duration_since(a.arrival),
        _ => Duration::ZERO,
    };
    let heard = Heard::decode(&packets, 0);
    let head = &to_f32(prompt("health_info").pcm_8k())[..8000 * 3 / 4];
    let (lag, ncc) = align(&heard.samples, head);
    let total = r.rtp_bytes + r.rtcp_bytes;
    eprintln!(
        "unverified early media, cap {TEST_CAP_MS} ms: {} RTP packets ({} bytes) over {} ms \
         and {} RTCP ({} bytes) from one {invite_bytes}-byte INVITE (×{:.1}); the prompt's \
         head heard at {} ms, NCC {ncc:.4}; 480 after {} ms (prompt {prompt_ms} ms)",
        r.rtp_packets,
        r.rtp_bytes,
        span.as_millis(),
        r.rtcp_packets,
        r.rtcp_bytes,
        total as f64 / invite_bytes as f64,
        lag / 8,
        rejected_after.as_millis(),
    );
    let cap_packets = (TEST_CAP_MS / 20) as usize;
    assert!(
        r.rtp_packets <= cap_packets + 2,
        "{} packets: more than the cap's {cap_packets}",
        r.rtp_packets
    );
    assert!(
        span <= Duration::from_millis(TEST_CAP_MS + 100),
        "early media lasted {span:?}"
    );
    // Within the cap the caller did hear the prompt's start.
    assert!(
        r.rtp_packets >= cap_packets * 3 / 4,
        "{} packets: early media within the cap was cut",
        r.rtp_packets
    );
    assert!(
        ncc >= 0.9 && lag <= 8 * 60,
        "NCC {ncc:.4} at {} ms",
        lag / 8
    );
    // The prompt ran its course unheard: the script was not held up.
    assert!(
        rejected_after < Duration::from_millis(prompt_ms + 3000),
        "the 480 came {rejected_after:?} after the 183 for a {prompt_ms} ms prompt"
    );
}

/// Early media to a phone that sends RTP from its SDP address: verified,
/// so it flows past the cap and the caller hears the whole prompt.
#[test]
fn verified_early_media_flows_past_the_cap() {
    let rivr = early_media_rivr("reflect-early-verified");
    let mut phone = RtpPeer::bind();
    let sip = SipPeer::new(&rivr);
    let call_id = "early-verified@phone";
    sip.invite("3000", call_id, phone.port);
    let progress = sip.wait_response("SIP/2.0 183", SIGNALLING);
    phone.start_sending(sdp_media(&progress), 0, 101);
    let menu = prompt("health_info");
    sip.wait_response(
        "SIP/2.0 480",
        Duration::from_millis(menu.duration_ms()) + SIGNALLING,
    );
    let packets = phone.packets();
    let heard = Heard::decode(&packets, 0);
    let reference = to_f32(menu.pcm_8k());
    let (lag, ncc) = align(&heard.samples, &reference);
    let span = match (packets.first(), packets.last()) {
        (Some(a), Some(b)) => b.arrival.saturating_duration_since(a.arrival),
        _ => Duration::ZERO,
    };
    eprintln!(
        "verified early media, cap {TEST_CAP_MS} ms: {} RTP packets over {} ms; the whole \
         {} ms prompt at {} ms, NCC {ncc:.4}",
        packets.len(),
        span.as_millis(),
        menu.duration_ms(),
        lag / 8
    );
    assert!(
        span >= Duration::from_millis(menu.duration_ms() - 200),
        "early media stopped after {span:?}"
    );
    assert!(ncc >= 0.9, "the prompt was not heard whole: NCC {ncc:.4}");
}
