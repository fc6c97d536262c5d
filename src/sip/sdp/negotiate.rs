//! Offer/answer (RFC 3264) for rivr's single audio stream: G.711 or Opus
//! (RFC 7587, with its `a=fmtp` answered by `codec::opus_fmtp::fmtp_answer`) and
//! telephone-event (RFC 4733).
//!
//! Packet time: rivr receives any packet of 10 to 60 ms and says so with
//! `a=maxptime:60`; it sends at the peer's `a=ptime` (for Opus also the
//! `ptime` of its `a=fmtp`), capped by `a=maxptime` (and Opus `maxptime`),
//! rounded to a duration it sends (`Codec::send_ptime`); its own `a=ptime`
//! states what it sends: 20 in an offer, the chosen one in an answer.

use super::{Direction, MediaDescription, SdpError, SessionDescription};
use crate::codec::opus_fmtp::{fmtp_answer, parse_fmtp};
use crate::codec::Codec;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// What rivr brings to a negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address rivr receives RTP on (goes in `c=` and `o=`).
    pub ip: IpAddr,
    /// RTP port (RTCP is the next port).
    pub rtp_port: u16,
    /// Codecs rivr accepts; the order is rivr's preference in its offers.
    pub codecs: Vec<Codec>,
    /// Whether to negotiate telephone-event/8000.
    pub telephone_event: bool,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
}

/// The result of a negotiation: what the media session needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    /// The codec to send and expect.
    pub codec: Codec,
    /// Its payload type in this session (the offerer's numbering).
    pub payload_type: u8,
    /// The peer's `a=fmtp` parameters for the chosen codec (Opus: what it
    /// can receive, RFC 7587 §6.1).
    pub codec_fmtp: Option<String>,
    /// telephone-event payload type, when both sides do RFC 4733.
    pub telephone_event_pt: Option<u8>,
    /// telephone-event clock rate: the audio clock when the peer offers it
    /// at that rate (RFC 4733 §2.1; WebRTC stacks pair 48 kHz with Opus),
    /// else 8000.
    pub telephone_event_rate: u32,
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP (`a=rtcp`, else RTP port + 1).
    pub remote_rtcp: SocketAddr,
    /// Packet duration rivr sends: the peer's `a=ptime` (default 20)
    /// within its `a=maxptime`, rounded to one rivr sends.
    pub ptime_ms: u32,
    /// rivr's direction for this stream.
    pub direction: Direction,
}

/// Payload type rivr uses for telephone-event in its own offers.
pub const OFFER_TELEPHONE_EVENT_PT: u8 = 101;
const DEFAULT_PTIME_MS: u32 = 20;
/// The longest packet rivr receives whole (`a=maxptime` in its SDP).
pub const MAX_RECEIVE_PTIME_MS: u32 = 60;

fn is_usable_audio(m: &MediaDescription) -> bool {
    // RTP/AVPF is a superset rivr can treat as AVP; SAVP needs SRTP, which
    // rivr does not do (RFC 3264 §6: refuse the stream, not the session).
    m.media.eq_ignore_ascii_case("audio")
        && m.port != 0
        && (m.proto.eq_ignore_ascii_case("RTP/AVP") || m.proto.eq_ignore_ascii_case("RTP/AVPF"))
}

/// The codec a payload type stands for in `m`: the rtpmap if present
/// (encoding names are case-insensitive, RFC 4566 §6), else the static
/// assignment of RFC 3551.
fn codec_of(m: &MediaDescription, pt: u8) -> Option<Codec> {
    match m.rtpmap(pt) {
        Some(map) => Codec::ALL.into_iter().find(|c| {
            map.encoding.eq_ignore_ascii_case(c.encoding_name())
                && map.clock_rate == c.clock_rate()
                && match c.rtpmap_channels() {
                    // RFC 7587 §7 requires "/2"; a bare "opus/48000" is
                    // wrong but unambiguous, so it is taken too.
                    Some(n) => map.channels.is_none_or(|c| c == n),
                    None => map.channels.unwrap_or(1) == 1,
                }
        }),
        None => Codec::ALL
            .into_iter()
            .find(|c| c.static_payload_type() == Some(pt)),
    }
}

/// The telephone-event payload type and its rate: one at the audio clock
/// rate if offered, else one at 8000.
fn telephone_event(m: &MediaDescription, audio_rate: u32) -> Option<(u8, u32)> {
    let offered = |rate: u32| {
        m.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .find(|&pt| {
                m.rtpmap(pt).is_some_and(|map| {
                    map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == rate
                })
            })
            .map(|pt| (pt, rate))
    };
    offered(audio_rate).or_else(|| offered(8000))
}

/// Picks codec, addresses and direction from the remote side's audio section.
fn negotiate(
    sd: &SessionDescription,
    m: &MediaDescription,
    local: &LocalMedia,
    remote_dir: Direction,
) -> Result<Negotiated, SdpError> {
    let (codec, payload_type) = m
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .find_map(|pt| {
            codec_of(m, pt)
                .filter(|c| local.codecs.contains(c))
                .map(|c| (c, pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let ip = m
        .connection
        .or(sd.connection)
        .ok_or(SdpError::NoConnection)?;
    let remote_rtcp = match &m.rtcp {
        Some(r) => SocketAddr::new(r.address.unwrap_or(ip), r.port),
        None => SocketAddr::new(ip, m.port.checked_add(1).ok_or(SdpError::NoConnection)?),
    };
    let te = telephone_event(m, codec.clock_rate()).filter(|_| local.telephone_event);
    let codec_fmtp = m
        .fmtps
        .iter()
        .find(|(pt, _)| *pt == payload_type)
        .map(|(_, f)| f.clone());
    let (mut ptime, mut max_ptime) = (m.ptime, m.max_ptime);
    if codec == Codec::Opus {
        // RFC 7587 §6.1: Opus may also carry them in its fmtp.
        let p = parse_fmtp(codec_fmtp.as_deref().unwrap_or(""));
        ptime = ptime.or(p.ptime);
        max_ptime = match (max_ptime, p.max_ptime) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(Negotiated {
        codec,
        payload_type,
        codec_fmtp,
        telephone_event_pt: te.map(|(pt, _)| pt),
        telephone_event_rate: te.map_or(8000, |(_, rate)| rate),
        remote_rtp: SocketAddr::new(ip, m.port),
        remote_rtcp,
        ptime_ms: codec.send_ptime(ptime, max_ptime),
        direction: remote_dir.mirrored(),
    })
}

fn write_session_header(out: &mut String, local: &LocalMedia) {
    let ip_type = if local.ip.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(
        out,
        "v=0\r\no=rivr {} {} IN {ip_type} {ip}\r\ns=rivr\r\nc=IN {ip_type} {ip}\r\nt=0 0\r\n",
        local.session_id,
        local.session_version,
        ip = local.ip
    );
}

/// One codec of an `m=` line: payload type, and for an answer the
/// offerer's `a=fmtp` for it.
struct Format<'a> {
    codec: Codec,
    pt: u8,
    remote_fmtp: Option<&'a str>,
}

fn write_audio(
    out: &mut String,
    local: &LocalMedia,
    proto: &str,
    codecs: &[Format<'_>],
    te: Option<(u8, u32)>,
    direction: Direction,
    ptime_ms: u32,
) {
    let _ = write!(out, "m=audio {} {proto}", local.rtp_port);
    for f in codecs {
        let _ = write!(out, " {}", f.pt);
    }
    if let Some((te, _)) = te {
        let _ = write!(out, " {te}");
    }
    out.push_str("\r\n");
    for f in codecs {
        let _ = write!(
            out,
            "a=rtpmap:{} {}/{}",
            f.pt,
            f.codec.encoding_name(),
            f.codec.clock_rate()
        );
        if let Some(n) = f.codec.rtpmap_channels() {
            let _ = write!(out, "/{n}");
        }
        out.push_str("\r\n");
        if f.codec == Codec::Opus {
            let _ = write!(out, "a=fmtp:{} {}\r\n", f.pt, fmtp_answer(f.remote_fmtp));
        }
    }
    if let Some((te, rate)) = te {
        let _ = write!(
            out,
            "a=rtpmap:{te} telephone-event/{rate}\r\na=fmtp:{te} 0-16\r\n"
        );
    }
    let _ = write!(
        out,
        "a=ptime:{ptime_ms}\r\na=maxptime:{MAX_RECEIVE_PTIME_MS}\r\na={}\r\n",
        direction.as_str()
    );
}

/// Offer → (negotiated media, answer SDP text). The first codec *in the
/// offer's order* that `local.codecs` contains wins. `Err(SdpError::NoCommonCodec)`
/// → the UAS answers 488.
///
/// The first usable audio section (RTP/AVP or RTP/AVPF, port ≠ 0) is
/// accepted; every other section is answered with port 0 in the same
/// position (RFC 3264 §6).
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(Negotiated, String), SdpError> {
    let chosen = offer
        .media
        .iter()
        .position(is_usable_audio)
        .ok_or(SdpError::NoAudio)?;
    let m = offer.media.get(chosen).ok_or(SdpError::NoAudio)?;
    let remote_dir = m.direction.or(offer.direction).unwrap_or_default();
    let negotiated = negotiate(offer, m, local, remote_dir)?;
    let mut out = String::with_capacity(512);
    write_session_header(&mut out, local);
    for (i, section) in offer.media.iter().enumerate() {
        if i == chosen {
            write_audio(
                &mut out,
                local,
                &section.proto,
                &[Format {
                    codec: negotiated.codec,
                    pt: negotiated.payload_type,
                    remote_fmtp: negotiated.codec_fmtp.as_deref(),
                }],
                negotiated
                    .telephone_event_pt
                    .map(|pt| (pt, negotiated.telephone_event_rate)),
                negotiated.direction,
                negotiated.ptime_ms,
            );
        } else {
            // RFC 3264 §6: a rejected stream keeps its position, port 0, and
            // at least one of the offered formats.
            let formats = if section.formats.is_empty() {
                "0".to_owned()
            } else {
                section.formats.join(" ")
            };
            let _ = write!(out, "m={} 0 {} {formats}\r\n", section.media, section.proto);
        }
    }
    Ok((negotiated, out))
}

/// rivr's offer (for an INVITE without SDP: the offer goes in the 200, the
/// answer comes in the ACK). Codecs use their static payload types in
/// `local.codecs` order, Opus 111; telephone-event/8000 uses 101.
pub fn offer(local: &LocalMedia) -> String {
    let codecs: Vec<Format<'_>> = local
        .codecs
        .iter()
        .map(|&codec| Format {
            codec,
            pt: codec.offer_payload_type(),
            remote_fmtp: None,
        })
        .collect();
    let te = local
        .telephone_event
        .then_some((OFFER_TELEPHONE_EVENT_PT, 8000));
    let mut out = String::with_capacity(512);
    write_session_header(&mut out, local);
    write_audio(
        &mut out,
        local,
        "RTP/AVP",
        &codecs,
        te,
        Direction::SendRecv,
        DEFAULT_PTIME_MS,
    );
    out
}

/// Checks the answer to [`offer`] and returns the media to use. The answer's
/// first audio section (rivr offers exactly one) must keep a port and name a
/// codec rivr offered.
pub fn accept_answer(
    answer: &SessionDescription,
    local: &LocalMedia,
) -> Result<Negotiated, SdpError> {
    let m = answer
        .media
        .iter()
        .find(|m| m.media.eq_ignore_ascii_case("audio"))
        .filter(|m| is_usable_audio(m))
        .ok_or(SdpError::NoAudio)?;
    let remote_dir = m.direction.or(answer.direction).unwrap_or_default();
    let mut negotiated = negotiate(answer, m, local, remote_dir)?;
    // An answer may renumber telephone-event, but only to a payload type
    // that is still telephone-event (checked by `telephone_event`).
    if !local.telephone_event {
        negotiated.telephone_event_pt = None;
    }
    Ok(negotiated)
}

#[cfg(test)]
mod tests;
