//! RFC 4475 torture tests: every message of the suite's archive
//! (`tests/conformance/rfc4475/`, byte-exact copy) through
//! `wire::parse_message` + `validate::check_request` (+ `sdp::parse` and
//! `sdp::answer` where there is an SDP body), as an endpoint (UAS) would.
//!
//! `RFC` lists, per file, the verdicts the RFC's text allows an endpoint
//! (EXPECTED.md quotes it). `RIVR` is what rivr does. Where rivr's verdict is
//! not among the allowed ones it must be listed in `DEVIATIONS` with the
//! reason, and the test asserts the deviation exactly, so neither table can
//! drift silently.

use rivr::sip::sdp;
use rivr::sip::validate::check_request;
use rivr::sip::wire::{error_response, parse_message, WireError};
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::HasHeaders;
use rsip::prelude::HeadersExt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Parsed and passed validation: handed to the transaction layer.
    Accept,
    /// Answered with this status code.
    Reply(u16),
    /// Silently discarded (and counted).
    Drop,
}
use Verdict::{Accept, Drop, Reply};

/// (file, RFC section, verdicts the RFC allows an endpoint, rivr's verdict)
const CASES: &[(&str, &str, &[Verdict], Verdict)] = &[
    // 3.1.1 valid messages
    ("wsinv", "3.1.1.1", &[Accept], Accept),
    ("intmeth", "3.1.1.2", &[Reply(501)], Reply(501)), // "Endpoints will generate a 501"
    ("esc01", "3.1.1.3", &[Accept], Accept),
    ("escnull", "3.1.1.4", &[Accept], Accept),
    ("esc02", "3.1.1.5", &[Reply(501)], Reply(501)), // "An endpoint would reject this message with a 501"
    ("lwsdisp", "3.1.1.6", &[Accept], Accept),
    ("longreq", "3.1.1.7", &[Accept], Accept),
    ("dblreq", "3.1.1.8", &[Accept], Accept),
    ("semiuri", "3.1.1.9", &[Accept], Accept),
    ("transports", "3.1.1.10", &[Accept], Accept),
    ("mpart01", "3.1.1.11", &[Accept], Accept),
    ("unreason", "3.1.1.12", &[Accept], Accept),
    ("noreason", "3.1.1.13", &[Accept], Accept),
    // 3.1.2 invalid messages
    ("badinv01", "3.1.2.1", &[Reply(400)], Reply(400)),
    ("clerr", "3.1.2.2", &[Reply(400)], Reply(400)),
    ("ncl", "3.1.2.3", &[Reply(400)], Reply(400)),
    ("scalar02", "3.1.2.4", &[Reply(400)], Reply(400)),
    ("scalarlg", "3.1.2.5", &[Drop], Drop),
    ("quotbal", "3.1.2.6", &[Reply(400), Accept], Reply(400)),
    ("ltgtruri", "3.1.2.7", &[Reply(400), Accept], Reply(400)),
    ("lwsruri", "3.1.2.8", &[Reply(400), Accept], Reply(400)),
    ("lwsstart", "3.1.2.9", &[Reply(400), Accept], Reply(400)),
    ("trws", "3.1.2.10", &[Reply(400), Accept], Reply(400)),
    ("escruri", "3.1.2.11", &[Reply(400), Accept], Reply(400)),
    ("baddate", "3.1.2.12", &[Reply(400), Accept], Accept), // Date is never used
    ("regbadct", "3.1.2.13", &[Reply(400), Accept], Reply(400)),
    ("badaspec", "3.1.2.14", &[Reply(400), Accept], Reply(400)),
    ("baddn", "3.1.2.15", &[Reply(400), Accept], Reply(400)),
    ("badvers", "3.1.2.16", &[Reply(505)], Reply(505)),
    ("mismatch01", "3.1.2.17", &[Reply(400)], Reply(400)),
    (
        "mismatch02",
        "3.1.2.18",
        &[Reply(501), Reply(400)],
        Reply(501),
    ),
    ("bigcode", "3.1.2.19", &[Drop], Drop),
    // 3.2 transaction layer
    ("badbranch", "3.2.1", &[Reply(400), Accept], Reply(400)),
    // 3.3 application layer
    ("insuf", "3.3.1", &[Reply(400)], Reply(400)),
    ("unkscm", "3.3.2", &[Reply(416)], Reply(416)),
    ("novelsc", "3.3.3", &[Reply(416), Reply(404)], Reply(416)),
    // A registrar answers 400 (To must be a SIP URI); rivr is not a proxy.
    ("unksm2", "3.3.4", &[Accept, Reply(400)], Reply(400)),
    ("bext01", "3.3.5", &[Reply(420)], Reply(420)),
    ("invut", "3.3.6", &[Reply(415)], Reply(415)),
    // rivr is no registrar; the UAS core answers REGISTER 405 ("Endpoints
    // choosing not to act as registrars ... A 405 ... is appropriate").
    ("regaut01", "3.3.7", &[Accept], Accept),
    ("multi01", "3.3.8", &[Reply(400)], Reply(400)),
    ("mcl01", "3.3.9", &[Reply(400)], Reply(400)),
    // Parses; the transaction layer discards it (no matching transaction).
    ("bcast", "3.3.10", &[Accept], Accept),
    ("zeromf", "3.3.11", &[Accept], Accept),
    ("cparam01", "3.3.12", &[Accept], Accept),
    ("cparam02", "3.3.13", &[Accept], Accept),
    ("regescrt", "3.3.14", &[Accept], Reply(400)),
    ("sdp01", "3.3.15", &[Reply(406), Reply(400)], Reply(406)),
    // 3.4 backward compatibility
    ("inv2543", "3.4.1", &[Accept], Reply(400)),
];

/// Every case where rivr's verdict is not one the RFC allows:
/// (file, what the RFC says, what rivr does, why).
const DEVIATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "regescrt",
        "REGISTER succeeds; the escaped Route header stays in the Contact URI",
        "400 Bad Request",
        "rsip 0.4's Uri cannot hold URI headers, so the Contact cannot be typed; rivr refuses \
         rather than pass a message whose Contact accessor fails (rivr is no registrar anyway)",
    ),
    (
        "inv2543",
        "accept (RFC 2543 backward compatibility)",
        "400 Bad Request",
        "its Via has no branch; rivr does not implement RFC 2543 transaction matching \
         (RFC 4475 §3.2.1 allows the 400 for a missing branch)",
    ),
];

/// Where rivr's verdict is a reply but no response can be built from the
/// message (RFC 3261 §8.2.6 needs From, To, Call-ID): it is dropped.
const UNANSWERABLE: &[&str] = &["insuf"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/rfc4475")
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{file}.dat"))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn local_media() -> sdp::LocalMedia {
    sdp::LocalMedia {
        ip: "192.0.2.200".parse().unwrap(),
        rtp_port: 20000,
        codecs: vec![
            rivr::codec::Codec::Pcmu,
            rivr::codec::Codec::Pcma,
        ],
        telephone_event: true,
        session_id: 1,
        session_version: 1,
    }
}

fn is_sdp(msg: &rsip::SipMessage) -> bool {
    msg.headers().iter().any(|h| match h {
        rsip::Header::ContentType(t) => t
            .to_string()
            .to_ascii_lowercase()
            .contains("application/sdp"),
        _ => false,
    })
}

/// The endpoint pipeline; also returns the parse result for further checks.
fn run(bytes: &[u8]) -> (Verdict, Result<rsip::SipMessage, WireError>) {
    let parsed = parse_message(bytes);
    let verdict = match &parsed {
        Err(WireError {
            status: Some(code), ..
        }) => Reply(*code),
        Err(WireError { status: None, .. }) => Drop,
        Ok(msg) => {
            if !msg.body().is_empty() && is_sdp(msg) {
                let text = std::str::from_utf8(msg.body()).expect("SDP body is UTF-8");
                let sd = sdp::parse(text).expect("SDP body parses");
                if let rsip::SipMessage::Request(r) = msg {
                    if r.method == rsip::Method::Invite {
                        sdp::answer(&sd, &local_media()).expect("SDP offer is answerable");
                    }
                }
            }
            match msg {
                rsip::SipMessage::Request(r) => match check_request(r) {
                    Ok(()) => Accept,
                    Err(rej) => Reply(rej.status),
                },
                rsip::SipMessage::Response(_) => Accept,
            }
        }
    };
    (verdict, parsed)
}

#[test]
fn suite_is_complete_and_byte_exact() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dat").map(str::to_owned))
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.0.to_owned()).collect();
    cases.sort();
    assert_eq!(files, cases);
    assert_eq!(files.len(), 49);
    // sizes from EXPECTED.md's table
    assert_eq!(read("wsinv").len(), 1001);
    assert_eq!(read("mpart01").len(), 1290);
    assert_eq!(read("baddn").len(), 331);
    assert_eq!(read("longreq").len(), 3515);
}

#[test]
fn verdicts_match_the_rfc_or_the_listed_deviations() {
    let mut table = String::new();
    for &(file, section, allowed, rivr) in CASES {
        let (got, _) = run(&read(file));
        table.push_str(&format!(
            "{file:12} §{section:9} rfc {allowed:?} rivr {got:?}\n"
        ));
        assert_eq!(got, rivr, "{file} (§{section}): rivr's verdict changed");
        let deviation = DEVIATIONS.iter().find(|d| d.0 == file);
        assert_eq!(
            !allowed.contains(&got),
            deviation.is_some(),
            "{file}: a verdict outside the RFC's must be listed in DEVIATIONS, and only then"
        );
    }
    println!("{table}");
    println!("deviations: {}", DEVIATIONS.len());
    let valid_deviations = CASES
        .iter()
        .filter(|c| c.1.starts_with("3.1.1."))
        .filter(|c| DEVIATIONS.iter().any(|d| d.0 == c.0))
        .count();
    assert_eq!(valid_deviations, 0, "no deviation on the 13 valid messages");
}

#[test]
fn every_reply_can_be_sent_and_copies_the_transaction_fields() {
    for &(file, _, _, rivr) in CASES {
        let bytes = read(file);
        let Err(err) = parse_message(&bytes) else {
            continue;
        };
        let Reply(code) = rivr else {
            assert_eq!(err.status, None, "{file}");
            assert_eq!(
                error_response(&bytes, &err),
                None,
                "{file}: no reply to a drop"
            );
            continue;
        };
        let resp = error_response(&bytes, &err);
        if UNANSWERABLE.contains(&file) {
            assert_eq!(resp, None, "{file}");
            continue;
        }
        let resp = resp.unwrap_or_else(|| panic!("{file}: no response built"));
        // a complete response, framed as one message, with the status line
        // rivr means and the five fields copied verbatim from the request
        assert_eq!(
            rivr::sip::wire::frame_stream(&resp),
            Ok(Some(resp.len())),
            "{file}"
        );
        let text = String::from_utf8_lossy(&resp);
        assert!(
            text.starts_with(&format!("SIP/2.0 {code} ")),
            "{file}: {text}"
        );
        assert!(text.ends_with("\r\nContent-Length: 0\r\n\r\n"), "{file}");
        let raw = String::from_utf8_lossy(&bytes);
        for name in ["Call-ID", "CSeq"] {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("{file}: no {name}"));
            let value = line.split_once(": ").map(|(_, v)| v).unwrap_or_default();
            assert!(
                raw.contains(value),
                "{file}: {name} value {value:?} not copied"
            );
        }
        if let Ok(rsip::SipMessage::Response(r)) = parse_message(&resp) {
            assert_eq!(r.status_code.code(), code, "{file}");
        }
        if code == 501 {
            assert!(text.contains("\r\nAllow: "), "{file}: 501 without Allow");
        }
    }
}

#[test]
fn specific_replies_carry_the_required_headers() {
    let bext = parse_message(&read("bext01")).unwrap();
    let rsip::SipMessage::Request(req) = bext else {
        panic!()
    };
    let rej = check_request(&req).unwrap_err();
    assert_eq!(
        rej.extra_headers,
        vec![rsip::Header::Unsupported(rsip::headers::Unsupported::new(
            "nothingSupportsThis, nothingSupportsThisEither"
        ))]
    );
    let invut = parse_message(&read("invut")).unwrap();
    let rsip::SipMessage::Request(req) = invut else {
        panic!()
    };
    assert_eq!(
        check_request(&req).unwrap_err().extra_headers,
        vec![rsip::Header::Accept(rsip::headers::Accept::new(
            "application/sdp"
        ))]
    );
}

#[test]
fn typed_accessors_cannot_fail_on_accepted_messages() {
    let mut checked = 0;
    for &(file, ..) in CASES {
        let Ok(msg) = parse_message(&read(file)) else {
            continue;
        };
        let via = msg.via_header().unwrap().typed().unwrap();
        let _ = via.branch();
        msg.call_id_header().unwrap();
        msg.from_header().unwrap().typed().unwrap();
        msg.from_header().unwrap().tag().unwrap();
        msg.to_header().unwrap().typed().unwrap();
        msg.to_header().unwrap().tag().unwrap();
        msg.cseq_header().unwrap().typed().unwrap();
        if let Some(rr) = msg.record_route_header() {
            rr.typed().unwrap();
        }
        if let Some(r) = msg.route_header() {
            r.typed().unwrap();
        }
        for c in msg.contact_headers() {
            c.typed().unwrap();
        }
        if let Ok(mf) = msg.max_forwards_header() {
            mf.num().unwrap();
        }
        checked += 1;
    }
    println!("accessors checked on {checked} accepted messages");
    assert!(checked >= 20);
}

fn request(file: &str) -> rsip::Request {
    match parse_message(&read(file)) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("{file}: {other:?}"),
    }
}

#[test]
fn valid_messages_mean_what_the_rfc_says() {
    let wsinv = request("wsinv");
    assert_eq!(
        wsinv.to_header().unwrap().tag().unwrap().unwrap().value(),
        "1918181833n"
    );
    assert_eq!(
        wsinv.from_header().unwrap().tag().unwrap().unwrap().value(),
        "98asjd8"
    );
    let cseq = wsinv.cseq_header().unwrap().typed().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, rsip::Method::Invite));
    assert_eq!(wsinv.max_forwards_header().unwrap().num().unwrap(), 68);
    let vias: Vec<_> = wsinv
        .headers
        .iter()
        .filter(|h| matches!(h, rsip::Header::Via(_)))
        .collect();
    assert_eq!(vias.len(), 3, "the folded v: line holds two Via values");
    assert_eq!(wsinv.body.len(), 150);
    assert!(wsinv.headers.iter().any(|h| matches!(h, rsip::Header::Other(n, v) if n == "NewFangledHeader" && v == "newfangled value continued newfangled value")));

    let escnull = request("escnull");
    let contacts: Vec<String> = escnull
        .contact_headers()
        .iter()
        .map(|c| c.typed().unwrap().uri.to_string())
        .collect();
    assert_eq!(contacts.len(), 2);
    assert_ne!(contacts[0], contacts[1], "two distinct Contacts");

    let semiuri = request("semiuri");
    assert_eq!(semiuri.uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(semiuri.uri.host().to_string(), "example.com");

    let dblreq = request("dblreq");
    assert_eq!(dblreq.method, rsip::Method::Register);
    assert!(dblreq.body.is_empty(), "the trailing INVITE is ignored");

    let transports = request("transports");
    assert_eq!(
        transports
            .headers
            .iter()
            .filter(|h| matches!(h, rsip::Header::Via(_)))
            .count(),
        5
    );

    let mpart = request("mpart01");
    assert_eq!(mpart.body.len(), 553);
    assert_eq!(mpart.body.iter().filter(|&&b| b == 0).count(), 2);

    let longreq = request("longreq");
    assert_eq!(
        longreq
            .headers
            .iter()
            .filter(|h| matches!(h, rsip::Header::Via(_)))
            .count(),
        34
    );

    let lwsdisp = request("lwsdisp");
    assert_eq!(
        lwsdisp
            .from_header()
            .unwrap()
            .typed()
            .unwrap()
            .display_name
            .as_deref(),
        Some("caller")
    );

    let cparam01 = request("cparam01");
    let c = cparam01.contact_header().unwrap().typed().unwrap();
    assert!(
        c.uri.params.is_empty(),
        "unknownparam is a contact-param: {:?}",
        c.uri.params
    );
    assert_eq!(c.params.len(), 1);
    let cparam02 = request("cparam02");
    let c = cparam02.contact_header().unwrap().typed().unwrap();
    assert_eq!(c.uri.params.len(), 1, "unknownparam is a url-parameter");
    assert!(c.params.is_empty());

    match parse_message(&read("unreason")) {
        Ok(rsip::SipMessage::Response(r)) => assert_eq!(r.status_code.code(), 200),
        other => panic!("{other:?}"),
    }
    match parse_message(&read("noreason")) {
        Ok(rsip::SipMessage::Response(r)) => assert_eq!(r.status_code.code(), 100),
        other => panic!("{other:?}"),
    }
}

/// What rivr accepted survives serialisation: `wire::to_bytes` round-trips
/// every message; rsip's own `to_string()` loses only mpart01's binary body
/// (it goes through `from_utf8_lossy`), which is why `to_bytes` exists.
#[test]
fn accepted_messages_round_trip_through_serialisation() {
    let mut lossy = Vec::new();
    let mut round_tripped = 0;
    for &(file, ..) in CASES {
        let Ok(msg) = parse_message(&read(file)) else {
            continue;
        };
        let bytes = rivr::sip::wire::to_bytes(&msg);
        assert_eq!(parse_message(&bytes).as_ref(), Ok(&msg), "{file}");
        round_tripped += 1;
        if parse_message(msg.to_string().as_bytes()).as_ref() != Ok(&msg) {
            lossy.push(file);
        }
    }
    assert_eq!(lossy, vec!["mpart01"]);
    println!("{round_tripped} accepted messages round-trip through to_bytes");
}

/// The same messages arriving on a stream (TCP): where framing puts the end
/// of each, per RFC 4475's notes for stream transports.
#[test]
fn stream_framing_of_the_suite() {
    use rivr::sip::wire::frame_stream;
    for &(file, ..) in CASES {
        let bytes = read(file);
        let framed = frame_stream(&bytes);
        match file {
            // §3.1.2.2: "wait for more data on the stream"
            "clerr" => assert_eq!(framed, Ok(None), "{file}"),
            // the archive copy has no empty line ending the headers
            "baddn" => assert_eq!(framed, Ok(None), "{file}"),
            // §3.1.2.3, §3.3.9: "the connection should be closed"
            "ncl" | "mcl01" => assert!(framed.is_err(), "{file}"),
            // the REGISTER is a frame of its own; the INVITE behind it is next
            "dblreq" => {
                let n = framed.unwrap().unwrap();
                assert!(bytes[..n].ends_with(b"Content-Length: 0\r\n\r\n"));
                let rest = &bytes[n..];
                let m = frame_stream(rest).unwrap().unwrap();
                let Ok(rsip::SipMessage::Request(invite)) = parse_message(&rest[..m]) else {
                    panic!("second frame")
                };
                assert_eq!(invite.method, rsip::Method::Invite);
            }
            // no Content-Length: on a stream the message ends with its headers
            "inv2543" => {
                let n = framed.unwrap().unwrap();
                assert!(bytes[..n].ends_with(b"Content-Type: application/sdp\r\n\r\n"));
            }
            _ => assert_eq!(framed, Ok(Some(bytes.len())), "{file}"),
        }
    }
}
