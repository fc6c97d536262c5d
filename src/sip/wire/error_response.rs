//! The stateless response to a request that failed [`parse_message`]
//! (RFC 3261 §8.2.6: copy Via, From, To, Call-ID and CSeq).
//!
//! [`parse_message`]: super::parse_message

use super::raw::{canonical_name, find_header_end, is_token_byte, leading_crlf_len};
use super::WireError;

/// Methods rivr answers; sent in `Allow` with a 501 (RFC 3261 §21.5.2,
/// RFC 4475 §3.1.1.2).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// The reason phrase for every code rivr sends (statelessly here, and from
/// the UAS core through `sip::message`).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        486 => "Busy Here",
        487 => "Request Terminated",
        491 => "Request Pending",
        503 => "Service Unavailable",
        603 => "Decline",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        483 => "Too Many Hops",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "Error",
    }
}

/// For bytes that failed with `Some(status)`: a response (status + reason
/// phrase) that copies Via(s), From, To (adding a To tag is the caller's job),
/// Call-ID and CSeq from the raw bytes; `None` if those cannot be found, if
/// the bytes are a response, or if the error says to drop.
pub fn error_response(bytes: &[u8], err: &WireError) -> Option<Vec<u8>> {
    let status = err.status?;
    let detail = (status == 400).then_some(err.reason.as_str());
    build(bytes, status, detail, &[], false)
}

/// A response rivr sends without creating any state (Kamailio's
/// `sl_send_reply`): admission refusals before the SIP core sees the
/// request (503 with `Retry-After`, 403 to an untrusted source). Copies the
/// transaction fields like [`error_response`], adds `extra_headers`, and
/// gives the To a tag when it has none (RFC 3261 §8.2.6.2) — derived from
/// the request, so a retransmission gets the same one. No `Server` header:
/// an untrusted source learns nothing about what answers. `None` when the
/// bytes are a response or lack a transaction field.
pub fn stateless_response(
    bytes: &[u8],
    status: u16,
    extra_headers: &[(&str, &str)],
) -> Option<Vec<u8>> {
    build(bytes, status, None, extra_headers, true)
}

fn build(
    bytes: &[u8],
    status: u16,
    detail: Option<&str>,
    extra_headers: &[(&str, &str)],
    tag_to: bool,
) -> Option<Vec<u8>> {
    let bytes = bytes.get(leading_crlf_len(bytes)..)?;
    if bytes
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        return None;
    }
    let head = bytes.get(..find_header_end(bytes).unwrap_or(bytes.len()))?;
    let fields = tolerant_fields(head);
    let first = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    };
    let (from, to, call_id, cseq) = (
        first("From")?,
        first("To")?,
        first("Call-ID")?,
        first("CSeq")?,
    );
    let mut out = Vec::with_capacity(head.len().saturating_add(64));
    let phrase = reason_phrase(status);
    out.extend_from_slice(format!("SIP/2.0 {status} {phrase}").as_bytes());
    if let Some(reason) = detail {
        // RFC 3261 §21.4.1: the phrase SHOULD say what was wrong.
        let detail: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        out.extend_from_slice(format!(" ({detail})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let mut vias = 0usize;
    for (_, via) in fields.iter().filter(|(n, _)| *n == "Via") {
        push_header(&mut out, "Via", via);
        vias = vias.saturating_add(1);
    }
    if vias == 0 {
        return None;
    }
    push_header(&mut out, "From", from);
    if tag_to && !has_tag(to) {
        let mut tagged = to.to_vec();
        tagged.extend_from_slice(format!(";tag={:016x}", stable_tag(head)).as_bytes());
        push_header(&mut out, "To", &tagged);
    } else {
        push_header(&mut out, "To", to);
    }
    push_header(&mut out, "Call-ID", call_id);
    push_header(&mut out, "CSeq", cseq);
    if status == 501 {
        push_header(&mut out, "Allow", ALLOW.as_bytes());
    }
    for (name, value) in extra_headers {
        push_header(&mut out, name, value.as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

/// True when a To value carries a `tag` parameter (outside its `<…>`).
fn has_tag(to: &[u8]) -> bool {
    let params = match to.iter().rposition(|&b| b == b'>') {
        Some(close) => to.get(close..).unwrap_or_default(),
        None => to,
    };
    params.split(|&b| b == b';').skip(1).any(|p| {
        let name = p.split(|&b| b == b'=').next().unwrap_or_default();
        name.trim_ascii().eq_ignore_ascii_case(b"tag")
    })
}

/// FNV-1a of the header section: the same request (and its
/// retransmissions) gets the same tag.
fn stable_tag(head: &[u8]) -> u64 {
    head.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Header fields as well as they can be read from a possibly broken header
/// section: lines that do not look like fields are skipped, folding joined.
/// Values are copied byte for byte (RFC 3261 §8.2.6.2 wants them equal).
fn tolerant_fields(head: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut fields: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut last_known = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\r') {
            last_known = false;
            continue;
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let (true, Some((_, value))) = (last_known, fields.last_mut()) {
                value.push(b' ');
                value.extend_from_slice(line.trim_ascii());
            }
            continue;
        }
        last_known = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        if !name.iter().all(|&b| is_token_byte(b)) {
            continue;
        }
        let Some(name) = std::str::from_utf8(name).ok().and_then(canonical_name) else {
            continue;
        };
        if matches!(name, "Via" | "From" | "To" | "Call-ID" | "CSeq") {
            let value = line
                .get(colon.saturating_add(1)..)
                .unwrap_or_default()
                .trim_ascii();
            fields.push((name, value.to_vec()));
            last_known = true;
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_the_transaction_fields_in_order() {
        let req = b"INVITE sip:a@b SIP/3.0\r\nv: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP h2\r\n ;branch=z9hG4bK2\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\ni: abc\r\nCSeq: 1 INVITE\r\nSubject: hi\r\n\r\n";
        let err = WireError {
            status: Some(505),
            reason: "v".into(),
        };
        let resp = String::from_utf8(error_response(req, &err).unwrap()).unwrap();
        assert_eq!(
            resp,
            "SIP/2.0 505 Version Not Supported\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP h2 ;branch=z9hG4bK2\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: abc\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn none_when_fields_missing_or_dropping() {
        let req = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h1\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(error_response(req, &WireError::bad_request("x")), None);
        let full = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(error_response(full, &WireError::drop("x")), None);
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(error_response(resp, &WireError::bad_request("x")), None);
    }

    #[test]
    fn bad_request_names_the_problem_and_501_lists_allow() {
        let full = b"FOO sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 FOO\r\n\r\n";
        let r = String::from_utf8(
            error_response(full, &WireError::bad_request("missing\r\nthing")).unwrap(),
        )
        .unwrap();
        assert!(
            r.starts_with("SIP/2.0 400 Bad Request (missingthing)\r\n"),
            "{r}"
        );
        let err = WireError {
            status: Some(501),
            reason: String::new(),
        };
        let r = String::from_utf8(error_response(full, &err).unwrap()).unwrap();
        assert!(r.contains(&format!("\r\nAllow: {ALLOW}\r\n")), "{r}");
    }

    const INVITE: &[u8] = b"INVITE sip:1000@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5062;branch=z9hG4bK7\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:1000@b>\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nUser-Agent: scanner\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn stateless_503_carries_retry_after_and_a_stable_to_tag() {
        let r = stateless_response(INVITE, 503, &[("Retry-After", "2")]).unwrap();
        let text = String::from_utf8(r.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP h:5062;branch=z9hG4bK7\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:1000@b>;tag="), "{text}");
        assert!(
            text.contains(
                "\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("Server") && !text.contains("User-Agent"),
            "{text}"
        );
        assert_eq!(
            stateless_response(INVITE, 503, &[("Retry-After", "2")]),
            Some(r),
            "a retransmission gets the same bytes"
        );
        let other = String::from_utf8(
            stateless_response(
                &INVITE
                    .to_vec()
                    .into_iter()
                    .map(|b| if b == b'7' { b'8' } else { b })
                    .collect::<Vec<_>>(),
                503,
                &[],
            )
            .unwrap(),
        )
        .unwrap();
        let tag = |t: &str| t.split("tag=").nth(2).map(|s| s[..16].to_string());
        assert_ne!(tag(&text), tag(&other), "another request, another tag");
    }

    #[test]
    fn stateless_response_keeps_an_existing_to_tag() {
        let req = b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a;tag=1\r\nTo: <sip:b@c;tag=uri-param>;Tag=9\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n";
        let r = String::from_utf8(stateless_response(req, 403, &[]).unwrap()).unwrap();
        assert!(
            r.contains("\r\nTo: <sip:b@c;tag=uri-param>;Tag=9\r\n"),
            "{r}"
        );
        let req = b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a;tag=1\r\nTo: <sip:b@c;tag=uri-param>\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n";
        let r = String::from_utf8(stateless_response(req, 403, &[]).unwrap()).unwrap();
        assert!(
            r.contains("\r\nTo: <sip:b@c;tag=uri-param>;tag="),
            "a tag inside <> is the URI's: {r}"
        );
        assert!(r.starts_with("SIP/2.0 403 Forbidden\r\n"), "{r}");
        assert_eq!(
            stateless_response(
                b"SIP/2.0 200 OK\r\nVia: v\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 X\r\n\r\n",
                403,
                &[]
            ),
            None
        );
        assert_eq!(
            stateless_response(b"INVITE sip:a@b SIP/2.0\r\nFrom: a\r\n\r\n", 503, &[]),
            None
        );
    }
}
