//! A trunk named by a domain without a port is located as RFC 3263 says
//! (issue 10 §2): NAPTR → SRV → A. The DNS server is the test's own, on
//! 127.0.0.1 (`[sip] dns_server`), built with hickory-proto's message
//! codec; it answers for `carrier.test`: a NAPTR for SIP over UDP naming
//! `_sip._udp.carrier.test`, whose SRV set has `sbc1` (priority 10, on
//! SIPp's port) and `sbc2` (priority 20, nowhere), and A records for both.
//! `rivr call` must ask for NAPTR, then that SRV name, then the targets'
//! addresses in priority order, and reach SIPp (answered); the
//! Request-URI keeps the domain.
//!
//! Then failover along the SRV set (RFC 3263 §4.3): a first SBC that
//! answers 503 (the INVITE moves to the second at once, and the next call
//! starts there), one that never answers (moved after 4 s, not timer B's
//! 32 s), and a record set that changes while rivr runs (looked up again
//! when its TTL runs out).

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, NAPTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use common::caller::SIGNALLING;
use common::carrier::Carrier;
use common::scratch::{rtp_range, Scratch};
use common::server::{binary, repo};

/// The SRV set of `_sip._udp.carrier.test` — (priority, port, target) —
/// and the TTL of every answer; the test may change both while rivr runs.
#[derive(Clone)]
struct Zone {
    srv: Vec<(u16, u16, &'static str)>,
    ttl: u32,
}

impl Zone {
    /// sbc1 (priority 10) on `sip_port`; sbc2 (priority 20) nowhere.
    fn one(sip_port: u16) -> Zone {
        Zone {
            srv: vec![(20, 9, "sbc2"), (10, sip_port, "sbc1")],
            ttl: 60,
        }
    }
}

/// The records of the test's zone, for `name` and `kind`.
fn answers(name: &str, kind: RecordType, zone: &Zone) -> Vec<RData> {
    let n = |s: &str| Name::from_str(s).expect("a DNS name");
    match (name, kind) {
        ("carrier.test.", RecordType::NAPTR) => vec![
            RData::NAPTR(NAPTR::new(
                10,
                50,
                b"s".to_vec().into_boxed_slice(),
                b"SIP+D2U".to_vec().into_boxed_slice(),
                Vec::new().into_boxed_slice(),
                n("_sip._udp.carrier.test."),
            )),
            RData::NAPTR(NAPTR::new(
                20,
                50,
                b"s".to_vec().into_boxed_slice(),
                b"SIP+D2T".to_vec().into_boxed_slice(),
                Vec::new().into_boxed_slice(),
                n("_sip._tcp.carrier.test."),
            )),
        ],
        ("_sip._udp.carrier.test.", RecordType::SRV) => zone
            .srv
            .iter()
            .map(|(prio, port, target)| {
                RData::SRV(SRV::new(
                    *prio,
                    10,
                    *port,
                    n(&format!("{target}.carrier.test.")),
                ))
            })
            .collect(),
        ("sbc2.carrier.test.", RecordType::A) if zone.srv.iter().any(|s| s.1 == 9) => {
            vec![RData::A(A(Ipv4Addr::new(127, 0, 0, 2)))]
        }
        (sbc, RecordType::A) if sbc.starts_with("sbc") => vec![RData::A(A(Ipv4Addr::LOCALHOST))],
        _ => Vec::new(),
    }
}

/// Serves `zone` on a UDP socket of 127.0.0.1 until the test ends; every
/// question asked, in order.
fn dns_server(zone: Arc<Mutex<Zone>>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the DNS socket");
    let port = sock.local_addr().expect("DNS address").port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = sock.recv_from(&mut buf) {
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let mut reply = Message::new();
            reply
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_recursion_desired(query.recursion_desired())
                .set_recursion_available(true)
                .set_authoritative(true);
            let mut known = false;
            for q in query.queries() {
                reply.add_query(q.clone());
                let name = q.name().to_ascii().to_ascii_lowercase();
                if let Ok(mut l) = log.lock() {
                    l.push(format!("{} {name}", q.query_type()));
                }
                known |= name.ends_with("carrier.test.");
                let zone = zone.lock().map(|z| z.clone()).expect("the zone");
                for rdata in answers(&name, q.query_type(), &zone) {
                    reply.add_answer(Record::from_rdata(q.name().clone(), zone.ttl, rdata));
                }
            }
            if !known {
                reply.set_response_code(ResponseCode::NXDomain);
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = sock.send_to(&bytes, from);
            }
        }
    });
    (port, asked)
}

#[test]
fn a_domain_trunk_is_located_by_naptr_then_srv_then_a() {
    require_sipp!();
    let dir = Scratch::new("out-dns");
    let mut carrier = Carrier::start(
        dir.path(),
        "dns",
        "uas_answer.xml",
        200,
        &[("rtp_port", "9".into()), ("codec", "0".into())],
    );
    let (dns_port, asked) = dns_server(Arc::new(Mutex::new(Zone::one(carrier.port))));
    let calls = call_through_dns(&dir, dns_port, "", "play(\"tone:beep\");\n", &["15550100"]);
    carrier.expect_pass(SIGNALLING);
    let asked = asked.lock().map(|a| a.clone()).unwrap_or_default();
    println!("DNS questions: {asked:?}");
    assert_eq!(calls[0]["outcome"], "answered", "{}", calls[0]);
    let position = |q: &str| {
        asked
            .iter()
            .position(|a| a == q)
            .unwrap_or_else(|| panic!("rivr never asked {q:?}: {asked:?}"))
    };
    let (naptr, srv, a1, a2) = (
        position("NAPTR carrier.test."),
        position("SRV _sip._udp.carrier.test."),
        position("A sbc1.carrier.test."),
        position("A sbc2.carrier.test."),
    );
    assert!(
        naptr < srv && srv < a1 && a1 < a2,
        "NAPTR, then SRV, then the targets by priority: {asked:?}"
    );
    assert!(
        !asked.iter().any(|q| q.contains("_tcp")),
        "the TCP service is not needed: {asked:?}"
    );
    // The priority-20 address is known, for failover, but not used.
    let invites = carrier.received("INVITE");
    assert_eq!(invites.len(), 1, "one INVITE");
    assert!(
        invites[0].starts_with("INVITE sip:15550100@carrier.test SIP/2.0"),
        "the Request-URI keeps the domain: {}",
        invites[0].lines().next().unwrap_or_default()
    );
}

/// Writes a config whose one trunk is `sip:carrier.test` located on the
/// test's DNS server, and runs `rivr call` with `args` (the number last);
/// every JSON line it printed.
fn call_through_dns(
    dir: &Scratch,
    dns_port: u16,
    trunk_extra: &str,
    script: &str,
    args: &[&str],
) -> Vec<serde_json::Value> {
    let (rtp_lo, rtp_hi) = rtp_range(8);
    let config = dir.join("rivr.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\ndns_server = \"127.0.0.1:{dns_port}\"\n\
             [rtp]\nports = \"{rtp_lo}-{rtp_hi}\"\n\
             [media]\nprompts = {prompts:?}\n\
             [cdr]\npath = {cdr:?}\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:carrier.test\"\n{trunk_extra}",
            prompts = repo().join("prompts").display().to_string(),
            cdr = dir.join("cdr.jsonl").display().to_string(),
        ),
    )
    .expect("write rivr.toml");
    let script_path = dir.join("flow.rhai");
    std::fs::write(&script_path, script).expect("write the script");
    let out = Command::new(binary())
        .args(["call", "--config"])
        .arg(&config)
        .arg("--script")
        .arg(&script_path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rivr call");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rivr call failed:\n{stderr}");
    println!("rivr call:\n{stdout}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
        .collect()
}

fn call_ids(invites: &[String]) -> Vec<String> {
    invites
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Call-ID:"))
                .map(|v| v.trim().to_string())
        })
        .collect()
}

#[test]
fn a_503_moves_the_call_to_the_next_srv_target_and_the_next_call_starts_there() {
    require_sipp!();
    let dir = Scratch::new("out-dns-503");
    let mut down = Carrier::start(dir.path(), "down", "uas_unavailable.xml", 0, &[]);
    let mut up = Carrier::start_calls(
        dir.path(),
        "up",
        "uas_answer.xml",
        100,
        &[("rtp_port", "9".into()), ("codec", "0".into())],
        2,
    );
    let zone = Zone {
        srv: vec![(10, down.port, "sbc1"), (20, up.port, "sbc2")],
        ttl: 60,
    };
    let (dns_port, _) = dns_server(Arc::new(Mutex::new(zone)));
    let calls = call_through_dns(
        &dir,
        dns_port,
        "cps = 1\n",
        "play(\"tone:beep\");\n",
        &["--count", "2", "15550100"],
    );
    down.expect_pass(SIGNALLING);
    up.expect_pass(SIGNALLING);
    assert_eq!(calls.len(), 2);
    for c in &calls {
        assert_eq!(c["outcome"], "answered", "{c}");
    }
    let at_down = down.received("INVITE");
    let at_up = up.received("INVITE");
    println!(
        "INVITEs: {} at the 503 SBC, {} at the second; ACKs of the 503: {}",
        at_down.len(),
        at_up.len(),
        down.received("ACK").len()
    );
    assert_eq!(
        at_down.len(),
        1,
        "only the first call tried the SBC that failed"
    );
    assert_eq!(down.received("ACK").len(), 1, "the 503 was ACKed");
    assert_eq!(at_up.len(), 2, "both calls were answered by the second SBC");
    // The same request moved: same Call-ID at both.
    let (first, second) = (call_ids(&at_down), call_ids(&at_up));
    assert_eq!(first.first(), second.first(), "{first:?} {second:?}");
    assert_ne!(second.first(), second.get(1));
}

#[test]
fn a_silent_first_target_is_left_after_four_seconds() {
    require_sipp!();
    let dir = Scratch::new("out-dns-silent");
    // An SBC that reads and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind the silent SBC");
    let silent_port = silent.local_addr().expect("its address").port();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, _)) = silent.recv_from(&mut buf) {
            if buf[..len].starts_with(b"INVITE ") {
                if let Ok(mut l) = log.lock() {
                    l.push(t0.elapsed());
                }
            }
        }
    });
    let mut up = Carrier::start(
        dir.path(),
        "up",
        "uas_answer.xml",
        100,
        &[("rtp_port", "9".into()), ("codec", "0".into())],
    );
    let zone = Zone {
        srv: vec![(10, silent_port, "sbc1"), (20, up.port, "sbc2")],
        ttl: 60,
    };
    let (dns_port, _) = dns_server(Arc::new(Mutex::new(zone)));
    let calls = call_through_dns(&dir, dns_port, "", "play(\"tone:beep\");\n", &["15550100"]);
    up.expect_pass(SIGNALLING);
    let heard = heard.lock().map(|h| h.clone()).unwrap_or_default();
    let call = &calls[0];
    let ring_ms = call["ring_ms"].as_u64().unwrap_or(0);
    println!("INVITEs at the silent SBC at {heard:?}; ring_ms {ring_ms}");
    assert_eq!(call["outcome"], "answered", "{call}");
    // Sent at 0, 0.5, 1.5 and 3.5 s (timer A), then left at 4 s.
    assert_eq!(heard.len(), 4, "{heard:?}");
    let span = heard[3] - heard[0];
    assert!(
        (3.4..3.6).contains(&span.as_secs_f64()),
        "timer A doubling: {heard:?}"
    );
    // Ringing (100 ms at the second SBC) starts after the 4 s: answered
    // well before timer B (32 s) would have let go of the first.
    assert!(
        (4_000..6_000).contains(&ring_ms),
        "ring_ms {ring_ms}: moved after 4 s"
    );
    assert_eq!(up.received("INVITE").len(), 1);
}

#[test]
fn records_that_change_are_looked_up_again_when_their_ttl_runs_out() {
    require_sipp!();
    let dir = Scratch::new("out-dns-ttl");
    let keys = [("rtp_port", "9".to_string()), ("codec", "0".to_string())];
    // Both SBCs would take every call; which ones reach each is the test.
    let old = Carrier::start_calls(dir.path(), "old", "uas_answer.xml", 0, &keys, 100);
    let new = Carrier::start_calls(dir.path(), "new", "uas_answer.xml", 0, &keys, 100);
    let zone = Arc::new(Mutex::new(Zone {
        srv: vec![(10, old.port, "sbc1")],
        ttl: 1,
    }));
    let (dns_port, asked) = dns_server(zone.clone());
    // Once the first call reaches the old SBC, the carrier moves its
    // service: the SRV record names the new one from then on.
    let swap = {
        let (zone, new_port) = (zone.clone(), new.port);
        let messages = dir.join("carrier-old-messages.log");
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let seen = std::fs::read_to_string(&messages).unwrap_or_default();
                if seen.contains("INVITE sip:") {
                    if let Ok(mut z) = zone.lock() {
                        z.srv = vec![(10, new_port, "sbc1")];
                    }
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    // Eight calls one second apart: the name is looked up again 5 s after
    // the first lookup (TTL 1 s, raised to rivr's 5 s floor), so the
    // last calls go where the new record points.
    let calls = call_through_dns(
        &dir,
        dns_port,
        "cps = 1\n",
        "play(\"tone:beep\");\n",
        &["--count", "8", "15550100"],
    );
    assert!(
        swap.join().unwrap_or(false),
        "the first call never reached the old SBC"
    );
    let srv_lookups = asked
        .lock()
        .map(|a| a.iter().filter(|q| q.starts_with("SRV ")).count())
        .unwrap_or(0);
    assert_eq!(calls.len(), 8);
    for c in &calls {
        assert_eq!(c["outcome"], "answered", "{c}");
    }
    let (at_old, at_new) = (old.received("INVITE"), new.received("INVITE"));
    println!(
        "SRV lookups: {srv_lookups}; INVITEs: {} at the old SBC, {} at the new",
        at_old.len(),
        at_new.len()
    );
    assert!(srv_lookups >= 2, "the SRV set was looked up again");
    assert!(!at_old.is_empty(), "the first calls went to the old SBC");
    assert!(!at_new.is_empty(), "the last calls went to the new SBC");
    assert_eq!(at_old.len() + at_new.len(), 8, "one INVITE per call");
}
