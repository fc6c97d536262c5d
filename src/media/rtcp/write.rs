//! Building RTCP packets into a caller's buffer (RFC 3550 §6.4–6.6): each
//! writer checks the buffer and the count/length limits and returns the
//! packet's length, or an error and nothing half-written that matters.

use super::{
    ReportBlock, RtcpError, SenderInfo, HEADER_LEN, MAX_COUNT, PT_BYE, PT_RR, PT_SDES, PT_SR,
    REPORT_BLOCK_LEN, SDES_CNAME, SENDER_INFO_LEN,
};

/// Writes the common header for a packet of `total` bytes (a multiple of 4).
fn write_header(
    out: &mut [u8],
    count: usize,
    packet_type: u8,
    total: usize,
) -> Result<(), RtcpError> {
    let words = u16::try_from(total / 4 - 1).map_err(|_| RtcpError::TooMany)?;
    let count = u8::try_from(count).map_err(|_| RtcpError::TooMany)?;
    let [l0, l1] = words.to_be_bytes();
    let dst = out
        .first_chunk_mut::<HEADER_LEN>()
        .ok_or(RtcpError::BufferTooSmall)?;
    *dst = [0x80 | (count & 0x1F), packet_type, l0, l1];
    Ok(())
}

fn put_u32(out: &mut [u8], at: usize, v: u32) -> Result<(), RtcpError> {
    out.get_mut(at..at + 4)
        .ok_or(RtcpError::BufferTooSmall)?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

fn write_blocks(out: &mut [u8], at: usize, blocks: &[ReportBlock]) -> Result<(), RtcpError> {
    let dst = out
        .get_mut(at..at + blocks.len() * REPORT_BLOCK_LEN)
        .ok_or(RtcpError::BufferTooSmall)?;
    for (chunk, block) in dst.chunks_exact_mut(REPORT_BLOCK_LEN).zip(blocks) {
        if let Some(c) = chunk.first_chunk_mut() {
            block.write(c);
        }
    }
    Ok(())
}

/// Writes an SR into `out`; returns its length.
pub fn write_sender_report(
    out: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_COUNT {
        return Err(RtcpError::TooMany);
    }
    let total = HEADER_LEN + 4 + SENDER_INFO_LEN + blocks.len() * REPORT_BLOCK_LEN;
    if out.len() < total {
        return Err(RtcpError::BufferTooSmall);
    }
    write_header(out, blocks.len(), PT_SR, total)?;
    put_u32(out, 4, ssrc)?;
    put_u32(out, 8, (info.ntp >> 32) as u32)?;
    put_u32(out, 12, info.ntp as u32)?;
    put_u32(out, 16, info.rtp_timestamp)?;
    put_u32(out, 20, info.packet_count)?;
    put_u32(out, 24, info.octet_count)?;
    write_blocks(out, 28, blocks)?;
    Ok(total)
}

/// Writes an RR into `out`; returns its length.
pub fn write_receiver_report(
    out: &mut [u8],
    ssrc: u32,
    blocks: &[ReportBlock],
) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_COUNT {
        return Err(RtcpError::TooMany);
    }
    let total = HEADER_LEN + 4 + blocks.len() * REPORT_BLOCK_LEN;
    if out.len() < total {
        return Err(RtcpError::BufferTooSmall);
    }
    write_header(out, blocks.len(), PT_RR, total)?;
    put_u32(out, 4, ssrc)?;
    write_blocks(out, 8, blocks)?;
    Ok(total)
}

/// Writes an SDES packet with one chunk carrying a CNAME; returns its length.
pub fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, RtcpError> {
    let len = u8::try_from(cname.len()).map_err(|_| RtcpError::TooMany)?;
    // ssrc + type + len + text + at least one null octet, padded to 32 bits.
    let chunk = (4 + 2 + cname.len() + 1 + 3) & !3;
    let total = HEADER_LEN + chunk;
    let dst = out.get_mut(..total).ok_or(RtcpError::BufferTooSmall)?;
    dst.fill(0);
    write_header(dst, 1, PT_SDES, total)?;
    put_u32(dst, 4, ssrc)?;
    let item = dst
        .get_mut(8..10 + cname.len())
        .ok_or(RtcpError::BufferTooSmall)?;
    if let Some((head, text)) = item.split_first_chunk_mut::<2>() {
        *head = [SDES_CNAME, len];
        text.copy_from_slice(cname);
    }
    Ok(total)
}

/// Writes a BYE for `sources` with an optional reason; returns its length.
pub fn write_bye(
    out: &mut [u8],
    sources: &[u32],
    reason: Option<&[u8]>,
) -> Result<usize, RtcpError> {
    if sources.len() > MAX_COUNT {
        return Err(RtcpError::TooMany);
    }
    let reason_len = match reason {
        Some(r) => 1 + usize::from(u8::try_from(r.len()).map_err(|_| RtcpError::TooMany)?),
        None => 0,
    };
    let total = (HEADER_LEN + sources.len() * 4 + reason_len + 3) & !3;
    let dst = out.get_mut(..total).ok_or(RtcpError::BufferTooSmall)?;
    dst.fill(0);
    write_header(dst, sources.len(), PT_BYE, total)?;
    for (i, s) in sources.iter().enumerate() {
        put_u32(dst, HEADER_LEN + i * 4, *s)?;
    }
    if let Some(r) = reason {
        let at = HEADER_LEN + sources.len() * 4;
        let field = dst
            .get_mut(at..at + 1 + r.len())
            .ok_or(RtcpError::BufferTooSmall)?;
        if let Some((len, text)) = field.split_first_mut() {
            *len = r.len() as u8;
            text.copy_from_slice(r);
        }
    }
    Ok(total)
}
