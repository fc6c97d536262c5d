//! REFER and its NOTIFYs on a virtual clock: an answered inbound call is
//! transferred, refused, or left without a final NOTIFY.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::super::*;
use super::parse_sipfrag;
use crate::sip::transaction::TimerConfig;

const PEER: &str = "127.0.0.1:5070";

struct H {
    ep: Endpoint,
    t0: Instant,
    now: Instant,
    tag: String,
    call: CallRef,
}

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

impl H {
    /// An inbound call answered and ACKed.
    fn confirmed() -> H {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            user_agent: "rivr-test".into(),
            timers: TimerConfig::default(),
            seed: 7,
            session: Default::default(),
            session_ask: None,
        });
        let inv = format!(
            "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKi1\r\nMax-Forwards: 70\r\n\
             From: <sip:caller@example.com>;tag=from1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: x1\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{PEER}>\r\nContent-Length: 0\r\n\r\n"
        );
        ep.handle_input(t0, Transport::Udp, peer(), inv.as_bytes());
        let mut call = 0;
        while let Some(o) = ep.poll_output() {
            if let Output::Event(Event::IncomingCall { call: c, .. }) = o {
                call = c;
            }
        }
        ep.answer(t0, call, "v=0\r\n").unwrap();
        let mut tag = String::new();
        while let Some(o) = ep.poll_output() {
            if let Output::Transmit { bytes, .. } = o {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                if let Some(t) = s.split("tag=").nth(2) {
                    tag = t.lines().next().unwrap_or("").trim().to_string();
                }
            }
        }
        let mut h = H {
            ep,
            t0,
            now: t0,
            tag,
            call,
        };
        let ack = h.req("ACK", "z9hG4bKa1", 1, "", "");
        h.input(&ack);
        h
    }

    fn req(&self, method: &str, branch: &str, cseq: u32, headers: &str, body: &str) -> String {
        format!(
            "{method} sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch={branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:caller@example.com>;tag=from1\r\nTo: <sip:1000@127.0.0.1>;tag={}\r\nCall-ID: x1\r\nCSeq: {cseq} {method}\r\n\
             {headers}Content-Length: {}\r\n\r\n{body}",
            self.tag,
            body.len()
        )
    }

    fn notify(&self, branch: &str, cseq: u32, state: &str, body: &str) -> String {
        let headers = format!(
            "Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\n"
        );
        self.req("NOTIFY", branch, cseq, &headers, body)
    }

    fn input(&mut self, msg: &str) -> Vec<Output> {
        self.ep
            .handle_input(self.now, Transport::Udp, peer(), msg.as_bytes());
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

    fn advance_to(&mut self, t: Duration) -> Vec<Output> {
        let until = self.t0 + t;
        let mut out = Vec::new();
        while let Some(next) = self.ep.poll_timeout() {
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            self.ep.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = until.max(self.now);
        out
    }

    /// Sends REFER; returns its text.
    fn refer(&mut self) -> String {
        self.ep
            .refer(
                self.now,
                self.call,
                "sip:2000@example.com",
                "sip:1000@127.0.0.1",
                Duration::from_secs(30),
            )
            .unwrap();
        let outs = self.drain();
        let sent = texts(&outs);
        assert_eq!(sent.len(), 1, "{sent:?}");
        sent[0].clone()
    }

    /// The response to rivr's REFER.
    fn answer_refer(&mut self, refer: &str, status: &str) -> Vec<Output> {
        let via = refer.lines().find(|l| l.starts_with("Via:")).unwrap();
        let cseq = refer.lines().find(|l| l.starts_with("CSeq:")).unwrap();
        let resp = format!(
            "SIP/2.0 {status}\r\n{via}\r\nFrom: <sip:1000@127.0.0.1>;tag={}\r\nTo: <sip:caller@example.com>;tag=from1\r\n\
             Call-ID: x1\r\n{cseq}\r\nContent-Length: 0\r\n\r\n",
            self.tag
        );
        self.input(&resp)
    }
}

fn texts(outs: &[Output]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn outcome(outs: &[Output]) -> Option<TransferOutcome> {
    outs.iter().find_map(|o| match o {
        Output::Event(Event::Transfer { outcome, .. }) => Some(outcome.clone()),
        _ => None,
    })
}

fn cseq_of(msg: &str) -> u32 {
    let line = msg.lines().find(|l| l.starts_with("CSeq:")).unwrap();
    line[5..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[test]
fn accepted_refer_and_a_2xx_sipfrag_is_a_transfer() {
    let mut h = H::confirmed();
    let refer = h.refer();
    assert!(
        refer.starts_with("REFER sip:caller@127.0.0.1:5070 SIP/2.0"),
        "{refer}"
    );
    assert!(
        refer.contains("\r\nRefer-To: <sip:2000@example.com>\r\n"),
        "{refer}"
    );
    assert!(
        refer.contains("\r\nReferred-By: <sip:1000@127.0.0.1>\r\n"),
        "{refer}"
    );
    let cseq = cseq_of(&refer);
    assert!(outcome(&h.answer_refer(&refer, "202 Accepted")).is_none());
    let n1 = h.notify(
        "z9hG4bKn1",
        2,
        "active;expires=60",
        "SIP/2.0 100 Trying\r\n",
    );
    let outs = h.input(&n1);
    assert_eq!(first_line(&texts(&outs)[0]), "SIP/2.0 200 OK");
    assert!(outcome(&outs).is_none(), "a provisional is no outcome");
    let n2 = h.notify(
        "z9hG4bKn2",
        3,
        "terminated;reason=noresource",
        "SIP/2.0 200 OK\r\n",
    );
    let outs = h.input(&n2);
    assert_eq!(first_line(&texts(&outs)[0]), "SIP/2.0 200 OK");
    assert_eq!(
        outcome(&outs),
        Some(TransferOutcome {
            ok: true,
            status: 200,
            reason: "OK".into()
        })
    );
    // A retransmitted final NOTIFY gets its 200 again and no second outcome.
    let outs = h.input(&n2);
    assert_eq!(first_line(&texts(&outs)[0]), "SIP/2.0 200 OK");
    assert!(outcome(&outs).is_none());
    // A new NOTIFY after the subscription ended: it is gone.
    let outs = h.input(&h.notify("z9hG4bKn3", 4, "terminated", "SIP/2.0 200 OK\r\n"));
    assert_eq!(
        first_line(&texts(&outs)[0]),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    // The layer above ends the call (RFC 5589 §6).
    h.ep.hangup(h.now, h.call).unwrap();
    let bye = texts(&h.drain());
    assert!(bye[0].starts_with("BYE "), "{bye:?}");
    assert_eq!(cseq_of(&bye[0]), cseq + 1);
    h.advance_to(Duration::from_secs(100));
    assert_eq!(h.ep.active_transactions(), 0);
}

#[test]
fn refused_refer_is_a_failure_with_its_status() {
    let mut h = H::confirmed();
    let refer = h.refer();
    let outs = h.answer_refer(&refer, "603 Decline");
    assert_eq!(
        outcome(&outs),
        Some(TransferOutcome {
            ok: false,
            status: 603,
            reason: "Decline".into()
        })
    );
    // The call is still up: a second transfer may be tried.
    let again = h.refer();
    assert_eq!(cseq_of(&again), cseq_of(&refer) + 1);
}

#[test]
fn a_busy_sipfrag_is_a_failure() {
    let mut h = H::confirmed();
    let refer = h.refer();
    h.answer_refer(&refer, "202 Accepted");
    let outs = h.input(&h.notify("z9hG4bKn1", 2, "terminated", "SIP/2.0 486 Busy Here\r\n"));
    assert_eq!(first_line(&texts(&outs)[0]), "SIP/2.0 200 OK");
    assert_eq!(
        outcome(&outs),
        Some(TransferOutcome {
            ok: false,
            status: 486,
            reason: "Busy Here".into()
        })
    );
}

#[test]
fn no_final_notify_in_time_is_a_408_failure() {
    let mut h = H::confirmed();
    let refer = h.refer();
    h.answer_refer(&refer, "202 Accepted");
    h.input(&h.notify("z9hG4bKn1", 2, "active", "SIP/2.0 180 Ringing\r\n"));
    assert!(outcome(&h.advance_to(Duration::from_millis(29_999))).is_none());
    let outs = h.advance_to(Duration::from_secs(30));
    let o = outcome(&outs).expect("an outcome at the deadline");
    assert_eq!((o.ok, o.status), (false, 408));
    // A late final NOTIFY finds no subscription.
    let outs = h.input(&h.notify("z9hG4bKn2", 3, "terminated", "SIP/2.0 200 OK\r\n"));
    assert!(first_line(&texts(&outs)[0]).starts_with("SIP/2.0 481"));
    assert!(outcome(&outs).is_none());
}

#[test]
fn unanswered_refer_times_out_after_64_t1() {
    let mut h = H::confirmed();
    h.refer();
    let outs = h.advance_to(Duration::from_millis(32_000));
    let refers = texts(&outs)
        .iter()
        .filter(|t| t.starts_with("REFER"))
        .count();
    assert!(refers >= 5, "retransmitted on timer E: {refers}");
    let o = outcome(&outs).expect("timer F ends it");
    assert_eq!((o.ok, o.status), (false, 408));
    h.advance_to(Duration::from_secs(100));
    assert_eq!(h.ep.active_transactions(), 0);
}

#[test]
fn a_broken_sipfrag_is_counted_and_fails_the_transfer() {
    let mut h = H::confirmed();
    let refer = h.refer();
    h.answer_refer(&refer, "202 Accepted");
    let outs = h.input(&h.notify("z9hG4bKn1", 2, "active", "HTTP/1.1 200 OK\r\n"));
    assert_eq!(first_line(&texts(&outs)[0]), "SIP/2.0 200 OK");
    let o = outcome(&outs).unwrap();
    assert!(!o.ok);
    assert_eq!(h.ep.stats().sipfrag_malformed, 1);
}

#[test]
fn notify_of_another_package_or_without_transfer() {
    let mut h = H::confirmed();
    let outs = h.input(&h.notify("z9hG4bKn1", 2, "active", "SIP/2.0 200 OK\r\n"));
    assert!(first_line(&texts(&outs)[0]).starts_with("SIP/2.0 481"));
    let other = h.req(
        "NOTIFY",
        "z9hG4bKn2",
        3,
        "Event: dialog\r\nSubscription-State: active\r\n",
        "",
    );
    let outs = h.input(&other);
    assert!(first_line(&texts(&outs)[0]).starts_with("SIP/2.0 489"));
}

#[test]
fn sipfrag_status_lines() {
    assert_eq!(
        parse_sipfrag(b"SIP/2.0 200 OK\r\n"),
        Some((200, "OK".into()))
    );
    assert_eq!(
        parse_sipfrag(b"\r\n SIP/2.0 503 Service Unavailable\r\nRetry-After: 5\r\n"),
        Some((503, "Service Unavailable".into()))
    );
    assert_eq!(parse_sipfrag(b"SIP/2.0 180"), Some((180, String::new())));
    for bad in [
        &b""[..],
        b"SIP/2.0",
        b"SIP/2.0 2000 OK",
        b"SIP/2.0 099 x",
        b"SIP/2.0 7xx x",
        b"INVITE sip:a@b SIP/2.0",
        b"\xff\xfe\x00",
        b"SIP/2.0 \xe2\x82 x",
    ] {
        assert_eq!(parse_sipfrag(bad), None, "{bad:?}");
    }
}

#[test]
fn targets_become_uris_in_the_callers_domain() {
    let h = H::confirmed();
    let uris = |t: &str| h.ep.transfer_uris(h.call, t);
    assert_eq!(
        uris("2000"),
        Some(("sip:2000@example.com".into(), "sip:1000@127.0.0.1".into()))
    );
    assert_eq!(
        uris("sip:bob@10.0.0.1:5080").unwrap().0,
        "sip:bob@10.0.0.1:5080"
    );
    for bad in [
        "",
        "12 34",
        "sip:",
        "sip:a b@c",
        "sip:a@b>",
        "abc",
        "sip:a@b\r\nX: y",
    ] {
        assert_eq!(uris(bad), None, "{bad:?}");
    }
    assert_eq!(h.ep.transfer_uris(999, "2000"), None);
}

#[test]
fn refer_before_the_ack_waits_for_it() {
    let mut h = H::confirmed();
    // A second call, answered but not yet ACKed.
    let inv = format!(
        "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKi2\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@example.com>;tag=from2\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: x2\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{PEER}>\r\nContent-Length: 0\r\n\r\n"
    );
    let outs = h.input(&inv);
    let call = outs
        .iter()
        .find_map(|o| match o {
            Output::Event(Event::IncomingCall { call, .. }) => Some(*call),
            _ => None,
        })
        .unwrap();
    h.ep.answer(h.now, call, "v=0\r\n").unwrap();
    let ok = texts(&h.drain()).pop().unwrap();
    let tag = ok
        .split("tag=")
        .nth(2)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    h.ep.refer(
        h.now,
        call,
        "sip:2000@example.com",
        "sip:1000@127.0.0.1",
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(texts(&h.drain()).is_empty(), "no REFER before the ACK");
    let ack = format!(
        "ACK sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKa2\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@example.com>;tag=from2\r\nTo: <sip:1000@127.0.0.1>;tag={tag}\r\nCall-ID: x2\r\nCSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let sent = texts(&h.input(&ack));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("REFER sip:caller@127.0.0.1:5070"),
        "{}",
        sent[0]
    );
    assert!(sent[0].contains("Call-ID: x2"));
}
