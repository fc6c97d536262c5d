//! Session timers on the endpoint, on a virtual clock: what rivr's 2xx
//! and INVITEs say, the refreshes it sends and receives, and BYE when a
//! session runs out (RFC 4028).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::super::*;

const PEER: &str = "127.0.0.1:5070";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
const RIVR_SDP: &str = "v=0\r\no=rivr 5 5 IN IP4 127.0.0.1\r\ns=rivr\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0\r\n";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

struct H {
    ep: Endpoint,
    t0: Instant,
    now: Instant,
}

impl H {
    fn new() -> H {
        let t0 = Instant::now();
        H {
            ep: Endpoint::new(EndpointConfig {
                local_addr: "127.0.0.1:5060".parse().unwrap(),
                user_agent: "rivr-test".into(),
                timers: crate::sip::transaction::TimerConfig::default(),
                seed: 3,
                session: Default::default(),
                session_ask: Some(1800),
            }),
            t0,
            now: t0,
        }
    }

    fn drain(&mut self) -> (Vec<String>, Vec<Event>) {
        let mut sent = Vec::new();
        let mut events = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => sent.push(String::from_utf8(bytes).unwrap()),
                Output::Event(e) => events.push(e),
            }
        }
        (sent, events)
    }

    fn input(&mut self, msg: &str) -> (Vec<String>, Vec<Event>) {
        self.ep
            .handle_input(self.now, Transport::Udp, peer(), msg.as_bytes());
        self.drain()
    }

    /// Runs the clock to `secs` after the start, firing every timer.
    fn until(&mut self, secs: f64) -> (Vec<String>, Vec<Event>) {
        let until = self.t0 + Duration::from_secs_f64(secs);
        let mut all = (Vec::new(), Vec::new());
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            self.ep.handle_timeout(self.now);
            let (s, e) = self.drain();
            all.0.extend(s);
            all.1.extend(e);
        }
        self.now = until.max(self.now);
        all
    }

    fn at(&self) -> f64 {
        (self.now - self.t0).as_secs_f64()
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or("")
}

fn invite(extra: &str) -> String {
    format!(
        "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKst1\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@127.0.0.1>;tag=from1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: st-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{PEER}>\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn in_dialog(method: &str, branch: &str, to_tag: &str, cseq: u32, extra: &str) -> String {
    format!(
        "{method} sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch={branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@127.0.0.1>;tag=from1\r\nTo: <sip:1000@127.0.0.1>;tag={to_tag}\r\nCall-ID: st-1\r\nCSeq: {cseq} {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// A response from the peer to rivr's request `req`.
fn respond(req: &str, status: &str, extra: &str) -> String {
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "Via").unwrap(),
        header(req, "From").unwrap(),
        header(req, "To").unwrap(),
        header(req, "Call-ID").unwrap(),
        header(req, "CSeq").unwrap(),
    )
}

/// An inbound call with `extra` INVITE headers, answered and ACKed;
/// returns the call, rivr's To tag and its 200.
fn answered(h: &mut H, extra: &str) -> (CallRef, String, String) {
    let (_, events) = h.input(&invite(extra));
    let call = events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("IncomingCall");
    h.ep.answer(h.now, call, RIVR_SDP).unwrap();
    let (sent, _) = h.drain();
    let ok = sent.last().unwrap().clone();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = header(&ok, "To")
        .unwrap()
        .split("tag=")
        .nth(1)
        .unwrap()
        .to_string();
    h.input(&in_dialog("ACK", "z9hG4bKack1", &tag, 1, ""));
    (call, tag, ok)
}

fn expired(events: &[Event], call: CallRef) -> bool {
    events.iter().any(|e| {
        *e == Event::Ended {
            call,
            reason: EndReason::SessionExpired,
        }
    })
}

#[test]
fn a_caller_that_refreshes_but_never_does_gets_bye_before_the_end() {
    let mut h = H::new();
    let (call, _, ok) = answered(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(header(&ok, "Require"), Some("timer"));
    let (sent, events) = h.until(59.9);
    assert!(sent.iter().all(|s| !s.starts_with("BYE")), "{sent:?}");
    assert!(events.is_empty(), "{events:?}");
    // min(32 s, 90 / 3) before the end: at 60 s.
    let (sent, events) = h.until(60.0);
    assert!(sent.iter().any(|s| s.starts_with("BYE ")), "{sent:?}");
    assert!(expired(&events, call), "{events:?}");
}

#[test]
fn a_refresh_by_update_restarts_the_session() {
    let mut h = H::new();
    let (call, tag, _) = answered(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    h.until(40.0);
    let (sent, _) = h.input(&in_dialog(
        "UPDATE",
        "z9hG4bKupd1",
        &tag,
        2,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    ));
    assert_eq!(first_line(&sent[0]), "SIP/2.0 200 OK");
    assert_eq!(
        header(&sent[0], "Session-Expires"),
        Some("90;refresher=uac")
    );
    let (sent, events) = h.until(99.9);
    assert!(sent.iter().all(|s| !s.starts_with("BYE")), "{sent:?}");
    assert!(!expired(&events, call));
    let (_, events) = h.until(100.0);
    assert!(expired(&events, call), "{events:?}");
}

#[test]
fn rivr_refreshes_by_reinvite_at_half_when_the_peer_has_no_update() {
    let mut h = H::new();
    let (call, tag, ok) = answered(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, BYE\r\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), Some("90;refresher=uas"));
    assert!(h.until(44.9).0.is_empty());
    let (sent, _) = h.until(45.0);
    let reinvite = sent.first().expect("a refresh at 45 s").clone();
    assert!(reinvite.starts_with("INVITE sip:caller@"), "{reinvite}");
    assert!(reinvite.contains("To: <sip:caller@127.0.0.1>;tag=from1"));
    assert!(reinvite.contains(&format!(";tag={tag}")), "{reinvite}");
    assert_eq!(
        header(&reinvite, "Session-Expires"),
        Some("90;refresher=uac")
    );
    // The same SDP, same version: nothing about the media changes.
    assert!(reinvite.ends_with(RIVR_SDP), "{reinvite}");
    let cseq: u32 = header(&reinvite, "CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ok = respond(
        &reinvite,
        "200 OK",
        "Session-Expires: 90;refresher=uac\r\nContact: <sip:caller@127.0.0.1:5070>\r\n",
    );
    let (sent, _) = h.input(&ok);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("ACK sip:caller@"), "{}", sent[0]);
    assert_eq!(header(&sent[0], "CSeq"), Some(&*format!("{cseq} ACK")));
    // A retransmitted 2xx gets the same ACK again.
    let (again, _) = h.input(&ok);
    assert_eq!(again, sent);
    // Next refresh half an interval after this one.
    let (sent, events) = h.until(89.9);
    assert!(sent.iter().all(|s| !s.starts_with("INVITE")), "{sent:?}");
    assert!(!expired(&events, call));
    let (sent, _) = h.until(90.0);
    assert!(sent.iter().any(|s| s.starts_with("INVITE ")), "{sent:?}");
}

#[test]
fn rivr_refreshes_by_update_when_allowed_and_a_481_ends_the_call() {
    let mut h = H::new();
    let (call, _, _) = answered(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
    );
    let (sent, _) = h.until(45.0);
    let update = sent.first().expect("a refresh").clone();
    assert!(update.starts_with("UPDATE "), "{update}");
    assert_eq!(header(&update, "Content-Length"), Some("0"));
    let (sent, events) = h.input(&respond(&update, "481 Call/Transaction Does Not Exist", ""));
    assert!(sent.iter().any(|s| s.starts_with("BYE ")), "{sent:?}");
    assert!(expired(&events, call), "{events:?}");
}

#[test]
fn a_refresh_nobody_answers_ends_the_call() {
    let mut h = H::new();
    let (call, _, _) = answered(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: UPDATE\r\n",
    );
    let (sent, _) = h.until(45.0);
    assert!(sent[0].starts_with("UPDATE "));
    // Timer F: 64 * T1 = 32 s of retransmissions, then BYE.
    let (sent, events) = h.until(76.9);
    assert!(sent.iter().all(|s| s.starts_with("UPDATE ")), "{sent:?}");
    assert!(!expired(&events, call));
    let (sent, events) = h.until(77.0);
    assert!(sent.iter().any(|s| s.starts_with("BYE ")), "{sent:?}");
    assert!(expired(&events, call), "at {}: {events:?}", h.at());
}

#[test]
fn too_small_an_interval_gets_422_or_is_raised() {
    let mut h = H::new();
    let (sent, events) = h.input(&invite("Supported: timer\r\nSession-Expires: 30\r\n"));
    assert_eq!(
        first_line(&sent[0]),
        "SIP/2.0 422 Session Interval Too Small"
    );
    assert_eq!(header(&sent[0], "Min-SE"), Some("90"));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(h.ep.active_calls(), 0);
    // A caller that does not understand 422 gets the interval raised,
    // and rivr refreshes.
    let mut h = H::new();
    let (_, _, ok) = answered(&mut h, "Session-Expires: 30\r\n");
    assert_eq!(header(&ok, "Session-Expires"), Some("90;refresher=uas"));
    assert_eq!(header(&ok, "Require"), None);
    // No timer asked for and none supported: none runs.
    let mut h = H::new();
    let (_, _, ok) = answered(&mut h, "");
    assert_eq!(header(&ok, "Session-Expires"), None);
    assert!(h.until(4000.0).0.is_empty());
}

#[test]
fn rivr_as_uac_asks_retries_a_422_and_refreshes_as_the_answer_says() {
    let mut h = H::new();
    let trunk: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let call = h.ep.invite(
        h.now,
        OutboundInvite {
            trunk: None,
            request_uri: "sip:15551234@127.0.0.1:5080".into(),
            to: "<sip:15551234@127.0.0.1:5080>".into(),
            from_user: "15550100".into(),
            from_host: "127.0.0.1".into(),
            from_display: None,
            dest: trunk,
            transport: Transport::Udp,
            route: Vec::new(),
            sdp: RIVR_SDP.into(),
            extra_headers: Vec::new(),
            credentials: None,
            call_id_prefix: None,
        },
    );
    let (sent, _) = h.drain();
    let inv = &sent[0];
    assert_eq!(header(inv, "Supported"), Some("timer"));
    assert_eq!(header(inv, "Session-Expires"), Some("1800"));
    assert_eq!(header(inv, "Min-SE"), Some("90"));
    let reply = |h: &mut H, msg: String| {
        h.ep.handle_input(h.now, Transport::Udp, trunk, msg.as_bytes());
        h.drain()
    };
    let to_tagged = |req: &str, status: &str, extra: &str| {
        respond(req, status, extra).replacen(
            &format!("To: {}", header(req, "To").unwrap()),
            &format!("To: {};tag=far", header(req, "To").unwrap()),
            1,
        )
    };
    let (sent, _) = reply(
        &mut h,
        to_tagged(inv, "422 Session Interval Too Small", "Min-SE: 3600\r\n"),
    );
    assert!(sent[0].starts_with("ACK "), "{sent:?}");
    let inv2 = sent[1].clone();
    assert_eq!(header(&inv2, "Session-Expires"), Some("3600"));
    assert_ne!(header(&inv2, "CSeq"), header(inv, "CSeq"));
    let (sent, events) = reply(
        &mut h,
        to_tagged(
            &inv2,
            "200 OK",
            "Contact: <sip:far@127.0.0.1:5080>\r\nSession-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
        ),
    );
    assert!(sent[0].starts_with("ACK sip:far@"), "{sent:?}");
    assert!(matches!(events[0], Event::Answered { .. }), "{events:?}");
    // rivr refreshes at 60 s by UPDATE; the answer keeps rivr refreshing.
    assert!(h.until(59.9).0.is_empty());
    let (sent, _) = h.until(60.0);
    let update = sent[0].clone();
    assert!(
        update.starts_with("UPDATE sip:far@127.0.0.1:5080"),
        "{update}"
    );
    // A refresh asks for the session's current interval (§7.4).
    assert_eq!(
        header(&update, "Session-Expires"),
        Some("120;refresher=uac")
    );
    reply(
        &mut h,
        respond(&update, "200 OK", "Session-Expires: 120;refresher=uac\r\n"),
    );
    assert!(h.until(119.9).0.is_empty());
    let (sent, _) = h.until(120.0);
    assert!(sent[0].starts_with("UPDATE "), "{sent:?}");
    // A 501 switches to re-INVITE at once.
    let (sent, _) = reply(&mut h, respond(&sent[0], "501 Not Implemented", ""));
    assert!(sent[0].starts_with("INVITE sip:far@"), "{sent:?}");
    assert!(sent[0].ends_with(RIVR_SDP));
    let _ = call;
}
