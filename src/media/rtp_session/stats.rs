//! What a session counts: traffic both ways, loss and jitter of what we
//! receive, what the peer reports about what we send, and every packet
//! dropped, by reason.

use std::net::SocketAddr;
use std::time::Duration;

use crate::media::rtcp::ReportBlock;

/// Why an inbound RTP datagram was not handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a valid RTP packet (short, version ≠ 2, bad CSRC/extension/padding
    /// lengths).
    Malformed,
    /// An RTCP packet on the RTP port (rivr does not negotiate rtcp-mux).
    RtcpOnRtpPort,
    /// From an address that is not (yet) trusted: a NAT'd peer still being
    /// learned, or someone spraying packets at the port.
    UnverifiedSource,
    /// From an address other than the one the session is locked to.
    WrongSource,
    /// A payload type that is neither the audio codec nor telephone-event.
    UnknownPayloadType,
    /// A large sequence jump not yet confirmed by the next packet (RFC 3550
    /// A.1).
    BadSequence,
}

impl DropReason {
    /// Every reason, for exporting counters.
    pub const ALL: [DropReason; 6] = [
        DropReason::Malformed,
        DropReason::RtcpOnRtpPort,
        DropReason::UnverifiedSource,
        DropReason::WrongSource,
        DropReason::UnknownPayloadType,
        DropReason::BadSequence,
    ];

    /// A stable snake_case name (a metrics label, a log field).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::RtcpOnRtpPort => "rtcp_on_rtp_port",
            DropReason::UnverifiedSource => "unverified_source",
            DropReason::WrongSource => "wrong_source",
            DropReason::UnknownPayloadType => "unknown_payload_type",
            DropReason::BadSequence => "bad_sequence",
        }
    }
}

/// Dropped inbound RTP datagrams, one counter per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::Malformed`].
    pub malformed: u64,
    /// [`DropReason::RtcpOnRtpPort`].
    pub rtcp_on_rtp_port: u64,
    /// [`DropReason::UnverifiedSource`].
    pub unverified_source: u64,
    /// [`DropReason::WrongSource`].
    pub wrong_source: u64,
    /// [`DropReason::UnknownPayloadType`].
    pub unknown_payload_type: u64,
    /// [`DropReason::BadSequence`].
    pub bad_sequence: u64,
}

impl DropCounts {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        let c = self.counter(reason);
        *c = c.saturating_add(1);
    }

    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        let mut copy = *self;
        *copy.counter(reason)
    }

    fn counter(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::Malformed => &mut self.malformed,
            DropReason::RtcpOnRtpPort => &mut self.rtcp_on_rtp_port,
            DropReason::UnverifiedSource => &mut self.unverified_source,
            DropReason::WrongSource => &mut self.wrong_source,
            DropReason::UnknownPayloadType => &mut self.unknown_payload_type,
            DropReason::BadSequence => &mut self.bad_sequence,
        }
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed
            .saturating_add(self.rtcp_on_rtp_port)
            .saturating_add(self.unverified_source)
            .saturating_add(self.wrong_source)
            .saturating_add(self.unknown_payload_type)
            .saturating_add(self.bad_sequence)
    }
}

/// Counters and estimates of one RTP session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtpStats {
    /// RTP packets we sent (audio and telephone-events).
    pub packets_sent: u64,
    /// Payload octets we sent (the SR octet count).
    pub bytes_sent: u64,
    /// RTP packets accepted from the peer (any payload type).
    pub packets_received: u64,
    /// Payload octets accepted from the peer.
    pub bytes_received: u64,
    /// Cumulative loss (RFC 3550 A.3, extended sequence numbers; negative
    /// with duplicates). An SSRC change never counts as loss.
    pub packets_lost: i64,
    /// Extended highest sequence number of the current remote source.
    pub highest_seq: u32,
    /// Interarrival jitter (RFC 3550 A.8), in timestamp units.
    pub jitter: f64,
    /// The peer's current SSRC.
    pub remote_ssrc: Option<u32>,
    /// Times the peer changed SSRC.
    pub ssrc_changes: u64,
    /// Inbound RTP dropped, by reason.
    pub dropped: DropCounts,
    /// The address media is locked to (SDP-confirmed or latched).
    pub latched: Option<SocketAddr>,
    /// RTCP compound packets we produced.
    pub rtcp_sent: u64,
    /// RTCP datagrams accepted.
    pub rtcp_received: u64,
    /// RTCP datagrams from an untrusted address.
    pub rtcp_dropped: u64,
    /// RTCP datagrams with a malformed packet (those before it are used).
    pub rtcp_malformed: u64,
    /// Round-trip time from the last report block on our stream (LSR/DLSR).
    pub rtt: Option<Duration>,
    /// The peer's last reception report on our stream.
    pub remote_report: Option<ReportBlock>,
    /// The peer sent an RTCP BYE.
    pub remote_bye: bool,
}

impl RtpStats {
    /// Jitter in milliseconds, for a clock rate in Hz.
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        if clock_rate == 0 {
            0.0
        } else {
            self.jitter * 1000.0 / f64::from(clock_rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_counter_and_name() {
        let mut names = Vec::new();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            let mut d = DropCounts::default();
            for _ in 0..=i {
                d.count(reason);
            }
            assert_eq!(d.get(reason), i as u64 + 1);
            assert_eq!(d.total(), i as u64 + 1);
            for other in DropReason::ALL.into_iter().filter(|o| *o != reason) {
                assert_eq!(d.get(other), 0);
            }
            names.push(reason.as_str());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
