//! The session's RTCP side: accepting the peer's reports (only from a
//! trusted address), producing our SR/RR + SDES CNAME when due, and BYE.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::latch::canonical;
use super::rtcp_timer::{deterministic_interval, IntervalInputs};
use super::{duration_to_short_ntp, short_ntp_to_duration, RtpSession};
use crate::media::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};

/// We count as a sender in reports while we sent RTP this recently (RFC 3550
/// §6.3.8: within the last two report intervals, at most 2 × 7.5 s).
const SENDER_TIMEOUT: Duration = Duration::from_secs(15);

/// RTCP bandwidth: 5% of a G.711 call's ~80 kbit/s (payload + RTP/UDP/IP).
const RTCP_BANDWIDTH_OCTETS: f64 = 80_000.0 * 0.05 / 8.0;

/// UDP + IPv4 header octets, counted in the average RTCP size (§6.2).
const UDP_IP_OVERHEAD: f64 = 28.0;

impl RtpSession {
    pub(super) fn schedule_rtcp(&mut self, now: Instant) {
        let we_sent = self.is_sender(now);
        let inputs = IntervalInputs {
            members: 2,
            senders: u32::from(we_sent) + u32::from(self.stats.remote_ssrc.is_some()),
            rtcp_bandwidth: RTCP_BANDWIDTH_OCTETS,
            we_sent,
            avg_rtcp_size: self.avg_rtcp_size,
            initial: self.rtcp_initial,
        };
        let t = self.jitterer.randomise(deterministic_interval(&inputs));
        self.next_rtcp = now + t;
    }

    fn is_sender(&self, now: Instant) -> bool {
        self.last_sent
            .is_some_and(|(_, at)| now.saturating_duration_since(at) < SENDER_TIMEOUT)
    }

    /// Is RTCP from `from` trusted? From the current RTCP target, or — when
    /// RTP was latched behind a NAT — from the NAT's IP (its RTCP mapping has
    /// a port we could not know), which then becomes the RTCP target.
    fn accept_rtcp_from(&mut self, from: SocketAddr) -> bool {
        let from = canonical(from);
        if from == self.rtcp_target {
            return true;
        }
        match self.latch.learned() {
            Some(nat) if !self.rtcp_latched && nat.ip() == from.ip() => {
                self.rtcp_target = from;
                self.rtcp_latched = true;
                true
            }
            _ => false,
        }
    }

    /// Takes in one datagram from the RTCP socket: parse SR/RR (+ SDES/BYE tolerated), keep stats (RTT from LSR/DLSR).
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.touch(now);
        if !self.accept_rtcp_from(from) {
            self.stats.rtcp_dropped += 1;
            return;
        }
        self.stats.rtcp_received += 1;
        let remote = self.reception.ssrc();
        for packet in rtcp::packets(datagram) {
            let packet = match packet {
                Ok(p) => p,
                Err(_) => {
                    self.stats.rtcp_malformed += 1;
                    break;
                }
            };
            match packet {
                RtcpPacket::SenderReport { ssrc, info, blocks } => {
                    if remote.is_none_or(|r| r == ssrc) {
                        self.last_sr = Some((rtcp::ntp_middle(info.ntp), now));
                        self.take_blocks(now, blocks);
                    }
                }
                RtcpPacket::ReceiverReport { ssrc, blocks } => {
                    if remote.is_none_or(|r| r == ssrc) {
                        self.take_blocks(now, blocks);
                    }
                }
                RtcpPacket::Goodbye { mut sources, .. } => {
                    if sources.any(|s| remote.is_none_or(|r| r == s)) {
                        self.stats.remote_bye = true;
                    }
                }
                RtcpPacket::SourceDescription(_) | RtcpPacket::Other { .. } => {}
            }
        }
    }

    fn take_blocks(&mut self, now: Instant, blocks: rtcp::ReportBlocks<'_>) {
        for b in blocks.filter(|b| b.ssrc == self.cfg.local_ssrc) {
            self.stats.remote_report = Some(b);
            if b.last_sr == 0 {
                continue;
            }
            // RFC 3550 §6.4.1: RTT = A − LSR − DLSR, in 1/65536 s.
            let a = rtcp::ntp_middle(self.ntp_at(now));
            let since_sr = a.wrapping_sub(b.last_sr);
            if let Some(rtt) = since_sr.checked_sub(b.delay_since_last_sr) {
                // A wildly large value is a bogus LSR, not a real RTT.
                if rtt < 60 << 16 {
                    self.stats.rtt = Some(short_ntp_to_duration(rtt));
                }
            }
        }
    }

    /// An SR (or RR if nothing sent) + SDES CNAME when due.
    #[must_use]
    pub fn poll_rtcp(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.touch(now);
        if self.bye_sent || now < self.next_rtcp {
            return None;
        }
        let n = self.write_report(now, out)?;
        self.stats.rtcp_sent += 1;
        // A.7: avg_rtcp_size = 1/16 * packet_size + 15/16 * avg_rtcp_size.
        self.avg_rtcp_size += (n as f64 + UDP_IP_OVERHEAD - self.avg_rtcp_size) / 16.0;
        self.rtcp_initial = false;
        self.schedule_rtcp(now);
        Some(n)
    }

    /// A final report + SDES + BYE; afterwards no more RTCP is produced.
    #[must_use]
    pub fn write_bye(&mut self, out: &mut [u8]) -> Option<usize> {
        let now = self.last_now;
        let n = self.write_report(now, out)?;
        let bye = rtcp::write_bye(out.get_mut(n..)?, &[self.cfg.local_ssrc], None).ok()?;
        self.bye_sent = true;
        self.stats.rtcp_sent += 1;
        Some(n + bye)
    }

    /// SR or RR (with a block on the peer if we hear one) + SDES CNAME.
    fn write_report(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        // Worked on a copy, committed only once the report is written.
        let mut reception = self.reception;
        let block = reception.ssrc().map(|ssrc| ReportBlock {
            ssrc,
            fraction_lost: reception.take_fraction_lost(),
            cumulative_lost: reception
                .lost_current()
                .clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                as i32,
            highest_seq: reception.extended_max(),
            jitter: reception.jitter() as u32,
            last_sr: self.last_sr.map_or(0, |(lsr, _)| lsr),
            delay_since_last_sr: self.last_sr.map_or(0, |(_, at)| {
                duration_to_short_ntp(now.saturating_duration_since(at))
            }),
        });
        let blocks = block.as_slice();
        let ssrc = self.cfg.local_ssrc;
        let n = match self.last_sent.filter(|_| self.is_sender(now)) {
            Some((ts, at)) => {
                let elapsed = now.saturating_duration_since(at).as_nanos();
                let advance =
                    elapsed.saturating_mul(u128::from(self.cfg.clock_rate)) / 1_000_000_000;
                let info = SenderInfo {
                    ntp: self.ntp_at(now),
                    rtp_timestamp: ts.wrapping_add(advance as u32),
                    packet_count: self.stats.packets_sent as u32,
                    octet_count: self.stats.bytes_sent as u32,
                };
                rtcp::write_sender_report(out, ssrc, &info, blocks).ok()?
            }
            None => rtcp::write_receiver_report(out, ssrc, blocks).ok()?,
        };
        let cname = self.cfg.cname.as_bytes();
        let cname = cname.get(..cname.len().min(255)).unwrap_or_default();
        let sdes = rtcp::write_sdes_cname(out.get_mut(n..)?, ssrc, cname).ok()?;
        self.reception = reception;
        Some(n + sdes)
    }
}
