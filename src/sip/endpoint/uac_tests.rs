//! The UAC half on a virtual clock: rivr places a call and a scripted
//! carrier answers it, challenges it, refuses it or never answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::digest::Challenge;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";

fn trunk() -> SocketAddr {
    "127.0.0.1:5080".parse().unwrap()
}

struct H {
    ep: Endpoint,
    now: Instant,
    /// Every message goes here (`None`: anywhere; `dests` says where).
    only_to: Option<SocketAddr>,
    dests: Vec<SocketAddr>,
}

fn spec(creds: bool) -> OutboundInvite {
    OutboundInvite {
        trunk: None,
        request_uri: "sip:15551234@127.0.0.1:5080".into(),
        to: "<sip:15551234@127.0.0.1:5080>".into(),
        from_user: "15550100".into(),
        from_host: "127.0.0.1".into(),
        from_display: Some("Clinic".into()),
        dest: trunk(),
        transport: Transport::Udp,
        route: Vec::new(),
        sdp: SDP.into(),
        extra_headers: vec![(
            "P-Asserted-Identity".into(),
            "<sip:15550100@127.0.0.1>".into(),
        )],
        credentials: creds.then(|| Credentials {
            username: "acct".into(),
            password: "secret".into(),
            realm: None,
        }),
        call_id_prefix: None,
    }
}

impl H {
    fn new() -> H {
        let t0 = Instant::now();
        H {
            ep: Endpoint::new(EndpointConfig {
                local_addr: "127.0.0.1:5060".parse().unwrap(),
                user_agent: "rivr-test".into(),
                timers: TimerConfig::default(),
                seed: 11,
                session: Default::default(),
                session_ask: Some(1800),
            }),
            now: t0,
            only_to: Some(trunk()),
            dests: Vec::new(),
        }
    }

    fn drain(&mut self) -> (Vec<String>, Vec<Event>) {
        let mut sent = Vec::new();
        let mut events = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { dest, bytes, .. } => {
                    if let Some(only) = self.only_to {
                        assert_eq!(dest, only);
                    }
                    self.dests.push(dest);
                    sent.push(String::from_utf8(bytes).unwrap());
                }
                Output::Event(e) => events.push(e),
            }
        }
        (sent, events)
    }

    fn reply(&mut self, msg: String) -> (Vec<String>, Vec<Event>) {
        self.ep
            .handle_input(self.now, Transport::Udp, trunk(), msg.as_bytes());
        self.drain()
    }

    fn advance(&mut self, ms: u64) -> (Vec<String>, Vec<Event>) {
        let until = self.now + Duration::from_millis(ms);
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
        self.now = until;
        all
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

/// The carrier's response to `req`.
fn respond(req: &str, status: &str, to_tag: Option<&str>, extra: &str, body: &str) -> String {
    let to = header(req, "To").unwrap();
    let to = match to_tag {
        Some(t) if !to.contains("tag=") => format!("{to};tag={t}"),
        _ => to.to_string(),
    };
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        header(req, "Via").unwrap(),
        header(req, "From").unwrap(),
        header(req, "Call-ID").unwrap(),
        header(req, "CSeq").unwrap(),
        body.len()
    )
}

fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap()
}

fn branch(msg: &str) -> String {
    header(msg, "Via")
        .unwrap()
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn cseq(msg: &str) -> u32 {
    header(msg, "CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn start(h: &mut H, creds: bool) -> (CallRef, String) {
    let call = h.ep.invite(h.now, spec(creds));
    let (sent, events) = h.drain();
    assert!(events.is_empty());
    assert_eq!(sent.len(), 1);
    let inv = sent[0].clone();
    assert!(first_line(&inv).starts_with("INVITE sip:15551234@127.0.0.1:5080 SIP/2.0"));
    assert!(header(&inv, "From")
        .unwrap()
        .starts_with("\"Clinic\" <sip:15550100@127.0.0.1>;tag="));
    assert_eq!(
        header(&inv, "P-Asserted-Identity"),
        Some("<sip:15550100@127.0.0.1>")
    );
    assert!(inv.ends_with(SDP));
    (call, inv)
}

#[test]
fn answered_call_acks_each_2xx_and_the_far_end_hangs_up() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    let (s, e) = h.reply(respond(&inv, "100 Trying", None, "", ""));
    assert!(s.is_empty() && e.is_empty());
    let (_, e) = h.reply(respond(&inv, "180 Ringing", Some("far"), "", ""));
    assert_eq!(
        e,
        vec![Event::Progress {
            call,
            status: 180,
            sdp: None
        }]
    );
    let ok = respond(
        &inv,
        "200 OK",
        Some("far"),
        "Contact: <sip:gw@10.9.9.9:5090>\r\nRecord-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\n",
        SDP,
    );
    let (s, e) = h.reply(ok.clone());
    assert_eq!(
        e,
        vec![Event::Answered {
            call,
            sdp: Some(SDP.as_bytes().to_vec())
        }]
    );
    let ack = &s[0];
    // §12.1.2: remote target from the Contact, route set reversed.
    assert_eq!(first_line(ack), "ACK sip:gw@10.9.9.9:5090 SIP/2.0");
    let routes: Vec<&str> = ack.lines().filter(|l| l.starts_with("Route:")).collect();
    assert_eq!(routes, vec!["Route: <sip:p2;lr>", "Route: <sip:p1;lr>"]);
    assert_eq!(cseq(ack), cseq(&inv));
    assert_ne!(branch(ack), branch(&inv));
    // A retransmitted 2xx gets the same ACK.
    let (s2, e2) = h.reply(ok);
    assert_eq!(s2, vec![ack.clone()]);
    assert!(e2.is_empty());
    // The far end's BYE.
    let from = header(&inv, "From").unwrap();
    let bye = format!(
        "BYE sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKfarbye\r\n\
         From: <sip:15551234@127.0.0.1:5080>;tag=far\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: 7 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        header(&inv, "Call-ID").unwrap()
    );
    let (s, e) = h.reply(bye);
    assert_eq!(first_line(&s[0]), "SIP/2.0 200 OK");
    assert_eq!(
        e,
        vec![Event::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn timer_a_then_timer_b_is_no_response() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    let (s, e) = h.advance(40_000);
    assert_eq!(
        s.len(),
        6,
        "INVITE retransmitted at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    );
    assert!(s.iter().all(|m| *m == inv));
    assert_eq!(
        e,
        vec![Event::Failed {
            call,
            failure: UacFailure {
                kind: UacEnd::NoResponse,
                status: None,
                reason: None,
                reason_header: None
            }
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn busy_is_acked_on_the_same_branch_and_reported_with_its_reason() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    let busy = respond(
        &inv,
        "486 Busy Here",
        Some("far"),
        "Reason: Q.850;cause=17\r\n",
        "",
    );
    let (s, e) = h.reply(busy.clone());
    assert_eq!(first_line(&s[0]), "ACK sip:15551234@127.0.0.1:5080 SIP/2.0");
    assert_eq!(branch(&s[0]), branch(&inv));
    assert!(header(&s[0], "To").unwrap().ends_with(";tag=far"));
    assert_eq!(
        e,
        vec![Event::Failed {
            call,
            failure: UacFailure {
                kind: UacEnd::Refused,
                status: Some(486),
                reason: Some("Busy Here".into()),
                reason_header: Some("Q.850;cause=17".into())
            }
        }]
    );
    // The retransmitted 486 gets the same ACK; no second event.
    let (s2, e2) = h.reply(busy);
    assert_eq!(s2, s);
    assert!(e2.is_empty());
}

/// The digest in `auth` (an Authorization value) matches `ch` for the
/// request, computed independently of rivr's builder where possible.
fn check_auth(auth: &str, ch: &str, method: &str, uri: &str) {
    let ch = Challenge::parse(ch).unwrap();
    let get = |k: &str| {
        auth.split(", ")
            .find_map(|p| {
                p.trim_start_matches("Digest ")
                    .strip_prefix(&format!("{k}="))
            })
            .map(|v| v.trim_matches('"').to_string())
    };
    assert_eq!(get("username").as_deref(), Some("acct"));
    assert_eq!(get("uri").as_deref(), Some(uri));
    assert_eq!(get("realm").as_deref(), Some(ch.realm.as_str()));
    let alg = ch.algorithm;
    let ha1 = alg.hex(format!("acct:{}:secret", ch.realm).as_bytes());
    let ha2 = alg.hex(format!("{method}:{uri}").as_bytes());
    let expect = match get("qop") {
        Some(q) => alg.hex(
            format!(
                "{ha1}:{}:{}:{}:{q}:{ha2}",
                ch.nonce,
                get("nc").unwrap(),
                get("cnonce").unwrap()
            )
            .as_bytes(),
        ),
        None => alg.hex(format!("{ha1}:{}:{ha2}", ch.nonce).as_bytes()),
    };
    assert_eq!(get("response").unwrap(), expect, "{auth}");
}

#[test]
fn a_401_is_answered_with_the_strongest_digest_keeping_call_id_and_tag() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, true);
    let md5 = "Digest realm=\"trunk\", nonce=\"n1\", qop=\"auth\", algorithm=MD5";
    let sha = "Digest realm=\"trunk\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256";
    let chal = respond(
        &inv,
        "401 Unauthorized",
        Some("far"),
        &format!("WWW-Authenticate: {md5}\r\nWWW-Authenticate: {sha}\r\n"),
        "",
    );
    let (s, e) = h.reply(chal);
    assert!(e.is_empty());
    assert_eq!(first_line(&s[0]), "ACK sip:15551234@127.0.0.1:5080 SIP/2.0");
    let inv2 = &s[1];
    assert!(first_line(inv2).starts_with("INVITE "));
    assert_eq!(header(inv2, "Call-ID"), header(&inv, "Call-ID"));
    assert_eq!(header(inv2, "From"), header(&inv, "From"));
    assert_eq!(cseq(inv2), cseq(&inv) + 1);
    assert_ne!(branch(inv2), branch(&inv));
    let auth = header(inv2, "Authorization").unwrap();
    assert!(auth.contains("algorithm=SHA-256"), "{auth}");
    assert!(auth.contains("nc=00000001"));
    check_auth(auth, sha, "INVITE", "sip:15551234@127.0.0.1:5080");
    let (_, e) = h.reply(respond(
        inv2,
        "200 OK",
        Some("far"),
        "Contact: <sip:gw@127.0.0.1:5080>\r\n",
        SDP,
    ));
    assert!(matches!(e[..], [Event::Answered { call: c, .. }] if c == call));
}

#[test]
fn a_407_is_answered_with_proxy_authorization() {
    let mut h = H::new();
    let (_, inv) = start(&mut h, true);
    let ch = "Digest realm=\"proxy\", nonce=\"p1\"";
    let (s, _) = h.reply(respond(
        &inv,
        "407 Proxy Authentication Required",
        Some("px"),
        &format!("Proxy-Authenticate: {ch}\r\n"),
        "",
    ));
    let auth = header(&s[1], "Proxy-Authorization").unwrap();
    assert!(header(&s[1], "Authorization").is_none());
    check_auth(auth, ch, "INVITE", "sip:15551234@127.0.0.1:5080");
}

#[test]
fn stale_is_retried_twice_then_wrong_credentials_end_as_auth_failed() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, true);
    let mut last = inv;
    for (i, ch) in [
        "Digest realm=\"r\", nonce=\"a\"",
        "Digest realm=\"r\", nonce=\"b\", stale=true",
        "Digest realm=\"r\", nonce=\"c\", stale=TRUE",
    ]
    .into_iter()
    .enumerate()
    {
        let (s, e) = h.reply(respond(
            &last,
            "401 Unauthorized",
            Some("f"),
            &format!("WWW-Authenticate: {ch}\r\n"),
            "",
        ));
        assert!(e.is_empty(), "round {i}");
        last = s[1].clone();
        // A new nonce starts the count again.
        assert!(header(&last, "Authorization")
            .unwrap()
            .contains(&format!("nonce=\"{}\"", ["a", "b", "c"][i])));
    }
    // A third stale, or a fresh challenge, is the end: never a loop.
    let (s, e) = h.reply(respond(
        &last,
        "401 Unauthorized",
        Some("f"),
        "WWW-Authenticate: Digest realm=\"r\", nonce=\"d\", stale=true\r\n",
        "",
    ));
    assert_eq!(s.len(), 1, "only the ACK");
    assert!(
        matches!(&e[..], [Event::Failed { call: c, failure }] if *c == call && failure.kind == UacEnd::AuthFailed && failure.status == Some(401))
    );

    let mut h = H::new();
    let (_, inv) = start(&mut h, true);
    let (s, _) = h.reply(respond(
        &inv,
        "401 Unauthorized",
        Some("f"),
        "WWW-Authenticate: Digest realm=\"r\", nonce=\"a\"\r\n",
        "",
    ));
    let (_, e) = h.reply(respond(&s[1], "403 Forbidden", Some("f"), "", ""));
    assert!(
        matches!(&e[..], [Event::Failed { failure, .. }] if failure.kind == UacEnd::AuthFailed && failure.status == Some(403))
    );

    // Without credentials a 401 is a plain refusal.
    let mut h = H::new();
    let (_, inv) = start(&mut h, false);
    let (_, e) = h.reply(respond(
        &inv,
        "401 Unauthorized",
        Some("f"),
        "WWW-Authenticate: Digest realm=\"r\", nonce=\"a\"\r\n",
        "",
    ));
    assert!(matches!(&e[..], [Event::Failed { failure, .. }] if failure.kind == UacEnd::Refused));
}

#[test]
fn hangup_before_any_provisional_waits_then_cancels_and_487_is_cancelled() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    h.ep.hangup(h.now, call).unwrap();
    let (s, _) = h.drain();
    assert!(s.is_empty(), "no CANCEL before a provisional (§9.1)");
    let (s, e) = h.reply(respond(&inv, "180 Ringing", Some("far"), "", ""));
    assert!(e.is_empty());
    let cancel = &s[0];
    assert_eq!(
        first_line(cancel),
        "CANCEL sip:15551234@127.0.0.1:5080 SIP/2.0"
    );
    assert_eq!(branch(cancel), branch(&inv));
    assert_eq!(
        header(cancel, "CSeq").unwrap(),
        format!("{} CANCEL", cseq(&inv))
    );
    assert!(!header(cancel, "To").unwrap().contains("tag="));
    let (s, _) = h.reply(respond(cancel, "200 OK", Some("far"), "", ""));
    assert!(s.is_empty());
    let (s, e) = h.reply(respond(&inv, "487 Request Terminated", Some("far"), "", ""));
    assert_eq!(first_line(&s[0]), "ACK sip:15551234@127.0.0.1:5080 SIP/2.0");
    assert!(
        matches!(&e[..], [Event::Failed { failure, .. }] if failure.kind == UacEnd::Cancelled && failure.status == Some(487))
    );
    // The CANCEL's transaction is matched: nothing retransmits later.
    let (s, _) = h.advance(40_000);
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn a_2xx_crossing_the_cancel_is_acked_and_hung_up() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    h.reply(respond(&inv, "183 Session Progress", Some("far"), "", SDP));
    h.ep.hangup(h.now, call).unwrap();
    let (s, _) = h.drain();
    assert!(first_line(&s[0]).starts_with("CANCEL "));
    let (s, e) = h.reply(respond(
        &inv,
        "200 OK",
        Some("far"),
        "Contact: <sip:gw@127.0.0.1:5080>\r\n",
        SDP,
    ));
    assert!(first_line(&s[0]).starts_with("ACK "));
    assert!(first_line(&s[1]).starts_with("BYE "));
    assert!(matches!(&e[..], [Event::Failed { failure, .. }] if failure.kind == UacEnd::Cancelled));
}

#[test]
fn rivr_hangs_up_an_answered_call_and_answers_a_challenge_to_its_bye() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, true);
    h.reply(respond(
        &inv,
        "200 OK",
        Some("far"),
        "Contact: <sip:gw@127.0.0.1:5080>\r\n",
        SDP,
    ));
    h.ep.hangup(h.now, call).unwrap();
    let (s, _) = h.drain();
    let bye = s[0].clone();
    assert_eq!(first_line(&bye), "BYE sip:gw@127.0.0.1:5080 SIP/2.0");
    assert_eq!(cseq(&bye), cseq(&inv) + 1);
    assert!(header(&bye, "To").unwrap().ends_with(";tag=far"));
    let ch = "Digest realm=\"trunk\", nonce=\"b1\", qop=\"auth\"";
    let (s, e) = h.reply(respond(
        &bye,
        "401 Unauthorized",
        None,
        &format!("WWW-Authenticate: {ch}\r\n"),
        "",
    ));
    assert!(e.is_empty());
    let bye2 = &s[0];
    assert_eq!(cseq(bye2), cseq(&bye) + 1);
    check_auth(
        header(bye2, "Authorization").unwrap(),
        ch,
        "BYE",
        "sip:gw@127.0.0.1:5080",
    );
    let (_, e) = h.reply(respond(bye2, "200 OK", None, "", ""));
    assert_eq!(
        e,
        vec![Event::Ended {
            call,
            reason: EndReason::LocalByeDone
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

fn start_tcp(h: &mut H) -> (CallRef, String) {
    let call = h.ep.invite(
        h.now,
        OutboundInvite {
            transport: Transport::TcpTo,
            ..spec(false)
        },
    );
    let (s, e) = h.drain();
    assert!(e.is_empty());
    assert_eq!(s.len(), 1);
    (call, s.into_iter().next().unwrap())
}

#[test]
fn tcp_invite_says_tcp_and_has_no_timer_a_but_timer_b() {
    let mut h = H::new();
    let (call, inv) = start_tcp(&mut h);
    assert!(header(&inv, "Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert!(header(&inv, "Contact").unwrap().contains(";transport=tcp"));
    let (s, e) = h.advance(31_000);
    assert!(s.is_empty(), "no retransmission on TCP: {s:?}");
    assert!(e.is_empty());
    let (s, e) = h.advance(2_000);
    assert!(s.is_empty());
    assert_eq!(
        e,
        vec![Event::Failed {
            call,
            failure: UacFailure {
                kind: UacEnd::NoResponse,
                status: None,
                reason: None,
                reason_header: None
            }
        }],
        "timer B (64*T1) still ends it"
    );
}

#[test]
fn a_failed_tcp_connect_ends_the_invite_at_once() {
    let mut h = H::new();
    let (call, _) = start_tcp(&mut h);
    // Another destination's failure is not this call's.
    h.ep.connect_failed(h.now, "127.0.0.1:5999".parse().unwrap());
    assert!(h.drain().1.is_empty());
    h.ep.connect_failed(h.now, trunk());
    let (s, e) = h.drain();
    assert!(s.is_empty());
    assert_eq!(
        e,
        vec![Event::Failed {
            call,
            failure: UacFailure {
                kind: UacEnd::NoResponse,
                status: None,
                reason: None,
                reason_header: None
            }
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
    assert_eq!(h.ep.poll_timeout(), None, "nothing left to time out");
}

/// A trunk reached at three addresses (SRV targets), the first `sbc(1)`.
fn sbc(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, n], 5080))
}

fn three_address_trunk() -> H {
    let mut h = H::new();
    h.only_to = None;
    h.ep.set_trunk_targets(0, vec![sbc(1), sbc(2), sbc(3)]);
    h
}

fn start_on_trunk(h: &mut H) -> (CallRef, String) {
    h.dests.clear();
    let call = h.ep.invite(
        h.now,
        OutboundInvite {
            trunk: Some(0),
            ..spec(false)
        },
    );
    let (sent, _) = h.drain();
    (call, sent[0].clone())
}

#[test]
fn a_503_before_ringing_moves_the_invite_to_the_next_address_and_holds_the_first() {
    let mut h = three_address_trunk();
    let (call, inv) = start_on_trunk(&mut h);
    assert_eq!(h.dests, vec![sbc(1)]);
    h.dests.clear();
    let (sent, events) = h.reply(respond(
        &inv,
        "503 Service Unavailable",
        Some("x"),
        "Retry-After: 120\r\n",
        "",
    ));
    assert!(events.is_empty(), "{events:?}");
    // The ACK to the first address, then the same INVITE to the second:
    // a new branch, the same Call-ID, From tag and CSeq (RFC 3263 §4.3).
    assert_eq!(h.dests, vec![sbc(1), sbc(2)]);
    assert!(first_line(&sent[0]).starts_with("ACK "));
    let inv2 = &sent[1];
    assert!(first_line(inv2).starts_with("INVITE sip:15551234@127.0.0.1:5080"));
    assert_ne!(branch(inv2), branch(&inv));
    assert_eq!(header(inv2, "Call-ID"), header(&inv, "Call-ID"));
    assert_eq!(header(inv2, "From"), header(&inv, "From"));
    assert_eq!(cseq(inv2), cseq(&inv));
    assert_eq!(h.ep.stats().failovers, 1);
    let (_, e) = h.reply(respond(inv2, "200 OK", Some("far"), "", SDP));
    assert!(matches!(e.as_slice(), [Event::Answered { call: c, .. }] if *c == call));
    // The next call starts at the second address while the first is held
    // (Retry-After: 120), and at the first again once the hold is over.
    let _ = start_on_trunk(&mut h);
    assert_eq!(h.dests, vec![sbc(2)]);
    h.now += Duration::from_secs(121);
    let _ = start_on_trunk(&mut h);
    assert_eq!(h.dests, vec![sbc(1)]);
}

#[test]
fn silence_moves_on_after_four_seconds_not_timer_b_and_the_last_address_ends_it() {
    let mut h = three_address_trunk();
    let (call, inv) = start_on_trunk(&mut h);
    h.dests.clear();
    // Timer A retransmits to the first address until 4 s, then the
    // INVITE goes to the second, and no more to the first.
    let (sent, e) = h.advance(4_000);
    assert!(e.is_empty());
    assert_eq!(h.dests, vec![sbc(1), sbc(1), sbc(1), sbc(2)], "{sent:?}");
    assert_ne!(branch(&sent[3]), branch(&inv));
    h.dests.clear();
    let (_, e) = h.advance(4_000);
    assert!(e.is_empty());
    assert_eq!(h.dests, vec![sbc(2), sbc(2), sbc(2), sbc(3)]);
    // The last address has nothing after it: timer B ends the attempt.
    h.dests.clear();
    let (_, e) = h.advance(40_000);
    assert!(h.dests.iter().all(|d| *d == sbc(3)));
    assert!(
        matches!(e.as_slice(), [Event::Failed { call: c, failure }]
            if *c == call && failure.kind == UacEnd::NoResponse),
        "{e:?}"
    );
    assert_eq!(h.ep.stats().failovers, 2);
    // Every address is held: the next call still goes out, to the one
    // free soonest.
    let _ = start_on_trunk(&mut h);
    assert_eq!(h.dests, vec![sbc(1)]);
}

#[test]
fn a_call_that_rang_or_was_cancelled_does_not_move() {
    let mut h = three_address_trunk();
    let (call, inv) = start_on_trunk(&mut h);
    let _ = h.reply(respond(&inv, "180 Ringing", Some("far"), "", ""));
    h.dests.clear();
    let (sent, e) = h.reply(respond(
        &inv,
        "503 Service Unavailable",
        Some("far"),
        "",
        "",
    ));
    assert_eq!(sent.len(), 1, "only the ACK: {sent:?}");
    assert!(
        matches!(e.as_slice(), [Event::Failed { call: c, failure }]
            if *c == call && failure.kind == UacEnd::Refused && failure.status == Some(503)),
        "{e:?}"
    );
    assert_eq!(h.ep.stats().failovers, 0);
    // Hung up before any response: the silence is not a reason to move.
    let (call, _) = start_on_trunk(&mut h);
    h.ep.hangup(h.now, call).unwrap();
    h.dests.clear();
    let _ = h.advance(10_000);
    assert!(h.dests.iter().all(|d| *d == sbc(1)), "{:?}", h.dests);
    assert_eq!(h.ep.stats().failovers, 0);
}

#[test]
fn a_refused_tcp_connection_moves_on_at_once() {
    let mut h = three_address_trunk();
    let call = h.ep.invite(
        h.now,
        OutboundInvite {
            trunk: Some(0),
            transport: Transport::TcpTo,
            ..spec(false)
        },
    );
    let _ = h.drain();
    h.dests.clear();
    h.ep.connect_failed(h.now, sbc(1));
    let (_, e) = h.drain();
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.dests, vec![sbc(2)]);
    let _ = call;
}

#[test]
fn an_attempt_id_starts_the_call_id() {
    let mut h = H::new();
    h.ep.invite(
        h.now,
        OutboundInvite {
            call_id_prefix: Some("a0123456789abcdef".into()),
            ..spec(false)
        },
    );
    let (sent, _) = h.drain();
    let id = header(&sent[0], "Call-ID").unwrap();
    assert!(id.starts_with("a0123456789abcdef."), "{id}");
    assert!(id.ends_with("@127.0.0.1"), "{id}");
}

/// A second endpoint on the same address: the process after a crash.
fn restarted() -> H {
    let mut h = H::new();
    h.ep = Endpoint::new(EndpointConfig {
        local_addr: "127.0.0.1:5060".parse().unwrap(),
        user_agent: "rivr-test".into(),
        timers: TimerConfig::default(),
        seed: 99,
        session: Default::default(),
        session_ask: Some(1800),
    });
    h
}

/// The stored dialog goes through its text form, as the store keeps it.
fn stored(d: OutDialog) -> OutDialog {
    serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap()
}

#[test]
fn a_ringing_call_of_a_dead_process_is_cancelled_as_its_own_invite_and_the_487_acked() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    h.reply(respond(&inv, "180 Ringing", Some("far"), "", ""));
    let d = stored(h.ep.out_dialog(call).unwrap());
    assert!(!d.answered());

    let mut n = restarted();
    let orphan = n.ep.end_orphan(n.now, d, None);
    let (s, e) = n.drain();
    assert!(e.is_empty());
    let cancel = &s[0];
    assert_eq!(
        first_line(cancel),
        "CANCEL sip:15551234@127.0.0.1:5080 SIP/2.0"
    );
    // §9.1: the INVITE's branch, Call-ID, From, To (no tag) and CSeq number.
    assert_eq!(branch(cancel), branch(&inv));
    for name in ["Call-ID", "From", "To"] {
        assert_eq!(header(cancel, name), header(&inv, name), "{name}");
    }
    assert_eq!(
        header(cancel, "CSeq").unwrap(),
        format!("{} CANCEL", cseq(&inv))
    );
    assert_eq!(header(cancel, "Via"), header(&inv, "Via"));
    let (s, _) = n.reply(respond(cancel, "200 OK", None, "", ""));
    assert!(s.is_empty());
    let (s, e) = n.reply(respond(&inv, "487 Request Terminated", Some("far"), "", ""));
    assert_eq!(first_line(&s[0]), "ACK sip:15551234@127.0.0.1:5080 SIP/2.0");
    assert_eq!(branch(&s[0]), branch(&inv));
    assert!(
        matches!(&e[..], [Event::Failed { call: c, failure }] if *c == orphan && failure.kind == UacEnd::Cancelled && failure.status == Some(487))
    );
    // A retransmitted 487 gets the same ACK; nothing is left after timer D.
    let (s, e) = n.reply(respond(&inv, "487 Request Terminated", Some("far"), "", ""));
    assert_eq!(s.len(), 1);
    assert!(e.is_empty());
    n.advance(40_000);
    assert_eq!(n.ep.active_calls(), 0);
    assert_eq!(n.ep.active_transactions(), 0);
}

#[test]
fn a_ringing_orphan_answered_meanwhile_is_acked_and_ended_with_bye() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    h.reply(respond(&inv, "183 Session Progress", Some("far"), "", SDP));
    let d = stored(h.ep.out_dialog(call).unwrap());
    let mut n = restarted();
    let orphan = n.ep.end_orphan(n.now, d, None);
    n.drain();
    // The callee picked up before the CANCEL arrived.
    let (s, e) = n.reply(respond(
        &inv,
        "200 OK",
        Some("far"),
        "Contact: <sip:gw@127.0.0.1:5080>\r\n",
        SDP,
    ));
    assert_eq!(first_line(&s[0]), "ACK sip:gw@127.0.0.1:5080 SIP/2.0");
    assert_eq!(cseq(&s[0]), cseq(&inv));
    let bye = &s[1];
    assert_eq!(first_line(bye), "BYE sip:gw@127.0.0.1:5080 SIP/2.0");
    assert!(header(bye, "To").unwrap().ends_with(";tag=far"));
    assert!(
        matches!(&e[..], [Event::Failed { call: c, failure }] if *c == orphan && failure.kind == UacEnd::Cancelled)
    );
}

#[test]
fn a_481_to_the_cancel_of_an_orphan_ends_it_at_once_and_silence_after_64_t1() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, false);
    h.reply(respond(&inv, "180 Ringing", Some("far"), "", ""));
    let d = stored(h.ep.out_dialog(call).unwrap());

    let mut n = restarted();
    let orphan = n.ep.end_orphan(n.now, d.clone(), None);
    let (s, _) = n.drain();
    let (_, e) = n.reply(respond(
        &s[0],
        "481 Call/Transaction Does Not Exist",
        None,
        "",
        "",
    ));
    assert!(
        matches!(&e[..], [Event::Failed { call: c, failure }] if *c == orphan && failure.status == Some(481))
    );

    // No answer at all: the CANCEL gives up after 64·T1 and so does the
    // INVITE it cancels; the call ends once.
    let mut n = restarted();
    let orphan = n.ep.end_orphan(n.now, d, None);
    n.drain();
    let (_, e) = n.advance(33_000);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        matches!(&e[..], [Event::Failed { call: c, .. } | Event::Ended { call: c, .. }] if *c == orphan)
    );
    n.advance(40_000);
    assert_eq!(n.ep.active_calls(), 0);
    assert_eq!(n.ep.active_transactions(), 0);
}

#[test]
fn an_answered_orphan_gets_a_bye_in_its_dialog_with_a_cseq_far_above() {
    let mut h = H::new();
    let (call, inv) = start(&mut h, true);
    h.reply(respond(
        &inv,
        "200 OK",
        Some("far"),
        "Contact: <sip:gw@10.9.9.9:5090>\r\nRecord-Route: <sip:p1;lr>\r\n",
        SDP,
    ));
    let d = stored(h.ep.out_dialog(call).unwrap());
    assert!(d.answered());

    let mut n = restarted();
    let creds = spec(true).credentials;
    let orphan = n.ep.end_orphan(n.now, d, creds);
    let (s, _) = n.drain();
    let bye = s[0].clone();
    assert_eq!(first_line(&bye), "BYE sip:gw@10.9.9.9:5090 SIP/2.0");
    assert_eq!(header(&bye, "Route"), Some("<sip:p1;lr>"));
    assert_eq!(header(&bye, "Call-ID"), header(&inv, "Call-ID"));
    assert_eq!(header(&bye, "From"), header(&inv, "From"));
    assert!(header(&bye, "To").unwrap().ends_with(";tag=far"));
    assert_eq!(cseq(&bye), cseq(&inv) + (1 << 16) + 1);
    // A challenge to it is answered with the trunk's credentials.
    let ch = "Digest realm=\"trunk\", nonce=\"b1\", qop=\"auth\"";
    let (s, e) = n.reply(respond(
        &bye,
        "401 Unauthorized",
        None,
        &format!("WWW-Authenticate: {ch}\r\n"),
        "",
    ));
    assert!(e.is_empty());
    check_auth(
        header(&s[0], "Authorization").unwrap(),
        ch,
        "BYE",
        "sip:gw@10.9.9.9:5090",
    );
    let (_, e) = n.reply(respond(&s[0], "200 OK", None, "", ""));
    assert_eq!(
        e,
        vec![Event::Ended {
            call: orphan,
            reason: EndReason::LocalByeDone
        }]
    );
    assert_eq!(n.ep.active_calls(), 0);
}
