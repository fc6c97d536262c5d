//! Turns a [`RawMessage`] into an rsip message and checks eagerly what the
//! transaction layer and UAS rely on (STYLE.md lesson 7), so that on a message
//! that passes, `via_header()`, `call_id_header()`, `from_header().tag()`,
//! `to_header().tag()` and `.typed()` on the top Via, From, To, CSeq and every
//! Contact, Record-Route and Route cannot fail.

use super::normalise::normalise_field;
use super::raw::{Field, RawMessage, StartLine};
use super::shape::{check_name_addr, check_via, is_usable_branch, via_branch};
use super::WireError;
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::HeadersExt;
use std::convert::TryInto;

/// Highest CSeq sequence number RFC 3261 §8.1.1.5 allows, plus one.
const CSEQ_LIMIT: u32 = 1 << 31;

/// Methods rivr's rsip can represent, spelled as on the wire (methods are
/// case-sensitive, RFC 3261 §7.1, unlike rsip's own parser).
fn known_method(method: &str) -> Option<rsip::Method> {
    rsip::Method::all()
        .into_iter()
        .find(|m| m.to_string() == method)
}

/// `SIP/<major>.<minor>`; `Ok(true)` for 2.0.
fn is_sip_2_0(version: &str) -> Result<bool, ()> {
    let rest = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| version.get(4..))
        .ok_or(())?;
    let (major, minor) = rest.split_once('.').ok_or(())?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(());
    }
    Ok(major.trim_start_matches('0') == "2" && minor.trim_start_matches('0').is_empty())
}

/// The URI scheme if `uri` starts with a syntactically valid one (RFC 3986 §3.1).
pub(crate) fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    (first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))).then_some(scheme)
}

/// rsip's own URI parse, refusing input it would silently truncate.
fn rsip_uri(text: &str) -> Option<rsip::Uri> {
    rsip::common::uri::Tokenizer::<&[u8], u8>::tokenize(text.as_bytes())
        .ok()
        .filter(|(rem, _)| rem.is_empty())
        .and_then(|(_, tok)| rsip::Uri::try_from(tok).ok())
}

/// rsip's userinfo grammar is narrower than RFC 3261 §25.1 (`;` `?` `/` and
/// others are legal unescaped in a user part, RFC 4475 §3.1.1.2, §3.1.1.9).
/// The user part ends at the first `@` (an `@` inside it must be escaped), so
/// parse the rest with rsip and put the userinfo in by hand.
fn sip_uri_with_unusual_user(text: &str) -> Option<rsip::Uri> {
    let (scheme, rest) = text.split_once(':')?;
    let (userinfo, host_part) = rest.split_once('@')?;
    if userinfo.is_empty()
        || userinfo
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"<>\"".contains(&b))
    {
        return None;
    }
    let mut uri = rsip_uri(&format!("{scheme}:{host_part}"))?;
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p.to_owned())),
        None => (userinfo, None),
    };
    uri.auth = Some(rsip::Auth {
        user: user.to_owned(),
        password,
    });
    Some(uri)
}

/// The host and parameters of a sip/sips URI must be plain: rsip would take
/// `example.com?Subject=x` for a host name. URI headers (`?`) in a
/// Request-URI are refused (RFC 4475 §3.1.2.11 allows the 400).
fn sip_hostport_is_plain(text: &str) -> bool {
    let after_scheme = text.split_once(':').map_or("", |(_, rest)| rest);
    let host_and_params = after_scheme
        .split_once('@')
        .map_or(after_scheme, |(_, h)| h);
    let (host, params) = host_and_params
        .split_once(';')
        .unwrap_or((host_and_params, ""));
    let host_ok = |b: u8| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b);
    !host.is_empty()
        && host.bytes().all(host_ok)
        && params
            .bytes()
            .all(|b| super::raw::is_token_byte(b) || b"=;[]:/@".contains(&b))
}

fn parse_uri(text: &str) -> Result<rsip::Uri, WireError> {
    let scheme = uri_scheme(text).ok_or_else(|| WireError::bad_request("malformed Request-URI"))?;
    let is_sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    if !is_sip {
        // RFC 3261 §8.2.2.1: a scheme rivr does not understand is a 416.
        // rsip 0.4 represents only sip/sips faithfully (it reads `im:a@b` as
        // a user `im:a`, and `tel:` not at all), so any other scheme stops
        // here.
        return Err(WireError {
            status: Some(416),
            reason: format!("Unsupported URI Scheme {scheme}"),
        });
    }
    if !sip_hostport_is_plain(text) {
        return Err(WireError::bad_request(
            "malformed Request-URI host or parameters",
        ));
    }
    rsip_uri(text)
        .or_else(|| sip_uri_with_unusual_user(text))
        .filter(|uri| matches!(uri.scheme, Some(rsip::Scheme::Sip | rsip::Scheme::Sips)))
        .ok_or_else(|| WireError::bad_request("malformed Request-URI"))
}

fn to_header(name: &str, value: &str) -> Result<rsip::Header, rsip::Error> {
    rsip::headers::header::Tokenizer {
        name: name.as_bytes(),
        value: value.as_bytes(),
    }
    .try_into()
}

fn build_headers(fields: &[Field<'_>]) -> Result<rsip::Headers, String> {
    let mut headers = Vec::with_capacity(fields.len());
    for field in fields {
        for value in normalise_field(field.name, &field.value) {
            headers
                .push(to_header(field.name, &value).map_err(|e| format!("{}: {e}", field.name))?);
        }
    }
    Ok(headers.into())
}

fn count(fields: &[Field<'_>], name: &str) -> usize {
    fields.iter().filter(|f| f.name == name).count()
}

/// Checks common to requests and responses; the error is the reason text.
fn check_common(fields: &[Field<'_>]) -> Result<(), String> {
    for name in ["Call-ID", "From", "To", "CSeq"] {
        match count(fields, name) {
            1 => {}
            0 => return Err(format!("missing {name}")),
            _ => return Err(format!("more than one {name}")),
        }
    }
    if count(fields, "Max-Forwards") > 1 {
        return Err("more than one Max-Forwards".into());
    }
    let vias: Vec<String> = fields
        .iter()
        .filter(|f| f.name == "Via")
        .flat_map(|f| normalise_field(f.name, &f.value))
        .collect();
    if vias.is_empty() {
        return Err("missing Via".into());
    }
    for via in &vias {
        check_via(via).map_err(|e| format!("Via: {e}"))?;
    }
    for field in fields
        .iter()
        .filter(|f| matches!(f.name, "From" | "To" | "Contact"))
    {
        for value in normalise_field(field.name, &field.value) {
            if field.name == "Contact" && value == "*" {
                continue;
            }
            check_name_addr(&value).map_err(|e| format!("{}: {e}", field.name))?;
        }
    }
    if fields
        .iter()
        .any(|f| f.name == "Call-ID" && f.value.is_empty())
    {
        return Err("empty Call-ID".into());
    }
    Ok(())
}

/// The typed accessors later layers use; run here so they cannot fail later.
fn check_typed<M: HeadersExt>(msg: &M) -> Result<rsip::typed::CSeq, String> {
    let e = |what: &str, err: rsip::Error| format!("{what}: {err}");
    msg.via_header()
        .map_err(|x| e("Via", x))?
        .typed()
        .map_err(|x| e("Via", x))?;
    msg.call_id_header().map_err(|x| e("Call-ID", x))?;
    let from = msg.from_header().map_err(|x| e("From", x))?;
    from.typed().map_err(|x| e("From", x))?;
    from.tag().map_err(|x| e("From tag", x))?;
    let to = msg.to_header().map_err(|x| e("To", x))?;
    to.typed().map_err(|x| e("To", x))?;
    to.tag().map_err(|x| e("To tag", x))?;
    for contact in msg.contact_headers() {
        if contact.value().trim() == "*" {
            continue;
        }
        contact.typed().map_err(|x| e("Contact", x))?;
    }
    // The route set of a dialog comes from these (RFC 3261 §12.1.1/§12.1.2).
    for header in msg.headers().iter() {
        match header {
            rsip::Header::RecordRoute(r) => {
                r.typed().map_err(|x| e("Record-Route", x))?;
            }
            rsip::Header::Route(r) => {
                r.typed().map_err(|x| e("Route", x))?;
            }
            _ => {}
        }
    }
    if let Ok(mf) = msg.max_forwards_header() {
        mf.num().map_err(|x| e("Max-Forwards", x))?;
    }
    let cseq = msg
        .cseq_header()
        .map_err(|x| e("CSeq", x))?
        .typed()
        .map_err(|x| e("CSeq", x))?;
    if cseq.seq >= CSEQ_LIMIT {
        return Err("CSeq sequence number not below 2**31".into());
    }
    Ok(cseq)
}

fn build_request(
    raw: &RawMessage<'_>,
    method: &str,
    uri: &str,
    version: &str,
) -> Result<rsip::SipMessage, WireError> {
    match is_sip_2_0(version) {
        Ok(true) => {}
        Ok(false) => {
            return Err(WireError {
                status: Some(505),
                reason: "Version Not Supported".into(),
            })
        }
        Err(()) => return Err(WireError::bad_request("malformed SIP version")),
    }
    let headers = build_headers(&raw.fields).map_err(WireError::bad_request)?;
    check_common(&raw.fields).map_err(WireError::bad_request)?;
    // RFC 4475 §3.1.2.18: an unknown method is answered 501 even when the
    // CSeq disagrees with it.
    let method = known_method(method).ok_or_else(|| WireError {
        status: Some(501),
        reason: "Not Implemented".into(),
    })?;
    let uri = parse_uri(uri)?;
    let branch_ok = raw
        .fields
        .iter()
        .filter(|f| f.name == "Via")
        .flat_map(|f| normalise_field(f.name, &f.value))
        .any(|v| via_branch(&v).is_some_and(is_usable_branch));
    if !branch_ok {
        // RFC 4475 §3.2.1: reject rather than fall back to RFC 2543 matching.
        return Err(WireError::bad_request("no Via with a usable branch"));
    }
    let request = rsip::Request {
        method,
        uri,
        version: rsip::Version::V2,
        headers,
        body: raw.body.to_vec(),
    };
    let cseq = check_typed(&request).map_err(WireError::bad_request)?;
    if cseq.method != method {
        // RFC 3261 §8.2 / RFC 4475 §3.1.2.17
        return Err(WireError::bad_request(
            "CSeq method does not match the request method",
        ));
    }
    Ok(request.into())
}

fn build_response(
    raw: &RawMessage<'_>,
    version: &str,
    code: &str,
) -> Result<rsip::SipMessage, WireError> {
    if is_sip_2_0(version) != Ok(true) {
        return Err(WireError::drop("response version is not SIP/2.0"));
    }
    // RFC 3261 §7.2: 3DIGIT, first digit 1-6 (RFC 4475 §3.1.2.19 drops others).
    let code: u16 = Some(code)
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..=699).contains(c))
        .ok_or_else(|| WireError::drop("response code out of range"))?;
    let headers = build_headers(&raw.fields).map_err(WireError::drop)?;
    check_common(&raw.fields).map_err(WireError::drop)?;
    let response = rsip::Response {
        status_code: code.into(),
        version: rsip::Version::V2,
        headers,
        body: raw.body.to_vec(),
    };
    check_typed(&response).map_err(WireError::drop)?;
    Ok(response.into())
}

/// Builds and checks the rsip message for a split message.
pub(crate) fn build(raw: &RawMessage<'_>) -> Result<rsip::SipMessage, WireError> {
    match raw.start {
        StartLine::Request {
            method,
            uri,
            version,
        } => build_request(raw, method, uri, version),
        StartLine::Response { version, code, .. } => build_response(raw, version, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing() {
        assert_eq!(is_sip_2_0("SIP/2.0"), Ok(true));
        assert_eq!(is_sip_2_0("sip/2.0"), Ok(true));
        assert_eq!(is_sip_2_0("SIP/7.0"), Ok(false));
        assert_eq!(is_sip_2_0("SIP/2.1"), Ok(false));
        assert_eq!(is_sip_2_0("SIP/2"), Err(()));
        assert_eq!(is_sip_2_0("HTTP/1.1"), Err(()));
        assert_eq!(is_sip_2_0("SIP/.0"), Err(()));
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(known_method("INVITE"), Some(rsip::Method::Invite));
        assert_eq!(known_method("PRACK"), Some(rsip::Method::PRack));
        assert_eq!(known_method("invite"), None);
        assert_eq!(known_method("FOO"), None);
    }

    fn request_with_uri(uri: &str) -> Result<rsip::SipMessage, WireError> {
        let text = format!(
            "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        super::super::parse_message(text.as_bytes())
    }

    #[test]
    fn request_uri_forms() {
        for ok in [
            "sip:1000@192.0.2.1:5060;transport=udp",
            "sips:alice@example.com",
            "sip:+15551234567@gw.example.com;user=phone",
            "sip:example.com",
            "sip:user;par=u%40example.net@example.com",
            "sip:alice:secret@example.com",
        ] {
            let msg = request_with_uri(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            let rsip::SipMessage::Request(req) = msg else {
                panic!("{ok}")
            };
            assert_eq!(crate::sip::validate::check_request(&req), Ok(()), "{ok}");
        }
        for (bad, status) in [
            ("<sip:a@b>", 400),
            ("sip:a@b?Subject=x", 400),
            ("im:alice@example.com", 416),
            ("sip:a@[2001:db8::1]", 400),
        ] {
            assert_eq!(
                request_with_uri(bad).unwrap_err().status,
                Some(status),
                "{bad}"
            );
        }
    }

    /// rsip 0.4 has no representation for `tel:` (it reads `tel` as a host
    /// and fails on the "port"); rivr answers 416 until it does. Trunks that
    /// send `sip:+1…;user=phone` are fine.
    #[test]
    fn tel_request_uri_is_416_with_rsip_0_4() {
        assert_eq!(
            request_with_uri("tel:+1-212-555-1212").unwrap_err().status,
            Some(416)
        );
    }

    #[test]
    fn schemes() {
        assert_eq!(uri_scheme("sip:a@b"), Some("sip"));
        assert_eq!(uri_scheme("soap.beep://x"), Some("soap.beep"));
        assert_eq!(uri_scheme("<sip:a@b>"), None);
        assert_eq!(uri_scheme("1x:y"), None);
    }
}
