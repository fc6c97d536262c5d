//! The UAS core on a virtual clock: every response, retransmission and
//! timer of an inbound call, without sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

const PEER: &str = "127.0.0.1:5070";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

struct Harness {
    ep: Endpoint,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        let t0 = Instant::now();
        Harness {
            ep: Endpoint::new(EndpointConfig {
                local_addr: "127.0.0.1:5060".parse().unwrap(),
                user_agent: "rivr-test".into(),
                timers: TimerConfig::default(),
                seed: 7,
                session: Default::default(),
                session_ask: Some(1800),
            }),
            t0,
            now: t0,
        }
    }

    fn input(&mut self, msg: &str) -> Vec<Output> {
        self.ep
            .handle_input(self.now, Transport::Udp, peer(), msg.as_bytes());
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

    /// Advances the virtual clock to `t`, firing every timer on the way.
    fn advance_to(&mut self, t: Duration) -> Vec<(u64, Output)> {
        let until = self.t0 + t;
        let mut out = Vec::new();
        while let Some(next) = self.ep.poll_timeout() {
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            self.ep.handle_timeout(self.now);
            let at = (self.now - self.t0).as_millis() as u64;
            out.extend(self.drain().into_iter().map(|o| (at, o)));
        }
        self.now = until.max(self.now);
        out
    }
}

fn invite(branch: &str, call_id: &str, with_sdp: bool) -> String {
    let body = if with_sdp { SDP } else { "" };
    let ct = if with_sdp {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch={branch};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@127.0.0.1>;tag=from1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{PEER}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(method: &str, branch: &str, call_id: &str, to_tag: &str, cseq: u32) -> String {
    format!(
        "{method} sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch={branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@127.0.0.1>;tag=from1\r\nTo: <sip:1000@127.0.0.1>;tag={to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn sent(outs: &[Output]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn first_lines(outs: &[Output]) -> Vec<String> {
    sent(outs)
        .iter()
        .map(|s| s.lines().next().unwrap_or("").to_string())
        .collect()
}

fn incoming_call(outs: &[Output]) -> Option<CallRef> {
    outs.iter().find_map(|o| match o {
        Output::Event(Event::IncomingCall { call, .. }) => Some(*call),
        _ => None,
    })
}

fn to_tag_of(resp: &str) -> String {
    let to = resp.lines().find(|l| l.starts_with("To:")).unwrap();
    to.split("tag=").nth(1).unwrap().trim().to_string()
}

/// INVITE → 100 + IncomingCall; answer → 200; returns (call, to-tag).
fn answered_call(h: &mut Harness, call_id: &str) -> (CallRef, String) {
    let outs = h.input(&invite("z9hG4bKinv1", call_id, true));
    assert_eq!(first_lines(&outs), vec!["SIP/2.0 100 Trying"]);
    let call = incoming_call(&outs).expect("IncomingCall event");
    h.ep.answer(h.now, call, "v=0\r\n").unwrap();
    let outs = h.drain();
    let ok = sent(&outs).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(ok.contains("Contact: <sip:rivr@127.0.0.1:5060>"), "{ok}");
    assert!(
        ok.contains("received=127.0.0.1") && ok.contains("rport=5070"),
        "RFC 3581: {ok}"
    );
    (call, to_tag_of(&ok))
}

#[test]
fn two_hundred_is_retransmitted_until_ack_then_bye_works() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "c1");
    let outs = h.advance_to(ms(3600));
    let times: Vec<u64> = outs.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        times,
        vec![500, 1500, 3500],
        "2xx retransmitted at T1, 2T1, 4T1 (§13.3.1.4)"
    );
    let ack = in_dialog("ACK", "z9hG4bKack1", "c1", &tag, 1);
    let outs = h.input(&ack);
    assert!(
        matches!(outs.as_slice(), [Output::Event(Event::Confirmed { call: c, sdp: None })] if *c == call)
    );
    assert!(
        h.advance_to(ms(20_000))
            .iter()
            .all(|(_, o)| !matches!(o, Output::Transmit { .. })),
        "no more 2xx after the ACK"
    );
    let outs = h.input(&in_dialog("BYE", "z9hG4bKbye1", "c1", &tag, 2));
    assert_eq!(first_lines(&outs), vec!["SIP/2.0 200 OK"]);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Ended {
            reason: EndReason::RemoteBye,
            ..
        })
    )));
    assert_eq!(h.ep.active_calls(), 0);
    // a retransmitted BYE gets the same 200 from the transaction, no new event
    let outs = h.input(&in_dialog("BYE", "z9hG4bKbye1", "c1", &tag, 2));
    assert_eq!(first_lines(&outs), vec!["SIP/2.0 200 OK"]);
    assert_eq!(outs.len(), 1);
    h.advance_to(ms(100_000));
    assert_eq!(
        h.ep.active_transactions(),
        0,
        "every transaction ends on its timers"
    );
}

#[test]
fn retransmitted_invite_makes_one_call() {
    let mut h = Harness::new();
    let outs = h.input(&invite("z9hG4bKr", "c2", true));
    assert!(incoming_call(&outs).is_some());
    for _ in 0..2 {
        let outs = h.input(&invite("z9hG4bKr", "c2", true));
        assert_eq!(
            first_lines(&outs),
            vec!["SIP/2.0 100 Trying"],
            "the last provisional is resent"
        );
        assert!(incoming_call(&outs).is_none());
    }
    assert_eq!(h.ep.active_calls(), 1);
    assert_eq!(h.ep.stats().calls_started, 1);
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let mut h = Harness::new();
    let outs = h.input(&invite("z9hG4bKc", "c3", true));
    let call = incoming_call(&outs).unwrap();
    h.ep.ring(h.now, call, None).unwrap();
    assert_eq!(first_lines(&h.drain()), vec!["SIP/2.0 180 Ringing"]);
    let cancel = invite("z9hG4bKc", "c3", false)
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let outs = h.input(&cancel);
    assert_eq!(
        first_lines(&outs),
        vec!["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    let r487 = &sent(&outs)[1];
    assert!(r487.contains("CSeq: 1 INVITE"), "{r487}");
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Ended {
            reason: EndReason::Cancelled,
            ..
        })
    )));
    // the 487 is retransmitted (timer G) until the ACK for it arrives
    let outs = h.advance_to(ms(600));
    assert_eq!(outs.len(), 1);
    let tag = to_tag_of(r487);
    let ack = invite("z9hG4bKc", "c3", false)
        .replace("INVITE sip:", "ACK sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            "To: <sip:1000@127.0.0.1>",
            &format!("To: <sip:1000@127.0.0.1>;tag={tag}"),
        );
    assert!(h.input(&ack).is_empty());
    assert!(h.advance_to(ms(60_000)).is_empty(), "ACK stops timer G");
    assert!(
        h.ep.answer(h.now, call, "v=0\r\n").is_err(),
        "a cancelled call cannot be answered"
    );
}

#[test]
fn unknown_things_get_their_codes() {
    let mut h = Harness::new();
    let opts = in_dialog("OPTIONS", "z9hG4bKo", "c4", "x", 1).replace(";tag=x", "");
    let outs = h.input(&opts);
    let r = &sent(&outs)[0];
    assert!(
        r.starts_with("SIP/2.0 200 OK") && r.contains("Allow: INVITE"),
        "{r}"
    );
    let outs = h.input(&in_dialog("BYE", "z9hG4bKb", "nosuch", "x", 2));
    assert_eq!(
        first_lines(&outs),
        vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
    let outs = h.input(&in_dialog("SUBSCRIBE", "z9hG4bKs", "c5", "x", 1).replace(";tag=x", ""));
    let r = &sent(&outs)[0];
    assert!(r.starts_with("SIP/2.0 501") && r.contains("Allow:"), "{r}");
    let outs = h.input(&in_dialog("FOOBAR", "z9hG4bKf", "c6", "x", 1).replace(";tag=x", ""));
    let r = &sent(&outs)[0];
    assert!(
        r.starts_with("SIP/2.0 501") && r.contains("Allow:"),
        "unknown method: {r}"
    );
    let outs = h.input("garbage\r\n\r\n");
    assert!(outs.is_empty());
    let bad_ack =
        in_dialog("ACK", "z9hG4bKba", "c7", "x", 1).replace("ACK sip:rivr@127.0.0.1:5060", "ACK  ");
    assert!(
        h.input(&bad_ack).is_empty(),
        "a malformed ACK is dropped, never answered"
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn missing_ack_ends_the_call_with_bye() {
    let mut h = Harness::new();
    let (call, _) = answered_call(&mut h, "c7");
    let outs = h.advance_to(ms(33_000));
    let lines: Vec<String> = outs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Transmit { bytes, .. } => Some(
                String::from_utf8_lossy(bytes)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            _ => None,
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("BYE sip:caller@127.0.0.1:5070")),
        "{lines:?}"
    );
    assert!(outs.iter().any(|(t, o)| *t == 32_000 && matches!(o, Output::Event(Event::Ended { call: c, reason: EndReason::AckTimeout }) if *c == call)));
}

#[test]
fn rivr_hangup_sends_bye_and_retransmits_it_until_answered() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "c8");
    // hangup before the ACK waits for it (§15)
    h.ep.hangup(h.now, call).unwrap();
    assert!(sent(&h.drain()).is_empty());
    let outs = h.input(&in_dialog("ACK", "z9hG4bKa8", "c8", &tag, 1));
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Confirmed { call: c, .. }) if *c == call)));
    let bye = sent(&outs)
        .pop()
        .expect("the BYE goes out once the ACK is in");
    assert!(
        bye.starts_with("BYE sip:caller@127.0.0.1:5070 SIP/2.0"),
        "{bye}"
    );
    // after the ACK, hangup sends the BYE at once
    let mut h2 = Harness::new();
    let (call2, tag2) = answered_call(&mut h2, "c9");
    h2.input(&in_dialog("ACK", "z9hG4bKa9", "c9", &tag2, 1));
    h2.ep.hangup(h2.now, call2).unwrap();
    let outs = h2.drain();
    let bye = sent(&outs).pop().unwrap();
    assert!(
        bye.starts_with("BYE sip:caller@127.0.0.1:5070 SIP/2.0"),
        "{bye}"
    );
    assert!(
        bye.contains(&format!(";tag={tag2}"))
            && bye.contains("To: <sip:caller@127.0.0.1>;tag=from1"),
        "{bye}"
    );
    let retx = h2.advance_to(ms(1600));
    assert_eq!(
        retx.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![500, 1500],
        "timer E"
    );
    let branch = bye
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\nFrom: <sip:1000@127.0.0.1>;tag={tag2}\r\n\
         To: <sip:caller@127.0.0.1>;tag=from1\r\nCall-ID: c9\r\nCSeq: 99 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let outs = h2.input(&ok);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::Ended {
                reason: EndReason::LocalByeDone,
                ..
            })
        )),
        "{outs:?}"
    );
    assert!(
        h2.advance_to(ms(10_000)).is_empty(),
        "no BYE retransmission after its 200"
    );
}

#[test]
fn invite_without_sdp_gets_the_answer_in_the_ack() {
    let mut h = Harness::new();
    let outs = h.input(&invite("z9hG4bKn", "c10", false));
    let call = incoming_call(&outs).unwrap();
    h.ep.answer(h.now, call, "v=0\r\no=offer\r\n").unwrap();
    let ok = sent(&h.drain()).pop().unwrap();
    assert!(
        ok.contains("Content-Type: application/sdp") && ok.ends_with("o=offer\r\n"),
        "{ok}"
    );
    let tag = to_tag_of(&ok);
    let ack = in_dialog("ACK", "z9hG4bKna", "c10", &tag, 1).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        ),
    );
    let outs = h.input(&ack);
    assert!(
        matches!(outs.as_slice(), [Output::Event(Event::Confirmed { sdp: Some(b), .. })] if b == SDP.as_bytes()),
        "{outs:?}"
    );
}

#[test]
fn an_rfc2543_invite_without_branch_is_a_call_and_its_retransmission_is_not() {
    let mut h = Harness::new();
    // longreq's shape (RFC 4475 §3.1.1.2): the top Via has no branch, a
    // lower one does; the wire layer accepts it.
    let old_style = invite("x", "c11", true).replace(
        ";branch=x;rport\r\n",
        "\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKlower\r\n",
    );
    let outs = h.input(&old_style);
    assert_eq!(first_lines(&outs), vec!["SIP/2.0 100 Trying"]);
    assert!(incoming_call(&outs).is_some());
    let outs = h.input(&old_style);
    assert!(
        incoming_call(&outs).is_none(),
        "matched by §17.2.3's RFC 2543 rules"
    );
    assert_eq!(h.ep.stats().calls_started, 1);
}

/// Issue 9: the INVITE whose Call-ID held a NUL ended the process (the
/// script thread was named after it). It never becomes a call now.
#[test]
fn nul_call_id_is_400_and_no_call() {
    let mut h = Harness::new();
    let outs = h.input(&invite("z9hG4bKnul", "abc\0def", true));
    assert_eq!(incoming_call(&outs), None);
    assert_eq!(
        first_lines(&outs),
        vec!["SIP/2.0 400 Bad Request (control character in the Call-ID header)"]
    );
    assert_eq!(h.ep.stats().malformed_answered, 1);
    assert_eq!(h.ep.active_calls(), 0);
}

/// What the server asks after handling a message panicked: whose call was it?
#[test]
fn the_call_a_message_belongs_to() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "c1");
    let bye = in_dialog("BYE", "z9hG4bKbye", "c1", &tag, 2);
    assert_eq!(h.ep.call_of_message(bye.as_bytes()), Some(call));
    // the INVITE again (a retransmission) and a CANCEL on its branch
    let again = invite("z9hG4bKinv1", "c1", true);
    assert_eq!(h.ep.call_of_message(again.as_bytes()), Some(call));
    let cancel = again
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    assert_eq!(h.ep.call_of_message(cancel.as_bytes()), Some(call));
    // another dialog, another call, garbage: none
    let other = in_dialog("BYE", "z9hG4bKx", "c2", &tag, 2);
    assert_eq!(h.ep.call_of_message(other.as_bytes()), None);
    assert_eq!(
        h.ep.call_of_message(&invite("z9hG4bKnew", "c3", true).into_bytes()),
        None
    );
    assert_eq!(h.ep.call_of_message(b"\0\xff garbage"), None);
    // rivr's BYE's response
    h.ep.hangup(h.now, call).unwrap();
    let _ = h.drain();
    let ack = in_dialog("ACK", "z9hG4bKack", "c1", &tag, 1);
    let outs = h.input(&ack);
    let bye = sent(&outs).pop().expect("rivr's BYE after the ACK");
    let branch = bye
        .split("branch=")
        .nth(1)
        .and_then(|b| b.split(['\r', ';']).next())
        .unwrap()
        .to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         From: <sip:1000@127.0.0.1>;tag={tag}\r\nTo: <sip:caller@127.0.0.1>;tag=from1\r\n\
         Call-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(h.ep.call_of_message(ok.as_bytes()), Some(call));
}

#[test]
fn a_call_refused_for_overload_gets_503_with_retry_after_through_its_transaction() {
    let mut h = Harness::new();
    let outs = h.input(&invite("z9hG4bKbusy", "busy1", true));
    let call = incoming_call(&outs).expect("IncomingCall event");
    h.ep.reject_retry_after(h.now, call, 503, 5).unwrap();
    let resp = sent(&h.drain()).pop().unwrap();
    assert!(
        resp.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{resp}"
    );
    assert!(resp.contains("\r\nRetry-After: 5\r\n"), "{resp}");
    assert!(!to_tag_of(&resp).is_empty());
    // A retransmitted INVITE gets the same 503 from the transaction...
    let again = sent(&h.input(&invite("z9hG4bKbusy", "busy1", true)));
    assert_eq!(again, vec![resp.clone()]);
    // ...and over UDP it is retransmitted until the ACK (timer G).
    let outs = h.advance_to(ms(600));
    assert!(outs.iter().any(
        |(_, o)| matches!(o, Output::Transmit { bytes, .. } if bytes.starts_with(b"SIP/2.0 503"))
    ));
    assert_eq!(h.ep.active_calls(), 0);
    assert!(h.ep.reject_retry_after(h.now, call, 503, 5).is_err());
    assert!(h.ep.reject_retry_after(h.now, 999, 200, 5).is_err());
}

#[test]
fn while_unavailable_options_outside_a_dialog_get_503_and_inside_200() {
    let mut h = Harness::new();
    let (_, tag) = answered_call(&mut h, "up1");
    h.ep.set_unavailable(Some(42));
    let ping = in_dialog("OPTIONS", "z9hG4bKlb", "lb1", "x", 1).replace(";tag=x", "");
    let r = sent(&h.input(&ping)).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{r}");
    assert!(r.contains("\r\nRetry-After: 42\r\n"), "{r}");
    assert!(!to_tag_of(&r).is_empty(), "a To tag outside a dialog");
    // The call in progress keeps its keepalive answered.
    let keepalive = in_dialog("OPTIONS", "z9hG4bKka", "up1", &tag, 2);
    let r = sent(&h.input(&keepalive)).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
    assert_eq!(h.ep.stats().options_refused, 1);
    h.ep.set_unavailable(None);
    let again = in_dialog("OPTIONS", "z9hG4bKlb2", "lb2", "x", 1).replace(";tag=x", "");
    let r = sent(&h.input(&again)).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
}
