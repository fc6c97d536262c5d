//! The carrier core on a virtual clock: each behaviour's answer, the 2xx
//! resent until ACK, the callee's BYE, RTP frames, hostile input.

use super::*;

const RIVR: &str = "127.0.0.1:40000";
const RIVR_RTP: &str = "127.0.0.1:40002";

fn carrier() -> Carrier {
    Carrier::new(CarrierConfig {
        sip: "127.0.0.1:5999".parse().unwrap(),
        rtp: "127.0.0.1:6000".parse().unwrap(),
        hangup_after: Duration::from_secs(2),
    })
}

fn invite(number: &str, call_id: &str) -> Vec<u8> {
    let sdp = "v=0\r\no=rivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40002 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    format!(
        "INVITE sip:{number}@127.0.0.1:5999 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {RIVR};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:rivr@127.0.0.1>;tag=r1\r\nTo: <sip:{number}@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:rivr@{RIVR}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn request(method: &str, call_id: &str, to_tag: Option<&str>, cseq: u32, branch: &str) -> Vec<u8> {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:carrier@127.0.0.1:5999 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {RIVR};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:rivr@127.0.0.1>;tag=r1\r\nTo: <sip:x@127.0.0.1>{tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn drain(c: &mut Carrier) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn status_lines(out: &[Transmit]) -> Vec<String> {
    out.iter()
        .filter(|t| t.socket == Socket::Sip)
        .map(|t| {
            let s = String::from_utf8_lossy(&t.bytes);
            s.lines().next().unwrap_or_default().to_string()
        })
        .collect()
}

fn to_tag_of(t: &Transmit) -> String {
    let s = String::from_utf8_lossy(&t.bytes);
    let to = s.lines().find(|l| l.starts_with("To:")).unwrap();
    to.split(";tag=").nth(1).unwrap().trim().to_string()
}

#[test]
fn the_last_digit_picks_the_answer() {
    let t0 = Instant::now();
    for (number, want) in [
        ("+254712000102", "SIP/2.0 486 Busy Here"),
        ("+254712000104", "SIP/2.0 503 Service Unavailable"),
        ("+254712000103", "SIP/2.0 180 Ringing"),
        ("+254712000101", "SIP/2.0 200 OK"),
    ] {
        let mut c = carrier();
        c.handle_sip(t0, RIVR.parse().unwrap(), &invite(number, "a"));
        let out = drain(&mut c);
        assert_eq!(
            status_lines(&out),
            vec!["SIP/2.0 100 Trying".to_string(), want.to_string()],
            "{number}"
        );
        assert!(out.iter().all(|t| t.dest == RIVR.parse().unwrap()));
        assert_eq!(c.stats().invites, 1);
    }
}

#[test]
fn a_2xx_is_resent_until_acked_and_media_flows_every_20_ms() {
    let t0 = Instant::now();
    let mut c = carrier();
    c.handle_sip(t0, RIVR.parse().unwrap(), &invite("+254712000100", "b"));
    let out = drain(&mut c);
    let ok = out.last().unwrap();
    let text = String::from_utf8_lossy(&ok.bytes);
    assert!(text.contains("m=audio 6000 RTP/AVP 0"), "{text}");
    let tag = to_tag_of(ok);
    // Media starts with the answer, to the offer's address.
    c.handle_timeout(t0);
    let rtp: Vec<Transmit> = drain(&mut c);
    assert_eq!(rtp.len(), 1);
    assert_eq!(rtp[0].socket, Socket::Rtp);
    assert_eq!(rtp[0].dest, RIVR_RTP.parse().unwrap());
    assert_eq!(rtp[0].bytes.len(), 172);
    assert_eq!(rtp[0].bytes[1], 0, "PCMU preferred");
    // No ACK: the 200 again at T1.
    c.handle_timeout(t0 + T1);
    let again = drain(&mut c);
    assert!(status_lines(&again).contains(&"SIP/2.0 200 OK".to_string()));
    c.handle_sip(
        t0 + T1,
        RIVR.parse().unwrap(),
        &request("ACK", "b", Some(&tag), 1, "ack"),
    );
    // After the ACK only media: 50 frames a second.
    let mut frames = 0;
    let mut now = t0 + T1;
    while now < t0 + T1 + Duration::from_secs(3) {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        for t in drain(&mut c) {
            assert_eq!(t.socket, Socket::Rtp, "SIP after the ACK");
            frames += 1;
        }
    }
    assert!((148..=152).contains(&frames), "{frames} frames in 3 s");
    // rivr hangs up.
    c.handle_sip(
        now,
        RIVR.parse().unwrap(),
        &request("BYE", "b", Some(&tag), 2, "bye"),
    );
    assert_eq!(status_lines(&drain(&mut c)), vec!["SIP/2.0 200 OK"]);
    c.handle_timeout(now + Duration::from_secs(1));
    assert!(drain(&mut c).is_empty(), "media after the BYE");
}

#[test]
fn a_ringing_call_ends_with_487_on_cancel() {
    let t0 = Instant::now();
    let mut c = carrier();
    c.handle_sip(t0, RIVR.parse().unwrap(), &invite("+254712000113", "c"));
    drain(&mut c);
    // Same branch as the INVITE, as RFC 3261 §9.1 asks.
    c.handle_sip(
        t0 + Duration::from_secs(3),
        RIVR.parse().unwrap(),
        &request("CANCEL", "c", None, 1, "c"),
    );
    assert_eq!(
        status_lines(&drain(&mut c)),
        vec!["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    assert_eq!(c.stats().rang_out, 1);
}

#[test]
fn the_callee_hangs_up_after_its_time_and_stops_on_the_answer() {
    let t0 = Instant::now();
    let mut c = carrier();
    c.handle_sip(t0, RIVR.parse().unwrap(), &invite("+254712000105", "d"));
    let tag = to_tag_of(drain(&mut c).last().unwrap());
    c.handle_sip(
        t0,
        RIVR.parse().unwrap(),
        &request("ACK", "d", Some(&tag), 1, "ack"),
    );
    let (bye, now) = loop {
        let now = c.poll_timeout().unwrap();
        assert!(now <= t0 + Duration::from_secs(2), "no BYE by 2 s");
        c.handle_timeout(now);
        if let Some(t) = drain(&mut c).into_iter().find(|t| t.socket == Socket::Sip) {
            break (t, now);
        }
    };
    let text = String::from_utf8_lossy(&bye.bytes).into_owned();
    assert!(
        text.starts_with("BYE sip:rivr@127.0.0.1:40000 SIP/2.0"),
        "{text}"
    );
    assert!(text.contains(&format!(";tag={tag}")), "{text}");
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{tag}bye\r\n\
         From: <sip:x@127.0.0.1>;tag={tag}\r\nTo: <sip:rivr@127.0.0.1>;tag=r1\r\n\
         Call-ID: d\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_sip(now, RIVR.parse().unwrap(), resp.as_bytes());
    c.handle_timeout(now + Duration::from_secs(5));
    assert!(drain(&mut c).is_empty(), "BYE resent after its answer");
}

#[test]
fn junk_is_counted_and_dropped() {
    let t0 = Instant::now();
    let mut c = carrier();
    for junk in [
        &b""[..],
        b"\x00\xff\x13",
        b"INVITE sip:1@x SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
    ] {
        c.handle_sip(t0, RIVR.parse().unwrap(), junk);
    }
    assert!(drain(&mut c)
        .iter()
        .all(|t| t.socket == Socket::Sip && !t.bytes.starts_with(b"SIP/2.0 200")));
    assert!(c.stats().dropped >= 3, "{:?}", c.stats());
    assert_eq!(c.stats().invites, 0);
}
