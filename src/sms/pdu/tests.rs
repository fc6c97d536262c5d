use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn enquire_link_matches_the_specification_layout() {
    // SMPP 3.4 section 4.11.1: header only, command_id 0x00000015.
    let bytes = hex("00000010 00000015 00000000 00000007");
    let pdu = Pdu::decode(&bytes).unwrap();
    assert_eq!(pdu, Pdu::new(7, Body::EnquireLink));
    let mut out = Vec::new();
    pdu.encode(&mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn bind_transceiver_is_encoded_field_by_field() {
    // Section 4.1.5: system_id, password, system_type (C-Octet), version
    // 0x34, ton, npi, address_range (C-Octet).
    let pdu = Pdu::new(
        1,
        Body::Bind(
            BindMode::Transceiver,
            Bind {
                system_id: "rivr".into(),
                password: "pw".into(),
                system_type: String::new(),
                interface_version: 0x34,
                addr_ton: 1,
                addr_npi: 1,
                address_range: String::new(),
            },
        ),
    );
    let mut out = Vec::new();
    pdu.encode(&mut out).unwrap();
    let want = hex("0000001D 00000009 00000000 00000001 72697672 00 7077 00 00 34 01 01 00");
    assert_eq!(out, want);
    assert_eq!(Pdu::decode(&out).unwrap(), pdu);
}

#[test]
fn submit_sm_resp_with_error_may_have_no_body() {
    let bytes = hex("00000010 80000004 00000058 00000003");
    let pdu = Pdu::decode(&bytes).unwrap();
    assert_eq!(pdu.status, CommandStatus::RTHROTTLED);
    assert_eq!(
        pdu.body,
        Body::SubmitSmResp {
            message_id: String::new()
        }
    );
}

#[test]
fn submit_sm_round_trips_with_tlvs() {
    let m = ShortMessage {
        source_addr: "rivr".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: "15551234567".into(),
        esm_class: 0x40,
        registered_delivery: 1,
        data_coding: 8,
        short_message: vec![5, 0, 3, 9, 2, 1, 0, 0x41],
        tlvs: vec![Tlv {
            tag: tag::RIVR_IDEMPOTENCY_KEY,
            value: b"k1".to_vec(),
        }],
        ..ShortMessage::default()
    };
    let pdu = Pdu::new(42, Body::SubmitSm(m.clone()));
    let mut out = Vec::new();
    pdu.encode(&mut out).unwrap();
    assert_eq!(frame_len(&out).unwrap(), Some(out.len()));
    let back = Pdu::decode(&out).unwrap();
    assert_eq!(back, pdu);
    let Body::SubmitSm(b) = back.body else {
        panic!()
    };
    assert_eq!(b.tlv(tag::RIVR_IDEMPOTENCY_KEY), Some(&b"k1"[..]));
}

#[test]
fn bad_lengths_are_rejected() {
    assert_eq!(frame_len(&[0, 0, 0]).unwrap(), None);
    assert_eq!(
        frame_len(&hex("0000000F")).unwrap_err(),
        PduError::BadLength(15)
    );
    assert!(frame_len(&hex("FFFFFFFF")).is_err());
    // Declared 17 but the body of enquire_link must be empty.
    let b = hex("00000011 00000015 00000000 00000001 00");
    assert_eq!(Pdu::decode(&b).unwrap_err(), PduError::Trailing(1));
    // A bind whose system_id has no NUL within 16 octets.
    let mut b = hex("00000030 00000002 00000000 00000001");
    b.extend_from_slice(&[b'a'; 32]);
    assert_eq!(
        Pdu::decode(&b).unwrap_err(),
        PduError::BadCString { max: 16 }
    );
    // sm_length beyond the end of the PDU.
    let b = hex("00000021 00000004 00000000 00000001 00 0000 00 0000 00 000000 00 00 00000000 FF");
    assert_eq!(Pdu::decode(&b).unwrap_err(), PduError::Truncated);
}

#[test]
fn encode_refuses_oversized_fields() {
    let pdu = Pdu::new(
        1,
        Body::SubmitSm(ShortMessage {
            destination_addr: "1".repeat(21),
            ..ShortMessage::default()
        }),
    );
    let mut out = vec![9];
    assert_eq!(
        pdu.encode(&mut out).unwrap_err(),
        PduError::FieldTooLong { max: 21 }
    );
    assert_eq!(out, vec![9], "a failed encode leaves the buffer as it was");
}

#[test]
fn unknown_commands_decode_as_other() {
    let b = hex("00000014 00000103 00000000 00000005 01020304");
    assert_eq!(
        Pdu::decode(&b).unwrap().body,
        Body::Other { command_id: 0x103 }
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Some(n)) = frame_len(&bytes) {
            let _ = Pdu::decode(&bytes[..n]);
        }
        let _ = Pdu::decode(&bytes);
    }

    #[test]
    fn mutated_submit_never_panics(pos in 0usize..80, val in any::<u8>(), cut in 0usize..80) {
        let pdu = Pdu::new(3, Body::SubmitSm(ShortMessage {
            destination_addr: "123".into(),
            short_message: b"hello".to_vec(),
            ..ShortMessage::default()
        }));
        let mut out = Vec::new();
        pdu.encode(&mut out).unwrap();
        if let Some(b) = out.get_mut(pos) { *b = val; }
        out.truncate(out.len().saturating_sub(cut % 8));
        let _ = Pdu::decode(&out);
    }

    #[test]
    fn short_messages_round_trip(dest in "[0-9]{1,20}", text in proptest::collection::vec(any::<u8>(), 0..=254), esm in any::<u8>(), dc in any::<u8>()) {
        let pdu = Pdu::new(9, Body::DeliverSm(ShortMessage {
            destination_addr: dest, short_message: text, esm_class: esm, data_coding: dc,
            ..ShortMessage::default()
        }));
        let mut out = Vec::new();
        pdu.encode(&mut out).unwrap();
        prop_assert_eq!(Pdu::decode(&out).unwrap(), pdu);
    }
}
