//! SIP message framing and parsing in front of `rsip` (RFC 3261 §7, §18.3).
//!
//! Owns everything between transport bytes and a [`rsip::SipMessage`] the
//! rest of rivr can use without further checks: stream framing, unfolding,
//! compact header names, Content-Length, size limits, control characters in
//! the start line and header values (`controls`), the eager checks of the
//! fields transactions and dialogs depend on, and the stateless error response
//! for a request that fails them. It does not decide what a valid request
//! means to a UAS (that is `sip::validate`) and keeps every other header raw.
//!
//! The verdict of [`parse_message`] maps to what the transport does:
//! `Ok` → hand to the transaction layer; `Err` with `status: Some(code)` →
//! answer with [`error_response`] (requests only); `status: None` → drop and
//! count (responses, unparseable garbage).

mod build;
mod controls;
mod error_response;
mod frame;
mod normalise;
mod raw;
mod shape;

pub(crate) use controls::is_forbidden_control;
pub use error_response::{error_response, stateless_response};
pub use error_response::{reason_phrase, ALLOW};
pub use frame::{frame_stream, frame_stream_limited, is_keepalive};

/// Largest message rivr accepts on any transport (the largest UDP payload).
pub const MAX_MESSAGE_BYTES: usize = 65_535;

/// Most header fields one message may carry; more is answered 513.
pub(crate) const MAX_HEADERS: usize = 256;

/// Why bytes did not become a usable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WireError {
    /// `Some(code)`: answer the request with this status; `None`: drop it.
    pub status: Option<u16>,
    /// For logs and for the response's reason phrase detail.
    pub reason: String,
}

impl WireError {
    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        Self {
            status: Some(400),
            reason: reason.into(),
        }
    }

    pub(crate) fn drop(reason: impl Into<String>) -> Self {
        Self {
            status: None,
            reason: reason.into(),
        }
    }
}

/// One datagram or one framed message → a normalised rsip message.
///
/// Leading CRLFs are skipped. For a datagram the body is cut at
/// Content-Length and extra octets are discarded (RFC 3261 §18.3); a body
/// shorter than Content-Length is a 400; without Content-Length the body is
/// the rest of the datagram. Any failure of a response is `status: None`.
pub fn parse_message(bytes: &[u8]) -> Result<rsip::SipMessage, WireError> {
    let raw = raw::split_message(bytes);
    let is_response = matches!(
        raw,
        Ok(raw::RawMessage {
            start: raw::StartLine::Response { .. },
            ..
        })
    ) || looks_like_response(bytes);
    let result = raw.and_then(|raw| build::build(&raw));
    match result {
        Err(e) if is_response => Err(WireError::drop(e.reason)),
        other => other,
    }
}

/// Serialises a message for the wire. Unlike rsip's `to_string()`, which
/// runs the body through `from_utf8_lossy`, the body is copied byte for byte
/// (RFC 4475 §3.1.1.11's multipart body holds NUL and non-UTF-8 octets).
pub fn to_bytes(msg: &rsip::SipMessage) -> Vec<u8> {
    let (head, body) = match msg {
        rsip::SipMessage::Request(r) => (
            format!("{} {} {}\r\n{}\r\n", r.method, r.uri, r.version, r.headers),
            &r.body,
        ),
        rsip::SipMessage::Response(r) => (
            format!("{} {}\r\n{}\r\n", r.version, r.status_code, r.headers),
            &r.body,
        ),
    };
    let mut out = Vec::with_capacity(head.len().saturating_add(body.len()));
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    out
}

fn looks_like_response(bytes: &[u8]) -> bool {
    let bytes = bytes
        .get(raw::leading_crlf_len(bytes)..)
        .unwrap_or_default();
    bytes
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
