//! Frame codec tests: the octets of Q.921 Table 5 written out by hand (not
//! by the encoder), the §2.9 / §5.8.5 error split, and round trips.

use proptest::prelude::*;

use super::*;

fn addr(cr: bool) -> Address {
    Address {
        sapi: 0,
        cr,
        tei: 0,
    }
}

fn frame(cr: bool, kind: Kind) -> Frame {
    Frame {
        address: addr(cr),
        kind,
    }
}

/// Octets from Q.921 Figure 5 / Table 5, SAPI 0, TEI 0.
#[test]
fn known_octets_decode_and_encode() {
    let cases: Vec<(&[u8], Frame)> = vec![
        (&[0x00, 0x01, 0x7F], frame(false, Kind::Sabme { p: true })),
        (&[0x02, 0x01, 0x6F], frame(true, Kind::Sabme { p: false })),
        (&[0x02, 0x01, 0x73], frame(true, Kind::Ua { f: true })),
        (&[0x00, 0x01, 0x1F], frame(false, Kind::Dm { f: true })),
        (&[0x00, 0x01, 0x0F], frame(false, Kind::Dm { f: false })),
        (&[0x02, 0x01, 0x53], frame(true, Kind::Disc { p: true })),
        (
            &[0x00, 0x01, 0x03, 0x08, 0x01],
            frame(
                false,
                Kind::Ui {
                    p: false,
                    info: vec![0x08, 0x01],
                },
            ),
        ),
        (
            &[0x00, 0x01, 0x0A, 0x07, 0x08],
            frame(
                false,
                Kind::I {
                    ns: 5,
                    nr: 3,
                    p: true,
                    info: vec![0x08],
                },
            ),
        ),
        (
            &[0x02, 0x01, 0xFE, 0xFE],
            frame(
                true,
                Kind::I {
                    ns: 127,
                    nr: 127,
                    p: false,
                    info: vec![],
                },
            ),
        ),
        (
            &[0x02, 0x01, 0x01, 0x0D],
            frame(true, Kind::Rr { nr: 6, pf: true }),
        ),
        (
            &[0x00, 0x01, 0x05, 0x00],
            frame(false, Kind::Rnr { nr: 0, pf: false }),
        ),
        (
            &[0x00, 0x01, 0x09, 0xFF],
            frame(false, Kind::Rej { nr: 127, pf: true }),
        ),
        (
            &[0x02, 0x01, 0x97, 1, 2, 3, 4, 5],
            frame(
                true,
                Kind::Frmr {
                    f: true,
                    info: vec![1, 2, 3, 4, 5],
                },
            ),
        ),
        (
            &[0x00, 0x01, 0xAF],
            frame(
                false,
                Kind::Xid {
                    pf: false,
                    info: vec![],
                },
            ),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(decode(bytes), Ok(want.clone()), "{bytes:02x?}");
        assert_eq!(want.to_bytes(), bytes);
    }
}

#[test]
fn address_fields() {
    // SAPI 63, C/R 1, TEI 127 (the group TEI).
    let f = decode(&[0xFE, 0xFF, 0x03]).unwrap();
    assert_eq!(
        f.address,
        Address {
            sapi: 63,
            cr: true,
            tei: 127
        }
    );
}

#[test]
fn invalid_frames_are_told_apart_from_rejected_ones() {
    let invalid = |i| Err(FrameError::Invalid(i));
    assert_eq!(decode(&[]), invalid(Invalid::TooShort));
    assert_eq!(decode(&[0x00, 0x01]), invalid(Invalid::TooShort));
    // An I or an S frame needs its second control octet.
    assert_eq!(decode(&[0x00, 0x01, 0x00]), invalid(Invalid::TooShort));
    assert_eq!(decode(&[0x00, 0x01, 0x01]), invalid(Invalid::TooShort));
    // One-octet address (EA=1 in octet 1), three-octet address (EA=0 in 2).
    assert_eq!(decode(&[0x01, 0x01, 0x7F]), invalid(Invalid::Address));
    assert_eq!(decode(&[0x00, 0x00, 0x7F]), invalid(Invalid::Address));

    let rejected = |reason| {
        Err(FrameError::Rejected {
            address: addr(false),
            reason,
        })
    };
    // SABM (modulo 8) is not LAPD; 0x0D is the undefined S type "11".
    assert_eq!(
        decode(&[0x00, 0x01, 0x3F]),
        rejected(Rejection::UndefinedControl)
    );
    assert_eq!(
        decode(&[0x00, 0x01, 0x0D, 0x00]),
        rejected(Rejection::UndefinedControl)
    );
    // Reserved bits of an S frame set.
    assert_eq!(
        decode(&[0x00, 0x01, 0x11, 0x00]),
        rejected(Rejection::UndefinedControl)
    );
    assert_eq!(
        decode(&[0x00, 0x01, 0x7F, 0x00]),
        rejected(Rejection::InfoNotPermitted)
    );
    assert_eq!(
        decode(&[0x00, 0x01, 0x01, 0x00, 0x00]),
        rejected(Rejection::WrongLength)
    );
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    let seq = 0u8..128;
    let info = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (seq.clone(), seq.clone(), any::<bool>(), info.clone())
            .prop_map(|(ns, nr, p, info)| Kind::I { ns, nr, p, info }),
        (seq.clone(), any::<bool>()).prop_map(|(nr, pf)| Kind::Rr { nr, pf }),
        (seq.clone(), any::<bool>()).prop_map(|(nr, pf)| Kind::Rnr { nr, pf }),
        (seq, any::<bool>()).prop_map(|(nr, pf)| Kind::Rej { nr, pf }),
        any::<bool>().prop_map(|p| Kind::Sabme { p }),
        any::<bool>().prop_map(|f| Kind::Dm { f }),
        any::<bool>().prop_map(|p| Kind::Disc { p }),
        any::<bool>().prop_map(|f| Kind::Ua { f }),
        (any::<bool>(), info.clone()).prop_map(|(p, info)| Kind::Ui { p, info }),
        (any::<bool>(), info.clone()).prop_map(|(f, info)| Kind::Frmr { f, info }),
        (any::<bool>(), info).prop_map(|(pf, info)| Kind::Xid { pf, info }),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    (0u8..64, any::<bool>(), 0u8..128, arb_kind()).prop_map(|(sapi, cr, tei, kind)| Frame {
        address: Address { sapi, cr, tei },
        kind,
    })
}

proptest! {
    #[test]
    fn every_frame_round_trips(f in arb_frame()) {
        prop_assert_eq!(decode(&f.to_bytes()), Ok(f));
    }

    /// The encoding is canonical: whatever decodes re-encodes to the same
    /// bytes, so no two byte strings mean the same frame.
    #[test]
    fn decoded_bytes_reencode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Ok(f) = decode(&bytes) {
            prop_assert_eq!(f.to_bytes(), bytes);
        }
    }
}
