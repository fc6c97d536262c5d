//! A trunk named by a domain without a port is located as RFC 3263 says
//! (issue 10 §2): NAPTR → SRV → A. The DNS server is the test's own, on
//! 127.0.0.1 (`[sip] dns_server`), built with hickory-proto's message
//! codec; it answers for `carrier.test`: a NAPTR for SIP over UDP naming
//! `_sip._udp.carrier.test`, whose SRV set has `sbc1` (priority 10, on
//! SIPp's port) and `sbc2` (priority 20, nowhere), and A records for both.
//! `rivr call` must ask for NAPTR, then that SRV name, then sbc1's
//! address, and reach SIPp (answered); the Request-URI keeps the domain.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, NAPTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use common::caller::SIGNALLING;
use common::carrier::Carrier;
use common::scratch::{rtp_range, Scratch};
use common::server::{binary, repo};

/// The records of the test's zone, for `name` and `kind`.
fn answers(name: &str, kind: RecordType, sip_port: u16) -> Vec<RData> {
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
        ("_sip._udp.carrier.test.", RecordType::SRV) => vec![
            RData::SRV(SRV::new(20, 10, 9, n("sbc2.carrier.test."))),
            RData::SRV(SRV::new(10, 10, sip_port, n("sbc1.carrier.test."))),
        ],
        ("sbc1.carrier.test.", RecordType::A) => vec![RData::A(A(Ipv4Addr::LOCALHOST))],
        ("sbc2.carrier.test.", RecordType::A) => vec![RData::A(A(Ipv4Addr::new(127, 0, 0, 2)))],
        _ => Vec::new(),
    }
}

/// Serves the zone on a UDP socket of 127.0.0.1 until the test ends;
/// every question asked, in order.
fn dns_server(sip_port: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
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
                for rdata in answers(&name, q.query_type(), sip_port) {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
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
    let (dns_port, asked) = dns_server(carrier.port);
    let (rtp_lo, rtp_hi) = rtp_range(8);
    let config = dir.join("rivr.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\ndns_server = \"127.0.0.1:{dns_port}\"\n\
             [rtp]\nports = \"{rtp_lo}-{rtp_hi}\"\n\
             [media]\nprompts = {prompts:?}\n\
             [cdr]\npath = {cdr:?}\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:carrier.test\"\n",
            prompts = repo().join("prompts").display().to_string(),
            cdr = dir.join("cdr.jsonl").display().to_string(),
        ),
    )
    .expect("write rivr.toml");
    let script = dir.join("hello.rhai");
    std::fs::write(&script, "play(\"tone:beep\");\n").expect("write the script");
    let out = Command::new(binary())
        .args(["call", "--config"])
        .arg(&config)
        .arg("--script")
        .arg(&script)
        .arg("15550100")
        .stdin(Stdio::null())
        .output()
        .expect("run rivr call");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rivr call failed:\n{stderr}");
    carrier.expect_pass(SIGNALLING);
    let asked = asked.lock().map(|a| a.clone()).unwrap_or_default();
    println!("rivr call: {stdout}DNS questions: {asked:?}");
    assert!(
        stdout.contains("\"outcome\":\"answered\""),
        "{stdout}\n{stderr}"
    );
    let position = |q: &str| {
        asked
            .iter()
            .position(|a| a == q)
            .unwrap_or_else(|| panic!("rivr never asked {q:?}: {asked:?}"))
    };
    let (naptr, srv, a) = (
        position("NAPTR carrier.test."),
        position("SRV _sip._udp.carrier.test."),
        position("A sbc1.carrier.test."),
    );
    assert!(naptr < srv && srv < a, "NAPTR, then SRV, then A: {asked:?}");
    assert!(
        !asked
            .iter()
            .any(|q| q.contains("sbc2") || q.contains("_tcp")),
        "the priority-20 target and the TCP service are not needed: {asked:?}"
    );
    let invites = carrier.received("INVITE");
    assert_eq!(invites.len(), 1, "one INVITE");
    assert!(
        invites[0].starts_with("INVITE sip:15550100@carrier.test SIP/2.0"),
        "the Request-URI keeps the domain: {}",
        invites[0].lines().next().unwrap_or_default()
    );
}
