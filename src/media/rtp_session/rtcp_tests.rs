//! The session's RTCP behaviour, driven with a simulated clock.

use std::time::Duration;
use std::time::Instant;

use super::tests::{addr, cfg, ms, peer_pkt, LOCAL_SSRC, PEER_SSRC};
use super::*;
use crate::media::rtcp::{self as rtcp_wire, ReportBlock, RtcpPacket, SenderInfo};

/// Drives the session's RTCP timer: the first report comes 1.25–3.75 s after
/// start, later ones every 2.5–7.5 s.
#[test]
fn rtcp_schedule_and_report_kinds() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let mut out = [0u8; 1500];
    let first = s.poll_timeout().unwrap() - t0;
    assert!(
        (Duration::from_millis(1250)..Duration::from_millis(3750)).contains(&first),
        "{first:?}"
    );
    assert_eq!(s.poll_rtcp(t0, &mut out), None, "not due yet");

    // Nothing sent, nothing heard: an RR with no block, then SDES CNAME.
    let due = s.poll_timeout().unwrap();
    let n = s.poll_rtcp(due, &mut out).unwrap();
    let packets: Vec<_> = rtcp_wire::packets(&out[..n])
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        matches!(&packets[0], RtcpPacket::ReceiverReport { ssrc: LOCAL_SSRC, blocks } if blocks.clone().count() == 0)
    );
    let RtcpPacket::SourceDescription(chunks) = packets[1].clone() else {
        panic!()
    };
    assert_eq!(
        chunks.clone().next().unwrap().cname,
        Some(&b"rivr@test"[..])
    );

    let mut prev = due;
    let mut now = due;
    let mut seq = 0u16;
    for _ in 0..50 {
        let next = s.poll_timeout().unwrap();
        let gap = next - prev;
        assert!(
            (Duration::from_millis(2500)..Duration::from_millis(7500)).contains(&gap),
            "{gap:?}"
        );
        // Media both ways until the report is due.
        while now < next {
            now += Duration::from_millis(20);
            s.write_audio(now, &[0; 160], 160, &mut out).unwrap();
            let _ = s.handle_rtp(
                now,
                peer,
                &peer_pkt(0, seq, u32::from(seq) * 160, PEER_SSRC, &[0; 160]),
            );
            seq = seq.wrapping_add(1);
        }
        let n = s.poll_rtcp(now, &mut out).unwrap();
        let first = rtcp_wire::packets(&out[..n]).next().unwrap().unwrap();
        let RtcpPacket::SenderReport {
            ssrc,
            info,
            mut blocks,
        } = first
        else {
            panic!("expected an SR once we send: {first:?}")
        };
        assert_eq!(ssrc, LOCAL_SSRC);
        assert_eq!(u64::from(info.packet_count), s.stats().packets_sent);
        assert_eq!(u64::from(info.octet_count), s.stats().bytes_sent);
        let b = blocks.next().unwrap();
        assert_eq!(b.ssrc, PEER_SSRC);
        assert_eq!(b.cumulative_lost, 0);
        assert_eq!(b.highest_seq, u32::from(seq) - 1);
        prev = now;
    }
    assert_eq!(s.stats().rtcp_sent, 51);
}

#[test]
fn rtt_from_the_peers_receiver_report() {
    let t0 = Instant::now();
    let peer_rtcp = addr("192.0.2.1:4001");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    s.set_wallclock(t0, 0xE000_0000_0000_0000);
    let mut out = [0u8; 1500];
    s.write_audio(t0, &[0; 160], 160, &mut out).unwrap();
    let due = s.poll_timeout().unwrap();
    let n = s.poll_rtcp(due, &mut out).unwrap();
    let Some(Ok(RtcpPacket::SenderReport { info, .. })) = rtcp_wire::packets(&out[..n]).next()
    else {
        panic!()
    };
    // The peer holds our SR for 250 ms; the path adds 40 ms each way.
    let block = ReportBlock {
        ssrc: LOCAL_SSRC,
        fraction_lost: 0,
        cumulative_lost: 0,
        highest_seq: 1,
        jitter: 0,
        last_sr: rtcp_wire::ntp_middle(info.ntp),
        delay_since_last_sr: 250 * 65536 / 1000,
    };
    let mut rr = [0u8; 64];
    let len = rtcp_wire::write_receiver_report(&mut rr, PEER_SSRC, &[block]).unwrap();
    s.handle_rtcp(
        due + Duration::from_millis(40 + 250 + 40),
        peer_rtcp,
        &rr[..len],
    );
    let rtt = s.stats().rtt.unwrap();
    assert!(
        rtt.abs_diff(Duration::from_millis(80)) < Duration::from_millis(1),
        "{rtt:?}"
    );
    assert_eq!(s.stats().remote_report, Some(block));
    // From elsewhere: ignored and counted.
    s.handle_rtcp(due, addr("198.51.100.1:4001"), &rr[..len]);
    assert_eq!(s.stats().rtcp_dropped, 1);
    assert_eq!(s.stats().rtcp_received, 1);
}

#[test]
fn our_rr_echoes_the_peers_sr() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let _ = s.handle_rtp(t0, peer, &peer_pkt(0, 1, 0, PEER_SSRC, b"x"));
    let mut sr = [0u8; 64];
    let info = SenderInfo {
        ntp: 0x1234_5678_9ABC_DEF0,
        ..Default::default()
    };
    let len = rtcp_wire::write_sender_report(&mut sr, PEER_SSRC, &info, &[]).unwrap();
    s.handle_rtcp(ms(t0, 100), addr("192.0.2.1:4001"), &sr[..len]);
    let mut out = [0u8; 200];
    let due = s.poll_timeout().unwrap();
    let n = s.poll_rtcp(due, &mut out).unwrap();
    let Some(Ok(RtcpPacket::ReceiverReport { mut blocks, .. })) =
        rtcp_wire::packets(&out[..n]).next()
    else {
        panic!()
    };
    let b = blocks.next().unwrap();
    assert_eq!(b.last_sr, 0x5678_9ABC);
    let held = due - ms(t0, 100);
    let dlsr = Duration::from_secs_f64(f64::from(b.delay_since_last_sr) / 65536.0);
    assert!(
        dlsr.abs_diff(held) < Duration::from_millis(1),
        "{dlsr:?} vs {held:?}"
    );
}

#[test]
fn bye_ends_rtcp() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let mut out = [0u8; 200];
    assert_eq!(s.write_bye(&mut out[..20]), None);
    let n = s.write_bye(&mut out).unwrap();
    let kinds: Vec<_> = rtcp_wire::packets(&out[..n])
        .map(|p| match p.unwrap() {
            RtcpPacket::ReceiverReport { .. } => "RR",
            RtcpPacket::SourceDescription(_) => "SDES",
            RtcpPacket::Goodbye { mut sources, .. } => {
                assert_eq!(sources.next(), Some(LOCAL_SSRC));
                "BYE"
            }
            _ => "?",
        })
        .collect();
    assert_eq!(kinds, vec!["RR", "SDES", "BYE"]);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.poll_rtcp(t0 + Duration::from_secs(60), &mut out), None);
}

#[test]
fn peer_bye_and_nat_rtcp_latch() {
    let t0 = Instant::now();
    let nat = addr("203.0.113.7:31000");
    let nat_rtcp = addr("203.0.113.7:31001");
    let mut s = RtpSession::new(cfg("10.0.0.5:4000"), t0);
    for seq in 0..u16::from(latch::LATCH_RUN) {
        let _ = s.handle_rtp(t0, nat, &peer_pkt(0, seq, 0, PEER_SSRC, b"x"));
    }
    assert_eq!(s.remote_rtp(), nat);
    assert_eq!(s.remote_rtcp(), nat_rtcp, "guess: RTP port + 1");
    let mut bye = [0u8; 32];
    let len = rtcp_wire::write_bye(&mut bye, &[PEER_SSRC], Some(b"done")).unwrap();
    // RTCP from another host is not trusted.
    s.handle_rtcp(t0, addr("198.51.100.1:31001"), &bye[..len]);
    assert!(!s.stats().remote_bye);
    // From the NAT's IP (a port we could not know): trusted, and latched.
    s.handle_rtcp(t0, addr("203.0.113.7:40000"), &bye[..len]);
    assert!(s.stats().remote_bye);
    assert_eq!(s.remote_rtcp(), addr("203.0.113.7:40000"));
    s.handle_rtcp(t0, addr("203.0.113.7:40002"), &bye[..len]);
    assert_eq!(s.stats().rtcp_dropped, 2);
}

/// The SR ties NTP time to RTP time (RFC 3550 §6.4.1): its RTP timestamp is
/// the media clock at the instant of its NTP timestamp, extrapolated from
/// the last packet sent, and its NTP time follows the wall-clock reference.
#[test]
fn sender_report_times_line_up() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let ntp0: u64 = 0xE8C0_0000_8000_0000; // some second and a half
    s.set_wallclock(t0, ntp0);
    let mut out = [0u8; 300];
    for i in 0..50u64 {
        s.write_audio(ms(t0, i * 20), &[0; 160], 160, &mut out)
            .unwrap();
    }
    let due = s.poll_timeout().unwrap();
    let n = s.poll_rtcp(due, &mut out).unwrap();
    let Some(Ok(RtcpPacket::SenderReport { info, .. })) = rtcp_wire::packets(&out[..n]).next()
    else {
        panic!()
    };
    // Last packet: timestamp 1000 + 49 * 160 at 980 ms.
    let since_last = due - ms(t0, 980);
    let expected_ts = 1000 + 49 * 160 + (since_last.as_secs_f64() * 8000.0) as u32;
    assert!(
        info.rtp_timestamp.abs_diff(expected_ts) <= 1,
        "{} vs {expected_ts}",
        info.rtp_timestamp
    );
    let elapsed = due - t0;
    let expected_ntp = ntp0 + ((elapsed.as_secs_f64()) * 4_294_967_296.0) as u64;
    assert!(
        info.ntp.abs_diff(expected_ntp) < 5000,
        "{:#x} vs {expected_ntp:#x}",
        info.ntp
    );
    assert_eq!((info.packet_count, info.octet_count), (50, 8000));
}

/// A report block describes one source: after the peer changes SSRC, loss on
/// the old one is in the session's totals but not in the new block.
#[test]
fn report_block_loss_is_per_source() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    for seq in [1u16, 2, 5, 6] {
        let _ = s.handle_rtp(t0, peer, &peer_pkt(0, seq, 0, PEER_SSRC, b"x"));
    }
    // An SR from the old source: its LSR must not be echoed for the new one.
    let mut sr = [0u8; 64];
    let info = SenderInfo {
        ntp: 0x1234_5678_9ABC_DEF0,
        ..Default::default()
    };
    let len = rtcp_wire::write_sender_report(&mut sr, PEER_SSRC, &info, &[]).unwrap();
    s.handle_rtcp(t0, addr("192.0.2.1:4001"), &sr[..len]);
    for seq in 100u16..104 {
        let _ = s.handle_rtp(t0, peer, &peer_pkt(0, seq, 0, 0x7777, b"x"));
    }
    assert_eq!(s.stats().packets_lost, 2);
    let mut out = [0u8; 200];
    let due = s.poll_timeout().unwrap();
    let n = s.poll_rtcp(due, &mut out).unwrap();
    let Some(Ok(RtcpPacket::ReceiverReport { mut blocks, .. })) =
        rtcp_wire::packets(&out[..n]).next()
    else {
        panic!()
    };
    let b = blocks.next().unwrap();
    assert_eq!((b.ssrc, b.cumulative_lost, b.highest_seq), (0x7777, 0, 103));
    assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0));
}

/// Reports are taken only from the source we hear: an SR or RR under another
/// SSRC (even from the trusted address) changes nothing.
#[test]
fn reports_from_another_ssrc_are_ignored() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.1:4000");
    let peer_rtcp = addr("192.0.2.1:4001");
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let _ = s.handle_rtp(t0, peer, &peer_pkt(0, 1, 0, PEER_SSRC, b"x"));
    let block = ReportBlock {
        ssrc: LOCAL_SSRC,
        last_sr: 5,
        ..Default::default()
    };
    let info = SenderInfo {
        ntp: 0x1234_5678_9ABC_DEF0,
        ..Default::default()
    };
    let mut buf = [0u8; 128];
    let n = rtcp_wire::write_sender_report(&mut buf, 0xBAD, &info, &[block]).unwrap();
    s.handle_rtcp(t0, peer_rtcp, &buf[..n]);
    let n = rtcp_wire::write_receiver_report(&mut buf, 0xBAD, &[block]).unwrap();
    s.handle_rtcp(t0, peer_rtcp, &buf[..n]);
    assert_eq!(s.stats().remote_report, None);
    assert_eq!(s.stats().rtt, None);
    let mut out = [0u8; 200];
    let due = s.poll_timeout().unwrap();
    let n = s.poll_rtcp(due, &mut out).unwrap();
    let Some(Ok(RtcpPacket::ReceiverReport { mut blocks, .. })) =
        rtcp_wire::packets(&out[..n]).next()
    else {
        panic!()
    };
    assert_eq!(blocks.next().unwrap().last_sr, 0);
}

/// RFC 3550 §6.4: a participant that has stopped sending (for two report
/// intervals) sends RRs again.
#[test]
fn back_to_receiver_reports_after_we_stop_sending() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
    let mut out = [0u8; 300];
    s.write_audio(t0, &[0; 160], 160, &mut out).unwrap();
    let kind = |s: &mut RtpSession, at: Instant, out: &mut [u8; 300]| {
        let n = s.poll_rtcp(at, out).unwrap();
        match rtcp_wire::packets(&out[..n]).next() {
            Some(Ok(RtcpPacket::SenderReport { .. })) => "SR",
            Some(Ok(RtcpPacket::ReceiverReport { .. })) => "RR",
            other => panic!("{other:?}"),
        }
    };
    let due = s.poll_timeout().unwrap();
    assert_eq!(kind(&mut s, due, &mut out), "SR");
    let late = t0 + Duration::from_secs(20);
    assert_eq!(kind(&mut s, late, &mut out), "RR");
}
