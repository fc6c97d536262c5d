//! The parts of a SIP message the UAS core works with, taken once from the
//! `rsip` message that `sip::wire` accepted, and the text builders for the
//! responses and requests rivr sends.
//!
//! Headers rivr copies into responses (Via, From, To, Call-ID, CSeq,
//! Record-Route) are kept as the raw values the peer sent, so nothing it wrote
//! is lost or re-spelled on the way back (RFC 3261 §8.2.6.2).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::Header;

/// The transport a message came in on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    /// A TCP connection, by the transport layer's connection id.
    Tcp(u64),
    /// TCP to the destination address, on the one connection the transport
    /// layer keeps for it (opened on first use). Requests rivr starts (a
    /// trunk's INVITE, REGISTER, OPTIONS, in-dialog requests) name no
    /// connection: the core stays free of sockets and the transport layer
    /// decides whether to reuse or connect.
    TcpTo,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp(_) | Transport::TcpTo)
    }

    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp(_) | Transport::TcpTo => "TCP",
        }
    }
}

/// What was wrong with a message that `wire` accepted but the core cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {header}: {reason}")]
pub struct HeaderError {
    pub header: &'static str,
    pub reason: String,
}

fn herr(header: &'static str, reason: impl ToString) -> HeaderError {
    HeaderError {
        header,
        reason: reason.to_string(),
    }
}

/// The top Via, as the transaction layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopVia {
    pub branch: String,
    /// `host[:port]` as written.
    pub sent_by: String,
    pub host: String,
    pub port: Option<u16>,
    pub rport: bool,
}

/// A request, reduced to what rivr uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: rsip::Method,
    /// The Request-URI as written.
    pub uri: String,
    /// The user part of the Request-URI: the dialed number.
    pub uri_user: Option<String>,
    /// Every Via value, top first (a header with several values is split).
    pub vias: Vec<String>,
    pub top_via: TopVia,
    pub from: String,
    pub from_tag: Option<String>,
    pub from_uri: String,
    pub to: String,
    pub to_tag: Option<String>,
    pub to_uri: String,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: rsip::Method,
    /// The URI of the first Contact, if any.
    pub contact: Option<String>,
    pub record_route: Vec<String>,
    pub content_type: Option<String>,
    /// Every header as (name, value), in order, for scripts (`call.headers`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response, reduced to what rivr uses.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The reason phrase as the peer wrote it.
    pub reason: String,
    pub branch: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: rsip::Method,
    /// The To header value as sent (with the peer's tag).
    pub to: String,
    pub to_tag: Option<String>,
    /// The URI of the first Contact (a 2xx's remote target).
    pub contact: Option<String>,
    pub record_route: Vec<String>,
    /// `WWW-Authenticate` values (401), one per challenge.
    pub www_authenticate: Vec<String>,
    /// `Proxy-Authenticate` values (407).
    pub proxy_authenticate: Vec<String>,
    /// The `Reason` header (RFC 3326), if any.
    pub reason_header: Option<String>,
    /// `Min-Expires` (a 423 to a REGISTER).
    pub min_expires: Option<u32>,
    /// `Expires`, and the `expires` parameter of the first Contact.
    pub expires: Option<u32>,
    pub contact_expires: Option<u32>,
    pub content_type: Option<String>,
    /// Every header as (name, value), in order (session timers, Allow …).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            status: 0,
            reason: String::new(),
            branch: None,
            call_id: String::new(),
            cseq: 0,
            cseq_method: rsip::Method::Invite,
            to: String::new(),
            to_tag: None,
            contact: None,
            record_route: Vec::new(),
            www_authenticate: Vec::new(),
            proxy_authenticate: Vec::new(),
            reason_header: None,
            min_expires: None,
            expires: None,
            contact_expires: None,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

impl Response {
    /// Takes the reason phrase from the raw start line (`SIP/2.0 486 …`),
    /// which rsip does not keep; control bytes never reach here (wire).
    pub fn set_reason_from(&mut self, bytes: &[u8]) {
        let line = bytes
            .split(|b| *b == b'\r' || *b == b'\n')
            .next()
            .unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let mut parts = text.splitn(3, ' ');
        let (_, _, phrase) = (parts.next(), parts.next(), parts.next());
        if let Some(p) = phrase.map(str::trim).filter(|p| !p.is_empty()) {
            self.reason = p.chars().take(128).collect();
        }
    }

    /// True when the body is SDP (or a body without Content-Type).
    pub fn has_sdp(&self) -> bool {
        !self.body.is_empty()
            && self
                .content_type
                .as_deref()
                .map(|c| c.to_ascii_lowercase().starts_with("application/sdp"))
                .unwrap_or(true)
    }
}

impl Request {
    pub fn from_rsip(req: &rsip::Request) -> Result<Request, HeaderError> {
        let mut vias = Vec::new();
        let mut from = None;
        let mut to = None;
        let mut call_id = None;
        let mut cseq = None;
        let mut contact = None;
        let mut record_route = Vec::new();
        let mut content_type = None;
        let mut headers = Vec::new();
        for h in req.headers.iter() {
            let text = h.to_string();
            if let Some((name, value)) = text.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
            match h {
                Header::Via(v) => vias.extend(split_commas(v.value())),
                Header::From(v) => from = from.or(Some(v)),
                Header::To(v) => to = to.or(Some(v)),
                Header::CallId(v) => call_id = call_id.or(Some(v.value().trim().to_string())),
                Header::CSeq(v) => cseq = cseq.or(Some(v)),
                Header::Contact(v) if contact.is_none() => contact = Some(v.value().to_string()),
                Header::RecordRoute(v) => record_route.extend(split_commas(v.value())),
                Header::ContentType(v) => content_type = Some(v.value().trim().to_string()),
                _ => {}
            }
        }
        let top = vias.first().ok_or_else(|| herr("Via", "missing"))?;
        let mut top_via = parse_via(top)?;
        let from = from.ok_or_else(|| herr("From", "missing"))?;
        let to = to.ok_or_else(|| herr("To", "missing"))?;
        let from_typed = from.typed().map_err(|e| herr("From", e))?;
        let to_typed = to.typed().map_err(|e| herr("To", e))?;
        let cseq_h = cseq.ok_or_else(|| herr("CSeq", "missing"))?;
        let cseq_typed = cseq_h.typed().map_err(|e| herr("CSeq", e))?;
        let call_id = call_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| herr("Call-ID", "missing"))?;
        let from_tag = from_typed.tag().map(|t| t.value().to_string());
        if !top_via.branch.starts_with("z9hG4bK") {
            // RFC 2543 matching (§17.2.3): the request's identity stands in
            // for the branch. The CSeq *number* (not method) lets the ACK and
            // CANCEL of an INVITE find its transaction.
            top_via.branch = format!(
                "rfc2543;{};{};{};{};{}",
                top_via.branch,
                req.uri,
                call_id,
                from_tag.as_deref().unwrap_or(""),
                cseq_typed.seq
            );
        }
        Ok(Request {
            method: req.method,
            uri: req.uri.to_string(),
            uri_user: req.uri.user().map(str::to_string),
            vias,
            top_via,
            from: from.value().trim().to_string(),
            from_tag,
            from_uri: from_typed.uri.to_string(),
            to: to.value().trim().to_string(),
            to_tag: to_typed.tag().map(|t| t.value().to_string()),
            to_uri: to_typed.uri.to_string(),
            call_id,
            cseq: cseq_typed.seq,
            cseq_method: cseq_typed.method,
            contact: contact.and_then(|c| name_addr_uri(&c)),
            record_route,
            content_type,
            headers,
            body: req.body.clone(),
        })
    }

    /// True when the body is SDP (or there is a body and no Content-Type,
    /// which RFC 3261 §20.15 forbids but phones send).
    pub fn has_sdp(&self) -> bool {
        !self.body.is_empty()
            && self
                .content_type
                .as_deref()
                .map(|c| c.to_ascii_lowercase().starts_with("application/sdp"))
                .unwrap_or(true)
    }
}

impl Response {
    pub fn from_rsip(resp: &rsip::Response) -> Result<Response, HeaderError> {
        let mut r = Response {
            status: resp.status_code.code(),
            body: resp.body.clone(),
            ..Response::default()
        };
        let mut call_id = None;
        let mut cseq = None;
        let mut to = None;
        for h in resp.headers.iter() {
            let text = h.to_string();
            if let Some((name, value)) = text.split_once(':') {
                r.headers
                    .push((name.trim().to_string(), value.trim().to_string()));
            }
            match h {
                Header::Via(v) if r.branch.is_none() => {
                    let first = split_commas(v.value())
                        .into_iter()
                        .next()
                        .unwrap_or_default();
                    r.branch = parse_via(&first).ok().map(|v| v.branch);
                }
                Header::CallId(v) if call_id.is_none() => {
                    call_id = Some(v.value().trim().to_string())
                }
                Header::CSeq(v) if cseq.is_none() => {
                    cseq = Some(v.typed().map_err(|e| herr("CSeq", e))?)
                }
                Header::To(v) if to.is_none() => to = Some(v),
                Header::Contact(v) if r.contact.is_none() => {
                    let first = split_commas(v.value())
                        .into_iter()
                        .next()
                        .unwrap_or_default();
                    r.contact = name_addr_uri(&first);
                    r.contact_expires = param_u32(&first, "expires");
                }
                Header::RecordRoute(v) => r.record_route.extend(split_commas(v.value())),
                Header::WwwAuthenticate(v) => r.www_authenticate.push(v.value().trim().to_string()),
                Header::ProxyAuthenticate(v) => {
                    r.proxy_authenticate.push(v.value().trim().to_string())
                }
                Header::ContentType(v) => r.content_type = Some(v.value().trim().to_string()),
                Header::MinExpires(v) => r.min_expires = v.value().trim().parse().ok(),
                Header::Expires(v) => r.expires = v.value().trim().parse().ok(),
                Header::Other(name, value) if name.eq_ignore_ascii_case("Reason") => {
                    r.reason_header = Some(value.trim().to_string())
                }
                _ => {}
            }
        }
        let cseq = cseq.ok_or_else(|| herr("CSeq", "missing"))?;
        let to = to.ok_or_else(|| herr("To", "missing"))?;
        r.to_tag = to
            .typed()
            .map_err(|e| herr("To", e))?
            .tag()
            .map(|t| t.value().to_string());
        r.to = to.value().trim().to_string();
        r.call_id = call_id.ok_or_else(|| herr("Call-ID", "missing"))?;
        r.cseq = cseq.seq;
        r.cseq_method = cseq.method;
        // rsip keeps no reason phrase: the table's, until the endpoint
        // puts the peer's own words from the start line (`set_reason`).
        r.reason = crate::sip::wire::reason_phrase(r.status).to_string();
        Ok(r)
    }
}

/// The value of `;name=N` in a header value, if it is a number.
fn param_u32(value: &str, name: &str) -> Option<u32> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// Splits a header value at commas that are outside quotes and `<>`.
pub fn split_commas(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth_angle = false;
    let mut in_quote = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => depth_angle = true,
            '>' if !in_quote => depth_angle = false,
            ',' if !in_quote && !depth_angle => {
                let part = value[start..i].trim();
                if !part.is_empty() {
                    out.push(part.to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = value[start..].trim();
    if !part.is_empty() {
        out.push(part.to_string());
    }
    out
}

/// Parses one Via value: `SIP/2.0/UDP host[:port];params`.
pub fn parse_via(value: &str) -> Result<TopVia, HeaderError> {
    let (proto_and_host, params) = match value.find(';') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, ""),
    };
    let mut parts = proto_and_host.split_whitespace();
    let proto = parts.next().ok_or_else(|| herr("Via", "empty"))?;
    if !proto.to_ascii_uppercase().starts_with("SIP/2.0/") {
        return Err(herr("Via", format!("unknown protocol {proto:?}")));
    }
    let sent_by: String = parts.collect::<Vec<_>>().join("");
    if sent_by.is_empty() {
        return Err(herr("Via", "no sent-by"));
    }
    let (host, port) = split_host_port(&sent_by).ok_or_else(|| herr("Via", "bad sent-by"))?;
    let mut branch = None;
    let mut rport = false;
    for p in params.split(';') {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if k.eq_ignore_ascii_case("branch") {
            branch = v.map(str::to_string);
        } else if k.eq_ignore_ascii_case("rport") {
            rport = true;
        }
    }
    Ok(TopVia {
        // An RFC 2543 peer sends no branch; `from_rsip` then builds a key of
        // its own (§17.2.3). Empty stays empty here.
        branch: branch.unwrap_or_default(),
        sent_by,
        host,
        port,
        rport,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None => Some((s.to_string(), None)),
    }
}

/// The URI in a name-addr (`"x" <sip:a@b>;p`) or addr-spec (`sip:a@b;p`).
pub fn name_addr_uri(value: &str) -> Option<String> {
    let v = value.trim();
    if let Some(start) = v.find('<') {
        let end = v[start..].find('>')? + start;
        return Some(v[start + 1..end].trim().to_string());
    }
    let uri = v.split(';').next()?.trim();
    (!uri.is_empty()).then(|| uri.to_string())
}

/// Where a response to a request goes (RFC 3261 §18.2.2, RFC 3581): the
/// source address when `rport` was asked for, else the `received` address and
/// the sent-by port.
pub fn response_destination(via: &TopVia, source: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.is_reliable() || via.rport {
        return source;
    }
    let port = via.port.unwrap_or(5060);
    SocketAddr::new(source.ip(), port)
}

/// The top Via as it goes back in responses: `received` when the sent-by host
/// is not the source address, `rport=<port>` when `rport` was asked for.
pub fn stamp_via(value: &str, via: &TopVia, source: SocketAddr) -> String {
    let mut out = String::with_capacity(value.len() + 40);
    let host_matches = via
        .host
        .parse::<IpAddr>()
        .map(|ip| ip == source.ip())
        .unwrap_or(false);
    for (i, part) in value.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let key = part.split('=').next().unwrap_or("").trim();
        if i > 0 && key.eq_ignore_ascii_case("rport") {
            let _ = write!(out, "rport={}", source.port());
        } else if i > 0 && key.eq_ignore_ascii_case("received") {
            // replaced below
            out.pop();
        } else {
            out.push_str(part);
        }
    }
    if !host_matches || via.rport {
        let _ = write!(out, ";received={}", source.ip());
    }
    out
}

/// One table of reason phrases and one `Allow` list for the whole SIP
/// stack: the wire layer's.
pub use crate::sip::wire::{reason_phrase, ALLOW};

/// Extra pieces of a response beyond the copied headers.
#[derive(Debug, Default, Clone)]
pub struct ResponseParts<'a> {
    /// Set on the To header when the request's To had none.
    pub to_tag: Option<&'a str>,
    pub contact: Option<&'a str>,
    pub extra_headers: &'a [(&'a str, String)],
    pub sdp: Option<&'a str>,
}

/// Builds a response to `req` (RFC 3261 §8.2.6). `top_via` is the stamped
/// top Via value.
pub fn build_response(
    req: &Request,
    top_via: &str,
    code: u16,
    parts: &ResponseParts<'_>,
    user_agent: &str,
) -> Vec<u8> {
    let mut s = String::with_capacity(512);
    let _ = write!(s, "SIP/2.0 {} {}\r\n", code, reason_phrase(code));
    for (i, v) in req.vias.iter().enumerate() {
        let v = if i == 0 { top_via } else { v.as_str() };
        let _ = write!(s, "Via: {v}\r\n");
    }
    let _ = write!(s, "From: {}\r\n", req.from);
    match (req.to_tag.is_some(), parts.to_tag) {
        (false, Some(tag)) if code != 100 => {
            let _ = write!(s, "To: {};tag={}\r\n", req.to, tag);
        }
        _ => {
            let _ = write!(s, "To: {}\r\n", req.to);
        }
    }
    let _ = write!(s, "Call-ID: {}\r\n", req.call_id);
    let _ = write!(s, "CSeq: {} {}\r\n", req.cseq, req.cseq_method);
    if (101..300).contains(&code) && req.method == rsip::Method::Invite {
        for rr in &req.record_route {
            let _ = write!(s, "Record-Route: {rr}\r\n");
        }
    }
    if let Some(c) = parts.contact {
        let _ = write!(s, "Contact: <{c}>\r\n");
    }
    for (k, v) in parts.extra_headers {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    let _ = write!(s, "Server: {user_agent}\r\n");
    match parts.sdp {
        Some(body) => {
            let _ = write!(
                s,
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                body
            );
        }
        None => s.push_str("Content-Length: 0\r\n\r\n"),
    }
    s.into_bytes()
}

/// A request rivr sends inside a dialog (BYE, for now).
pub struct InDialogRequest<'a> {
    pub method: &'a str,
    pub request_uri: &'a str,
    pub via_transport: &'static str,
    pub via_sent_by: &'a str,
    pub branch: &'a str,
    pub route: &'a [String],
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub contact: &'a str,
    pub extra_headers: &'a [(&'a str, String)],
}

pub fn build_request(r: &InDialogRequest<'_>, user_agent: &str) -> Vec<u8> {
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "{} {} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={};rport\r\nMax-Forwards: 70\r\n",
        r.method, r.request_uri, r.via_transport, r.via_sent_by, r.branch
    );
    for route in r.route {
        let _ = write!(s, "Route: {route}\r\n");
    }
    let _ = write!(
        s,
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nContact: <{}>\r\n",
        r.from, r.to, r.call_id, r.cseq, r.method, r.contact
    );
    for (k, v) in r.extra_headers {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    let _ = write!(s, "User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_parsing() {
        let v = parse_via("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1;rport").unwrap();
        assert_eq!(v.branch, "z9hG4bK-1");
        assert_eq!(v.port, Some(5070));
        assert!(v.rport);
        let v = parse_via("SIP/2.0/TCP [2001:db8::1]:5080 ;branch=z9hG4bKx").unwrap();
        assert_eq!(v.host, "2001:db8::1");
        assert_eq!(v.port, Some(5080));
        assert!(parse_via("SIP/2.0/UDP").is_err());
        assert_eq!(
            parse_via("SIP/2.0/UDP host").unwrap().branch,
            "",
            "RFC 2543: no branch"
        );
    }

    #[test]
    fn rport_and_received_are_stamped() {
        let raw = "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport";
        let v = parse_via(raw).unwrap();
        let src: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        assert_eq!(
            stamp_via(raw, &v, src),
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport=40000;received=192.0.2.7"
        );
        assert_eq!(response_destination(&v, src, Transport::Udp), src);
        let raw = "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1";
        let v = parse_via(raw).unwrap();
        assert_eq!(stamp_via(raw, &v, src), raw);
        assert_eq!(
            response_destination(&v, src, Transport::Udp),
            "192.0.2.7:5070".parse().unwrap()
        );
    }

    #[test]
    fn commas_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_commas("\"a, b\" <sip:x@y;p=1,2>, <sip:z@w>"),
            vec!["\"a, b\" <sip:x@y;p=1,2>", "<sip:z@w>"]
        );
        assert_eq!(
            name_addr_uri("\"A\" <sip:1@h:5>;tag=3").unwrap(),
            "sip:1@h:5"
        );
        assert_eq!(name_addr_uri("sip:1@h;tag=3").unwrap(), "sip:1@h");
    }
}
