use std::time::{Duration, Instant};

use rtp::packet::Packet;
use webrtc_util::marshal::Unmarshal;

use super::*;
use crate::media::rfc4733;

pub(super) const LOCAL_SSRC: u32 = 0xAAAA_0001;
pub(super) const PEER_SSRC: u32 = 0xBBBB_0002;

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn cfg(remote: &str) -> RtpSessionConfig {
    let rtp = addr(remote);
    RtpSessionConfig {
        local_ssrc: LOCAL_SSRC,
        payload_type: 0,
        clock_rate: 8000,
        telephone_event_pt: Some(101),
        telephone_event_rate: 8000,
        remote_rtp: rtp,
        remote_rtcp: SocketAddr::new(rtp.ip(), rtp.port() + 1),
        initial_seq: 65534,
        initial_timestamp: 1000,
        cname: "rivr@test".into(),
        ptime_ms: 20,
    }
}

/// A peer RTP packet.
pub(super) fn peer_pkt(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 12 + payload.len()];
    let h = header::RtpHeader {
        marker: false,
        payload_type: pt,
        seq,
        timestamp: ts,
        ssrc,
    };
    let n = header::write(&mut out, &h, payload).unwrap();
    out.truncate(n);
    out
}

pub(super) fn ms(base: Instant, t: u64) -> Instant {
    base + Duration::from_millis(t)
}

#[test]
fn write_audio_numbers_packets_and_marks_talkspurts() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let mut out = [0u8; 200];
    let frame = [0xFFu8; 160];
    let mut seen = Vec::new();
    for i in 0..4u64 {
        if i == 2 {
            s.start_talkspurt();
        }
        let n = s
            .write_audio(ms(t0, 20 * i), &frame, 160, &mut out)
            .unwrap();
        assert_eq!(n, 172);
        let p = Packet::unmarshal(&mut &out[..n]).unwrap();
        assert_eq!((p.header.ssrc, p.header.payload_type), (LOCAL_SSRC, 0));
        assert_eq!(&p.payload[..], &frame[..]);
        seen.push((
            p.header.marker,
            p.header.sequence_number,
            p.header.timestamp,
        ));
    }
    assert_eq!(
        seen,
        vec![
            (true, 65534, 1000),
            (false, 65535, 1160),
            (true, 0, 1320),
            (false, 1, 1480)
        ]
    );
    // Too small a buffer: nothing written, nothing advanced.
    assert_eq!(s.write_audio(t0, &frame, 160, &mut out[..100]), None);
    assert_eq!(s.next_timestamp(), 1640);
    assert_eq!(s.stats().packets_sent, 4);
    assert_eq!(s.stats().bytes_sent, 640);
}

#[test]
fn skipped_frames_advance_time_not_sequence() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let mut out = [0u8; 200];
    let frame = [0xFFu8; 160];
    let mut seen = Vec::new();
    for i in 0..5u64 {
        if (1..3).contains(&i) {
            s.skip_audio(160);
            continue;
        }
        let n = s
            .write_audio(ms(t0, 20 * i), &frame, 160, &mut out)
            .unwrap();
        let p = Packet::unmarshal(&mut &out[..n]).unwrap();
        seen.push((
            p.header.marker,
            p.header.sequence_number,
            p.header.timestamp,
        ));
    }
    // Two frames held back: no sequence gap (nothing was lost), the
    // timestamp jumps by their duration, and the marker starts a talkspurt.
    assert_eq!(
        seen,
        vec![(true, 65534, 1000), (true, 65535, 1480), (false, 0, 1640)]
    );
    assert_eq!(s.stats().packets_sent, 3);
}

#[test]
fn inbound_classification() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let audio = peer_pkt(0, 10, 100, PEER_SSRC, &[1, 2, 3]);
    assert_eq!(
        s.handle_rtp(t0, peer, &audio),
        Inbound::Audio {
            payload_type: 0,
            seq: 10,
            timestamp: 100,
            ssrc: PEER_SSRC,
            marker: false,
            payload: &[1, 2, 3]
        }
    );
    let ev = peer_pkt(101, 11, 100, PEER_SSRC, &[5, 10, 0, 160]);
    assert!(matches!(
        s.handle_rtp(t0, peer, &ev),
        Inbound::TelephoneEvent {
            seq: 11,
            payload: [5, 10, 0, 160],
            ..
        }
    ));
    let cn = peer_pkt(13, 12, 100, PEER_SSRC, &[40]);
    let cn_in = s.handle_rtp(t0, peer, &cn);
    assert_eq!(
        cn_in,
        Inbound::OtherPayload {
            payload_type: 13,
            seq: 12,
            ssrc: PEER_SSRC
        }
    );
    assert_eq!(cn_in.drop_reason(), Some(DropReason::UnknownPayloadType));
    assert_eq!(
        s.handle_rtp(t0, peer, &audio[..5]),
        Inbound::Dropped(DropReason::Malformed)
    );
    assert_eq!(
        s.handle_rtp(t0, peer, &[0x81, 200, 0, 1, 0, 0, 0, 1]),
        Inbound::Dropped(DropReason::RtcpOnRtpPort)
    );
    let st = s.stats();
    assert_eq!(st.packets_received, 3);
    assert_eq!(st.bytes_received, 8);
    assert_eq!(st.dropped.unknown_payload_type, 1);
    assert_eq!(st.dropped.malformed, 1);
    assert_eq!(st.dropped.rtcp_on_rtp_port, 1);
    assert_eq!(st.latched, Some(peer));
    assert_eq!(st.remote_ssrc, Some(PEER_SSRC));
}

/// RTP Bleed: the SDP names a private address (the phone is behind a NAT);
/// the phone's media arrives from its public mapping; an attacker sprays
/// packets at our port from another port of another host, before and after
/// the latch, some copying the phone's SSRC and sequence numbers.
#[test]
fn attacker_never_receives_media_nor_injects_audio_nat_case() {
    let t0 = Instant::now();
    let phone = addr("203.0.113.7:31000");
    let attacker = addr("198.51.100.66:5555");
    let mut s = RtpSession::new(cfg("10.0.0.5:4000"), t0);
    let mut out = [0u8; 200];
    let mut injected = 0;
    let mut heard_from_phone = 0;
    let mut seq_a = 7u16;
    for tick in 0..100u64 {
        let now = ms(t0, tick * 20);
        // Attacker: random-ish seq and SSRC, plus a replay of the phone's own.
        for k in 0..3u16 {
            seq_a = seq_a.wrapping_mul(31).wrapping_add(k);
            let fake = peer_pkt(0, seq_a, 0, 0x5151 + u32::from(k), b"evil");
            if matches!(s.handle_rtp(now, attacker, &fake), Inbound::Audio { .. }) {
                injected += 1;
            }
        }
        let copy = peer_pkt(0, 500 + tick as u16 + 1, 0, PEER_SSRC, b"evil");
        if matches!(s.handle_rtp(now, attacker, &copy), Inbound::Audio { .. }) {
            injected += 1;
        }
        if tick >= 10 {
            let real = peer_pkt(0, 500 + tick as u16, tick as u32 * 160, PEER_SSRC, b"good");
            if let Inbound::Audio { payload, .. } = s.handle_rtp(now, phone, &real) {
                assert_eq!(payload, b"good");
                heard_from_phone += 1;
            }
        }
        assert!(s.write_audio(now, &[0; 160], 160, &mut out).is_some());
        assert_ne!(
            s.remote_rtp(),
            attacker,
            "tick {tick}: our media went to the attacker"
        );
    }
    assert_eq!(injected, 0);
    assert_eq!(s.remote_rtp(), phone);
    assert_eq!(s.stats().latched, Some(phone));
    // The first LATCH_RUN - 1 packets of the phone are the price of learning.
    assert_eq!(heard_from_phone, 90 - (latch::LATCH_RUN as usize - 1));
    let d = s.stats().dropped;
    assert_eq!(d.unverified_source + d.wrong_source, 400 + 3);
    assert!(d.wrong_source > 0 && d.unverified_source > 0);
}

/// Same attack when the peer is not NAT'd: an attacker's perfect in-sequence
/// run, even before the peer's first packet arrives, never moves our media
/// once the SDP address has spoken, and before that only reaches... nothing:
/// the SDP address is always what we send to until a latch.
#[test]
fn attacker_cannot_move_media_from_a_confirmed_sdp_address() {
    let t0 = Instant::now();
    let phone = addr("192.0.2.1:4000");
    let attacker = addr("192.0.2.1:4002"); // same host, another port
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let first = peer_pkt(0, 1, 0, PEER_SSRC, b"good");
    assert!(matches!(
        s.handle_rtp(t0, phone, &first),
        Inbound::Audio { .. }
    ));
    for i in 0..50u16 {
        let fake = peer_pkt(0, 2 + i, 0, PEER_SSRC, b"evil");
        assert_eq!(
            s.handle_rtp(t0, attacker, &fake),
            Inbound::Dropped(DropReason::WrongSource)
        );
        assert_eq!(s.remote_rtp(), phone);
    }
    assert_eq!(s.stats().dropped.wrong_source, 50);
}

/// The one window latching leaves open: an in-sequence run from a fresh
/// address before the real peer's first packet. The peer's signalled address
/// takes the session back at its first packet, for good.
#[test]
fn attacker_winning_the_race_loses_to_the_sdp_address() {
    let t0 = Instant::now();
    let phone = addr("192.0.2.1:4000");
    let attacker = addr("198.51.100.66:5555");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    for i in 0..u16::from(latch::LATCH_RUN) {
        let _ = s.handle_rtp(t0, attacker, &peer_pkt(0, 100 + i, 0, 0x5151, b"evil"));
    }
    assert_eq!(s.remote_rtp(), attacker, "the race was lost");
    // The attacker's RTCP, from its own host, is believed for now...
    let mut rr = [0u8; 8];
    let n = crate::media::rtcp::write_receiver_report(&mut rr, 0x5151, &[]).unwrap();
    s.handle_rtcp(t0, addr("198.51.100.66:5556"), &rr[..n]);
    assert_eq!(s.remote_rtcp(), addr("198.51.100.66:5556"));
    let first = peer_pkt(0, 1, 0, PEER_SSRC, b"good");
    assert!(matches!(
        s.handle_rtp(t0, phone, &first),
        Inbound::Audio { .. }
    ));
    assert_eq!(s.remote_rtp(), phone);
    // ...and no longer once the session is taken back.
    assert_eq!(s.remote_rtcp(), addr("192.0.2.1:4001"));
    s.handle_rtcp(t0, addr("198.51.100.66:5556"), &rr[..n]);
    assert_eq!(s.stats().rtcp_dropped, 1);
    for i in 0..20u16 {
        let fake = peer_pkt(0, 104 + i, 0, 0x5151, b"evil");
        assert_eq!(
            s.handle_rtp(t0, attacker, &fake),
            Inbound::Dropped(DropReason::WrongSource)
        );
    }
    assert_eq!(s.remote_rtp(), phone);
}

#[test]
fn set_remote_restarts_latching() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let old = addr("192.0.2.1:4000");
    let new = addr("192.0.2.9:6000");
    assert!(matches!(
        s.handle_rtp(t0, old, &peer_pkt(0, 1, 0, PEER_SSRC, b"a")),
        Inbound::Audio { .. }
    ));
    s.set_remote(new, addr("192.0.2.9:6001"));
    assert_eq!(s.remote_rtp(), new);
    assert_eq!(s.remote_rtcp(), addr("192.0.2.9:6001"));
    assert_eq!(s.stats().latched, None);
    assert_eq!(
        s.handle_rtp(t0, old, &peer_pkt(0, 2, 0, PEER_SSRC, b"a")),
        Inbound::Dropped(DropReason::UnverifiedSource)
    );
    assert!(matches!(
        s.handle_rtp(t0, new, &peer_pkt(0, 3, 0, PEER_SSRC, b"a")),
        Inbound::Audio { .. }
    ));
}

#[test]
fn ssrc_change_resets_sequence_without_loss() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    for seq in 65530u16..=65535 {
        let _ = s.handle_rtp(t0, peer, &peer_pkt(0, seq, 0, PEER_SSRC, b"x"));
    }
    for seq in 0u16..5 {
        let _ = s.handle_rtp(t0, peer, &peer_pkt(0, seq, 0, PEER_SSRC, b"x"));
    }
    assert_eq!(s.stats().highest_seq, 65536 + 4);
    assert_eq!(s.stats().packets_lost, 0);
    // The peer (e.g. after a transfer behind a B2BUA) restarts with a new SSRC.
    for seq in 30_000u16..30_010 {
        let pkt = peer_pkt(0, seq, 0, 0x7777, b"x");
        let got = s.handle_rtp(t0, peer, &pkt);
        assert!(matches!(got, Inbound::Audio { ssrc: 0x7777, .. }));
    }
    let st = s.stats();
    assert_eq!(st.packets_lost, 0);
    assert_eq!(st.ssrc_changes, 1);
    assert_eq!(st.highest_seq, 30_009);
    assert_eq!(st.packets_received, 21);
}

/// Some phones send telephone-events with an SSRC (and sequence numbers) of
/// their own: neither the latch nor the loss/SSRC books may be disturbed.
#[test]
fn events_on_their_own_ssrc_do_not_disturb_audio_books() {
    let t0 = Instant::now();
    let nat = addr("203.0.113.7:31000");
    let mut s = RtpSession::new(cfg("10.0.0.5:4000"), t0);
    let mut rx = rfc4733::Receiver::new();
    let mut digits = Vec::new();
    let mut audio = 0;
    for i in 0..40u16 {
        let now = ms(t0, u64::from(i) * 20);
        let a = peer_pkt(0, 1000 + i, u32::from(i) * 160, PEER_SSRC, b"x");
        if matches!(s.handle_rtp(now, nat, &a), Inbound::Audio { .. }) {
            audio += 1;
        }
        if (2..12).contains(&i) {
            let end = if i >= 9 { 0x80 } else { 0 };
            let dur = (i.min(9) - 1) * 160;
            let [d0, d1] = dur.to_be_bytes();
            let e = peer_pkt(101, 7000 + i, 320, 0xE7E7, &[4, end | 10, d0, d1]);
            if let Inbound::TelephoneEvent {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            } = s.handle_rtp(now, nat, &e)
            {
                assert_eq!(ssrc, 0xE7E7);
                if let Some(ev) = rx.handle(now, ssrc, seq, timestamp, marker, payload) {
                    digits.push(ev.digit);
                }
            }
        }
    }
    assert_eq!(s.remote_rtp(), nat, "latched despite interleaved events");
    assert_eq!(audio, 40 - (latch::LATCH_RUN as usize - 1));
    assert_eq!(digits, vec!['4']);
    let st = s.stats();
    assert_eq!(st.ssrc_changes, 0);
    assert_eq!(st.packets_lost, 0);
    assert_eq!(st.remote_ssrc, Some(PEER_SSRC));
    assert_eq!(st.highest_seq, 1039);
}

/// A 2-second key press interleaved with perfectly timed audio on the same
/// SSRC: the event packets all carry the press's start timestamp, which is
/// not a sampling instant, so they must not count towards jitter.
#[test]
fn telephone_events_do_not_inflate_jitter() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    for i in 0..200u32 {
        let now = ms(t0, u64::from(i) * 20);
        let seq = i as u16;
        let pkt = if (50..150).contains(&i) {
            let [d0, d1] = ((i - 49) as u16 * 160).to_be_bytes();
            peer_pkt(101, seq, 50 * 160, PEER_SSRC, &[1, 10, d0, d1])
        } else {
            peer_pkt(0, seq, i * 160, PEER_SSRC, b"x")
        };
        assert!(!matches!(
            s.handle_rtp(now, peer, &pkt),
            Inbound::Dropped(_)
        ));
    }
    assert_eq!(s.stats().jitter, 0.0);
    assert_eq!(s.stats().packets_lost, 0);
    assert_eq!(s.stats().packets_received, 200);
}

/// RFC 3550 A.8 with a known schedule: 20 ms packets (160 units) whose
/// network delay alternates 0 / 10 ms, so |D| = 80 units every time after the
/// first and J_n = J_{n-1} + (80 - J_{n-1}) / 16, i.e. 80 (1 - (15/16)^n).
#[test]
fn jitter_follows_rfc3550_a8() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    for i in 0..200u64 {
        let delay = if i % 2 == 1 { 10 } else { 0 };
        let pkt = peer_pkt(0, i as u16, 50_000 + i as u32 * 160, PEER_SSRC, b"x");
        let _ = s.handle_rtp(ms(t0, 5 + i * 20 + delay), peer, &pkt);
        let n = i as i32;
        let expected = 80.0 * (1.0 - (15.0f64 / 16.0).powi(n));
        assert!(
            (s.stats().jitter - expected).abs() < 1e-9,
            "after packet {i}: {} vs {expected}",
            s.stats().jitter
        );
    }
    assert!((s.stats().jitter_ms(8000) - 10.0).abs() < 0.01);
    // Constant delay: jitter decays towards zero.
    for i in 200..400u64 {
        let pkt = peer_pkt(0, i as u16, 50_000 + i as u32 * 160, PEER_SSRC, b"x");
        let _ = s.handle_rtp(ms(t0, 5 + i * 20), peer, &pkt);
    }
    assert!(s.stats().jitter < 0.01, "{}", s.stats().jitter);
}

#[test]
fn telephone_event_sending_through_the_session() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let mut out = [0u8; 200];
    s.write_audio(t0, &[0; 160], 160, &mut out).unwrap();
    let start = s.next_timestamp();
    assert_eq!(start, 1160);
    let mut tx = rfc4733::Sender::new('5', 100, 10, start, 8000).unwrap();
    let mut payload = [0u8; 4];
    let mut packets = Vec::new();
    let mut t = 20;
    while let Some((len, marker)) = tx.next_payload(&mut payload) {
        let n = s
            .write_event(ms(t0, t), &payload[..len], tx.timestamp(), marker, &mut out)
            .unwrap();
        let p = Packet::unmarshal(&mut &out[..n]).unwrap();
        packets.push((
            p.header.marker,
            p.header.payload_type,
            p.header.timestamp,
            p.header.sequence_number,
        ));
        t += 20;
    }
    assert_eq!(packets.len(), 7);
    assert!(packets.iter().all(|p| p.1 == 101 && p.2 == 1160));
    assert_eq!(packets.iter().filter(|p| p.0).count(), 1);
    assert!(packets[0].0);
    let seqs: Vec<u16> = packets.iter().map(|p| p.3).collect();
    assert_eq!(seqs, vec![65535, 0, 1, 2, 3, 4, 5]);
    // Audio resumes after the event, as a new talkspurt, its timestamp
    // true to the 7 ticks the event took (not just its 800-unit duration).
    let n = s.write_audio(ms(t0, t), &[0; 160], 160, &mut out).unwrap();
    let p = Packet::unmarshal(&mut &out[..n]).unwrap();
    assert_eq!(
        (
            p.header.marker,
            p.header.timestamp,
            p.header.sequence_number
        ),
        (true, 1160 + 7 * 160, 6)
    );

    let mut no_events = cfg("192.0.2.1:4000");
    no_events.telephone_event_pt = None;
    let mut s = RtpSession::new(no_events, t0);
    assert_eq!(s.write_event(t0, &payload, 0, true, &mut out), None);
}
