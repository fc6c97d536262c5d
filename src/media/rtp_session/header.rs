//! The RTP fixed header (RFC 3550 §5.1): parse from a datagram slice and write
//! into a caller's buffer, with no allocation.
//!
//! Parsed by hand rather than with the `rtp` crate (0.17), checked: its
//! `Header::unmarshal` does not allocate for a plain 12-byte header, but
//! builds a `Vec` for a CSRC list and copies every header extension into a
//! `Bytes` (an allocation per packet as soon as a peer sends CSRCs or
//! extensions, which WebRTC gateways and some SBCs do on every packet), and
//! `Packet::unmarshal` always copies the payload into a new `Bytes`. We need
//! five fields and the payload's bounds. Written by hand too: `Header::
//! marshal_to` would not allocate, but a 12-byte header does not justify
//! building a `Header` with two `Vec`s, and one file then holds the bit
//! layout both ways. The `rtp` crate stays as the independent reference our
//! tests check this parser and writer against.

use thiserror::Error;

/// Bytes in the fixed header.
pub const FIXED_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Shorter than the 12-byte fixed header.
    #[error("shorter than an RTP header")]
    TooShort,
    /// Version is not 2.
    #[error("RTP version is not 2")]
    BadVersion,
    /// The CSRC count runs past the datagram.
    #[error("CSRC list overruns the packet")]
    CsrcOverrun,
    /// The header extension runs past the datagram.
    #[error("header extension overruns the packet")]
    ExtensionOverrun,
    /// The padding count is zero or larger than the payload.
    #[error("invalid RTP padding")]
    BadPadding,
}

/// The fields of an RTP header rivr uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// M bit.
    pub marker: bool,
    /// 7-bit payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// Does this datagram look like RTCP rather than RTP (RFC 5761 §4: the second
/// byte of an RTCP packet is its type, 192–223)?
pub fn looks_like_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223))
}

/// Parses the header; returns it and the payload (CSRCs, extension and
/// padding removed).
pub fn parse(datagram: &[u8]) -> Result<(RtpHeader, &[u8]), HeaderError> {
    let fixed = datagram
        .first_chunk::<FIXED_LEN>()
        .ok_or(HeaderError::TooShort)?;
    let [b0, b1, s0, s1, t0, t1, t2, t3, i0, i1, i2, i3] = *fixed;
    if b0 >> 6 != 2 {
        return Err(HeaderError::BadVersion);
    }
    let padding = b0 & 0x20 != 0;
    let extension = b0 & 0x10 != 0;
    let csrc_count = usize::from(b0 & 0x0F);

    let mut offset = FIXED_LEN + csrc_count * 4;
    if datagram.len() < offset {
        return Err(HeaderError::CsrcOverrun);
    }
    if extension {
        let ext = datagram
            .get(offset..offset + 4)
            .ok_or(HeaderError::ExtensionOverrun)?;
        let words = match ext {
            [_, _, w0, w1] => usize::from(u16::from_be_bytes([*w0, *w1])),
            _ => return Err(HeaderError::ExtensionOverrun),
        };
        offset += 4 + words * 4;
        if datagram.len() < offset {
            return Err(HeaderError::ExtensionOverrun);
        }
    }
    let mut payload = datagram.get(offset..).ok_or(HeaderError::TooShort)?;
    if padding {
        let pad = usize::from(*payload.last().ok_or(HeaderError::BadPadding)?);
        if pad == 0 || pad > payload.len() {
            return Err(HeaderError::BadPadding);
        }
        payload = payload
            .get(..payload.len() - pad)
            .ok_or(HeaderError::BadPadding)?;
    }
    let header = RtpHeader {
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7F,
        seq: u16::from_be_bytes([s0, s1]),
        timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
        ssrc: u32::from_be_bytes([i0, i1, i2, i3]),
    };
    Ok((header, payload))
}

/// Writes a header (no CSRC, no extension, no padding) and `payload` into
/// `out`; `None` if `out` is too small.
pub fn write(out: &mut [u8], h: &RtpHeader, payload: &[u8]) -> Option<usize> {
    let total = FIXED_LEN.checked_add(payload.len())?;
    let dst = out.get_mut(..total)?;
    let (fixed, body) = dst.split_first_chunk_mut::<FIXED_LEN>()?;
    let [s0, s1] = h.seq.to_be_bytes();
    let [t0, t1, t2, t3] = h.timestamp.to_be_bytes();
    let [i0, i1, i2, i3] = h.ssrc.to_be_bytes();
    let b1 = (h.payload_type & 0x7F) | if h.marker { 0x80 } else { 0 };
    *fixed = [0x80, b1, s0, s1, t0, t1, t2, t3, i0, i1, i2, i3];
    body.copy_from_slice(payload);
    Some(total)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use rtp::header::Header;
    use rtp::packet::Packet;
    use webrtc_util::marshal::{Marshal, Unmarshal};

    use super::*;

    #[test]
    fn rfc3550_fixed_header_layout() {
        let h = RtpHeader {
            marker: true,
            payload_type: 8,
            seq: 0x1234,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
        };
        let mut out = [0u8; 16];
        assert_eq!(write(&mut out, &h, &[0xAA, 0xBB]), Some(14));
        assert_eq!(
            out[..14],
            [0x80, 0x88, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 0xAA, 0xBB]
        );
        assert_eq!(parse(&out[..14]), Ok((h, &[0xAA, 0xBB][..])));
        assert_eq!(write(&mut out[..13], &h, &[1, 2]), None);
    }

    /// The packet pion/rtp and webrtc-rs/rtp use as their reference vector
    /// (RFC 3550 extension, profile 1, one word), and its RFC 8285 one-byte
    /// variant from the webrtc-rs benches.
    #[test]
    fn reference_vectors_from_other_stacks() {
        let raw = [
            0x90, 0xe0, 0x69, 0x8f, 0xd9, 0xc2, 0x93, 0xda, 0x1c, 0x64, 0x27, 0x82, 0x00, 0x01,
            0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x98, 0x36, 0xbe, 0x88, 0x9e,
        ];
        let want = RtpHeader {
            marker: true,
            payload_type: 96,
            seq: 27023,
            timestamp: 3_653_407_706,
            ssrc: 476_325_762,
        };
        assert_eq!(parse(&raw), Ok((want, &[0x98, 0x36, 0xbe, 0x88, 0x9e][..])));
        let mut one_byte = raw;
        one_byte[12..20].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x20, 0xBB]);
        assert_eq!(
            parse(&one_byte),
            Ok((want, &[0x98, 0x36, 0xbe, 0x88, 0x9e][..]))
        );
        // One byte short of the extension word.
        assert_eq!(parse(&raw[..19]), Err(HeaderError::ExtensionOverrun));
    }

    #[test]
    fn written_packets_are_what_the_rtp_crate_reads() {
        let h = RtpHeader {
            marker: false,
            payload_type: 101,
            seq: 65535,
            timestamp: 7,
            ssrc: 99,
        };
        let mut out = [0u8; 64];
        let n = write(&mut out, &h, b"hello").unwrap();
        let p = Packet::unmarshal(&mut &out[..n]).unwrap();
        assert_eq!(p.header.version, 2);
        assert_eq!(p.header.payload_type, 101);
        assert_eq!(p.header.sequence_number, 65535);
        assert_eq!(p.header.timestamp, 7);
        assert_eq!(p.header.ssrc, 99);
        assert!(!p.header.marker);
        assert_eq!(&p.payload[..], b"hello");
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let header = Header {
            version: 2,
            padding: false,
            marker: true,
            payload_type: 0,
            sequence_number: 10,
            timestamp: 20,
            ssrc: 30,
            csrc: vec![1, 2],
            extension: true,
            extension_profile: 0x1000,
            extensions: vec![rtp::header::Extension {
                id: 0,
                payload: Bytes::from_static(&[9, 9, 9, 9, 9, 9, 9, 9]),
            }],
            ..Default::default()
        };
        let mut raw = header.marshal().unwrap().to_vec();
        raw.extend_from_slice(&[5, 6, 7, 0, 0, 3]); // payload 5 6 7 + 3 bytes padding
        raw[0] |= 0x20;
        let (h, payload) = parse(&raw).unwrap();
        assert_eq!((h.marker, h.seq, h.timestamp, h.ssrc), (true, 10, 20, 30));
        assert_eq!(payload, &[5, 6, 7]);
    }

    #[test]
    fn malformed_headers() {
        let ok = [0x80u8, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(parse(&ok[..11]), Err(HeaderError::TooShort));
        let mut v1 = ok;
        v1[0] = 0x40;
        assert_eq!(parse(&v1), Err(HeaderError::BadVersion));
        let mut cc = ok;
        cc[0] = 0x81;
        assert_eq!(parse(&cc), Err(HeaderError::CsrcOverrun));
        let mut x = ok.to_vec();
        x[0] = 0x90;
        x.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0, 0, 0, 0]);
        assert_eq!(parse(&x), Err(HeaderError::ExtensionOverrun));
        let mut p = ok.to_vec();
        p[0] = 0xA0;
        assert_eq!(parse(&p), Err(HeaderError::BadPadding));
        p.push(0);
        assert_eq!(parse(&p), Err(HeaderError::BadPadding));
        *p.last_mut().unwrap() = 2;
        assert_eq!(parse(&p), Err(HeaderError::BadPadding));
        *p.last_mut().unwrap() = 1;
        assert_eq!(parse(&p).map(|(_, b)| b.len()), Ok(0));
    }

    #[test]
    fn rtcp_detection() {
        assert!(looks_like_rtcp(&[0x81, 200, 0, 6]));
        assert!(looks_like_rtcp(&[0x81, 201]));
        assert!(!looks_like_rtcp(&[0x80, 0x00]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 101]));
        assert!(!looks_like_rtcp(&[0x80]));
    }

    proptest! {
        /// Our parser agrees with the `rtp` crate on every input both accept,
        /// and never panics.
        #[test]
        fn agrees_with_rtp_crate(mut bytes in prop::collection::vec(any::<u8>(), 0..80), v2 in any::<bool>()) {
            if v2 {
                if let Some(b) = bytes.first_mut() { *b = (*b & 0x3F) | 0x80; }
            }
            let ours = parse(&bytes);
            let theirs = Packet::unmarshal(&mut &bytes[..]);
            if let (Ok((h, payload)), Ok(p)) = (ours, theirs) {
                prop_assert_eq!(h.seq, p.header.sequence_number);
                prop_assert_eq!(h.timestamp, p.header.timestamp);
                prop_assert_eq!(h.ssrc, p.header.ssrc);
                prop_assert_eq!(h.payload_type, p.header.payload_type);
                prop_assert_eq!(h.marker, p.header.marker);
                prop_assert_eq!(payload, &p.payload[..]);
            }
        }
    }
}
