//! Registration and OPTIONS keepalive on a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

fn registrar() -> SocketAddr {
    "127.0.0.1:5090".parse().unwrap()
}

/// What happened over a stretch of time: (second, message) and (second, event).
type Timeline = (Vec<(u64, String)>, Vec<(u64, LinkEvent)>);

struct H {
    ep: Endpoint,
    t0: Instant,
    now: Instant,
    /// Where each message went.
    dests: Vec<SocketAddr>,
}

impl H {
    fn new(register: bool, options: bool) -> H {
        H::with_transport(register, options, Transport::Udp)
    }

    fn with_transport(register: bool, options: bool, transport: Transport) -> H {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            user_agent: "rivr-test".into(),
            timers: TimerConfig::default(),
            seed: 5,
            session: Default::default(),
            session_ask: Some(1800),
        });
        ep.add_trunk_link(
            t0,
            TrunkLinkSpec {
                id: 0,
                dest: registrar(),
                transport,
                host_port: "127.0.0.1:5090".into(),
                options_every: options.then(|| Duration::from_secs(30)),
                register: register.then(|| Credentials {
                    username: "acct".into(),
                    password: "secret".into(),
                    realm: None,
                }),
                expires: 3600,
            },
        );
        H {
            ep,
            t0,
            now: t0,
            dests: Vec::new(),
        }
    }

    fn drain(&mut self) -> (Vec<String>, Vec<LinkEvent>) {
        let mut sent = Vec::new();
        let mut ev = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { bytes, dest, .. } => {
                    self.dests.push(dest);
                    sent.push(String::from_utf8(bytes).unwrap())
                }
                Output::Event(Event::TrunkLink { event, .. }) => ev.push(event),
                Output::Event(e) => panic!("{e:?}"),
            }
        }
        (sent, ev)
    }

    fn reply(&mut self, req: &str, status: &str, extra: &str) -> (Vec<String>, Vec<LinkEvent>) {
        let h = |n: &str| {
            req.lines()
                .find(|l| l.starts_with(&format!("{n}:")))
                .map(|l| l[n.len() + 1..].trim().to_string())
                .unwrap()
        };
        let msg = format!(
            "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=reg\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            h("Via"),
            h("From"),
            h("To"),
            h("Call-ID"),
            h("CSeq")
        );
        self.ep
            .handle_input(self.now, Transport::Udp, registrar(), msg.as_bytes());
        self.drain()
    }

    /// Runs timers until `at` (seconds after start).
    fn until(&mut self, secs: u64) -> Timeline {
        let until = self.t0 + Duration::from_secs(secs);
        let mut sent = Vec::new();
        let mut ev = Vec::new();
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            self.ep.handle_timeout(self.now);
            let at = (self.now - self.t0).as_secs();
            let (s, e) = self.drain();
            sent.extend(s.into_iter().map(|m| (at, m)));
            ev.extend(e.into_iter().map(|x| (at, x)));
        }
        self.now = until;
        (sent, ev)
    }
}

fn header<'a>(m: &'a str, n: &str) -> Option<&'a str> {
    m.lines()
        .find(|l| l.starts_with(&format!("{n}:")))
        .map(|l| l[n.len() + 1..].trim())
}

#[test]
fn register_answers_the_challenge_and_refreshes_at_90_percent() {
    let mut h = H::new(true, false);
    let (s, _) = h.drain();
    let reg = &s[0];
    assert!(reg.starts_with("REGISTER sip:127.0.0.1:5090 SIP/2.0"));
    assert_eq!(header(reg, "Expires"), Some("3600"));
    assert_eq!(header(reg, "Contact"), Some("<sip:acct@127.0.0.1:5060>"));
    let (s, e) = h.reply(
        reg,
        "401 Unauthorized",
        "WWW-Authenticate: Digest realm=\"reg\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"\r\n",
    );
    assert!(e.is_empty());
    let reg2 = &s[0];
    assert_eq!(header(reg2, "Call-ID"), header(reg, "Call-ID"));
    let auth = header(reg2, "Authorization").unwrap();
    assert!(auth.contains("uri=\"sip:127.0.0.1:5090\""), "{auth}");
    let (_, e) = h.reply(
        reg2,
        "200 OK",
        "Contact: <sip:acct@127.0.0.1:5060>;expires=600\r\n",
    );
    assert_eq!(e, vec![LinkEvent::Registered { expires: 600 }]);
    let (s, _) = h.until(539);
    assert!(s.is_empty());
    let (s, _) = h.until(541);
    // The refresh at 540 s, and its UDP retransmission half a second on.
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0, 540, "refreshed at 90 % of 600 s");
    assert_eq!(s[0].1, s[1].1);
    assert!(s[0].1.starts_with("REGISTER "));
}

#[test]
fn min_expires_is_honoured_and_failures_back_off() {
    let mut h = H::new(true, false);
    let (s, _) = h.drain();
    let (s, _) = h.reply(&s[0], "423 Interval Too Brief", "Min-Expires: 7200\r\n");
    assert_eq!(header(&s[0], "Expires"), Some("7200"));
    let (_, e) = h.reply(&s[0], "503 Service Unavailable", "");
    assert_eq!(
        e,
        vec![LinkEvent::RegistrationFailed {
            status: Some(503),
            retry_in: Duration::from_secs(30)
        }]
    );
    // Nothing answers: timer F, then 60 s, 120 s, … up to 600 s.
    let (sent, ev) = h.until(3000);
    let fails: Vec<(u64, Duration)> = ev
        .iter()
        .filter_map(|(t, e)| match e {
            LinkEvent::RegistrationFailed { retry_in, .. } => Some((*t, *retry_in)),
            _ => None,
        })
        .collect();
    let waits: Vec<u64> = fails.iter().map(|f| f.1.as_secs()).collect();
    assert_eq!(&waits[..6], &[60, 120, 240, 480, 600, 600]);
    assert!(sent.iter().all(|(_, m)| m.starts_with("REGISTER ")));
}

#[test]
fn options_keepalive_says_up_then_down_and_unregister_sends_expires_0() {
    let mut h = H::new(true, true);
    let (s, _) = h.drain();
    let reg = s
        .iter()
        .find(|m| m.starts_with("REGISTER"))
        .unwrap()
        .clone();
    let opt = s.iter().find(|m| m.starts_with("OPTIONS")).unwrap().clone();
    let (_, e) = h.reply(&opt, "404 Not Found", "");
    assert_eq!(e, vec![LinkEvent::Up], "any final answer means up");
    h.reply(&reg, "200 OK", "Expires: 3600\r\n");
    // The next OPTIONS, 30 s on, goes unanswered: down at timer F.
    let (sent, ev) = h.until(70);
    assert!(sent
        .iter()
        .any(|(t, m)| *t == 30 && m.starts_with("OPTIONS")));
    assert_eq!(ev, vec![(62, LinkEvent::Down)]);
    h.ep.unregister_all(h.now);
    let (s, _) = h.drain();
    assert_eq!(s.len(), 1);
    assert_eq!(header(&s[0], "Expires"), Some("0"));
}

#[test]
fn tcp_link_says_tcp_and_a_failed_connect_is_down_at_once() {
    let mut h = H::with_transport(true, true, Transport::TcpTo);
    let (sent, ev) = h.drain();
    assert!(ev.is_empty());
    assert_eq!(sent.len(), 2, "REGISTER and OPTIONS: {sent:?}");
    for m in &sent {
        assert!(m.contains("\r\nVia: SIP/2.0/TCP "), "{m}");
    }
    let register = sent.iter().find(|m| m.starts_with("REGISTER ")).unwrap();
    assert!(
        register.contains("Contact: <sip:acct@127.0.0.1:5060;transport=tcp>"),
        "{register}"
    );
    h.ep.connect_failed(h.now, registrar());
    let (sent, ev) = h.drain();
    assert!(sent.is_empty());
    // Both transactions end (in no set order): the keepalive says down,
    // the registration goes into its back-off.
    assert!(
        ev.contains(&LinkEvent::RegistrationFailed {
            status: None,
            retry_in: Duration::from_secs(30)
        }),
        "{ev:?}"
    );
    assert!(ev.contains(&LinkEvent::Down), "{ev:?}");
    assert_eq!(ev.len(), 2, "{ev:?}");
    // No retransmission on TCP; the next tries come on their own timers.
    let next = h.ep.poll_timeout().unwrap();
    assert_eq!(
        next.saturating_duration_since(h.t0),
        Duration::from_secs(30)
    );
}

#[test]
fn options_move_to_the_next_address_and_the_trunk_is_down_only_when_none_answers() {
    let second: SocketAddr = "127.0.0.2:5090".parse().unwrap();
    let mut h = H::new(false, true);
    h.ep.set_trunk_targets(0, vec![registrar(), second]);
    let (sent, _) = h.drain();
    // add_trunk_link sent the first OPTIONS before the addresses were
    // known: to the spec's own dest, which is the first address.
    assert_eq!(sent.len(), 1);
    h.dests.clear();
    // Timer F on the first address: the next OPTIONS goes to the second at
    // once, and the trunk is not down.
    let (sent, ev) = h.until(33);
    assert!(ev.is_empty(), "{ev:?}");
    let last = sent.last().unwrap();
    assert_eq!(last.0, 32);
    assert_eq!(h.dests.last(), Some(&second));
    assert_eq!(h.ep.stats().failovers, 1);
    let (_, ev) = h.reply(&last.1.clone(), "200 OK", "");
    assert_eq!(ev, vec![LinkEvent::Up]);
    // The next keepalive (30 s later) stays on the second address while
    // the first is held (60 s from 32 s) …
    h.dests.clear();
    let (sent, _) = h.until(63);
    assert_eq!(h.dests, vec![second], "{sent:?}");
    let (_, ev) = h.reply(&sent[0].1.clone(), "200 OK", "");
    assert!(ev.is_empty());
    // … and goes back to the first once the hold is over (at 93 s).
    h.dests.clear();
    let (sent, _) = h.until(94);
    assert_eq!(h.dests.first(), Some(&registrar()), "{sent:?}");
    // Neither answers: the first times out at 125 s and the second is
    // asked at once; down only when it times out too, at 157 s.
    let (_, ev) = h.until(150);
    assert!(ev.is_empty(), "{ev:?}");
    let (_, ev) = h.until(200);
    assert_eq!(ev, vec![(157, LinkEvent::Down)]);
}
