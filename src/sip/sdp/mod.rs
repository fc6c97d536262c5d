//! SDP (RFC 4566) parsing and the offer/answer model (RFC 3264) for one audio
//! stream of G.711 plus telephone-event (RFC 4733).
//!
//! Owns: the session-description types, a parser that is tolerant of lines
//! and attributes it does not use but strict on what offer/answer needs
//! (`m=`, `c=`, `a=rtpmap`, `a=rtcp`, direction), and the rules that turn an
//! offer into rivr's answer or check an answer to rivr's offer. It does not
//! open sockets or pick ports: [`LocalMedia`] comes from the caller.

mod negotiate;
mod parse;

pub use negotiate::{accept_answer, answer, offer, LocalMedia, Negotiated};
pub use parse::parse;

use std::net::IpAddr;

/// Largest SDP body rivr parses.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most `m=` sections rivr parses (and answers).
pub const MAX_MEDIA: usize = 16;

/// Why an SDP could not be parsed or negotiated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// A line rivr needs is malformed; `line` is 1-based.
    #[error("SDP line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    /// Larger than [`MAX_SDP_BYTES`] or more than [`MAX_MEDIA`] sections.
    #[error("SDP too large")]
    TooLarge,
    /// A required line (`v=`, `o=`, `m=`) is missing.
    #[error("SDP lacks {0}")]
    Missing(&'static str),
    /// No audio stream rivr can take part in (none, all port 0, or not RTP/AVP).
    #[error("no usable audio stream")]
    NoAudio,
    /// The audio stream shares no codec with rivr → 488.
    #[error("no common codec")]
    NoCommonCodec,
    /// The audio stream has no usable `c=` address.
    #[error("no connection address for the audio stream")]
    NoConnection,
}

/// Media direction attribute (RFC 4566 §6, RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction the other side uses in reply (sendonly ↔ recvonly).
    pub fn mirrored(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// `o=` (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `<username>`.
    pub username: String,
    /// `<sess-id>` as written (digits, possibly beyond u64).
    pub session_id: String,
    /// `<sess-version>` as written.
    pub session_version: String,
    /// `<unicast-address>` as written.
    pub address: String,
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count if given.
    pub channels: Option<u32>,
}

/// `a=rtcp:<port> [IN IP4|IP6 <addr>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    /// RTCP port.
    pub port: u16,
    /// RTCP address if given.
    pub address: Option<IpAddr>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, …
    pub media: String,
    /// Transport port; 0 means the stream is rejected/disabled.
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, …
    pub proto: String,
    /// Formats as written (payload types for RTP profiles).
    pub formats: Vec<String>,
    /// Media-level `c=` address, if any and if it is an IP address.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp:<pt> <params>` lines.
    pub fmtps: Vec<(u8, String)>,
    /// `a=ptime` in ms (an unreadable or out-of-range value is left out).
    pub ptime: Option<u32>,
    /// `a=maxptime` in ms (RFC 4566 §6; same rule).
    pub max_ptime: Option<u32>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// `a=rtcp`.
    pub rtcp: Option<RtcpAttr>,
    /// Every attribute as `(name, value)`, including the ones above.
    pub attributes: Vec<(String, Option<String>)>,
}

impl MediaDescription {
    /// The rtpmap for `pt`, if the section has one.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (may be empty or `-`).
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The `m=` sections in order.
    pub media: Vec<MediaDescription>,
}
