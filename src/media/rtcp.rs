//! RTCP (RFC 3550 §6): build sender and receiver reports, SDES CNAME and BYE
//! into a caller's `&mut [u8]`, and walk compound packets from `&[u8]` without
//! allocating. Every length field is checked against the bytes actually there;
//! a bad packet is an [`RtcpError`], never a panic. Packet types we do not use
//! (APP, RTPFB/PSFB feedback, XR, …) are returned as [`RtcpPacket::Other`].
//!
//! Parsing is tolerant of what real stacks send: a datagram need not start
//! with SR/RR nor carry SDES (RFC 5506 reduced-size RTCP), padding is
//! accepted on any packet, and unknown types are skipped by their length. It
//! is strict about lengths: the first packet whose length, count or padding
//! does not fit ends the walk with an error.
//!
//! Hand-written rather than the webrtc-rs `rtcp` crate: that crate boxes every
//! packet into a `Vec<Box<dyn Packet>>`, and the five packet types we need are
//! a few fixed layouts.

use thiserror::Error;

/// RTCP packet type: sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type: source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const PT_BYE: u8 = 203;
/// SDES item type: canonical name.
pub const SDES_CNAME: u8 = 1;

const HEADER_LEN: usize = 4;
const SENDER_INFO_LEN: usize = 20;
const REPORT_BLOCK_LEN: usize = 24;
/// The 5-bit count field of the common header.
const MAX_COUNT: usize = 31;

/// Why an RTCP datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    /// Fewer bytes than a header, or than the header's length field says.
    #[error("RTCP packet truncated")]
    Truncated,
    /// Version field is not 2.
    #[error("RTCP version is not 2")]
    BadVersion,
    /// The count field promises more report blocks/sources than fit.
    #[error("RTCP count field overruns the packet")]
    CountOverrun,
    /// The padding count is zero or larger than the packet body.
    #[error("RTCP padding is invalid")]
    BadPadding,
    /// An SDES chunk or item runs past its packet.
    #[error("RTCP SDES chunk is malformed")]
    BadSdes,
    /// The output buffer is too small for what was asked.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// More than 31 report blocks or sources, or a text longer than 255 bytes.
    #[error("too many items for one RTCP packet")]
    TooMany,
}

/// The sender-info section of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (32.32 fixed point seconds).
    pub ntp: u64,
    /// The same instant in RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent since starting.
    pub packet_count: u32,
    /// Payload octets sent since starting.
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost; a signed 24-bit field on the wire (clamped).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from that source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

const CUMULATIVE_LOST_MAX: i32 = 0x7F_FFFF;
const CUMULATIVE_LOST_MIN: i32 = -0x80_0000;

impl ReportBlock {
    fn parse(b: &[u8; REPORT_BLOCK_LEN]) -> Self {
        let [s0, s1, s2, s3, fraction_lost, l0, l1, l2, h0, h1, h2, h3, j0, j1, j2, j3, r0, r1, r2, r3, d0, d1, d2, d3] =
            *b;
        // Sign-extend the 24-bit field.
        let cumulative_lost = i32::from_be_bytes([l0, l1, l2, 0]) >> 8;
        Self {
            ssrc: u32::from_be_bytes([s0, s1, s2, s3]),
            fraction_lost,
            cumulative_lost,
            highest_seq: u32::from_be_bytes([h0, h1, h2, h3]),
            jitter: u32::from_be_bytes([j0, j1, j2, j3]),
            last_sr: u32::from_be_bytes([r0, r1, r2, r3]),
            delay_since_last_sr: u32::from_be_bytes([d0, d1, d2, d3]),
        }
    }

    fn write(&self, out: &mut [u8; REPORT_BLOCK_LEN]) {
        let lost = self
            .cumulative_lost
            .clamp(CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX) as u32
            & 0x00FF_FFFF;
        let words = [
            self.ssrc,
            (u32::from(self.fraction_lost) << 24) | lost,
            self.highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ];
        for (dst, w) in out.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_be_bytes());
        }
    }
}

/// The report blocks of an SR or RR, parsed on iteration.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let chunk = self.0.next()?;
        chunk.first_chunk().map(ReportBlock::parse)
    }
}

/// A list of SSRCs (the sources of a BYE).
#[derive(Debug, Clone)]
pub struct SsrcList<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for SsrcList<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        let chunk = self.0.next()?;
        chunk.first_chunk().map(|b| u32::from_be_bytes(*b))
    }
}

/// One SDES chunk: a source and its CNAME, if it carried one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    /// The CNAME item's text.
    pub cname: Option<&'a [u8]>,
}

/// The chunks of an SDES packet (already validated when the packet was
/// parsed).
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;
    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (chunk, rest) = split_sdes_chunk(self.body).ok()?;
        self.body = rest;
        Some(chunk)
    }
}

/// Splits the first SDES chunk off `body`: the chunk and what follows it.
fn split_sdes_chunk(body: &[u8]) -> Result<(SdesChunk<'_>, &[u8]), RtcpError> {
    let ssrc = body
        .first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
        .ok_or(RtcpError::BadSdes)?;
    let mut pos = 4usize;
    let mut cname = None;
    loop {
        let item_type = *body.get(pos).ok_or(RtcpError::BadSdes)?;
        if item_type == 0 {
            // The null item ends the list; the chunk is padded to 32 bits.
            let end = (pos + 4) & !3;
            let rest = body.get(end..).ok_or(RtcpError::BadSdes)?;
            return Ok((SdesChunk { ssrc, cname }, rest));
        }
        let len = usize::from(*body.get(pos + 1).ok_or(RtcpError::BadSdes)?);
        let text = body.get(pos + 2..pos + 2 + len).ok_or(RtcpError::BadSdes)?;
        if item_type == SDES_CNAME && cname.is_none() {
            cname = Some(text);
        }
        pos += 2 + len;
    }
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone)]
pub enum RtcpPacket<'a> {
    /// SR: a sender's report, with reception reports on the sources it hears.
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// What it sent.
        info: SenderInfo,
        /// Reception reports.
        blocks: ReportBlocks<'a>,
    },
    /// RR: reception reports from a participant that is not sending.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// Reception reports.
        blocks: ReportBlocks<'a>,
    },
    /// SDES: source descriptions.
    SourceDescription(SdesChunks<'a>),
    /// BYE: these sources are leaving.
    Goodbye {
        /// The sources leaving.
        sources: SsrcList<'a>,
        /// Why, if given.
        reason: Option<&'a [u8]>,
    },
    /// Any other packet type, body unparsed (padding removed).
    Other {
        /// The packet type.
        packet_type: u8,
        /// The 5-bit count/format field.
        count: u8,
        /// The bytes after the 4-byte header.
        body: &'a [u8],
    },
}

/// Walks the packets of a compound RTCP datagram. Yields `Err` once and then
/// stops at the first malformed packet (RFC 3550 A.2: the rest of a compound
/// packet cannot be trusted once a length is wrong).
pub fn packets(datagram: &[u8]) -> Packets<'_> {
    Packets {
        rest: datagram,
        failed: false,
    }
}

/// Iterator returned by [`packets`].
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match parse_one(self.rest) {
            Ok((packet, rest)) => {
                self.rest = rest;
                Some(Ok(packet))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn parse_one(data: &[u8]) -> Result<(RtcpPacket<'_>, &[u8]), RtcpError> {
    let [b0, packet_type, l0, l1] = *data
        .first_chunk::<HEADER_LEN>()
        .ok_or(RtcpError::Truncated)?;
    if b0 >> 6 != 2 {
        return Err(RtcpError::BadVersion);
    }
    let padded = b0 & 0x20 != 0;
    let count = b0 & 0x1F;
    let total = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
    let packet = data.get(..total).ok_or(RtcpError::Truncated)?;
    let rest = data.get(total..).ok_or(RtcpError::Truncated)?;
    let mut body = packet.get(HEADER_LEN..).ok_or(RtcpError::Truncated)?;
    if padded {
        let pad = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
        if pad == 0 || pad > body.len() {
            return Err(RtcpError::BadPadding);
        }
        body = body.get(..body.len() - pad).ok_or(RtcpError::BadPadding)?;
    }
    let count_usize = usize::from(count);
    let packet = match packet_type {
        PT_SR | PT_RR => {
            let fixed = if packet_type == PT_SR {
                4 + SENDER_INFO_LEN
            } else {
                4
            };
            let blocks_len = count_usize * REPORT_BLOCK_LEN;
            let blocks = body
                .get(fixed..fixed + blocks_len)
                .ok_or(RtcpError::CountOverrun)?;
            let word = |i: usize| -> Result<u32, RtcpError> {
                body.get(i..i + 4)
                    .and_then(|b| b.first_chunk::<4>())
                    .map(|b| u32::from_be_bytes(*b))
                    .ok_or(RtcpError::Truncated)
            };
            let ssrc = word(0)?;
            let blocks = ReportBlocks(blocks.chunks_exact(REPORT_BLOCK_LEN));
            if packet_type == PT_SR {
                let info = SenderInfo {
                    ntp: (u64::from(word(4)?) << 32) | u64::from(word(8)?),
                    rtp_timestamp: word(12)?,
                    packet_count: word(16)?,
                    octet_count: word(20)?,
                };
                RtcpPacket::SenderReport { ssrc, info, blocks }
            } else {
                RtcpPacket::ReceiverReport { ssrc, blocks }
            }
        }
        PT_SDES => {
            let mut walk = body;
            for _ in 0..count {
                walk = split_sdes_chunk(walk)?.1;
            }
            RtcpPacket::SourceDescription(SdesChunks {
                body,
                remaining: count_usize,
            })
        }
        PT_BYE => {
            let list_len = count_usize * 4;
            let list = body.get(..list_len).ok_or(RtcpError::CountOverrun)?;
            let reason = match body.get(list_len) {
                None => None,
                Some(&len) => Some(
                    body.get(list_len + 1..list_len + 1 + usize::from(len))
                        .ok_or(RtcpError::Truncated)?,
                ),
            };
            RtcpPacket::Goodbye {
                sources: SsrcList(list.chunks_exact(4)),
                reason,
            }
        }
        _ => RtcpPacket::Other {
            packet_type,
            count,
            body,
        },
    };
    Ok((packet, rest))
}

/// The middle 32 bits of a 64-bit NTP timestamp, as carried in LSR.
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

mod write;
pub use write::{write_bye, write_receiver_report, write_sdes_cname, write_sender_report};

#[cfg(test)]
mod tests;
