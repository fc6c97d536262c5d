//! Grammar checks rsip does not make on the header fields rivr depends on:
//! name-addr / addr-spec shape (RFC 3261 §20.10, §25.1) and Via shape
//! (§20.42). rsip's typed parsers are lenient in ways that would let a
//! malformed value through with a wrong meaning (RFC 4475 §3.1.2.6, §3.1.2.13
//! to §3.1.2.15, §3.1.2.1), so these run first.

use super::raw::is_token_byte;

/// Why a field value was refused (goes into the 400 reason).
pub(crate) type ShapeError = &'static str;

fn is_param_value_byte(b: u8) -> bool {
    // token, plus the characters of host (IPv6) and URI values
    is_token_byte(b) || b"[]:@/?".contains(&b)
}

/// `*( ";" generic-param )` with every name a non-empty token.
fn check_params(params: &str) -> Result<(), ShapeError> {
    if params.is_empty() {
        return Ok(());
    }
    let Some(rest) = params.strip_prefix(';') else {
        return Err("unexpected text after the URI");
    };
    for param in split_outside_quotes(rest, ';') {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (param, None),
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err("empty or malformed header parameter");
        }
        if let Some(v) = value {
            if v.starts_with('"') {
                if quoted_len(v) != Some(v.len()) {
                    return Err("malformed quoted parameter value");
                }
            } else if v.is_empty() || !v.bytes().all(is_param_value_byte) {
                return Err("malformed header parameter value");
            }
        }
    }
    Ok(())
}

/// Splits at `sep` where it is not inside a quoted string.
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quote, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match (in_quote, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_quote = !in_quote,
            (false, _, c) if c == sep => {
                parts.push(s.get(start..i).unwrap_or_default());
                start = i.saturating_add(c.len_utf8());
            }
            _ => {}
        }
    }
    parts.push(s.get(start..).unwrap_or_default());
    parts
}

/// Length of a quoted string starting at `s[0] == '"'`, closing quote included.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i.saturating_add(1));
        }
    }
    None
}

/// Checks a (normalised) From/To/Contact value: `name-addr` or `addr-spec`
/// followed by parameters.
pub(crate) fn check_name_addr(value: &str) -> Result<(), ShapeError> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty address");
    }
    let (display, after_display) = if value.starts_with('"') {
        let len = quoted_len(value).ok_or("unterminated quoted display name")?;
        (
            value.get(..len).unwrap_or_default(),
            value.get(len..).unwrap_or_default().trim_start(),
        )
    } else {
        match value.find('<') {
            Some(i) => (
                value.get(..i).unwrap_or_default().trim_end(),
                value.get(i..).unwrap_or_default(),
            ),
            None => ("", value),
        }
    };
    if value.starts_with('"') && !after_display.starts_with('<') {
        return Err("quoted display name without <URI>");
    }
    if let Some(inner_and_rest) = after_display.strip_prefix('<') {
        if !display.starts_with('"') && !display.split(' ').all(|t| t.bytes().all(is_token_byte)) {
            return Err("display name must be a token list or a quoted string");
        }
        let close = inner_and_rest.find('>').ok_or("missing >")?;
        let uri = inner_and_rest.get(..close).unwrap_or_default();
        if uri.is_empty() || uri.bytes().any(|b| b.is_ascii_whitespace() || b == b'<') {
            return Err("malformed URI inside <>");
        }
        return check_params(
            inner_and_rest
                .get(close.saturating_add(1)..)
                .unwrap_or_default(),
        );
    }
    // addr-spec: the URI must not carry `;`, `,` or `?` of its own
    // (RFC 3261 §20.10), so it ends at the first `;`.
    let (uri, params) = match after_display.find(';') {
        Some(i) => (
            after_display.get(..i).unwrap_or_default(),
            after_display.get(i..).unwrap_or_default(),
        ),
        None => (after_display, ""),
    };
    if uri.is_empty()
        || uri
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b"?,<>\"".contains(&b))
    {
        return Err("malformed addr-spec (a URI with headers needs <>)");
    }
    check_params(params)
}

/// Checks one (normalised, single) Via value:
/// `SIP/2.0/transport SP sent-by *( ";" via-params )`.
pub(crate) fn check_via(value: &str) -> Result<(), ShapeError> {
    let (protocol, rest) = value.split_once(' ').ok_or("Via without sent-by")?;
    let mut proto = protocol.split('/');
    let (Some(name), Some(version), Some(transport), None) =
        (proto.next(), proto.next(), proto.next(), proto.next())
    else {
        return Err("malformed Via sent-protocol");
    };
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return Err("Via sent-protocol is not SIP/2.0");
    }
    if transport.is_empty() || !transport.bytes().all(is_token_byte) {
        return Err("malformed Via transport");
    }
    let (sent_by, params) = match rest.find(';') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i..).unwrap_or_default(),
        ),
        None => (rest, ""),
    };
    // `_` is not in RFC 3261's hostname but appears in the wild.
    let host_ok = |b: u8| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b);
    if sent_by.is_empty() || !sent_by.bytes().all(host_ok) {
        return Err("malformed Via sent-by");
    }
    check_params(params)
}

/// The branch parameter of a (normalised, single) Via value, if any.
pub(crate) fn via_branch(value: &str) -> Option<&str> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case("branch").then_some(v.trim())
    })
}

/// A branch that identifies a transaction: present, and not the bare RFC 3261
/// magic cookie (RFC 4475 §3.2.1).
pub(crate) fn is_usable_branch(branch: &str) -> bool {
    !branch.is_empty() && branch != "z9hG4bK"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_pass() {
        for v in [
            "sip:user@example.com",
            "sip:user@example.com;tag=1",
            "<sip:a@b>",
            "\"Quoted \\\" name\" <sip:a@b>;tag=x;q=0.33",
            "caller <sip:caller@example.com>;tag=323",
            "Bob Smith <sips:bob@example.com>",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            "sip:+19725552222@gw1.example.net;unknownparam",
        ] {
            assert_eq!(check_name_addr(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn rfc4475_malformed_addresses_fail() {
        for v in [
            "\"Mr. J. User <sip:j.user@example.com>",          // quotbal
            "\"Watson, Thomas\" < sip:t.watson@example.org >", // badaspec
            "Watson, Thomas <sip:t.watson@example.org>",       // baddn
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E", // regbadct
            "\"Joe\" <sip:joe@example.org>;;;;",               // badinv01
            "",
            "<sip:a@b",
            "<>",
        ] {
            assert!(check_name_addr(v).is_err(), "{v}");
        }
    }

    #[test]
    fn via_shape() {
        assert_eq!(
            check_via("SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK1;rport"),
            Ok(())
        );
        assert_eq!(
            check_via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en"),
            Ok(())
        );
        assert_eq!(
            check_via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1"),
            Ok(())
        );
        assert!(check_via("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(check_via("SIP/2.0/UDP 192.0.2.15").is_ok());
        assert!(check_via("SIP/3.0/UDP h").is_err());
        assert!(check_via("SIP/2.0 h").is_err());
        assert!(check_via(";").is_err());
    }

    #[test]
    fn branch_rules() {
        assert_eq!(
            via_branch("SIP/2.0/UDP h;rport;branch=z9hG4bKx"),
            Some("z9hG4bKx")
        );
        assert_eq!(via_branch("SIP/2.0/UDP h"), None);
        assert!(!is_usable_branch("z9hG4bK"));
        assert!(is_usable_branch("390skdjuw"));
    }
}
