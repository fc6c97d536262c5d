//! Control characters in the start line and in header values.
//!
//! RFC 3261 §25.1 allows no control character in a start line or a header
//! value except HTAB (as LWS) and, inside a quoted string, the escaped
//! octet of a `quoted-pair` (`"\" (%x00-09 / %x0B-0C / %x0E-7F)`; RFC 4475
//! §3.1.1.2 sends `\` + NUL, BEL and DEL in a display name and calls the
//! message valid). Everything else is refused here, before any value reaches
//! a layer that could put it in a log line, a thread name or a file name
//! (the NUL Call-ID of issue 9 ended the process that way).
//!
//! Two choices stricter than the grammar, on purpose: the `quoted-pair` of
//! a `comment` (`User-Agent: x (\<BEL>)`) is refused, and so is any control
//! byte in Call-ID, whose grammar (`word`) has no quoted string even though
//! `"` and `\` are `word` characters.

use super::raw::Field;
use super::WireError;

/// A control character RFC 3261 never allows bare: C0 other than HTAB, and DEL.
pub(crate) fn is_forbidden_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// The request line (400) or status line (drop, like any broken response).
pub(crate) fn check_start_line(line: &[u8], is_response: bool) -> Result<(), WireError> {
    if !line.iter().copied().any(is_forbidden_control) {
        return Ok(());
    }
    Err(if is_response {
        WireError::drop("control character in the status line")
    } else {
        WireError::bad_request("control character in the request line")
    })
}

/// One unfolded header field; the 400's reason names the header.
pub(crate) fn check_field(field: &Field<'_>) -> Result<(), WireError> {
    let quoted_pairs_allowed = field.name != "Call-ID";
    if value_is_clean(field.value.as_bytes(), quoted_pairs_allowed) {
        return Ok(());
    }
    Err(WireError::bad_request(format!(
        "control character in the {} header",
        field.name
    )))
}

/// True when `value` holds no forbidden control character, other than as
/// the escaped octet of a quoted-pair in a closed quoted string (when
/// `quoted_pairs_allowed`).
fn value_is_clean(value: &[u8], quoted_pairs_allowed: bool) -> bool {
    let (mut in_quote, mut escaped, mut escaped_control) = (false, false, false);
    for &b in value {
        if escaped {
            escaped = false;
            if is_forbidden_control(b) {
                // CR and LF cannot be escaped (§25.1); a bare CR never gets
                // here (the splitter refuses it) but is checked anyway.
                if !quoted_pairs_allowed || b == b'\r' || b == b'\n' {
                    return false;
                }
                escaped_control = true;
            }
            continue;
        }
        if is_forbidden_control(b) {
            return false;
        }
        match b {
            b'"' => in_quote = !in_quote,
            b'\\' if in_quote => escaped = true,
            _ => {}
        }
    }
    // An escaped control counts only inside a quoted string that closes.
    !(escaped_control && (in_quote || escaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &'static str, value: &[u8]) -> Field<'static> {
        Field {
            name,
            value: String::from_utf8_lossy(value).into_owned(),
        }
    }

    #[test]
    fn every_forbidden_byte_in_a_value_is_refused_and_named() {
        let forbidden: Vec<u8> = (0u8..0x20).filter(|&b| b != b'\t').chain([0x7f]).collect();
        assert_eq!(forbidden.len(), 32);
        for b in forbidden {
            for name in ["Call-ID", "From", "Subject", "X-Anything"] {
                let value = [b"abc".as_slice(), &[b], b"def"].concat();
                let err = check_field(&field(name, &value)).unwrap_err();
                assert_eq!(err.status, Some(400), "{name} {b:#04x}");
                assert_eq!(
                    err.reason,
                    format!("control character in the {name} header")
                );
            }
        }
    }

    #[test]
    fn htab_and_printable_values_pass() {
        for v in [
            &b"a\tb"[..],
            b"",
            b"\xc3\xa9t\xc3\xa9",
            b"\"q\" <sip:a@b>;tag=1",
        ] {
            assert!(check_field(&field("From", v)).is_ok(), "{v:?}");
        }
    }

    /// RFC 4475 §3.1.1.2 (intmeth): `"BEL:\<07> NUL:\<00> DEL:\<7f>"` is a
    /// valid display name.
    #[test]
    fn escaped_controls_inside_a_closed_quoted_string_pass() {
        let to = b"\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:a@example.com>";
        assert!(check_field(&field("To", to)).is_ok());
        // but not unescaped, not outside quotes, not in an unclosed quote
        for v in [
            &b"\"BEL:\x07\" <sip:a@b>"[..],
            b"x\\\x07 <sip:a@b>",
            b"\"open \\\x07 <sip:a@b>",
            b"\"open \\\x07",
            b"\"\\\x0a\" <sip:a@b>",
        ] {
            assert!(check_field(&field("To", v)).is_err(), "{v:?}");
        }
    }

    #[test]
    fn call_id_admits_no_control_even_quoted() {
        assert!(check_field(&field("Call-ID", b"\"\\\x00\"@x")).is_err());
        assert!(check_field(&field("Call-ID", b"\"\\a\"@x")).is_ok());
    }

    #[test]
    fn start_lines() {
        assert!(check_start_line(b"INVITE sip:a@b SIP/2.0", false).is_ok());
        let e = check_start_line(b"INVITE sip:a\x00@b SIP/2.0", false).unwrap_err();
        assert_eq!(e.status, Some(400));
        let e = check_start_line(b"SIP/2.0 200 O\x07K", true).unwrap_err();
        assert_eq!(e.status, None);
    }
}
