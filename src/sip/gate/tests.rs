//! The gate on a virtual clock: trusted and untrusted sources, flood
//! verdicts turned into stateless answers, and what a scanner can tell.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::acl::Cidr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn request(method: &str, number: &str, branch: u32) -> Vec<u8> {
    format!(
        "{method} sip:{number}@192.0.2.10 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{branch}\r\n\
         From: <sip:scan@198.51.100.7>;tag=f{branch}\r\n\
         To: <sip:{number}@192.0.2.10>\r\n\
         Call-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn gate(trusted: Option<&str>, untrusted: UntrustedPolicy) -> Gate {
    Gate::new(GateConfig {
        trusted: trusted.map(|t| Acl::new(vec![t.parse::<Cidr>().unwrap()])),
        untrusted,
        flood: FloodConfig {
            capacity: 64,
            ..FloodConfig::default()
        },
    })
}

fn text(v: &GateVerdict) -> String {
    match v {
        GateVerdict::Reply(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn sniffs_the_method_only() {
    assert_eq!(sniff(b"INVITE sip:a@b SIP/2.0\r\n"), Kind::Invite);
    assert_eq!(sniff(b"\r\n\r\nINVITE sip:a@b SIP/2.0\r\n"), Kind::Invite);
    assert_eq!(sniff(b"ACK sip:a@b SIP/2.0\r\n"), Kind::Ack);
    assert_eq!(sniff(b"OPTIONS sip:a@b SIP/2.0\r\n"), Kind::OtherRequest);
    assert_eq!(sniff(b"invite sip:a@b SIP/2.0\r\n"), Kind::OtherRequest);
    assert_eq!(sniff(b"SIP/2.0 200 OK\r\n"), Kind::Response);
    assert_eq!(sniff(b""), Kind::Garbage);
    assert_eq!(sniff(b"INVITE"), Kind::Garbage);
    assert_eq!(sniff(&[0xff; 100]), Kind::Garbage);
    assert_eq!(sniff(b" INVITE sip:a@b"), Kind::Garbage);
}

#[test]
fn an_invite_flood_gets_trying_then_503_then_nothing() {
    let t0 = Instant::now();
    let mut g = gate(None, UntrustedPolicy::Reject);
    let flooder = ip("127.0.0.1");
    let mut verdicts = Vec::new();
    for i in 0..300u32 {
        let t = t0 + Duration::from_micros(u64::from(i) * 3333);
        verdicts.push(g.check(t, flooder, &request("INVITE", "1000", i)));
    }
    let passed = verdicts.iter().filter(|v| **v == GateVerdict::Pass).count();
    let replies: Vec<String> = verdicts
        .iter()
        .filter(|v| matches!(v, GateVerdict::Reply(_)))
        .map(text)
        .collect();
    assert!((20..=22).contains(&passed), "{passed}");
    assert_eq!(replies.len(), 10);
    for r in &replies {
        assert!(r.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{r}");
        assert!(r.contains("\r\nRetry-After: 1\r\n"), "{r}");
    }
    assert_eq!(verdicts.last(), Some(&GateVerdict::Drop));
    assert_eq!(g.stats().flood_refused, 10);
    // Silence covers every method from the flooder...
    let t = t0 + Duration::from_secs(1);
    assert_eq!(
        g.check(t, flooder, &request("OPTIONS", "1000", 999)),
        GateVerdict::Drop
    );
    // ...and no one else.
    let other = ip("127.0.0.2");
    assert_eq!(
        g.check(t, other, &request("INVITE", "1000", 1000)),
        GateVerdict::Pass
    );
    assert_eq!(
        g.check(t, other, &request("OPTIONS", "1000", 1001)),
        GateVerdict::Pass
    );
}

#[test]
fn non_invites_are_not_rate_limited() {
    let t0 = Instant::now();
    let mut g = gate(None, UntrustedPolicy::Reject);
    for i in 0..1000 {
        assert_eq!(
            g.check(t0, ip("127.0.0.1"), &request("OPTIONS", "1000", i)),
            GateVerdict::Pass
        );
    }
}

#[test]
fn untrusted_sources_get_the_same_403_for_every_number_and_method() {
    let t0 = Instant::now();
    let mut g = gate(Some("127.0.0.2/32"), UntrustedPolicy::Reject);
    let outsider = ip("127.0.0.1");
    let known = text(&g.check(t0, outsider, &request("INVITE", "1000", 1)));
    let unknown = text(&g.check(t0, outsider, &request("INVITE", "5555", 1)));
    assert!(known.starts_with("SIP/2.0 403 Forbidden\r\n"), "{known}");
    // Same request but for the number: same answer but for the number
    // (the To tag hashes the request, so it differs too).
    let strip = |r: &str, n: &str| {
        r.replace(n, "N")
            .split("\r\n")
            .map(|l| l.split(";tag=").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&known, "1000"), strip(&unknown, "5555"));
    for forbidden in ["Server", "Allow", "Supported", "Accept", "Contact"] {
        assert!(!known.contains(forbidden), "{forbidden} in {known}");
    }
    let options = text(&g.check(t0, outsider, &request("OPTIONS", "1000", 2)));
    assert!(
        options.starts_with("SIP/2.0 403 Forbidden\r\n"),
        "{options}"
    );
    assert_eq!(
        g.check(t0, outsider, &request("ACK", "1000", 1)),
        GateVerdict::Drop
    );
    assert_eq!(
        g.check(t0, outsider, b"SIP/2.0 200 OK\r\nVia: v\r\n\r\n"),
        GateVerdict::Drop
    );
    assert_eq!(g.check(t0, outsider, &[0u8; 40]), GateVerdict::Drop);
    // The trusted source goes through.
    let insider = ip("127.0.0.2");
    assert_eq!(
        g.check(t0, insider, &request("INVITE", "1000", 3)),
        GateVerdict::Pass
    );
    assert_eq!(g.check(t0, insider, &[0u8; 40]), GateVerdict::Pass);
    assert_eq!(g.stats().untrusted_rejected, 3);
}

#[test]
fn drop_policy_answers_nothing_to_outsiders() {
    let t0 = Instant::now();
    let mut g = gate(Some("10.0.0.0/8"), UntrustedPolicy::Drop);
    for (i, method) in ["INVITE", "OPTIONS", "REGISTER", "BYE", "ACK"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            g.check(t0, ip("127.0.0.1"), &request(method, "1000", i as u32)),
            GateVerdict::Drop,
            "{method}"
        );
    }
    assert_eq!(
        g.check(t0, ip("10.1.2.3"), &request("INVITE", "1000", 9)),
        GateVerdict::Pass
    );
    assert_eq!(g.stats().untrusted_dropped, 5);
}

#[test]
fn an_untrusted_flood_is_silenced_too() {
    let t0 = Instant::now();
    let mut g = gate(Some("10.0.0.0/8"), UntrustedPolicy::Reject);
    let mut codes = Vec::new();
    for i in 0..100 {
        codes.push(
            match g.check(t0, ip("192.0.2.1"), &request("INVITE", "1", i)) {
                GateVerdict::Reply(b) => String::from_utf8(b[8..11].to_vec()).unwrap(),
                GateVerdict::Drop => "-".into(),
                GateVerdict::Pass => panic!("an untrusted INVITE passed"),
            },
        );
    }
    let count = |c: &str| codes.iter().filter(|x| *x == c).count();
    assert_eq!((count("403"), count("503"), count("-")), (20, 10, 70));
}

#[test]
fn an_untrusted_register_loop_is_silenced_like_a_flood() {
    // svcrack answered 403 re-sends its REGISTER without credentials, about
    // 180 a second, forever: it must not be answered one for one.
    let t0 = Instant::now();
    let mut g = gate(Some("10.0.0.0/8"), UntrustedPolicy::Reject);
    let mut codes = Vec::new();
    for i in 0..1000u32 {
        let now = t0 + Duration::from_millis(5 * u64::from(i));
        let method = ["REGISTER", "OPTIONS"][i as usize % 2];
        codes.push(
            match g.check(now, ip("192.0.2.1"), &request(method, "1000", i)) {
                GateVerdict::Reply(b) => String::from_utf8(b[8..11].to_vec()).unwrap(),
                GateVerdict::Drop => "-".into(),
                GateVerdict::Pass => panic!("an untrusted {method} passed"),
            },
        );
    }
    let count = |c: &str| codes.iter().filter(|x| *x == c).count();
    // The burst and what refills while it lasts, the refusals, then nothing.
    assert!((20..=23).contains(&count("403")), "{codes:?}");
    assert_eq!(count("503"), 10, "{codes:?}");
    assert_eq!(count("-"), 1000 - count("403") - 10);
    // A trusted source's OPTIONS are still never limited.
    for i in 0..100 {
        assert_eq!(
            g.check(t0, ip("10.0.0.1"), &request("OPTIONS", "1000", i)),
            GateVerdict::Pass
        );
    }
}

#[test]
fn an_invite_without_the_fields_to_answer_is_dropped_when_refused() {
    let t0 = Instant::now();
    let mut g = gate(Some("10.0.0.0/8"), UntrustedPolicy::Reject);
    assert_eq!(
        g.check(t0, ip("192.0.2.1"), b"INVITE sip:a@b SIP/2.0\r\n\r\n"),
        GateVerdict::Drop
    );
}
