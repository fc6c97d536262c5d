//! The sans-IO RTP session of one call: RTP in and out, symmetric RTP that
//! latches safely, reception statistics, and RTCP SR/RR/SDES/BYE. It owns no
//! socket, clock or thread: the media worker hands it each datagram with
//! `now` and asks it to write outgoing packets into a reusable buffer.
//!
//! ```text
//! every 20 ms tick, for each call:
//!   for each datagram on the RTP socket:  match session.handle_rtp(now, from, &buf) { … }
//!   for each datagram on the RTCP socket: session.handle_rtcp(now, from, &buf)
//!   n = session.write_audio(now, &frame, 160, &mut out)  → send to session.remote_rtp()
//!   if session.poll_timeout() <= now: session.poll_rtcp(now, &mut out) → send to session.remote_rtcp()
//! ```
//!
//! Nothing here allocates or locks per packet: the header is parsed from the
//! slice ([`header`], hand-written — see its doc for why not the `rtp` crate's
//! unmarshal), payloads are returned as borrowed slices, and output goes into
//! the caller's buffer.
//!
//! Three clocks: `now` (monotonic, passed in; arrival times, RTCP timer,
//! RTT), RTP media time (timestamps in `clock_rate` units; ours advance by
//! the samples sent), and wall-clock NTP time in SRs, which is the session's
//! monotonic time unless the I/O layer gives a reference with
//! [`RtpSession::set_wallclock`].
//!
//! Threats handled: RTP Bleed (stealing or injecting media by spraying the
//! port; see [`latch`]), malformed or hostile datagrams (typed drops, counted,
//! never a panic), sequence jumps (RFC 3550 A.1 probation of a jump).

pub mod header;
pub mod latch;
pub mod reception;
mod rtcp_io;
pub mod rtcp_timer;
pub mod stats;

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod rtcp_tests;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use stats::{DropCounts, DropReason, RtpStats};

use crate::media::rfc4733::EventPayload;
use header::RtpHeader;
use latch::{canonical, Latch, Verdict};
use reception::{Reception, SeqOutcome};
use rtcp_timer::Jitterer;

/// How a call's RTP session is set up (from the SDP offer/answer).
#[derive(Debug, Clone)]
pub struct RtpSessionConfig {
    /// Our SSRC.
    pub local_ssrc: u32,
    /// The audio payload type (e.g. 0 for PCMU).
    pub payload_type: u8,
    /// The audio clock rate in Hz.
    pub clock_rate: u32,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event_pt: Option<u8>,
    /// Its clock rate (the audio's, or 8000 when the peer offered no other).
    pub telephone_event_rate: u32,
    /// The peer's RTP address from the SDP.
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address from the SDP (port + 1 unless `a=rtcp`).
    pub remote_rtcp: SocketAddr,
    /// Our first sequence number (random, RFC 3550 §5.1).
    pub initial_seq: u16,
    /// Our first timestamp (random, RFC 3550 §5.1).
    pub initial_timestamp: u32,
    /// Our RTCP CNAME (at most 255 bytes are sent).
    pub cname: String,
    /// Packet duration to send, in ms (the peer's `a=ptime` as
    /// negotiated; `media::packetizer` rounds what it cannot send).
    pub ptime_ms: u32,
}

/// What an inbound RTP datagram turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Audio in the negotiated payload type.
    Audio {
        /// Payload type.
        payload_type: u8,
        /// Sequence number.
        seq: u16,
        /// Media timestamp.
        timestamp: u32,
        /// The peer's SSRC.
        ssrc: u32,
        /// M bit (start of a talkspurt).
        marker: bool,
        /// The payload, padding removed.
        payload: &'a [u8],
    },
    /// An RFC 4733 telephone-event: hand it to `rfc4733::Receiver`.
    TelephoneEvent {
        /// Sequence number.
        seq: u16,
        /// Event start timestamp.
        timestamp: u32,
        /// The peer's SSRC.
        ssrc: u32,
        /// M bit (first packet of an event).
        marker: bool,
        /// The event payload.
        payload: &'a [u8],
    },
    /// A packet from the peer in a payload type the call did not negotiate
    /// (comfort noise, say): not played, and counted in
    /// [`RtpStats::dropped`] as [`DropReason::UnknownPayloadType`]; its
    /// sequence number tells the jitter buffer that the gap is no loss.
    OtherPayload {
        /// Payload type.
        payload_type: u8,
        /// Sequence number.
        seq: u16,
        /// The peer's SSRC.
        ssrc: u32,
    },
    /// Not handed on; counted in [`RtpStats::dropped`].
    Dropped(DropReason),
}

impl Inbound<'_> {
    /// Why the packet is not handed on as audio or an event, if it is not.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            Inbound::OtherPayload { .. } => Some(DropReason::UnknownPayloadType),
            Inbound::Dropped(reason) => Some(*reason),
            Inbound::Audio { .. } | Inbound::TelephoneEvent { .. } => None,
        }
    }
}

/// One call's RTP/RTCP session. See the module doc for the run loop.
#[derive(Debug, Clone)]
pub struct RtpSession {
    cfg: RtpSessionConfig,
    /// Origin of the arrival clock used for jitter, and of our NTP time.
    epoch: Instant,
    /// The latest `now` seen, for calls that take none (`write_bye`).
    last_now: Instant,
    latch: Latch,
    reception: Reception,

    seq: u16,
    next_timestamp: u32,
    /// Samples per tick, from the last `write_audio`: the media clock keeps
    /// running by this much per event packet while a digit is sent.
    frame_samples: u32,
    talkspurt: bool,
    /// RTP timestamp and instant of the last packet sent (for the SR).
    last_sent: Option<(u32, Instant)>,

    /// The peer's RTCP address from signalling.
    rtcp_sdp: SocketAddr,
    rtcp_target: SocketAddr,
    rtcp_latched: bool,
    next_rtcp: Instant,
    rtcp_initial: bool,
    avg_rtcp_size: f64,
    jitterer: Jitterer,
    /// Middle 32 bits of the peer's last SR NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
    /// NTP time (64-bit) at `epoch`.
    ntp_at_epoch: u64,
    bye_sent: bool,

    stats: RtpStats,
}

/// NTP time at the epoch when no wall clock is given: one second, so that the
/// middle 32 bits (LSR) are never the "no SR yet" value 0.
const DEFAULT_NTP_AT_EPOCH: u64 = 1 << 32;

impl RtpSession {
    /// A session that has sent and received nothing; the first RTCP report
    /// is due 1.25–3.75 s from `now`.
    pub fn new(cfg: RtpSessionConfig, now: Instant) -> Self {
        let seed = (u64::from(cfg.local_ssrc) << 32)
            ^ u64::from(cfg.initial_timestamp)
            ^ (u64::from(cfg.initial_seq) << 16);
        let mut s = Self {
            latch: Latch::new(cfg.remote_rtp),
            rtcp_target: canonical(cfg.remote_rtcp),
            rtcp_sdp: canonical(cfg.remote_rtcp),
            seq: cfg.initial_seq,
            next_timestamp: cfg.initial_timestamp,
            frame_samples: cfg.clock_rate / 50,
            cfg,
            epoch: now,
            last_now: now,
            reception: Reception::new(),
            talkspurt: true,
            last_sent: None,
            rtcp_latched: false,
            next_rtcp: now,
            rtcp_initial: true,
            avg_rtcp_size: 100.0,
            jitterer: Jitterer::new(seed),
            last_sr: None,
            ntp_at_epoch: DEFAULT_NTP_AT_EPOCH,
            bye_sent: false,
            stats: RtpStats::default(),
        };
        s.schedule_rtcp(now);
        s
    }

    /// Tells the session the wall-clock time (64-bit NTP) at `now`, so SRs
    /// carry real NTP timestamps. Optional: without it NTP time counts from
    /// the session start, which is enough for the peer's RTT and ours.
    pub fn set_wallclock(&mut self, now: Instant, ntp: u64) {
        let since = duration_to_ntp(now.saturating_duration_since(self.epoch));
        self.ntp_at_epoch = ntp.wrapping_sub(since);
    }

    fn touch(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    fn drop_packet<'a>(&mut self, reason: DropReason) -> Inbound<'a> {
        self.stats.dropped.count(reason);
        Inbound::Dropped(reason)
    }

    /// Classifies one datagram from the RTP socket.
    #[must_use]
    pub fn handle_rtp<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Inbound<'a> {
        self.touch(now);
        if header::looks_like_rtcp(datagram) {
            return self.drop_packet(DropReason::RtcpOnRtpPort);
        }
        let Ok((h, payload)) = header::parse(datagram) else {
            return self.drop_packet(DropReason::Malformed);
        };
        let is_audio = h.payload_type == self.cfg.payload_type;
        match self.latch.check(from, h.ssrc, h.seq, is_audio) {
            Verdict::Accept => {}
            Verdict::Unverified => return self.drop_packet(DropReason::UnverifiedSource),
            Verdict::Wrong => return self.drop_packet(DropReason::WrongSource),
        }
        let locked = self.latch.locked();
        if locked != self.stats.latched {
            // The source moved (back to the SDP address): RTCP learned from
            // the old source's host is no longer trusted.
            self.rtcp_target = self.rtcp_sdp;
            self.rtcp_latched = false;
            self.stats.latched = locked;
        }

        // Reception statistics follow the audio stream. Other packets share
        // its books only when they share its SSRC: telephone-events on an
        // SSRC of their own are not an SSRC change.
        if is_audio || self.reception.ssrc() == Some(h.ssrc) {
            let had_source = self.reception.ssrc().is_some();
            let arrival = self.arrival_units(now);
            let (outcome, new_source) = if is_audio {
                self.reception.update(h.ssrc, h.seq, h.timestamp, arrival)
            } else {
                self.reception.update_untimed(h.ssrc, h.seq)
            };
            if new_source && had_source {
                self.stats.ssrc_changes += 1;
                self.last_sr = None;
            }
            if outcome == SeqOutcome::Jump {
                return self.drop_packet(DropReason::BadSequence);
            }
            self.stats.packets_lost = self.reception.lost();
            self.stats.highest_seq = self.reception.extended_max();
            self.stats.jitter = self.reception.jitter();
            self.stats.remote_ssrc = self.reception.ssrc();
        }
        self.stats.packets_received += 1;
        self.stats.bytes_received += payload.len() as u64;

        let RtpHeader {
            marker,
            payload_type,
            seq,
            timestamp,
            ssrc,
        } = h;
        if Some(payload_type) == self.cfg.telephone_event_pt {
            Inbound::TelephoneEvent {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            }
        } else if is_audio {
            Inbound::Audio {
                payload_type,
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            }
        } else {
            self.stats.dropped.count(DropReason::UnknownPayloadType);
            Inbound::OtherPayload {
                payload_type,
                seq,
                ssrc,
            }
        }
    }

    /// Arrival time in timestamp units since the epoch (wrapping, as RTP
    /// timestamps do).
    fn arrival_units(&self, now: Instant) -> u32 {
        let nanos = now.saturating_duration_since(self.epoch).as_nanos();
        (nanos.saturating_mul(u128::from(self.cfg.clock_rate)) / 1_000_000_000) as u32
    }

    /// Writes one audio packet into `out`; returns its length. Advances seq by 1 and timestamp by `samples`; sets the marker bit on the first packet of a talkspurt (first packet, and the first after `start_talkspurt()`).
    #[must_use]
    pub fn write_audio(
        &mut self,
        now: Instant,
        payload: &[u8],
        samples: u32,
        out: &mut [u8],
    ) -> Option<usize> {
        self.touch(now);
        let h = RtpHeader {
            marker: self.talkspurt,
            payload_type: self.cfg.payload_type,
            seq: self.seq,
            timestamp: self.next_timestamp,
            ssrc: self.cfg.local_ssrc,
        };
        let n = header::write(out, &h, payload)?;
        self.talkspurt = false;
        self.seq = self.seq.wrapping_add(1);
        self.last_sent = Some((self.next_timestamp, now));
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.frame_samples = samples;
        self.count_sent(payload.len());
        Some(n)
    }

    /// A frame of audio that is not sent (the reflection guard holds media
    /// back): the media clock advances by `samples` as if it had been, the
    /// sequence number does not (RFC 3550 §5.1: timestamps follow time,
    /// sequence numbers follow packets), and the next packet sent starts a
    /// talkspurt, so the peer's jitter buffer resynchronises on it.
    pub fn skip_audio(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.frame_samples = samples;
        self.talkspurt = true;
    }

    fn count_sent(&mut self, payload_len: usize) {
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += payload_len as u64;
    }

    /// The next audio packet starts a talkspurt (marker bit set).
    pub fn start_talkspurt(&mut self) {
        self.talkspurt = true;
    }

    /// The RTP timestamp the next audio packet will carry: the start
    /// timestamp to give `rfc4733::Sender::new` for a digit sent now.
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// RFC 4733 sending: writes the next telephone-event packet of the digit being sent, if any (see rfc4733::Sender); audio must not be sent while an event is in progress.
    ///
    /// `payload` is what `Sender::next_payload` produced, `event_start_ts`
    /// is `Sender::timestamp()`; call it once per tick instead of
    /// `write_audio`. `None` if no telephone-event payload type was
    /// negotiated or `out` is too small. The media clock keeps running while
    /// the event is sent (one audio frame's worth of samples per event
    /// packet, and never less than the event's end), so the audio that
    /// follows carries timestamps true to real time, as a new talkspurt.
    #[must_use]
    pub fn write_event(
        &mut self,
        now: Instant,
        payload: &[u8],
        event_start_ts: u32,
        marker: bool,
        out: &mut [u8],
    ) -> Option<usize> {
        self.touch(now);
        let payload_type = self.cfg.telephone_event_pt?;
        let h = RtpHeader {
            marker,
            payload_type,
            seq: self.seq,
            timestamp: event_start_ts,
            ssrc: self.cfg.local_ssrc,
        };
        let n = header::write(out, &h, payload)?;
        self.seq = self.seq.wrapping_add(1);
        let duration = EventPayload::parse(payload).map_or(0, |p| u32::from(p.duration));
        let event_end = event_start_ts.wrapping_add(duration);
        self.next_timestamp = self.next_timestamp.wrapping_add(self.frame_samples);
        if (event_end.wrapping_sub(self.next_timestamp) as i32) > 0 {
            self.next_timestamp = event_end;
        }
        self.talkspurt = true;
        self.last_sent = Some((event_end, now));
        self.count_sent(payload.len());
        Some(n)
    }

    /// Where to send RTP now (the SDP address until a source is locked).
    pub fn remote_rtp(&self) -> SocketAddr {
        self.latch.target()
    }

    /// Where to send RTCP now: the SDP RTCP address, or the address the
    /// peer's RTCP came from behind its NAT, or — latched to a NAT but no
    /// RTCP heard yet — the latched RTP address's port + 1.
    pub fn remote_rtcp(&self) -> SocketAddr {
        match self.latch.learned() {
            Some(nat) if !self.rtcp_latched => {
                SocketAddr::new(nat.ip(), nat.port().checked_add(1).unwrap_or(nat.port()))
            }
            _ => self.rtcp_target,
        }
    }

    /// New remote addresses from signalling (a re-INVITE): media is sent to
    /// `rtp` and latching starts over.
    pub fn set_remote(&mut self, rtp: SocketAddr, rtcp: SocketAddr) {
        self.latch.reset(rtp);
        self.rtcp_sdp = canonical(rtcp);
        self.rtcp_target = self.rtcp_sdp;
        self.rtcp_latched = false;
        self.stats.latched = None;
    }

    /// Counters and estimates.
    pub fn stats(&self) -> &RtpStats {
        &self.stats
    }

    /// The configuration the session was built with.
    pub fn config(&self) -> &RtpSessionConfig {
        &self.cfg
    }

    /// Next RTCP report due (RFC 3550 §6.2 interval, 5 s minimum, randomised
    /// 0.5–1.5); `None` after BYE.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.bye_sent).then_some(self.next_rtcp)
    }

    /// NTP time (64-bit) at `now`.
    fn ntp_at(&self, now: Instant) -> u64 {
        self.ntp_at_epoch
            .wrapping_add(duration_to_ntp(now.saturating_duration_since(self.epoch)))
    }
}

/// A duration as 32.32 fixed-point seconds.
fn duration_to_ntp(d: Duration) -> u64 {
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (d.as_secs() << 32).wrapping_add(frac)
}

/// A duration as 16.16 fixed-point seconds (DLSR), saturating.
fn duration_to_short_ntp(d: Duration) -> u32 {
    u32::try_from(duration_to_ntp(d) >> 16).unwrap_or(u32::MAX)
}

/// 16.16 fixed-point seconds as a duration.
fn short_ntp_to_duration(v: u32) -> Duration {
    let secs = u64::from(v >> 16);
    let nanos = (u64::from(v & 0xFFFF) * 1_000_000_000) >> 16;
    Duration::from_secs(secs) + Duration::from_nanos(nanos)
}
