//! The parser targets: SIP wire framing and parsing, SDP offer/answer, and
//! the SMPP PDU codec. Raw bytes in; they assert the properties listed in
//! `fuzz/README.md`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::HeadersExt;

use crate::codec::Codec;
use crate::sip::{sdp, validate, wire};
use crate::sms::pdu::{self, Body, Pdu};
use crate::sms::session::{Session, SessionConfig};
use crate::sms::{encoding, receipt};

/// `sip_wire`: no input panics, a frame never exceeds the input, every
/// error response frames as one message, and a parsed message's typed
/// accessors (Via, From/To + tag, CSeq, Call-ID, Contact) succeed.
pub fn sip_wire(data: &[u8]) {
    if let Ok(Some(n)) = wire::frame_stream(data) {
        assert!(n <= data.len());
    }
    match wire::parse_message(data) {
        Err(err) => {
            if let Some(resp) = wire::error_response(data, &err) {
                assert_eq!(wire::frame_stream(&resp), Ok(Some(resp.len())));
            }
        }
        Ok(msg) => {
            msg.via_header().unwrap().typed().unwrap();
            msg.call_id_header().unwrap();
            msg.from_header().unwrap().typed().unwrap();
            msg.from_header().unwrap().tag().unwrap();
            msg.to_header().unwrap().typed().unwrap();
            msg.to_header().unwrap().tag().unwrap();
            msg.cseq_header().unwrap().typed().unwrap();
            if let Some(rr) = msg.record_route_header() {
                rr.typed().unwrap();
            }
            if let Some(r) = msg.route_header() {
                r.typed().unwrap();
            }
            for c in msg.contact_headers() {
                if !c.value().trim().starts_with('*') {
                    c.typed().unwrap();
                }
            }
            if let rsip::SipMessage::Request(req) = &msg {
                let _ = validate::check_request(req);
            }
        }
    }
}

/// `sdp`: parse, answer and accept-answer never panic, and rivr's own
/// answer always parses again.
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sd) = sdp::parse(text) else {
        return;
    };
    let local = sdp::LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        rtp_port: 40000,
        codecs: Codec::ALL.to_vec(),
        telephone_event: true,
        session_id: 1,
        session_version: 1,
    };
    if let Ok((_, answer)) = sdp::answer(&sd, &local) {
        sdp::parse(&answer).unwrap();
    }
    let _ = sdp::accept_answer(&sd, &local);
}

/// `smpp_pdu`: framing, PDU decode/encode, delivery receipts, UDH and text
/// decoding, and a bound session fed the bytes in two chunks never panic.
pub fn smpp_pdu(data: &[u8]) {
    if let Ok(Some(n)) = pdu::frame_len(data) {
        if let Some(frame) = data.get(..n) {
            if let Ok(p) = Pdu::decode(frame) {
                if let Body::DeliverSm(sm) | Body::SubmitSm(sm) = &p.body {
                    let _ = receipt::parse(sm);
                    let _ = encoding::split_udh(&sm.short_message);
                    let _ = encoding::decode(sm.data_coding, &sm.short_message);
                }
                let mut out = Vec::new();
                let _ = p.encode(&mut out);
            }
        }
    }
    let _ = Pdu::decode(data);

    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    s.handle_timeout(now);
    while s.poll_action().is_some() {}
    s.handle_connected(now);
    let mut bind = Vec::new();
    let _ = Pdu::new(1, Body::BindResp(pdu::BindMode::Transceiver, "f".into())).encode(&mut bind);
    s.handle_bytes(&bind, now);
    let (a, b) = data.split_at(data.len() / 2);
    s.handle_bytes(a, now);
    s.handle_bytes(b, now);
    while s.poll_event().is_some() {}
}

/// `sdp` seeds: offers rivr meets — G.711 with telephone-event, Opus with
/// fmtp and an `a=rtcp` port, several streams, a hold, IPv6.
pub fn sdp_seeds() -> Vec<Vec<u8>> {
    const OFFERS: [&str; 5] = [
        "v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        "v=0\r\no=- 2 2 IN IP4 192.0.2.6\r\ns=call\r\nc=IN IP4 192.0.2.6\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\n\
         a=fmtp:111 maxplaybackrate=16000;useinbandfec=1;stereo=0\r\n\
         a=rtpmap:101 telephone-event/48000\r\na=rtcp:40005 IN IP4 192.0.2.7\r\n",
        "v=0\r\no=- 3 3 IN IP4 192.0.2.8\r\ns=-\r\nt=0 0\r\n\
         m=video 5000 RTP/AVP 96\r\nc=IN IP4 192.0.2.8\r\na=rtpmap:96 H264/90000\r\n\
         m=audio 5002 RTP/AVP 8\r\nc=IN IP4 192.0.2.8\r\na=sendonly\r\n",
        "v=0\r\no=- 4 4 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         m=audio 0 RTP/AVP 0\r\na=inactive\r\n",
        "v=0\r\no=- 5 5 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
         m=audio 6000 RTP/SAVP 0 18\r\na=rtpmap:18 G729/8000\r\n",
    ];
    OFFERS.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// `smpp_pdu` seeds: one PDU of every kind rivr decodes, a receipt, a
/// concatenated part with a UDH and UCS-2 text.
pub fn smpp_pdu_seeds() -> Vec<Vec<u8>> {
    use crate::sms::pdu::{Bind, BindMode, CommandStatus, ShortMessage, Tlv};
    let receipt = ShortMessage {
        esm_class: 0x04,
        source_addr: "15550100".into(),
        short_message: b"id:abc123 sub:001 dlvrd:001 submit date:2401011200 \
            done date:2401011201 stat:DELIVRD err:000 text:hello"
            .to_vec(),
        tlvs: vec![
            Tlv {
                tag: pdu::tag::RECEIPTED_MESSAGE_ID,
                value: b"abc123\0".to_vec(),
            },
            Tlv {
                tag: pdu::tag::MESSAGE_STATE,
                value: vec![2],
            },
        ],
        ..ShortMessage::default()
    };
    let part = ShortMessage {
        esm_class: 0x40,
        data_coding: 0x08,
        destination_addr: "15550199".into(),
        short_message: [&[5u8, 0, 3, 7, 2, 1][..], &[0, 0x48, 0, 0x69, 0x20, 0xAC]].concat(),
        ..ShortMessage::default()
    };
    let mut nack = Pdu::new(9, Body::GenericNack);
    nack.status = CommandStatus::RINVCMDID;
    let bodies = [
        Pdu::new(
            1,
            Body::Bind(
                BindMode::Transceiver,
                Bind {
                    system_id: "rivr".into(),
                    password: "secret".into(),
                    interface_version: 0x34,
                    ..Bind::default()
                },
            ),
        ),
        Pdu::new(1, Body::BindResp(BindMode::Transmitter, "smsc".into())),
        Pdu::new(2, Body::SubmitSm(part)),
        Pdu::new(
            2,
            Body::SubmitSmResp {
                message_id: "abc123".into(),
            },
        ),
        Pdu::new(3, Body::DeliverSm(receipt)),
        Pdu::new(3, Body::DeliverSmResp),
        Pdu::new(4, Body::EnquireLink),
        Pdu::new(5, Body::Unbind),
        nack,
    ];
    bodies
        .iter()
        .filter_map(|p| {
            let mut out = Vec::new();
            p.encode(&mut out).ok().map(|()| out)
        })
        .collect()
}
