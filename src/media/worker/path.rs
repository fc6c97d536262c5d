//! How a leg's packets come and go: one variant per transport behind the
//! same few calls, so the worker and the leg's [`MediaCore`] do not care
//! which: RTP ([`RtpPath`]), and a PRI B-channel ([`BChannelPath`]: raw
//! 8 kHz G.711, 160 bytes per 20 ms, read and written once a tick with no
//! RTP header, no latching, no telephone-events (keys go as tones), and a
//! flow that is `Send` while the channel is connected).

use std::time::Instant;

use crate::media::core::{MediaCore, Outgoing};
use crate::media::send_gate::Flow;

use super::bchannel_path::BChannelPath;
use super::rtp_path::RtpPath;

// RTP legs are the many and the hot path: their state stays inline, and a
// B-channel leg carries the unused kilobyte instead.
#[allow(clippy::large_enum_variant)]
pub(super) enum PacketPath {
    Rtp(RtpPath),
    BChannel(BChannelPath),
}

impl PacketPath {
    /// Whether RFC 4733 events can be sent on it.
    pub fn telephone_events(&self) -> bool {
        match self {
            PacketPath::Rtp(p) => p.telephone_events(),
            PacketPath::BChannel(_) => false,
        }
    }

    /// Media starts: as early media (`early`), or because the call is
    /// answered.
    pub fn start(&mut self, now: Instant, early: bool) {
        match self {
            PacketPath::Rtp(p) => p.start(now, early),
            PacketPath::BChannel(_) => {}
        }
    }

    /// Signalling confirmed that the peer wants this media.
    pub fn peer_confirmed(&mut self) {
        match self {
            PacketPath::Rtp(p) => p.peer_confirmed(),
            PacketPath::BChannel(_) => {}
        }
    }

    /// Everything received since the last tick, into `core`.
    pub fn receive(&mut self, now: Instant, buf: &mut [u8], core: &mut MediaCore) {
        match self {
            PacketPath::Rtp(p) => p.receive(now, buf, core),
            PacketPath::BChannel(p) => p.receive(now, buf, core),
        }
    }

    /// Whether media goes out this tick (`None`: the path cannot send yet).
    pub fn flow(&self, now: Instant) -> Option<Flow> {
        match self {
            PacketPath::Rtp(p) => p.flow(now),
            PacketPath::BChannel(p) => p.flow(),
        }
    }

    /// Packets of `ptime_ms` from the next tick on, the stream continuing.
    pub fn set_ptime(&mut self, ptime_ms: u32) {
        match self {
            PacketPath::Rtp(p) => p.set_ptime(ptime_ms),
            // A B-channel's frames are 20 ms.
            PacketPath::BChannel(_) => {}
        }
    }

    /// A frame held back (the core was not asked for it).
    pub fn hold(&mut self) {
        match self {
            PacketPath::Rtp(p) => p.hold(),
            PacketPath::BChannel(_) => {}
        }
    }

    /// This tick's output: sent when `open`, else let go by unheard.
    pub fn send(&mut self, now: Instant, out: &Outgoing<'_>, open: bool, buf: &mut [u8]) {
        match self {
            PacketPath::Rtp(p) => p.send(now, out, open, buf),
            PacketPath::BChannel(p) => p.send(now, out, open),
        }
    }

    /// Control traffic due (RTCP).
    pub fn send_reports(&mut self, now: Instant, buf: &mut [u8], open: bool) {
        match self {
            PacketPath::Rtp(p) => p.send_reports(now, buf, open),
            PacketPath::BChannel(_) => {}
        }
    }

    /// The leg ended.
    pub fn close(&mut self, now: Instant, buf: &mut [u8]) {
        match self {
            PacketPath::Rtp(p) => p.close(now, buf),
            PacketPath::BChannel(_) => {}
        }
    }
}
