//! Hostile datagrams through the public RTP/RTCP/telephone-event API: every
//! one is dropped (and counted) or tolerated, none panics, and the session
//! keeps working afterwards. New crashers found by fuzzing go here.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rivr::media::rfc4733::Receiver;
use rivr::media::rtp_session::{DropReason, Inbound, RtpSession, RtpSessionConfig};

const PEER_SSRC: u32 = 0x0BAD_F00D;

fn peer() -> SocketAddr {
    "192.0.2.10:30000".parse().unwrap()
}

fn peer_rtcp() -> SocketAddr {
    "192.0.2.10:30001".parse().unwrap()
}

fn session(now: Instant) -> RtpSession {
    RtpSession::new(
        RtpSessionConfig {
            local_ssrc: 42,
            payload_type: 8,
            clock_rate: 8000,
            telephone_event_pt: Some(101),
            telephone_event_rate: 8000,
            remote_rtp: peer(),
            remote_rtcp: peer_rtcp(),
            initial_seq: 1,
            initial_timestamp: 0,
            cname: "malformed@test".into(),
            ptime_ms: 20,
        },
        now,
    )
}

/// A valid PCMA packet from the peer.
fn valid(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&PEER_SSRC.to_be_bytes());
    p.extend_from_slice(&[0xD5; 160]);
    p
}

fn rtp_header(b0: u8, b1: u8) -> Vec<u8> {
    let mut p = vec![b0, b1, 0, 9, 0, 0, 0, 1];
    p.extend_from_slice(&PEER_SSRC.to_be_bytes());
    p
}

fn hostile_rtp() -> Vec<(&'static str, Vec<u8>, DropReason)> {
    use DropReason::*;
    let with = |mut h: Vec<u8>, tail: &[u8]| {
        h.extend_from_slice(tail);
        h
    };
    vec![
        ("empty", vec![], Malformed),
        ("one byte", vec![0x80], Malformed),
        ("eleven bytes", valid(1)[..11].to_vec(), Malformed),
        ("version 0", with(rtp_header(0x00, 8), &[1]), Malformed),
        ("version 1", with(rtp_header(0x40, 8), &[1]), Malformed),
        ("version 3", vec![0xFF; 12], Malformed),
        ("15 CSRCs, none present", rtp_header(0x8F, 8), Malformed),
        (
            "15 CSRCs, 14 present",
            with(rtp_header(0x8F, 8), &[0; 56]),
            Malformed,
        ),
        (
            "extension header cut",
            with(rtp_header(0x90, 8), &[0xBE, 0xDE]),
            Malformed,
        ),
        (
            "extension length 0xFFFF",
            with(rtp_header(0x90, 8), &[0xBE, 0xDE, 0xFF, 0xFF, 1, 2, 3, 4]),
            Malformed,
        ),
        (
            "extension after 15 CSRCs overruns",
            with(rtp_header(0x9F, 8), &[0; 60 + 2]),
            Malformed,
        ),
        ("padding bit, no payload", rtp_header(0xA0, 8), Malformed),
        (
            "padding count 0",
            with(rtp_header(0xA0, 8), &[1, 2, 0]),
            Malformed,
        ),
        (
            "padding count > payload",
            with(rtp_header(0xA0, 8), &[1, 2, 9]),
            Malformed,
        ),
        (
            "padding 255 in 3 bytes",
            with(rtp_header(0xA0, 8), &[1, 2, 255]),
            Malformed,
        ),
        (
            "RTCP SR on the RTP port",
            with(vec![0x80, 200, 0, 6], &[0; 24]),
            RtcpOnRtpPort,
        ),
        (
            "RTCP-ish type 223",
            with(rtp_header(0x80, 223), &[0; 4]),
            RtcpOnRtpPort,
        ),
        (
            "payload type 127",
            with(rtp_header(0x80, 127), &[0; 4]),
            UnknownPayloadType,
        ),
        (
            "payload type 72 no marker",
            with(rtp_header(0x80, 72), &[0; 4]),
            UnknownPayloadType,
        ),
    ]
}

#[test]
fn hostile_rtp_is_dropped_with_its_reason() {
    let t0 = Instant::now();
    let mut s = session(t0);
    // Lock onto the peer first so source checks don't mask the reasons.
    assert!(matches!(
        s.handle_rtp(t0, peer(), &valid(1)),
        Inbound::Audio { .. }
    ));
    let cases = hostile_rtp();
    for (name, bytes, reason) in &cases {
        assert_eq!(
            s.handle_rtp(t0, peer(), bytes).drop_reason(),
            Some(*reason),
            "{name}"
        );
    }
    // Still works, and every drop was counted.
    assert!(matches!(
        s.handle_rtp(t0, peer(), &valid(2)),
        Inbound::Audio { .. }
    ));
    let st = s.stats();
    assert_eq!(st.dropped.total(), cases.len() as u64);
    // Unknown payload types from the peer are still RTP from the peer.
    assert_eq!(st.packets_received, 2 + 2);
}

#[test]
fn oversized_and_degenerate_but_valid_rtp() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut huge = valid(1);
    huge.resize(65_535, 0xD5);
    assert!(matches!(
        s.handle_rtp(t0, peer(), &huge),
        Inbound::Audio { payload, .. } if payload.len() == 65_535 - 12
    ));
    // Padding that eats the whole payload: valid, empty audio.
    let mut p = rtp_header(0xA0, 8);
    p[3] = 2;
    p.extend_from_slice(&[0, 0, 3]);
    assert!(matches!(
        s.handle_rtp(t0, peer(), &p),
        Inbound::Audio { payload: [], .. }
    ));
    // 15 CSRCs and a maximal extension, all present.
    let mut p = rtp_header(0x9F, 8);
    p[3] = 3;
    p.extend_from_slice(&[0; 60]);
    p.extend_from_slice(&[0x10, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0xAB]);
    assert!(matches!(
        s.handle_rtp(t0, peer(), &p),
        Inbound::Audio {
            payload: [0xAB],
            ..
        }
    ));
}

#[test]
fn hostile_sources_are_dropped() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let stranger: SocketAddr = "198.51.100.2:1234".parse().unwrap();
    assert_eq!(
        s.handle_rtp(t0, stranger, &valid(1)),
        Inbound::Dropped(DropReason::UnverifiedSource)
    );
    assert!(matches!(
        s.handle_rtp(t0, peer(), &valid(1)),
        Inbound::Audio { .. }
    ));
    assert_eq!(
        s.handle_rtp(t0, stranger, &valid(2)),
        Inbound::Dropped(DropReason::WrongSource)
    );
    // IPv6 sources and port 0 are just other addresses.
    for from in [
        "[2001:db8::1]:30000",
        "192.0.2.10:0",
        "[::ffff:192.0.2.11]:30000",
    ] {
        let from: SocketAddr = from.parse().unwrap();
        assert_eq!(
            s.handle_rtp(t0, from, &valid(3)),
            Inbound::Dropped(DropReason::WrongSource)
        );
    }
    // The IPv4-mapped form of the peer's own address is the peer.
    let mapped: SocketAddr = "[::ffff:192.0.2.10]:30000".parse().unwrap();
    assert!(matches!(
        s.handle_rtp(t0, mapped, &valid(4)),
        Inbound::Audio { .. }
    ));
}

fn hostile_rtcp() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", vec![]),
        ("three bytes", vec![0x80, 201, 0]),
        ("version 0", vec![0x00, 201, 0, 1, 0, 0, 0, 1]),
        ("length 0xFFFF", vec![0x80, 201, 0xFF, 0xFF, 0, 0, 0, 1]),
        ("length 0 (header only) RR", vec![0x80, 201, 0, 0]),
        ("RC 31, no blocks", vec![0x9F, 201, 0, 1, 0, 0, 0, 1]),
        ("SR with no sender info", vec![0x80, 200, 0, 1, 0, 0, 0, 1]),
        ("SR RC 1, block cut", {
            let mut v = vec![0x81, 200, 0, 7];
            v.extend_from_slice(&[0; 28]);
            v
        }),
        (
            "SDES item overruns",
            vec![0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, b'x', 0],
        ),
        (
            "SDES no terminator",
            vec![0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'x', b'y'],
        ),
        (
            "SDES count 31, one chunk",
            vec![0x9F, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0],
        ),
        ("BYE count 2, one ssrc", vec![0x82, 203, 0, 1, 0, 0, 0, 1]),
        (
            "BYE reason overruns",
            vec![0x81, 203, 0, 2, 0, 0, 0, 1, 255, b'a', b'b', b'c'],
        ),
        ("padding count 0", vec![0xA0, 201, 0, 1, 0, 0, 0, 0]),
        ("padding > body", vec![0xA0, 201, 0, 1, 0, 0, 0, 200]),
        ("valid RR then garbage", {
            let mut v = vec![0x80, 201, 0, 1, 0, 0, 0, 1];
            v.extend_from_slice(&[0xFF; 7]);
            v
        }),
        (
            "1000 empty RRs",
            [0x80u8, 201, 0, 1, 0x0B, 0xAD, 0xF0, 0x0D].repeat(1000),
        ),
        ("report block on us with LSR from the future", {
            let mut v = vec![0x81, 201, 0, 7];
            v.extend_from_slice(&PEER_SSRC.to_be_bytes());
            v.extend_from_slice(&42u32.to_be_bytes());
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&[0; 4]);
            v.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]); // LSR
            v.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]); // DLSR
            v
        }),
    ]
}

#[test]
fn hostile_rtcp_is_tolerated() {
    let t0 = Instant::now();
    let mut s = session(t0);
    assert!(matches!(
        s.handle_rtp(t0, peer(), &valid(1)),
        Inbound::Audio { .. }
    ));
    let mut out = [0u8; 1500];
    for (name, bytes) in hostile_rtcp() {
        s.handle_rtcp(t0, peer_rtcp(), &bytes);
        s.handle_rtcp(t0, "198.51.100.2:1".parse().unwrap(), &bytes);
        assert_eq!(s.stats().rtt, None, "{name} produced an RTT");
    }
    let st = s.stats();
    let n = hostile_rtcp().len() as u64;
    assert_eq!(st.rtcp_received, n);
    assert_eq!(st.rtcp_dropped, n);
    assert!(st.rtcp_malformed >= 14, "{}", st.rtcp_malformed);
    // Reports still go out.
    let due = s.poll_timeout().unwrap();
    assert!(s.poll_rtcp(due, &mut out).is_some());
}

#[test]
fn hostile_telephone_events_are_ignored() {
    let t0 = Instant::now();
    let mut rx = Receiver::new();
    let payloads: [&[u8]; 8] = [
        &[],
        &[1],
        &[1, 0x80],
        &[1, 0x80, 0],
        &[16, 0x80, 0, 160],
        &[255, 0xFF, 0xFF, 0xFF],
        &[200, 0, 0, 0],
        &[100, 0x3F, 0, 0],
    ];
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(rx.handle(t0, 1, i as u16, 0, true, p), None, "{p:?}");
    }
    // A key press still gets through afterwards, including with extra bytes.
    let got = rx.handle(t0, 1, 9, 0, true, &[1, 0x0A, 0, 160, 0xEE, 0xEE]);
    assert_eq!(got.map(|e| e.digit), Some('1'));
}

proptest! {
    /// Random datagrams from the peer and strangers, on both ports: no panic,
    /// every RTP datagram either handed on or counted as dropped, and the
    /// session still writes well-formed output.
    #[test]
    fn random_datagrams_keep_the_books_straight(
        datagrams in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..64), any::<bool>(), any::<bool>(), 0u8..4),
            0..100),
    ) {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut rx = Receiver::new();
        let stranger: SocketAddr = "198.51.100.2:1234".parse().unwrap();
        let (mut handed_on, mut rtp_count) = (0u64, 0u64);
        for (i, (mut bytes, from_peer, rtcp, tweak)) in datagrams.into_iter().enumerate() {
            // Make some look like RTP v2 / RTCP so they go deeper.
            if let Some(b) = bytes.first_mut() {
                if tweak > 0 { *b = (*b & 0x3F) | 0x80; }
            }
            if tweak == 2 && bytes.len() > 1 { bytes[1] = 101; }
            if tweak == 3 && bytes.len() > 1 { bytes[1] = 200 + bytes[1] % 5; }
            let now = t0 + Duration::from_millis(i as u64 * 20);
            let from = if from_peer { peer() } else { stranger };
            if rtcp {
                s.handle_rtcp(now, if from_peer { peer_rtcp() } else { stranger }, &bytes);
                continue;
            }
            rtp_count += 1;
            match s.handle_rtp(now, from, &bytes) {
                Inbound::Audio { .. } => handed_on += 1,
                Inbound::TelephoneEvent { seq, timestamp, ssrc, marker, payload } => {
                    handed_on += 1;
                    let _ = rx.handle(now, ssrc, seq, timestamp, marker, payload);
                }
                Inbound::OtherPayload { .. } | Inbound::Dropped(_) => {}
            }
        }
        let st = s.stats();
        prop_assert_eq!(handed_on + st.dropped.total(), rtp_count);
        let mut out = [0u8; 1500];
        let n = s.write_audio(t0, &[0xD5; 160], 160, &mut out).unwrap();
        prop_assert_eq!(n, 172);
        let due = s.poll_timeout().unwrap();
        prop_assert!(s.poll_rtcp(due, &mut out).is_some());
        prop_assert!(s.write_bye(&mut out).is_some());
    }
}

/// One step of a random driver of the whole public session API.
#[derive(Debug, Clone)]
enum Op {
    Rtp(Vec<u8>, usize),
    Rtcp(Vec<u8>, usize),
    Audio(usize, u32),
    Event(Vec<u8>, u32, bool),
    Talkspurt,
    SetRemote(usize),
    PollRtcp(usize),
    Bye(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        (bytes.clone(), 0usize..3).prop_map(|(b, f)| Op::Rtp(b, f)),
        (bytes.clone(), 0usize..3).prop_map(|(b, f)| Op::Rtcp(b, f)),
        (0usize..400, any::<u32>()).prop_map(|(n, s)| Op::Audio(n, s)),
        (bytes, any::<u32>(), any::<bool>()).prop_map(|(b, t, m)| Op::Event(b, t, m)),
        Just(Op::Talkspurt),
        (0usize..3).prop_map(Op::SetRemote),
        (0usize..200).prop_map(Op::PollRtcp),
        (0usize..200).prop_map(Op::Bye),
    ]
}

proptest! {
    /// Any sequence of calls, with `now` jumping back and forth: no panic,
    /// and whatever the session writes is a well-formed RTP or RTCP packet.
    #[test]
    fn any_call_sequence_with_any_clock(
        ops in prop::collection::vec((op(), -20_000i64..20_000), 0..80),
    ) {
        let base = Instant::now() + Duration::from_secs(30);
        let mut s = session(base);
        let addrs: [SocketAddr; 3] = [
            peer(),
            "198.51.100.2:1234".parse().unwrap(),
            "[2001:db8::7]:30000".parse().unwrap(),
        ];
        let mut out = vec![0u8; 512];
        for (op, offset_ms) in ops {
            let now = if offset_ms < 0 {
                base - Duration::from_millis(offset_ms.unsigned_abs())
            } else {
                base + Duration::from_millis(offset_ms as u64)
            };
            match op {
                Op::Rtp(b, f) => { let _ = s.handle_rtp(now, addrs[f], &b); }
                Op::Rtcp(b, f) => s.handle_rtcp(now, addrs[f], &b),
                Op::Audio(n, samples) => {
                    let payload = vec![0xD5; n];
                    if let Some(len) = s.write_audio(now, &payload, samples, &mut out) {
                        let (h, p) = rivr::media::rtp_session::header::parse(&out[..len]).unwrap();
                        prop_assert_eq!(h.payload_type, 8);
                        prop_assert_eq!(p.len(), n);
                    } else {
                        prop_assert!(n + 12 > out.len());
                    }
                }
                Op::Event(b, ts, m) => {
                    if let Some(len) = s.write_event(now, &b, ts, m, &mut out) {
                        let (h, p) = rivr::media::rtp_session::header::parse(&out[..len]).unwrap();
                        prop_assert_eq!((h.payload_type, h.timestamp, h.marker), (101, ts, m));
                        prop_assert_eq!(p, &b[..]);
                    }
                }
                Op::Talkspurt => s.start_talkspurt(),
                Op::SetRemote(i) => {
                    let rtp = addrs[i];
                    s.set_remote(rtp, SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)));
                }
                Op::PollRtcp(n) => {
                    if let Some(len) = s.poll_rtcp(now, &mut out[..n]) {
                        prop_assert!(rivr::media::rtcp::packets(&out[..len]).all(|p| p.is_ok()));
                    }
                }
                Op::Bye(n) => {
                    if let Some(len) = s.write_bye(&mut out[..n]) {
                        prop_assert!(rivr::media::rtcp::packets(&out[..len]).all(|p| p.is_ok()));
                        prop_assert_eq!(s.poll_timeout(), None);
                    }
                }
            }
        }
    }
}
