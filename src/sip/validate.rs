//! What rivr, as a UAS, checks in a parsed request before it reaches the
//! transaction layer (RFC 3261 §8.2, in the order that section gives), and
//! the response each failure gets. Framing and the syntax of the fields every
//! layer needs are `sip::wire`'s job; this module judges meaning: version,
//! URI scheme, extensions, bodies.
//!
//! Not checked here, on purpose:
//! - the method (405/501 with `Allow`) is the UAS core's decision, since it
//!   knows which methods it serves;
//! - `Max-Forwards: 0`: rivr never forwards a request, and an endpoint
//!   "should process the request as if the Max-Forwards field value were
//!   still positive" (RFC 4475 §3.3.11; RFC 3261 §8.2 has no such check —
//!   483 is a proxy's answer, §16.3 item 2). `dial()` legs are new requests
//!   with their own Max-Forwards, not forwarded ones.
//! - `Proxy-Require`, which a UAS ignores (RFC 3261 §20.29, RFC 4475 §3.3.5
//!   "depending on the role").

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::HeadersExt;

/// Option tags rivr implements; a `Require` naming any other is refused.
pub const SUPPORTED_OPTIONS: &[&str] = &["timer"];

/// The body type rivr understands in an INVITE (and can produce in answers).
pub const SDP: &str = "application/sdp";

/// A request rivr refuses, and how to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The response code.
    pub status: u16,
    /// Why, for logs (the response carries the standard reason phrase).
    pub reason: String,
    /// Headers the response must carry (`Unsupported`, `Accept`, …).
    pub extra_headers: Vec<rsip::Header>,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            extra_headers: Vec::new(),
        }
    }

    fn with(mut self, header: rsip::Header) -> Self {
        self.extra_headers.push(header);
        self
    }
}

/// Checks `req` as a UAS would before handing it to a transaction.
///
/// An ACK is never answered (RFC 3261 §17.1.1.3, §17.2.3): a `Rejection` of
/// an ACK means "discard it", not "send this status".
pub fn check_request(req: &rsip::Request) -> Result<(), Rejection> {
    check_version(req)?;
    check_mandatory_headers(req)?;
    check_uri_scheme(req)?;
    check_require(req)?;
    check_body(req)?;
    check_accept(req)
}

/// RFC 3261 §8.1.1 / §21.5.6 (RFC 4475 §3.1.2.16): only SIP/2.0.
fn check_version(req: &rsip::Request) -> Result<(), Rejection> {
    if req.version != rsip::Version::V2 {
        return Err(Rejection::new(505, "SIP version other than 2.0"));
    }
    Ok(())
}

fn count(req: &rsip::Request, pred: impl Fn(&rsip::Header) -> bool) -> usize {
    req.headers.iter().filter(|h| pred(h)).count()
}

/// RFC 3261 §8.1.1: To, From, Call-ID, CSeq, Max-Forwards and Via are
/// mandatory; one of each but Via (RFC 4475 §3.3.1, §3.3.8); CSeq below 2**31
/// and naming the request's method (§8.1.1.5, RFC 4475 §3.1.2.17). Anything
/// else is a 400. A missing Max-Forwards is tolerated (RFC 2543 peers,
/// RFC 4475 §3.4.1): a UAS has no use for it.
fn check_mandatory_headers(req: &rsip::Request) -> Result<(), Rejection> {
    use rsip::Header as H;
    let singles = [
        ("To", count(req, |h| matches!(h, H::To(_)))),
        ("From", count(req, |h| matches!(h, H::From(_)))),
        ("Call-ID", count(req, |h| matches!(h, H::CallId(_)))),
        ("CSeq", count(req, |h| matches!(h, H::CSeq(_)))),
    ];
    for (name, n) in singles {
        if n != 1 {
            return Err(Rejection::new(400, format!("{n} {name} header fields")));
        }
    }
    if count(req, |h| matches!(h, H::MaxForwards(_))) > 1 {
        return Err(Rejection::new(400, "more than one Max-Forwards"));
    }
    let bad = |what: &str| Rejection::new(400, format!("malformed {what}"));
    req.via_header()
        .map_err(|_| bad("Via"))?
        .typed()
        .map_err(|_| bad("Via"))?;
    let from = req.from_header().map_err(|_| bad("From"))?;
    from.typed().map_err(|_| bad("From"))?;
    from.tag().map_err(|_| bad("From tag"))?;
    let to = req.to_header().map_err(|_| bad("To"))?;
    to.typed().map_err(|_| bad("To"))?;
    to.tag().map_err(|_| bad("To tag"))?;
    if req
        .call_id_header()
        .map_err(|_| bad("Call-ID"))?
        .value()
        .trim()
        .is_empty()
    {
        return Err(bad("Call-ID"));
    }
    if let Ok(mf) = req.max_forwards_header() {
        mf.num().map_err(|_| bad("Max-Forwards"))?;
    }
    let cseq = req
        .cseq_header()
        .map_err(|_| bad("CSeq"))?
        .typed()
        .map_err(|_| bad("CSeq"))?;
    if cseq.seq >= 1 << 31 {
        return Err(bad("CSeq (not below 2**31)"));
    }
    if cseq.method != req.method {
        return Err(Rejection::new(
            400,
            "CSeq method does not match the request method",
        ));
    }
    Ok(())
}

/// RFC 3261 §8.2.2.1 (RFC 4475 §3.3.2, §3.3.3): a Request-URI scheme rivr
/// does not understand is a 416.
fn check_uri_scheme(req: &rsip::Request) -> Result<(), Rejection> {
    match &req.uri.scheme {
        None | Some(rsip::Scheme::Sip) | Some(rsip::Scheme::Sips) => Ok(()),
        Some(rsip::Scheme::Other(s)) if s.eq_ignore_ascii_case("tel") => Ok(()),
        Some(rsip::Scheme::Other(s)) => Err(Rejection::new(416, format!("URI scheme {s}"))),
    }
}

/// Comma-separated list items of every header the predicate selects.
fn list_values(req: &rsip::Request, pick: impl Fn(&rsip::Header) -> Option<String>) -> Vec<String> {
    req.headers
        .iter()
        .filter_map(pick)
        .flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// RFC 3261 §8.2.2.3 (RFC 4475 §3.3.5): unknown option tags in `Require` →
/// 420 with `Unsupported` listing them. CANCEL and ACK are exempt: Require
/// "MUST be ignored" in CANCEL and in the ACK for a non-2xx (§8.2.2.3), and an
/// ACK for a 2xx repeats the Require of the INVITE that was accepted.
fn check_require(req: &rsip::Request) -> Result<(), Rejection> {
    if matches!(req.method, rsip::Method::Ack | rsip::Method::Cancel) {
        return Ok(());
    }
    let unsupported: Vec<String> = list_values(req, |h| match h {
        rsip::Header::Require(r) => Some(r.value().to_owned()),
        _ => None,
    })
    .into_iter()
    .filter(|tag| {
        !SUPPORTED_OPTIONS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(tag))
    })
    .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    let list = unsupported.join(", ");
    Err(
        Rejection::new(420, format!("unsupported extensions: {list}")).with(
            rsip::Header::Unsupported(rsip::headers::Unsupported::new(list)),
        ),
    )
}

/// The media type of a Content-Type value, lower-cased, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// RFC 3261 §8.2.3 and §20.14: Content-Length must match the body (400), a
/// content coding other than identity is a 415 with `Accept-Encoding`, and an
/// INVITE body that is not SDP is a 415 with `Accept` (RFC 4475 §3.3.6).
/// A body without Content-Type is malformed (§7.4.1): 400.
fn check_body(req: &rsip::Request) -> Result<(), Rejection> {
    let lengths: Vec<&rsip::headers::ContentLength> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            rsip::Header::ContentLength(l) => Some(l),
            _ => None,
        })
        .collect();
    if lengths.len() > 1 {
        return Err(Rejection::new(400, "more than one Content-Length"));
    }
    if let Some(len) = lengths.first() {
        let stated = len
            .length()
            .map_err(|_| Rejection::new(400, "malformed Content-Length"))?;
        if usize::try_from(stated).ok() != Some(req.body.len()) {
            return Err(Rejection::new(
                400,
                "Content-Length does not match the body",
            ));
        }
    }
    if req.body.is_empty() {
        return Ok(());
    }
    let codings = list_values(req, |h| match h {
        rsip::Header::ContentEncoding(e) => Some(e.value().to_owned()),
        _ => None,
    });
    if codings.iter().any(|c| !c.eq_ignore_ascii_case("identity")) {
        return Err(
            Rejection::new(415, format!("content coding {}", codings.join(", "))).with(
                rsip::Header::AcceptEncoding(rsip::headers::AcceptEncoding::new("identity")),
            ),
        );
    }
    let content_type = req.headers.iter().find_map(|h| match h {
        rsip::Header::ContentType(t) => Some(media_type(t.value())),
        _ => None,
    });
    let Some(content_type) = content_type else {
        return Err(Rejection::new(400, "body without Content-Type"));
    };
    if req.method == rsip::Method::Invite && content_type != SDP {
        return Err(Rejection::new(415, format!("body type {content_type}"))
            .with(rsip::Header::Accept(rsip::headers::Accept::new(SDP))));
    }
    Ok(())
}

/// RFC 3261 §21.4.7 (RFC 4475 §3.3.15): an INVITE whose `Accept` rules out
/// SDP cannot be answered with a session description → 406 with a 399
/// Warning saying why.
fn check_accept(req: &rsip::Request) -> Result<(), Rejection> {
    if req.method != rsip::Method::Invite {
        return Ok(());
    }
    let accepted = list_values(req, |h| match h {
        rsip::Header::Accept(a) => Some(a.value().to_owned()),
        _ => None,
    });
    let has_accept = req
        .headers
        .iter()
        .any(|h| matches!(h, rsip::Header::Accept(_)));
    if !has_accept {
        return Ok(());
    }
    let takes_sdp = accepted
        .iter()
        .map(|a| media_type(a))
        .any(|t| t == SDP || t == "application/*" || t == "*/*");
    if takes_sdp {
        return Ok(());
    }
    Err(
        Rejection::new(406, "Accept does not include application/sdp").with(rsip::Header::Warning(
            rsip::headers::Warning::new("399 rivr \"only application/sdp bodies can be produced\""),
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::parse_message;

    const BASE: &str = "INVITE sip:1000@rivr.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:1000@rivr.example>\r\n\
        From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@192.0.2.1>\r\n";

    fn request(extra: &str, body: &str) -> rsip::Request {
        let text = format!("{BASE}{extra}Content-Length: {}\r\n\r\n{body}", body.len());
        match parse_message(text.as_bytes()) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("test request did not parse: {other:?}"),
        }
    }

    fn status(req: &rsip::Request) -> Option<u16> {
        check_request(req).err().map(|r| r.status)
    }

    #[test]
    fn plain_invite_with_sdp_passes() {
        assert_eq!(
            check_request(&request("Content-Type: application/sdp\r\n", "v=0\r\n")),
            Ok(())
        );
        assert_eq!(check_request(&request("", "")), Ok(()));
    }

    #[test]
    fn wrong_version_is_505() {
        let mut req = request("", "");
        req.version = rsip::Version::V1;
        assert_eq!(status(&req), Some(505));
    }

    #[test]
    fn unknown_scheme_is_416_tel_is_fine() {
        let mut req = request("", "");
        req.uri.scheme = Some(rsip::Scheme::Other("im".into()));
        assert_eq!(status(&req), Some(416));
        req.uri.scheme = Some(rsip::Scheme::Other("TEL".into()));
        assert_eq!(status(&req), None);
    }

    #[test]
    fn unknown_require_is_420_with_unsupported_listing_each_tag() {
        let rej = check_request(&request("Require: 100rel, foo\r\n", "")).unwrap_err();
        assert_eq!(rej.status, 420);
        assert_eq!(
            rej.extra_headers,
            vec![rsip::Header::Unsupported(rsip::headers::Unsupported::new(
                "100rel, foo"
            ))]
        );
        // Proxy-Require is a proxy's business.
        assert_eq!(status(&request("Proxy-Require: foo\r\n", "")), None);
    }

    #[test]
    fn require_on_ack_is_not_420() {
        let mut req = request("Require: foo\r\n", "");
        req.method = rsip::Method::Ack;
        for h in req.headers.iter_mut() {
            if let rsip::Header::CSeq(c) = h {
                *c = rsip::headers::CSeq::new("314159 ACK");
            }
        }
        assert_eq!(status(&req), None);
    }

    #[test]
    fn max_forwards_zero_is_processed() {
        let text =
            BASE.replace("Max-Forwards: 70", "Max-Forwards: 0") + "Content-Length: 0\r\n\r\n";
        let Ok(rsip::SipMessage::Request(req)) = parse_message(text.as_bytes()) else {
            panic!("did not parse")
        };
        assert_eq!(check_request(&req), Ok(()));
    }

    #[test]
    fn non_sdp_invite_body_is_415_with_accept() {
        let rej = check_request(&request("Content-Type: text/plain\r\n", "hello")).unwrap_err();
        assert_eq!(rej.status, 415);
        assert_eq!(
            rej.extra_headers,
            vec![rsip::Header::Accept(rsip::headers::Accept::new(
                "application/sdp"
            ))]
        );
        // parameters and case do not matter
        assert_eq!(
            status(&request(
                "Content-Type: Application/SDP; charset=utf-8\r\n",
                "v=0"
            )),
            None
        );
    }

    #[test]
    fn body_type_on_other_methods_is_not_judged() {
        let mut req = request("Content-Type: application/dtmf-relay\r\n", "Signal=5");
        req.method = rsip::Method::Info;
        for h in req.headers.iter_mut() {
            if let rsip::Header::CSeq(c) = h {
                *c = rsip::headers::CSeq::new("314160 INFO");
            }
        }
        assert_eq!(status(&req), None);
    }

    #[test]
    fn content_encoding_is_415_with_accept_encoding() {
        let rej = check_request(&request(
            "Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n",
            "xx",
        ))
        .unwrap_err();
        assert_eq!(rej.status, 415);
        assert_eq!(
            rej.extra_headers,
            vec![rsip::Header::AcceptEncoding(
                rsip::headers::AcceptEncoding::new("identity")
            )]
        );
    }

    #[test]
    fn content_length_mismatch_and_untyped_body_are_400() {
        let mut req = request("Content-Type: application/sdp\r\n", "v=0");
        req.body.push(b'x');
        assert_eq!(status(&req), Some(400));
        assert_eq!(status(&request("", "v=0")), Some(400));
    }

    #[test]
    fn mandatory_header_problems_are_400() {
        let mut req = request("", "");
        req.headers
            .retain(|h| !matches!(h, rsip::Header::CallId(_)));
        assert_eq!(status(&req), Some(400));
        let mut req = request("", "");
        req.headers
            .push(rsip::Header::To(rsip::headers::To::new("<sip:x@y>")));
        assert_eq!(status(&req), Some(400));
        let mut req = request("", "");
        req.method = rsip::Method::Options;
        assert_eq!(status(&req), Some(400), "CSeq method mismatch");
        let mut req = request("", "");
        req.headers
            .retain(|h| !matches!(h, rsip::Header::MaxForwards(_)));
        assert_eq!(status(&req), None, "Max-Forwards may be absent");
    }

    #[test]
    fn accept_without_sdp_is_406() {
        let rej = check_request(&request("Accept: text/nobodyKnowsThis\r\n", "")).unwrap_err();
        assert_eq!(rej.status, 406);
        assert_eq!(
            status(&request("Accept: application/sdp, text/html\r\n", "")),
            None
        );
        assert_eq!(status(&request("Accept: */*\r\n", "")), None);
    }
}
