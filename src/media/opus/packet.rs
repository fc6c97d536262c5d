//! Reading an Opus packet's framing (RFC 6716 §3.1) without decoding it:
//! its mode, frame duration and whether it carries in-band FEC.
//!
//! libopus 1.3 (Debian's) has no `opus_packet_has_lbrr`, and its packet
//! parser is only reachable through `unsafe` FFI, which this crate forbids;
//! the few bits needed are read here in safe Rust, every access checked.

/// The coding mode of a packet (RFC 6716 §3.1, Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Linear-prediction layer only (speech, up to wideband).
    Silk,
    /// SILK below 8 kHz plus CELT above.
    Hybrid,
    /// MDCT layer only (music, or very low delay).
    Celt,
}

/// What the TOC byte says about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toc {
    /// The coding mode.
    pub mode: Mode,
    /// Duration of each frame in the packet, in 48 kHz samples.
    pub frame_samples_48k: usize,
    /// Whether the frames are coded in stereo.
    pub stereo: bool,
    /// Frame-count code `c` (0: one frame, 1: two equal, 2: two sized, 3: M).
    pub code: u8,
}

/// Parses the TOC byte of `payload`, or `None` for an empty payload.
pub fn toc(payload: &[u8]) -> Option<Toc> {
    let &b = payload.first()?;
    let config = b >> 3;
    let (mode, frame_samples_48k) = match config {
        0..=11 => (Mode::Silk, [480, 960, 1920, 2880][usize::from(config % 4)]),
        12..=15 => (Mode::Hybrid, [480, 960][usize::from(config % 2)]),
        _ => (Mode::Celt, [120, 240, 480, 960][usize::from(config % 4)]),
    };
    Some(Toc {
        mode,
        frame_samples_48k,
        stereo: b & 0x04 != 0,
        code: b & 0x03,
    })
}

/// The bytes of the first frame of `payload`, or `None` if its framing is
/// malformed. An empty frame (a DTX or lost-frame marker) is `Some(&[])`.
pub fn first_frame(payload: &[u8]) -> Option<&[u8]> {
    let t = toc(payload)?;
    let rest = payload.get(1..)?;
    match t.code {
        0 => Some(rest),
        1 => {
            if rest.len() % 2 != 0 {
                return None;
            }
            rest.get(..rest.len() / 2)
        }
        2 => {
            let (len, used) = frame_length(rest)?;
            rest.get(used..used.checked_add(len)?)
        }
        _ => first_frame_code3(rest),
    }
}

/// A frame length coded in one or two bytes (RFC 6716 §3.2.1).
fn frame_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let &first = bytes.first()?;
    if first < 252 {
        return Some((usize::from(first), 1));
    }
    let &second = bytes.get(1)?;
    Some((usize::from(second) * 4 + usize::from(first), 2))
}

/// The first frame of a code-3 packet (RFC 6716 §3.2.5): count byte,
/// optional padding length, then either per-frame lengths (VBR) or equal
/// frames (CBR).
fn first_frame_code3(rest: &[u8]) -> Option<&[u8]> {
    let &count_byte = rest.first()?;
    let vbr = count_byte & 0x80 != 0;
    let padded = count_byte & 0x40 != 0;
    let count = usize::from(count_byte & 0x3F);
    if count == 0 {
        return None;
    }
    let mut pos = 1usize;
    let mut padding = 0usize;
    if padded {
        loop {
            let &p = rest.get(pos)?;
            pos += 1;
            // 255 means 254 bytes of padding and another length byte.
            if p == 255 {
                padding = padding.checked_add(254)?;
            } else {
                padding = padding.checked_add(usize::from(p))?;
                break;
            }
        }
    }
    let data_end = rest.len().checked_sub(padding)?;
    if vbr {
        let (len, used) = frame_length(rest.get(pos..)?)?;
        // The remaining M-2 lengths follow; skip them to find the data.
        let mut start = pos.checked_add(used)?;
        for _ in 2..count {
            let (_, used) = frame_length(rest.get(start..)?)?;
            start = start.checked_add(used)?;
        }
        if count == 1 {
            // A single VBR frame has no explicit length: it is the rest.
            return rest.get(pos..data_end);
        }
        rest.get(start..start.checked_add(len)?.min(data_end))
            .filter(|f| f.len() == len)
    } else {
        let body = data_end.checked_sub(pos)?;
        if body % count != 0 {
            return None;
        }
        rest.get(pos..pos + body / count)
    }
}

/// Whether `payload` carries LBRR (in-band FEC) data for the packet before
/// it, so [`super::OpusDecoder::decode_fec`] can rebuild that packet.
///
/// In SILK and hybrid packets the first coded symbols of the first frame are
/// a voice-activity flag per 20 ms SILK frame and then the LBRR flag, each
/// coded at probability ½ (RFC 6716 §4.2.3), so the range coder places them
/// in the top bits of the frame's first byte, in that order; a stereo
/// packet repeats them for the side channel. CELT packets never carry LBRR.
pub fn has_fec(payload: &[u8]) -> bool {
    let Some(t) = toc(payload) else {
        return false;
    };
    if t.mode == Mode::Celt {
        return false;
    }
    let Some(&first) = first_frame(payload).and_then(|f| f.first()) else {
        return false;
    };
    // 10 and 20 ms Opus frames hold one SILK frame; 40 and 60 ms hold 2 or 3.
    let silk_frames = (t.frame_samples_48k / 960).max(1) as u32;
    let mid_lbrr = (first >> (7 - silk_frames)) & 1 == 1;
    let side_lbrr = t.stereo && (first >> (6 - 2 * silk_frames)) & 1 == 1;
    mid_lbrr || side_lbrr
}

/// Packs one-frame (code 0) packets of one configuration into a single
/// code 3 VBR packet (RFC 6716 §3.2.5), into `out`; returns its length.
/// `None` when there are no frames or more than 48, when one is not a code 0
/// packet or differs in TOC configuration (the frames of one packet share
/// it), when the packet would exceed 120 ms, or when `out` is too small.
/// How rivr sends 40 and 60 ms Opus packets from its 20 ms frames without
/// re-encoding; nothing is allocated.
pub fn pack_code3(packets: &[&[u8]], out: &mut [u8]) -> Option<usize> {
    let first = *packets.first()?;
    let config = first.first()? & 0xFC;
    let t = toc(first)?;
    let count = u8::try_from(packets.len()).ok().filter(|&c| c <= 48)?;
    if t.frame_samples_48k.checked_mul(packets.len())? > super::MAX_PACKET_SAMPLES_48K {
        return None;
    }
    let mut at = 0usize;
    let mut put = |bytes: &[u8], at: &mut usize| -> Option<()> {
        let end = at.checked_add(bytes.len())?;
        out.get_mut(*at..end)?.copy_from_slice(bytes);
        *at = end;
        Some(())
    };
    put(&[config | 3, 0x80 | count], &mut at)?;
    let (last, sized) = packets.split_last()?;
    for p in sized.iter().chain(std::iter::once(last)) {
        if p.first().map(|b| b & 0xFC) != Some(config) || toc(p)?.code != 0 || p.len() > 1276 {
            return None;
        }
    }
    for p in sized {
        let len = p.len() - 1;
        if len < 252 {
            put(&[len as u8], &mut at)?;
        } else {
            let b0 = 252 + (len - 252) % 4;
            put(&[b0 as u8, ((len - b0) / 4) as u8], &mut at)?;
        }
    }
    for p in packets {
        put(p.get(1..)?, &mut at)?;
    }
    Some(at)
}

/// Whether `payload` is a DTX silence frame (RFC 7587 §3.3: 2 bytes or
/// fewer), which a sender may leave out and a receiver must not count as loss.
pub fn is_dtx(payload: &[u8]) -> bool {
    payload.len() <= 2
}

/// Samples at `sample_rate_hz` that `payload` decodes to, if its framing is
/// valid and it lasts at most 120 ms.
pub fn duration_samples(payload: &[u8], sample_rate_hz: u32) -> Option<usize> {
    let t = toc(payload)?;
    let frames = match t.code {
        0 => 1,
        1 | 2 => 2,
        _ => usize::from(payload.get(1)? & 0x3F),
    };
    let total_48k = t.frame_samples_48k.checked_mul(frames)?;
    if frames == 0 || total_48k > super::MAX_PACKET_SAMPLES_48K {
        return None;
    }
    Some(total_48k * sample_rate_hz as usize / 48_000)
}
