use super::*;
use proptest::prelude::*;

#[test]
fn gsm_basic_and_extension_septets_follow_3gpp_23_038() {
    // 3GPP TS 23.038 6.2.1: '@' is 0x00, '£' 0x01, 'Δ' 0x10, '¡' 0x40,
    // 'à' 0x7F; extension: '€' is ESC 0x65, '{' ESC 0x28, '^' ESC 0x14.
    let e = encode("@£Δ¡à€{^", 0, false).unwrap();
    assert_eq!(e.coding, Coding::Gsm7);
    assert_eq!(e.data_coding, 0);
    assert_eq!(
        e.parts,
        vec![vec![
            0x00, 0x01, 0x10, 0x40, 0x7F, 0x1B, 0x65, 0x1B, 0x28, 0x1B, 0x14
        ]]
    );
    assert_eq!(decode(0, &e.parts[0]), "@£Δ¡à€{^");
}

#[test]
fn non_gsm_text_goes_ucs2_big_endian() {
    let e = encode("Привет", 0, false).unwrap();
    assert_eq!(e.coding, Coding::Ucs2);
    assert_eq!(e.data_coding, 8);
    assert_eq!(&e.parts[0][..4], &[0x04, 0x1F, 0x04, 0x40]);
    assert_eq!(decode(8, &e.parts[0]), "Привет");
}

#[test]
fn single_part_limits_are_160_septets_and_70_ucs2_characters() {
    assert_eq!(encode(&"a".repeat(160), 1, false).unwrap().parts.len(), 1);
    assert_eq!(encode(&"a".repeat(161), 1, false).unwrap().parts.len(), 2);
    // '€' costs two septets: 80 of them fill exactly one part.
    assert_eq!(encode(&"€".repeat(80), 1, false).unwrap().parts.len(), 1);
    assert_eq!(encode(&"ж".repeat(70), 1, false).unwrap().parts.len(), 1);
    assert_eq!(encode(&"ж".repeat(71), 1, false).unwrap().parts.len(), 2);
}

#[test]
fn concatenation_uses_8_bit_reference_udh_with_153_and_67_per_part() {
    let text = "x".repeat(153 * 2 + 10);
    let e = encode(&text, 0x2A, false).unwrap();
    assert!(e.udhi);
    assert_eq!(e.parts.len(), 3);
    for (i, p) in e.parts.iter().enumerate() {
        // 3GPP TS 23.040 9.2.3.24.1: UDHL 5, IEI 0, IEDL 3, ref, total, seq.
        assert_eq!(&p[..6], &[5, 0, 3, 0x2A, 3, i as u8 + 1]);
    }
    assert_eq!(e.parts[0].len(), 6 + 153);
    assert_eq!(e.parts[2].len(), 6 + 10);

    let e = encode(&"ж".repeat(67 * 3), 7, false).unwrap();
    assert_eq!(e.parts.len(), 3);
    assert!(e.parts.iter().all(|p| p.len() == 6 + 134));
}

#[test]
fn splitting_never_cuts_an_escape_or_surrogate_pair() {
    // 152 plain septets then '€': the escape pair must move to part 2.
    let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
    let e = encode(&text, 1, false).unwrap();
    assert_eq!(e.parts[0].len(), 6 + 152);
    assert_eq!(&e.parts[1][6..8], &[0x1B, 0x65]);
    let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
    let e = encode(&text, 1, false).unwrap();
    assert_eq!(e.parts[0].len(), 6 + 132);
    let joined: Vec<u8> = e.parts.iter().flat_map(|p| p[6..].to_vec()).collect();
    assert_eq!(decode(8, &joined), text);
}

#[test]
fn message_payload_keeps_long_text_whole() {
    let e = encode(&"y".repeat(400), 0, true).unwrap();
    assert!(e.payload && !e.udhi);
    assert_eq!(e.parts, vec![vec![b'y'; 400]]);
    assert!(!encode("short", 0, true).unwrap().payload);
}

#[test]
fn errors_and_udh_parsing() {
    assert_eq!(encode("", 0, false), Err(EncodeError::Empty));
    assert!(matches!(
        encode(&"a".repeat(153 * 256), 0, false),
        Err(EncodeError::TooLong(256))
    ));
    let (c, rest) = split_udh(&[5, 0, 3, 9, 2, 1, b'h', b'i']).unwrap();
    assert_eq!(
        c,
        Some(Concat {
            reference: 9,
            total: 2,
            seq: 1
        })
    );
    assert_eq!(rest, b"hi");
    assert_eq!(
        split_udh(&[6, 8, 4, 1, 2, 3, 1, b'x']).unwrap().0,
        Some(Concat {
            reference: 0x0102,
            total: 3,
            seq: 1
        })
    );
    assert!(split_udh(&[9, 0, 3]).is_none());
    assert!(split_udh(&[]).is_none());
}

proptest! {
    #[test]
    fn any_text_round_trips_through_its_parts(text in "\\PC{1,400}", r in any::<u8>()) {
        let e = encode(&text, r, false).unwrap();
        let mut joined = Vec::new();
        for p in &e.parts {
            prop_assert!(p.len() <= 140 || e.coding == Coding::Gsm7 && p.len() <= 160);
            let body = if e.udhi { split_udh(p).unwrap().1 } else { p.as_slice() };
            joined.extend_from_slice(body);
        }
        prop_assert_eq!(decode(e.data_coding, &joined), text);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), dc in any::<u8>()) {
        let _ = decode(dc, &bytes);
        let _ = split_udh(&bytes);
    }
}
