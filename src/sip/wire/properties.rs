//! Property tests of the wire layer (and of what runs on its output):
//! random bytes and mutated RFC 4475 messages never panic, and a message
//! that passes always has working typed accessors. `PROPTEST_CASES` raises
//! the case count for a longer soak; the fuzz targets in `fuzz/` check the
//! same properties under libFuzzer.

use super::tests::SIPP_INVITE;
use super::*;
use crate::sip::{sdp, validate};
use proptest::prelude::*;
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::{HasHeaders, HeadersExt};

fn rfc4475_corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/rfc4475");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "dat"));
    files.sort();
    let mut corpus: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    corpus.push(SIPP_INVITE.as_bytes().to_vec());
    corpus
}

/// Everything downstream of the wire layer, on any input: must not panic,
/// and a message that passes must have working typed accessors.
fn exercise(bytes: &[u8]) {
    let _ = frame_stream(bytes);
    match parse_message(bytes) {
        Err(e) => {
            let resp = error_response(bytes, &e);
            if let Some(resp) = resp {
                assert!(resp.ends_with(b"\r\n\r\n"));
                assert_eq!(frame_stream(&resp), Ok(Some(resp.len())));
            }
        }
        Ok(msg) => {
            msg.via_header().unwrap().typed().unwrap();
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
                if !c.value().trim().starts_with('*') {
                    c.typed().unwrap();
                }
            }
            let _ = error_response(bytes, &WireError::bad_request("x"));
            if let rsip::SipMessage::Request(req) = &msg {
                let _ = validate::check_request(req);
            }
            if let Ok(text) = std::str::from_utf8(msg.body()) {
                exercise_sdp(text);
            }
            let _ = msg.headers().iter().count();
        }
    }
}

fn exercise_sdp(text: &str) {
    if let Ok(sd) = sdp::parse(text) {
        let local = sdp::LocalMedia {
            ip: "192.0.2.1".parse().unwrap(),
            rtp_port: 40000,
            codecs: crate::media::codec::Codec::ALL.to_vec(),
            telephone_event: true,
            session_id: 1,
            session_version: 2,
        };
        if let Ok((_, answer)) = sdp::answer(&sd, &local) {
            // rivr's own answer always parses again
            assert!(sdp::parse(&answer).is_ok(), "{answer}");
        }
        let _ = sdp::accept_answer(&sd, &local);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b"\r\n".to_vec(),
        b"\r\n ".to_vec(),
        b":".to_vec(),
        b";".to_vec(),
        b",".to_vec(),
        b"\"".to_vec(),
        b"<".to_vec(),
        b">".to_vec(),
        b" ".to_vec(),
        b"\0".to_vec(),
        b"%".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"\r\nContent-Length: 4294967296\r\n".to_vec(),
        b"\r\nl: -1\r\n".to_vec(),
        b"\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK9\r\n".to_vec(),
        b"\r\nContact: *\r\n".to_vec(),
        "\u{feff}é".as_bytes().to_vec(),
        b"\xff\xfe".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x ^= b;
            }
        }
        Mutation::Insert(i, s) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, s.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i % len;
            let end = (at + n).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
        Mutation::Duplicate(i, n) => {
            let at = i % len;
            let end = (at + n).min(bytes.len());
            if at < end {
                let copy: Vec<u8> = bytes[at..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
}

proptest! {
    // PROPTEST_CASES raises the count for a longer soak (2000 is the floor).
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(2000), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_rfc4475_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let corpus = rfc4475_corpus();
        prop_assume!(!corpus.is_empty());
        let mut bytes = pick.get(&corpus).clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(&bytes);
    }

    #[test]
    fn random_sdp_text_never_panics(text in "(([a-z]=[ -~]{0,40})?\r?\n){0,30}") {
        exercise_sdp(&text);
    }

    #[test]
    fn mutated_offers_never_panic(
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = SIPP_INVITE.as_bytes().to_vec();
        let body_start = SIPP_INVITE.find("v=0").unwrap_or(0);
        bytes.drain(..body_start);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise_sdp(&String::from_utf8_lossy(&bytes));
    }
}
