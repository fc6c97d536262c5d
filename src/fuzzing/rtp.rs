//! The `rtp` target: one call's receive path as the media worker runs it —
//! `RtpSession::handle_rtp` on datagrams from a few source addresses (the
//! SDP address, a NAT, attackers, an IPv4-mapped IPv6 copy of the SDP
//! address), then telephone-events to the RFC 4733 receiver and audio to the
//! [`Listener`] (jitter buffer → G.711 or Opus decode/conceal → in-band DTMF),
//! both merged by [`DigitMerge`]; the send side (audio, events, RTCP) runs on
//! each tick so the session's state is a live call's. Time is an input.
//!
//! The dispatch from `handle_rtp` to the listener and the receiver mirrors
//! `MediaCall::receive` in `media/worker.rs`.
//!
//! Input: a configuration byte (codec, telephone-event), then operations
//! until the input ends (see the `OP_*` codes and [`seeds`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::input::{Input, Seed};
use crate::call::control::DigitSource;
use crate::codec::Codec;
use crate::media::dtmf_merge::DigitMerge;
use crate::media::listener::Listener;
use crate::media::rfc4733;
use crate::media::rtcp;
use crate::media::rtp_session::header;
use crate::media::rtp_session::latch::canonical;
use crate::media::rtp_session::{Inbound, RtpSession, RtpSessionConfig};

/// A datagram as bytes.
pub(super) const OP_RAW: u8 = 0;
/// A well-formed RTP packet built from fields (see [`PacketSpec`]).
pub(super) const OP_PACKET: u8 = 1;
/// Advance the clock by 0–255 ms, then one media tick.
pub(super) const OP_TICK: u8 = 2;
/// Advance the clock by up to 655 s with no tick (a stalled worker).
pub(super) const OP_STALL: u8 = 3;
/// A datagram on the RTCP socket.
pub(super) const OP_RTCP: u8 = 4;
/// A re-INVITE moves the SDP address.
pub(super) const OP_REINVITE: u8 = 5;
/// Send one telephone-event packet with the given payload.
pub(super) const OP_SEND_EVENT: u8 = 6;
const OPS: u8 = 7;

/// Operations per input at most, so one input cannot run for long.
const MAX_OPS: usize = 4096;

/// The peer's addresses as signalled, and where datagrams come from.
pub(super) const SDP_RTP: SocketAddr = v4(192, 0, 2, 10, 40000);
pub(super) const SDP_RTCP: SocketAddr = v4(192, 0, 2, 10, 40001);
/// Source index of a NAT in front of the peer.
pub(super) const SRC_NAT: u8 = 1;

const fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

/// Source addresses a datagram may come from, by index.
pub(super) fn source(i: u8) -> SocketAddr {
    let mapped = Ipv4Addr::new(192, 0, 2, 10).to_ipv6_mapped();
    match i % 8 {
        0 => SDP_RTP,
        1 => v4(203, 0, 113, 5, 31000),
        2 => v4(203, 0, 113, 5, 31001),
        3 => v4(198, 51, 100, 7, 5000),
        4 => SocketAddr::new(IpAddr::V6(mapped), 40000),
        5 => SDP_RTCP,
        6 => v4(198, 51, 100, 7, 5002),
        _ => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 40000),
    }
}

/// The call's codec and telephone-event, from the first input byte: bits
/// 0–1 the codec (PCMU, PCMA, Opus, PCMU), bit 2 no telephone-event, bit 3
/// telephone-event at the audio's clock rate rather than 8000.
pub(super) fn session_config(byte: u8) -> (Codec, RtpSessionConfig) {
    let codec = match byte & 3 {
        0 => Codec::Pcmu,
        1 => Codec::Pcma,
        2 => Codec::Opus,
        _ => Codec::Pcmu,
    };
    let telephone_event_pt = (byte & 0x04 == 0).then_some(101);
    let telephone_event_rate = if byte & 0x08 != 0 {
        codec.clock_rate()
    } else {
        8000
    };
    let cfg = RtpSessionConfig {
        local_ssrc: 0x1234_5678,
        payload_type: codec.offer_payload_type(),
        clock_rate: codec.clock_rate(),
        telephone_event_pt,
        telephone_event_rate,
        remote_rtp: SDP_RTP,
        remote_rtcp: SDP_RTCP,
        initial_seq: 1000,
        initial_timestamp: 50_000,
        cname: "fuzz@rivr".into(),
        ptime_ms: 20,
    };
    (codec, cfg)
}

/// The fields of a built RTP packet.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PacketSpec {
    /// Bits 0–1: payload type (0 audio, 1 telephone-event, 2 13 = CN, 3
    /// explicit); bit 2 marker; bit 3 padding; bit 4 a header extension;
    /// bit 5 two CSRCs; bits 6–7: SSRC (0 the stream's, 1 another, 2
    /// explicit, 3 a third).
    pub kind: u8,
    pub pt: u8,
    pub ssrc: u32,
    /// Added to the previous packet's sequence number.
    pub seq_step: u16,
    /// Added to the previous packet's timestamp.
    pub ts_step: u32,
}

pub(super) const KIND_AUDIO: u8 = 0;
pub(super) const KIND_EVENT: u8 = 1;
pub(super) const KIND_MARKER: u8 = 0x04;

impl PacketSpec {
    fn read(input: &mut Input<'_>) -> Self {
        let kind = input.u8();
        let pt = if kind & 3 == 3 { input.u8() } else { 0 };
        let ssrc = if (kind >> 6) == 2 { input.u32() } else { 0 };
        let seq_step = input.u16();
        let ts_step = input.u32();
        Self {
            kind,
            pt,
            ssrc,
            seq_step,
            ts_step,
        }
    }

    pub(super) fn write(&self, seed: &mut Seed) {
        seed.u8(self.kind);
        if self.kind & 3 == 3 {
            seed.u8(self.pt);
        }
        if (self.kind >> 6) == 2 {
            seed.u32(self.ssrc);
        }
        seed.u16(self.seq_step).u32(self.ts_step);
    }
}

/// Where the sending peer's stream is: the last sequence number and
/// timestamp used by [`build_packet`].
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerStream {
    pub seq: u16,
    pub timestamp: u32,
}

pub(super) const PEER_SSRC: u32 = 0xCAFE_F00D;

/// Builds a packet into `out` (cleared first).
pub(super) fn build_packet(
    out: &mut Vec<u8>,
    spec: &PacketSpec,
    cfg: &RtpSessionConfig,
    peer: &mut PeerStream,
    payload: &[u8],
) {
    peer.seq = peer.seq.wrapping_add(spec.seq_step);
    peer.timestamp = peer.timestamp.wrapping_add(spec.ts_step);
    let pt = match spec.kind & 3 {
        0 => cfg.payload_type,
        1 => cfg.telephone_event_pt.unwrap_or(101),
        2 => 13,
        _ => spec.pt & 0x7F,
    };
    let ssrc = match spec.kind >> 6 {
        0 => PEER_SSRC,
        1 => 0x0BAD_5EED,
        2 => spec.ssrc,
        _ => 0x7777_7777,
    };
    let padding = spec.kind & 0x08 != 0;
    let extension = spec.kind & 0x10 != 0;
    let csrcs = spec.kind & 0x20 != 0;
    out.clear();
    let b0 = 0x80 | if padding { 0x20 } else { 0 } | if extension { 0x10 } else { 0 };
    out.push(b0 | if csrcs { 2 } else { 0 });
    out.push(
        pt | if spec.kind & KIND_MARKER != 0 {
            0x80
        } else {
            0
        },
    );
    out.extend_from_slice(&peer.seq.to_be_bytes());
    out.extend_from_slice(&peer.timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if csrcs {
        out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    }
    if extension {
        out.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
    }
    out.extend_from_slice(payload);
    if padding {
        out.extend_from_slice(&[0, 0, 3]);
    }
}

/// What a run reached (for the seed tests).
#[derive(Debug, Clone, Default)]
pub struct Reached {
    /// Audio packets the jitter buffer took.
    pub buffered: u64,
    /// Frames decoded.
    pub played: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Keys from RFC 4733 events.
    pub rfc4733_keys: String,
    /// Keys from in-band tones.
    pub inband_keys: String,
    /// RTCP reports sent.
    pub rtcp_sent: u64,
    /// RTCP datagrams the session accepted.
    pub rtcp_received: u64,
    /// Whether the session latched to a NAT's address.
    pub latched_nat: bool,
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = exercise(data);
}

/// Runs `data`; returns what it reached.
pub fn exercise(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let (codec, cfg) = session_config(input.u8());
    let t0 = Instant::now();
    let mut call = Call::new(codec, cfg, t0);
    let mut packet = Vec::with_capacity(2048);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % OPS {
            OP_RAW => {
                let from = source(input.u8());
                let datagram = input.bytes16(2048);
                call.receive(from, datagram);
            }
            OP_PACKET => {
                let from = source(input.u8());
                let spec = PacketSpec::read(&mut input);
                let payload = input.bytes16(1500);
                let cfg = call.session.config().clone();
                build_packet(&mut packet, &spec, &cfg, &mut call.peer, payload);
                call.receive(from, &packet);
            }
            OP_TICK => {
                call.now += Duration::from_millis(u64::from(input.u8()));
                call.tick();
            }
            OP_STALL => {
                call.now += Duration::from_millis(u64::from(input.u16()) * 10);
            }
            OP_RTCP => {
                let from = source(input.u8());
                let datagram = input.bytes16(2048);
                call.session.handle_rtcp(call.now, from, datagram);
            }
            OP_REINVITE => {
                let rtp = source(input.u8());
                let rtcp = source(input.u8());
                call.session.set_remote(rtp, rtcp);
                call.sdp = canonical(rtp);
            }
            OP_SEND_EVENT => {
                let payload = input.take(4);
                let marker = input.u8() & 1 != 0;
                let start = call.session.next_timestamp();
                let mut out = [0u8; 64];
                if let Some(n) = call
                    .session
                    .write_event(call.now, payload, start, marker, &mut out)
                {
                    let sent = out.get(..n).unwrap_or_default();
                    assert!(header::parse(sent).is_ok(), "rivr sent bad RTP");
                }
            }
            _ => {}
        }
    }
    let j = call.listener.jitter_stats();
    call.reached.buffered = j.accepted;
    call.reached.played = j.played;
    call.reached.concealed = j.concealed;
    call.reached.rtcp_received = call.session.stats().rtcp_received;
    call.reached
}

/// One call's media as the worker holds it, on a virtual clock.
struct Call {
    now: Instant,
    codec: Codec,
    session: RtpSession,
    dtmf: rfc4733::Receiver,
    listener: Listener,
    merge: DigitMerge,
    /// The current SDP address (canonical).
    sdp: SocketAddr,
    peer: PeerStream,
    out: Vec<u8>,
    reached: Reached,
}

impl Call {
    fn new(codec: Codec, cfg: RtpSessionConfig, now: Instant) -> Self {
        Call {
            now,
            codec,
            sdp: canonical(cfg.remote_rtp),
            session: RtpSession::new(cfg, now),
            dtmf: rfc4733::Receiver::new(),
            listener: Listener::new(codec),
            merge: DigitMerge::new(),
            peer: PeerStream {
                seq: 0,
                timestamp: 0,
            },
            out: vec![0; 1500],
            reached: Reached::default(),
        }
    }

    /// One datagram on the RTP socket, dispatched as `MediaCall::receive`
    /// does.
    fn receive(&mut self, from: SocketAddr, datagram: &[u8]) {
        let now = self.now;
        let locked_before = self.session.stats().latched;
        let codec_pt = self.session.config().payload_type;
        let inbound = self.session.handle_rtp(now, from, datagram);
        // A lock moves only to the signalled address, never by media from
        // anywhere else (RTP Bleed).
        if let Some(locked) = locked_before {
            if canonical(from) != self.sdp {
                assert_eq!(self.session.stats().latched, Some(locked), "lock stolen");
            }
        }
        let digit = match inbound {
            Inbound::TelephoneEvent {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            } => {
                assert!(payload.len() <= datagram.len());
                self.listener.push_not_audio(seq, ssrc);
                self.dtmf
                    .handle(now, ssrc, seq, timestamp, marker, payload)
                    .map(|e| {
                        let event = payload.first().copied().unwrap_or(255);
                        assert_eq!(Some(e.digit), rfc4733::event_to_digit(event));
                        e.digit
                    })
            }
            Inbound::Audio {
                payload_type,
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            } if payload_type == codec_pt => {
                assert!(payload.len() <= datagram.len());
                let _ = self
                    .listener
                    .push(now, seq, timestamp, ssrc, marker, payload);
                None
            }
            Inbound::OtherPayload { seq, ssrc, .. } => {
                self.listener.push_not_audio(seq, ssrc);
                None
            }
            Inbound::Audio { .. } | Inbound::Dropped(_) => None,
        };
        if self.session.stats().latched.is_some_and(|a| a != self.sdp) {
            self.reached.latched_nat = true;
        }
        if let Some(d) = digit {
            if self.merge.accept(now, d, DigitSource::Rfc4733) {
                self.reached.rfc4733_keys.push(d);
            }
        }
    }

    /// One 20 ms tick: play out a frame, send one, and RTCP when due.
    fn tick(&mut self) {
        let now = self.now;
        if let Some(d) = self.listener.tick(now) {
            assert!(rfc4733::digit_to_event(d).is_some(), "bad key {d:?}");
            if self.merge.accept(now, d, DigitSource::InBand) {
                self.reached.inband_keys.push(d);
            }
        }
        let stats = self.listener.jitter_stats();
        assert!(
            stats.target_delay <= Duration::from_millis(400),
            "{stats:?}"
        );

        // G.711 silence, or a 3-byte Opus packet (TOC of a 20 ms SILK
        // frame and two bytes): what is sent does not matter here, only that
        // the session counts as a sender.
        let silence = match self.codec.g711_law() {
            Some(law) => [law.silence_byte(); 160],
            None => [0x08; 160],
        };
        let payload = if self.codec.g711_law().is_some() {
            &silence[..]
        } else {
            &silence[..3]
        };
        let step = self.codec.timestamp_step_20ms();
        if let Some(n) = self.session.write_audio(now, payload, step, &mut self.out) {
            let sent = self.out.get(..n).unwrap_or_default();
            assert!(header::parse(sent).is_ok(), "rivr sent bad RTP");
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            if let Some(n) = self.session.poll_rtcp(now, &mut self.out) {
                let sent = self.out.get(..n).unwrap_or_default();
                assert!(rtcp::packets(sent).all(|p| p.is_ok()), "rivr sent bad RTCP");
                self.reached.rtcp_sent += 1;
            }
        }
    }
}

/// Valid inputs that start deep: a G.711 and an Opus call with a key
/// pressed in-band and as RFC 4733 events, a NAT'd peer, RTCP.
pub fn seeds() -> Vec<Vec<u8>> {
    super::rtp_seeds::all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds reach what the target is for: decoded frames, a concealed
    /// loss, keys from both detectors, a NAT latch and RTCP both ways.
    #[test]
    fn seeds_reach_the_decoder_both_key_detectors_and_rtcp() {
        let s = seeds();
        let ulaw = exercise(&s[0]);
        assert_eq!(
            (ulaw.inband_keys.as_str(), ulaw.rfc4733_keys.as_str()),
            ("5", "7"),
            "{ulaw:?}"
        );
        assert!(
            ulaw.played >= 50 && ulaw.rtcp_sent >= 1 && ulaw.rtcp_received == 1,
            "{ulaw:?}"
        );
        assert!(!ulaw.latched_nat);
        let alaw = exercise(&s[1]);
        assert_eq!(
            (alaw.inband_keys.as_str(), alaw.rfc4733_keys.as_str()),
            ("9", "7"),
            "{alaw:?}"
        );
        assert!(alaw.latched_nat && alaw.rtcp_received == 1, "{alaw:?}");
        let opus = exercise(&s[2]);
        assert_eq!(
            (opus.inband_keys.as_str(), opus.rfc4733_keys.as_str()),
            ("#", "#"),
            "{opus:?}"
        );
        assert!(opus.played >= 30 && opus.concealed >= 1, "{opus:?}");
        let opus = exercise(&s[3]);
        assert_eq!(
            (opus.inband_keys.as_str(), opus.rfc4733_keys.as_str()),
            ("3", ""),
            "{opus:?}"
        );
    }
}
