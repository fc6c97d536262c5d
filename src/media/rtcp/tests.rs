use proptest::prelude::*;

use super::*;

/// A compound RTCP datagram from a browser's packet dump (RR, SDES CNAME,
/// BYE, then two feedback packets), as published in webrtc-rs/rtcp's
/// `compound_packet_test.rs`.
const CAPTURED: [u8; 116] = [
    0x81, 0xc9, 0x00, 0x07, 0x90, 0x2f, 0x9e, 0x2e, 0xbc, 0x5e, 0x9a, 0x40, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x46, 0xe1, 0x00, 0x00, 0x01, 0x11, 0x09, 0xf3, 0x64, 0x32, 0x00, 0x02, 0x4a, 0x79,
    0x81, 0xca, 0x00, 0x0c, 0x90, 0x2f, 0x9e, 0x2e, 0x01, 0x26, 0x7b, 0x39, 0x63, 0x30, 0x30, 0x65,
    0x62, 0x39, 0x32, 0x2d, 0x31, 0x61, 0x66, 0x62, 0x2d, 0x39, 0x64, 0x34, 0x39, 0x2d, 0x61, 0x34,
    0x37, 0x64, 0x2d, 0x39, 0x31, 0x66, 0x36, 0x34, 0x65, 0x65, 0x65, 0x36, 0x39, 0x66, 0x35, 0x7d,
    0x00, 0x00, 0x00, 0x00, 0x81, 0xcb, 0x00, 0x01, 0x90, 0x2f, 0x9e, 0x2e, 0x81, 0xce, 0x00, 0x02,
    0x90, 0x2f, 0x9e, 0x2e, 0x90, 0x2f, 0x9e, 0x2e, 0x85, 0xcd, 0x00, 0x02, 0x90, 0x2f, 0x9e, 0x2e,
    0x90, 0x2f, 0x9e, 0x2e,
];

#[test]
fn parses_captured_compound_packet() {
    let all: Vec<_> = packets(&CAPTURED).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 5);
    let RtcpPacket::ReceiverReport { ssrc, blocks } = all[0].clone() else {
        panic!("first is not an RR: {:?}", all[0]);
    };
    assert_eq!(ssrc, 0x902f_9e2e);
    let blocks: Vec<_> = blocks.collect();
    assert_eq!(
        blocks,
        vec![ReportBlock {
            ssrc: 0xbc5e_9a40,
            fraction_lost: 0,
            cumulative_lost: 0,
            highest_seq: 0x46e1,
            jitter: 273,
            last_sr: 0x09f3_6432,
            delay_since_last_sr: 150_137,
        }]
    );
    let RtcpPacket::SourceDescription(chunks) = all[1].clone() else {
        panic!("second is not SDES");
    };
    let chunks: Vec<_> = chunks.collect();
    assert_eq!(
        chunks,
        vec![SdesChunk {
            ssrc: 0x902f_9e2e,
            cname: Some(&b"{9c00eb92-1afb-9d49-a47d-91f64eee69f5}"[..]),
        }]
    );
    let RtcpPacket::Goodbye { sources, reason } = all[2].clone() else {
        panic!("third is not BYE");
    };
    assert_eq!(sources.collect::<Vec<_>>(), vec![0x902f_9e2e]);
    assert_eq!(reason, None);
    assert!(matches!(
        all[3],
        RtcpPacket::Other {
            packet_type: 206,
            count: 1,
            ..
        }
    ));
    assert!(matches!(
        all[4],
        RtcpPacket::Other {
            packet_type: 205,
            count: 5,
            ..
        }
    ));
}

#[test]
fn every_truncation_of_the_capture_is_an_error_not_a_panic() {
    for cut in 1..CAPTURED.len() {
        let results: Vec<_> = packets(&CAPTURED[..cut]).collect();
        let boundary = [32, 84, 92, 104].contains(&cut);
        assert_eq!(
            results.last().map(|r| r.is_err()),
            Some(!boundary),
            "cut at {cut}"
        );
    }
}

/// RFC 3550 §6.4.1 SR layout, field by field.
#[test]
fn sender_report_layout() {
    let block = ReportBlock {
        ssrc: 0x0102_0304,
        fraction_lost: 0x40,
        cumulative_lost: -2,
        highest_seq: 0x0001_0005,
        jitter: 0x11,
        last_sr: 0xAABB_CCDD,
        delay_since_last_sr: 0x0001_8000,
    };
    let info = SenderInfo {
        ntp: 0xE0E0_E0E0_1234_5678,
        rtp_timestamp: 0xCAFE_BABE,
        packet_count: 7,
        octet_count: 1120,
    };
    let mut out = [0u8; 64];
    let n = write_sender_report(&mut out, 0xDEAD_BEEF, &info, &[block]).unwrap();
    #[rustfmt::skip]
    let expected: [u8; 52] = [
        0x81, 200, 0x00, 12,            // V=2 P=0 RC=1, PT=SR, length 12 words
        0xDE, 0xAD, 0xBE, 0xEF,         // SSRC of sender
        0xE0, 0xE0, 0xE0, 0xE0,         // NTP msw
        0x12, 0x34, 0x56, 0x78,         // NTP lsw
        0xCA, 0xFE, 0xBA, 0xBE,         // RTP timestamp
        0, 0, 0, 7,                     // packet count
        0, 0, 0x04, 0x60,               // octet count
        0x01, 0x02, 0x03, 0x04,         // SSRC_1
        0x40, 0xFF, 0xFF, 0xFE,         // fraction 1/4, cumulative -2 (24-bit)
        0x00, 0x01, 0x00, 0x05,         // extended highest seq
        0, 0, 0, 0x11,                  // jitter
        0xAA, 0xBB, 0xCC, 0xDD,         // LSR
        0x00, 0x01, 0x80, 0x00,         // DLSR 1.5 s
    ];
    assert_eq!(&out[..n], &expected[..]);
    let parsed: Vec<_> = packets(&out[..n]).collect();
    let [Ok(RtcpPacket::SenderReport {
        ssrc,
        info: got,
        blocks,
    })] = parsed.as_slice()
    else {
        panic!("{parsed:?}");
    };
    assert_eq!((*ssrc, *got), (0xDEAD_BEEF, info));
    assert_eq!(blocks.clone().collect::<Vec<_>>(), vec![block]);
    assert_eq!(ntp_middle(info.ntp), 0xE0E0_1234);
}

#[test]
fn cumulative_lost_is_clamped_to_24_bits() {
    let mut out = [0u8; 32];
    for (lost, wire) in [
        (i32::MAX, 0x7F_FFFF),
        (i32::MIN, 0x80_0000),
        (5, 5),
        (-1, 0xFF_FFFF),
    ] {
        let b = ReportBlock {
            cumulative_lost: lost,
            ..Default::default()
        };
        let n = write_receiver_report(&mut out, 1, &[b]).unwrap();
        assert_eq!(n, 32);
        assert_eq!(&out[13..16], &(wire as u32).to_be_bytes()[1..]);
        let Some(Ok(RtcpPacket::ReceiverReport { mut blocks, .. })) = packets(&out[..n]).next()
        else {
            panic!();
        };
        assert_eq!(
            blocks.next().unwrap().cumulative_lost,
            lost.clamp(-0x80_0000, 0x7F_FFFF)
        );
    }
}

#[test]
fn sdes_and_bye_layouts() {
    let mut out = [0u8; 64];
    // "ab": 4 ssrc + 1 type + 1 len + 2 text + null, padded to 12.
    let n = write_sdes_cname(&mut out, 0x0A0B_0C0D, b"ab").unwrap();
    assert_eq!(
        &out[..n],
        &[0x81, 202, 0, 3, 0x0A, 0x0B, 0x0C, 0x0D, 1, 2, b'a', b'b', 0, 0, 0, 0]
    );
    // "abcdef" fills the chunk exactly to 12: a whole null word must follow.
    let n = write_sdes_cname(&mut out, 1, b"abcdef").unwrap();
    assert_eq!(n, 20);
    assert_eq!(&out[16..20], &[0, 0, 0, 0]);

    let n = write_bye(&mut out, &[0x0102_0304], Some(b"bye")).unwrap();
    assert_eq!(
        &out[..n],
        &[0x81, 203, 0, 2, 1, 2, 3, 4, 3, b'b', b'y', b'e']
    );
    let Some(Ok(RtcpPacket::Goodbye { reason, .. })) = packets(&out[..n]).next() else {
        panic!();
    };
    assert_eq!(reason, Some(&b"bye"[..]));
}

/// RFC 3550 §6.5: several chunks, several items per chunk, CNAME not
/// first, each chunk ended by a null octet and padded to 32 bits.
#[test]
fn sdes_with_several_chunks_and_items() {
    #[rustfmt::skip]
    let bytes = [
        0x82, 202, 0, 7,                 // SC=2, length 7 words
        0, 0, 0, 1,                      // chunk 1: SSRC 1
        2, 2, b'b', b'b',                // NAME "bb"
        1, 1, b'a', 0,                   // CNAME "a", END
        0, 0, 0, 2,                      // chunk 2: SSRC 2
        6, 3, b'r', b'v', b'r',          // TOOL "rvr"
        8, 1, b'x',                      // PRIV (skipped)
        0, 0, 0, 0,                      // END + padding (no CNAME)
    ];
    let got: Vec<_> = packets(&bytes).collect();
    let [Ok(RtcpPacket::SourceDescription(chunks))] = got.as_slice() else {
        panic!("{got:?}");
    };
    assert_eq!(
        chunks.clone().collect::<Vec<_>>(),
        vec![
            SdesChunk {
                ssrc: 1,
                cname: Some(&b"a"[..])
            },
            SdesChunk {
                ssrc: 2,
                cname: None
            },
        ]
    );
}

/// RFC 3550 §6.6: several sources, a reason, padded to 32 bits.
#[test]
fn bye_with_several_sources_and_reason() {
    let mut out = [0u8; 32];
    let n = write_bye(&mut out, &[1, 2, 3], Some(b"hangup")).unwrap();
    #[rustfmt::skip]
    let expected = [
        0x83, 203, 0, 5,
        0, 0, 0, 1,
        0, 0, 0, 2,
        0, 0, 0, 3,
        6, b'h', b'a', b'n', b'g', b'u', b'p', 0,
    ];
    assert_eq!(&out[..n], &expected[..]);
    let Some(Ok(RtcpPacket::Goodbye { sources, reason })) = packets(&out[..n]).next() else {
        panic!();
    };
    assert_eq!(sources.collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(reason, Some(&b"hangup"[..]));
}

#[test]
fn writers_refuse_small_buffers_and_oversize_input() {
    let mut small = [0u8; 7];
    assert_eq!(
        write_receiver_report(&mut small, 1, &[]),
        Err(RtcpError::BufferTooSmall)
    );
    assert_eq!(
        write_sender_report(&mut [0u8; 27], 1, &SenderInfo::default(), &[]),
        Err(RtcpError::BufferTooSmall)
    );
    assert_eq!(
        write_sdes_cname(&mut [0u8; 11], 1, b"ab"),
        Err(RtcpError::BufferTooSmall)
    );
    assert_eq!(
        write_sdes_cname(&mut [0u8; 600], 1, &[b'x'; 256]),
        Err(RtcpError::TooMany)
    );
    let blocks = [ReportBlock::default(); 32];
    assert_eq!(
        write_receiver_report(&mut [0u8; 2000], 1, &blocks),
        Err(RtcpError::TooMany)
    );
    assert_eq!(
        write_bye(&mut [0u8; 4], &[1], None),
        Err(RtcpError::BufferTooSmall)
    );
}

#[test]
fn malformed_headers_are_typed_errors() {
    let cases: [(&[u8], RtcpError); 8] = [
        (&[0x81, 201, 0], RtcpError::Truncated),
        (&[0x41, 201, 0, 1, 0, 0, 0, 1], RtcpError::BadVersion),
        // Length says 2 words, only 1 present.
        (&[0x80, 201, 0, 2, 0, 0, 0, 1], RtcpError::Truncated),
        // RC = 1 but no report block.
        (&[0x81, 201, 0, 1, 0, 0, 0, 1], RtcpError::CountOverrun),
        // Padding count zero (RFC 3550 §6.4.1: it includes itself).
        (&[0xA0, 201, 0, 1, 0, 0, 0, 0], RtcpError::BadPadding),
        // Padding count larger than the body.
        (&[0xA0, 201, 0, 1, 0, 0, 0, 9], RtcpError::BadPadding),
        // SDES item length runs off the end.
        (
            &[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'],
            RtcpError::BadSdes,
        ),
        // BYE reason longer than the packet.
        (
            &[0x81, 203, 0, 2, 0, 0, 0, 1, 5, b'a', b'b', b'c'],
            RtcpError::Truncated,
        ),
    ];
    for (bytes, err) in cases {
        let got: Vec<_> = packets(bytes).collect();
        assert_eq!(got.len(), 1, "{bytes:?}");
        assert_eq!(got[0].as_ref().err(), Some(&err), "{bytes:?}");
    }
}

#[test]
fn padding_on_the_last_packet_is_removed() {
    // RR with no blocks, then 4 bytes of padding (count 4).
    let bytes = [0xA0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
    let got: Vec<_> = packets(&bytes).collect();
    assert!(matches!(
        got.as_slice(),
        [Ok(RtcpPacket::ReceiverReport { ssrc: 9, .. })]
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for p in packets(&bytes).flatten() {
            match p {
                RtcpPacket::SenderReport { blocks, .. } | RtcpPacket::ReceiverReport { blocks, .. } => {
                    blocks.for_each(drop);
                }
                RtcpPacket::SourceDescription(chunks) => chunks.for_each(drop),
                RtcpPacket::Goodbye { sources, .. } => sources.for_each(drop),
                RtcpPacket::Other { .. } => {}
            }
        }
    }

    /// Any report block survives the wire, cumulative loss clamped to the
    /// signed 24-bit field.
    #[test]
    fn report_blocks_round_trip(
        blocks in prop::collection::vec(
            (any::<u32>(), any::<u8>(), any::<i32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
            0..=31),
        reporter in any::<u32>(),
    ) {
        let blocks: Vec<ReportBlock> = blocks
            .into_iter()
            .map(|(ssrc, fraction_lost, lost, highest_seq, jitter, last_sr, dlsr)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost: lost,
                highest_seq,
                jitter,
                last_sr,
                delay_since_last_sr: dlsr,
            })
            .collect();
        let mut out = [0u8; 8 + 31 * 24];
        let n = write_receiver_report(&mut out, reporter, &blocks).unwrap();
        prop_assert_eq!(n, 8 + blocks.len() * 24);
        let Some(Ok(RtcpPacket::ReceiverReport { ssrc, blocks: got })) = packets(&out[..n]).next() else {
            return Err(TestCaseError::fail("not an RR"));
        };
        prop_assert_eq!(ssrc, reporter);
        let want: Vec<ReportBlock> = blocks
            .iter()
            .map(|b| ReportBlock { cumulative_lost: b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF), ..*b })
            .collect();
        prop_assert_eq!(got.collect::<Vec<_>>(), want);
    }

    #[test]
    fn written_compound_parses_back(
        ssrc in any::<u32>(),
        ntp in any::<u64>(),
        nblocks in 0usize..4,
        lost in -0x80_0000i32..0x80_0000,
        cname in prop::collection::vec(any::<u8>(), 0..255),
    ) {
        let mut out = [0u8; 1500];
        let block = ReportBlock { ssrc: ssrc ^ 1, cumulative_lost: lost, ..Default::default() };
        let blocks = vec![block; nblocks];
        let info = SenderInfo { ntp, ..Default::default() };
        let mut n = write_sender_report(&mut out, ssrc, &info, &blocks).unwrap();
        n += write_sdes_cname(&mut out[n..], ssrc, &cname).unwrap();
        n += write_bye(&mut out[n..], &[ssrc], None).unwrap();
        prop_assert_eq!(n % 4, 0);
        let all: Vec<_> = packets(&out[..n]).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(all.len(), 3);
        match &all[0] {
            RtcpPacket::SenderReport { ssrc: s, info: i, blocks: b } => {
                prop_assert_eq!(*s, ssrc);
                prop_assert_eq!(i.ntp, ntp);
                prop_assert_eq!(b.clone().collect::<Vec<_>>(), blocks);
            }
            other => prop_assert!(false, "{:?}", other),
        }
        match &all[1] {
            RtcpPacket::SourceDescription(c) => {
                let c: Vec<_> = c.clone().collect();
                prop_assert_eq!(c, vec![SdesChunk { ssrc, cname: Some(&cname[..]) }]);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
