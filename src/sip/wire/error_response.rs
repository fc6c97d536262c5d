//! The stateless response to a request that failed [`parse_message`]
//! (RFC 3261 §8.2.6: copy Via, From, To, Call-ID and CSeq).
//!
//! [`parse_message`]: super::parse_message

use super::raw::{canonical_name, find_header_end, is_token_byte, leading_crlf_len};
use super::WireError;

/// Methods rivr answers; sent in `Allow` with a 501 (RFC 3261 §21.5.2,
/// RFC 4475 §3.1.1.2).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

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
    if status == 400 {
        // RFC 3261 §21.4.1: the phrase SHOULD say what was wrong.
        let detail: String = err
            .reason
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
    push_header(&mut out, "To", to);
    push_header(&mut out, "Call-ID", call_id);
    push_header(&mut out, "CSeq", cseq);
    if status == 501 {
        push_header(&mut out, "Allow", ALLOW.as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
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
}
