//! The raw shape of one SIP message: start line, unfolded header fields with
//! canonical names, and the body cut by Content-Length. Works on bytes only;
//! nothing here knows rsip.

use super::{WireError, MAX_HEADERS, MAX_MESSAGE_BYTES};

/// The first line of a message, split but not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine<'a> {
    Request {
        method: &'a str,
        uri: &'a str,
        version: &'a str,
    },
    Response {
        version: &'a str,
        code: &'a str,
        reason: &'a [u8],
    },
}

/// One header field after unfolding: canonical (long-form) name and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub name: &'a str,
    pub value: String,
}

/// A message cut into its parts.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage<'a> {
    pub start: StartLine<'a>,
    pub fields: Vec<Field<'a>>,
    pub body: &'a [u8],
}

/// Compact header names: RFC 3261 §7.3.3 (i v f t m l c k s e), RFC 3265
/// (o Event, u Allow-Events), RFC 3515 (r Refer-To), RFC 3892 (b Referred-By),
/// RFC 4028 (x Session-Expires), RFC 4474 (y Identity).
const COMPACT: [(u8, &str); 16] = [
    (b'i', "Call-ID"),
    (b'v', "Via"),
    (b'f', "From"),
    (b't', "To"),
    (b'm', "Contact"),
    (b'l', "Content-Length"),
    (b'c', "Content-Type"),
    (b'k', "Supported"),
    (b's', "Subject"),
    (b'e', "Content-Encoding"),
    (b'o', "Event"),
    (b'u', "Allow-Events"),
    (b'r', "Refer-To"),
    (b'b', "Referred-By"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// Long names rivr looks at, so a field spelled `cAlL-iD` is normalised to one
/// spelling and later lookups can compare exactly.
const KNOWN: [&str; 21] = [
    "Call-ID",
    "Via",
    "From",
    "To",
    "Contact",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "CSeq",
    "Max-Forwards",
    "Require",
    "Proxy-Require",
    "Supported",
    "Accept",
    "Accept-Encoding",
    "Route",
    "Record-Route",
    "Expires",
    "Allow",
    "Subject",
    "Event",
];

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Index of the first `\r\n\r\n`, i.e. where the header section ends.
pub(crate) fn find_header_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Leading CRLFs before a start line (RFC 3261 §7.5, RFC 5626 keep-alives).
pub(crate) fn leading_crlf_len(bytes: &[u8]) -> usize {
    bytes
        .chunks(2)
        .take_while(|pair| *pair == b"\r\n")
        .count()
        .saturating_mul(2)
}

/// Maps a header name as written to its canonical spelling when rivr knows it.
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    if let [only] = name.as_bytes() {
        let lower = only.to_ascii_lowercase();
        return COMPACT
            .iter()
            .find(|(c, _)| *c == lower)
            .map(|(_, long)| *long);
    }
    KNOWN.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

fn bad(reason: impl Into<String>) -> WireError {
    WireError::bad_request(reason)
}

fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, WireError> {
    let is_response = line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"));
    super::controls::check_start_line(line, is_response)?;
    if is_response {
        return parse_status_line(line);
    }
    let text = std::str::from_utf8(line).map_err(|_| bad("request line is not UTF-8"))?;
    // Exactly one SP between the three elements (RFC 3261 §7.1); RFC 4475
    // §3.1.2.9/§3.1.2.10 allow rejecting extra or trailing SP, which avoids
    // guessing where a URI with embedded LWS ends (§3.1.2.8).
    let mut parts = text.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(bad("malformed method"));
    }
    if uri.is_empty() || uri.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad("malformed Request-URI"));
    }
    Ok(StartLine::Request {
        method,
        uri,
        version,
    })
}

fn parse_status_line(line: &[u8]) -> Result<StartLine<'_>, WireError> {
    let drop = |reason: &str| WireError::drop(reason);
    let sp = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or_else(|| drop("malformed status line"))?;
    let version = std::str::from_utf8(line.get(..sp).unwrap_or_default())
        .map_err(|_| drop("malformed status line"))?;
    let rest = line.get(sp.saturating_add(1)..).unwrap_or_default();
    let code_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let code = std::str::from_utf8(rest.get(..code_len).unwrap_or_default())
        .map_err(|_| drop("malformed status code"))?;
    let after = rest.get(code_len..).unwrap_or_default();
    // RFC 4475 §3.1.1.13: the SP after the code is required but a liberal
    // receiver may do without it.
    let reason = match after.split_first() {
        None => &[][..],
        Some((b' ', reason)) => reason,
        Some(_) => return Err(drop("malformed status code")),
    };
    Ok(StartLine::Response {
        version,
        code,
        reason,
    })
}

/// Splits `head` (start line + header lines, without the final empty line)
/// into the start line and unfolded fields.
fn split_head(head: &[u8]) -> Result<(StartLine<'_>, Vec<Field<'_>>), WireError> {
    // The last line's CRLF is part of the `\r\n\r\n` that ends the head,
    // so a CR left here is a stray one (`…\r\r\n\r\n`).
    if head.last() == Some(&b'\r') {
        return Err(bad("bare CR in header section"));
    }
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start_line = lines.next().ok_or_else(|| bad("empty message"))?;
    let start = parse_start_line(start_line)?;
    let mut fields: Vec<Field<'_>> = Vec::new();
    for line in lines {
        if line.contains(&b'\r') {
            return Err(bad("bare CR in header section"));
        }
        if line.first().copied().is_some_and(is_wsp) {
            // RFC 3261 §7.3.1: CRLF + WSP continues the previous field.
            let last = fields
                .last_mut()
                .ok_or_else(|| bad("continuation line before any header"))?;
            if !last.value.is_empty() {
                last.value.push(' ');
            }
            last.value
                .push_str(String::from_utf8_lossy(line).trim_matches(|c| c == ' ' || c == '\t'));
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("header line without colon"))?;
        let name_bytes = line.get(..colon).unwrap_or_default();
        let name_len = name_bytes
            .iter()
            .rposition(|&b| !is_wsp(b))
            .map_or(0, |p| p.saturating_add(1));
        let name_bytes = name_bytes.get(..name_len).unwrap_or_default();
        if name_bytes.is_empty() || !name_bytes.iter().all(|&b| is_token_byte(b)) {
            return Err(bad("malformed header name"));
        }
        let name = std::str::from_utf8(name_bytes).map_err(|_| bad("malformed header name"))?;
        let name = canonical_name(name).unwrap_or(name);
        let value =
            String::from_utf8_lossy(line.get(colon.saturating_add(1)..).unwrap_or_default());
        if fields.len() >= MAX_HEADERS {
            return Err(WireError {
                status: Some(513),
                reason: "too many header fields".into(),
            });
        }
        fields.push(Field {
            name,
            value: value.trim_matches(|c| c == ' ' || c == '\t').to_owned(),
        });
    }
    for field in &mut fields {
        if field.value.ends_with([' ', '\t']) {
            field
                .value
                .truncate(field.value.trim_end_matches([' ', '\t']).len());
        }
        super::controls::check_field(field)?;
    }
    Ok((start, fields))
}

/// Content-Length as the fields state it: `Ok(None)` when absent.
pub(crate) fn content_length(fields: &[Field<'_>]) -> Result<Option<usize>, WireError> {
    let mut found = fields.iter().filter(|f| f.name == "Content-Length");
    let Some(first) = found.next() else {
        return Ok(None);
    };
    // RFC 4475 §3.3.9: two values are a framing error like a bad value.
    if found.next().is_some() {
        return Err(bad("more than one Content-Length"));
    }
    let text = first.value.as_str();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("Content-Length is not a non-negative integer"));
    }
    let len: usize = text
        .parse()
        .ok()
        .filter(|&n| n <= MAX_MESSAGE_BYTES)
        .ok_or_else(|| bad("Content-Length too large"))?;
    Ok(Some(len))
}

/// Cuts one datagram (or one framed stream message) into its parts.
///
/// For a datagram the body is taken by Content-Length and extra octets are
/// discarded (RFC 3261 §18.3); without Content-Length the body is the rest of
/// the datagram (RFC 3261 §18.3, RFC 4475 §3.4.1).
pub(crate) fn split_message(bytes: &[u8]) -> Result<RawMessage<'_>, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError {
            status: Some(513),
            reason: "message too large".into(),
        });
    }
    let bytes = bytes.get(leading_crlf_len(bytes)..).unwrap_or_default();
    if bytes.is_empty() {
        return Err(WireError::drop("empty message"));
    }
    let head_end =
        find_header_end(bytes).ok_or_else(|| bad("no empty line after the header section"))?;
    let head = bytes.get(..head_end).unwrap_or_default();
    let rest = bytes.get(head_end.saturating_add(4)..).unwrap_or_default();
    let (start, fields) = split_head(head)?;
    let body = match content_length(&fields)? {
        Some(len) => rest
            .get(..len)
            .ok_or_else(|| bad("body shorter than Content-Length"))?,
        None => rest,
    };
    Ok(RawMessage {
        start,
        fields,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_names_are_canonical() {
        assert_eq!(canonical_name("i"), Some("Call-ID"));
        assert_eq!(canonical_name("M"), Some("Contact"));
        assert_eq!(canonical_name("l"), Some("Content-Length"));
        assert_eq!(canonical_name("o"), Some("Event"));
        assert_eq!(canonical_name("cAlL-iD"), Some("Call-ID"));
        assert_eq!(canonical_name("X-Custom"), None);
    }

    #[test]
    fn folded_lines_and_space_before_colon_are_unfolded() {
        let msg =
            b"OPTIONS sip:a@b SIP/2.0\r\nVia  : SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\nl: 0\r\n\r\n";
        let raw = split_message(msg).unwrap();
        assert_eq!(
            raw.fields[0],
            Field {
                name: "Via",
                value: "SIP/2.0/UDP h ;branch=z9hG4bK1".into()
            }
        );
        assert_eq!(raw.fields[1].name, "Content-Length");
    }

    #[test]
    fn body_is_cut_by_content_length_and_short_body_is_400() {
        let msg = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(split_message(msg).unwrap().body, b"abc");
        let short = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 9\r\n\r\nabc";
        assert_eq!(split_message(short).unwrap_err().status, Some(400));
        let none = b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n\r\nabc";
        assert_eq!(split_message(none).unwrap().body, b"abc");
    }

    #[test]
    fn negative_duplicate_and_huge_content_length_are_400() {
        for cl in ["-1", "1, 2", "99999999999999999999999", ""] {
            let msg = format!("MESSAGE sip:a@b SIP/2.0\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(
                split_message(msg.as_bytes()).unwrap_err().status,
                Some(400),
                "{cl}"
            );
        }
        let two = b"MESSAGE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(split_message(two).unwrap_err().status, Some(400));
    }

    #[test]
    fn request_line_needs_single_spaces() {
        assert!(split_message(b"OPTIONS  sip:a@b SIP/2.0\r\n\r\n").is_err());
        assert!(split_message(b"OPTIONS sip:a@b SIP/2.0 \r\n\r\n").is_err());
        assert!(split_message(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").is_ok());
    }

    #[test]
    fn status_line_without_reason_is_accepted() {
        let raw = split_message(b"SIP/2.0 100 \r\n\r\n").unwrap();
        assert_eq!(
            raw.start,
            StartLine::Response {
                version: "SIP/2.0",
                code: "100",
                reason: b""
            }
        );
        let raw = split_message(b"SIP/2.0 180\r\n\r\n").unwrap();
        assert!(matches!(raw.start, StartLine::Response { code: "180", .. }));
    }

    #[test]
    fn leading_keepalive_crlfs_are_skipped() {
        assert_eq!(leading_crlf_len(b"\r\n\r\nOPT"), 4);
        assert_eq!(leading_crlf_len(b"\r\nX"), 2);
        assert_eq!(leading_crlf_len(b"\rX"), 0);
        assert!(split_message(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\n\r\n").is_ok());
    }
}
