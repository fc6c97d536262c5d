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
            codecs: crate::codec::Codec::ALL.to_vec(),
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

/// Bytes RFC 3261 never allows bare in a value. LF is left out: rivr reads
/// a bare LF as a line end, so an LF before SP is a (legal) fold.
fn forbidden_in_a_value() -> impl Strategy<Value = u8> {
    prop::sample::select(
        (0u8..0x20)
            .filter(|&b| b != b'\t' && b != b'\n')
            .chain([0x7f])
            .collect::<Vec<u8>>(),
    )
}

/// `(name, first byte of the value, end of the line)` of each header line.
fn header_value_spans(msg: &str) -> Vec<(&str, usize, usize)> {
    let head_end = msg.find("\r\n\r\n").unwrap_or(msg.len());
    let mut spans = Vec::new();
    let mut at = msg.find("\r\n").map_or(head_end, |i| i + 2);
    while at < head_end {
        let end = msg[at..].find("\r\n").map_or(head_end, |i| at + i);
        if let Some(colon) = msg[at..end].find(':') {
            spans.push((msg[at..at + colon].trim(), at + colon + 1, end));
        }
        at = end + 2;
    }
    spans
}

/// The SIPp INVITE with `body` and a Content-Length that fits it.
fn invite_with_body(body: &[u8]) -> Vec<u8> {
    let head_end = SIPP_INVITE.find("\r\n\r\n").unwrap_or(0);
    let head = SIPP_INVITE[..head_end].replace("Content-Length:   129", "");
    let head = head.replace("\r\n\r\n", "\r\n");
    let mut out = format!("{head}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Every string a parsed SDP keeps from the text.
fn sdp_strings(sd: &sdp::SessionDescription) -> Vec<&str> {
    let o = &sd.origin;
    let mut out = vec![
        o.username.as_str(),
        &o.session_id,
        &o.session_version,
        &o.address,
        &sd.session_name,
    ];
    for m in &sd.media {
        out.extend([m.media.as_str(), &m.proto]);
        out.extend(m.formats.iter().map(String::as_str));
        out.extend(m.rtpmaps.iter().map(|r| r.encoding.as_str()));
        out.extend(m.fmtps.iter().map(|f| f.1.as_str()));
        for (k, v) in &m.attributes {
            out.push(k);
            out.extend(v.as_deref());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(2000), ..ProptestConfig::default() })]

    /// Issue 9: a control byte anywhere in a header value of a valid INVITE
    /// is a 400 that names the header (a bare CR is refused as such), and
    /// the 400 can be built.
    #[test]
    fn control_byte_in_a_header_value_is_a_400_naming_it(
        pick in any::<prop::sample::Index>(),
        offset in any::<prop::sample::Index>(),
        byte in forbidden_in_a_value(),
    ) {
        let spans = header_value_spans(SIPP_INVITE);
        let (name, start, end) = *pick.get(&spans);
        let at = start + offset.index(end - start + 1);
        let mut bytes = SIPP_INVITE.as_bytes().to_vec();
        bytes.insert(at, byte);
        let err = parse_message(&bytes).expect_err("a control byte must not pass");
        prop_assert_eq!(err.status, Some(400));
        if byte != b'\r' {
            prop_assert_eq!(&err.reason, &format!("control character in the {name} header"));
        }
        // A bare CR in a field the 400 must copy leaves nothing safe to
        // copy: that one is dropped (and counted) instead.
        let copied = matches!(name, "Via" | "From" | "To" | "Call-ID" | "CSeq");
        match error_response(&bytes, &err) {
            Some(resp) => prop_assert!(resp.starts_with(b"SIP/2.0 400 Bad Request (")),
            None => prop_assert!(byte == b'\r' && copied, "no 400 for {byte:#04x} in {name}"),
        }
    }

    /// A control byte in an SDP value: the INVITE parses (the body is not
    /// the wire layer's), the offer does not, and the error names its line.
    #[test]
    fn control_byte_in_an_sdp_value_fails_the_offer_at_its_line(
        line in any::<prop::sample::Index>(),
        offset in any::<prop::sample::Index>(),
        byte in forbidden_in_a_value(),
    ) {
        let body = &SIPP_INVITE[SIPP_INVITE.find("v=0").unwrap_or(0)..];
        let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
        let n = line.index(lines.len());
        let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let value_len = mutated[n].len() - 2;
        let at = 2 + offset.index(value_len + 1);
        mutated[n].insert(at, byte as char);
        let body = format!("{}\r\n", mutated.join("\r\n"));
        let msg = parse_message(&invite_with_body(body.as_bytes())).expect("the INVITE parses");
        let text = std::str::from_utf8(msg.body()).expect("UTF-8");
        let syntax_error = matches!(
            sdp::parse(text),
            Err(sdp::SdpError::Syntax { line, ref reason }) if line == n + 1 && reason == "control character"
        );
        prop_assert!(syntax_error, "{:?}", sdp::parse(text));
    }

    /// Whatever control bytes land wherever in an offer, a parsed offer
    /// keeps no value holding one.
    #[test]
    fn no_parsed_sdp_value_holds_a_control_byte(
        inserts in prop::collection::vec((any::<prop::sample::Index>(), 0u8..0x80), 1..6),
    ) {
        let mut body = SIPP_INVITE.as_bytes()[SIPP_INVITE.find("v=0").unwrap_or(0)..].to_vec();
        for (at, b) in &inserts {
            let at = at.index(body.len() + 1);
            body.insert(at, *b);
        }
        if let Ok(sd) = sdp::parse(&String::from_utf8_lossy(&body)) {
            for s in sdp_strings(&sd) {
                prop_assert!(!s.bytes().any(is_forbidden_control), "{s:?}");
            }
        }
    }
}
