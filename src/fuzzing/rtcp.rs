//! The `rtcp` target: the compound-packet walker in `media::rtcp` and the
//! RTP session's RTCP side (`RtpSession::handle_rtcp`: trusted sources,
//! SR/RR blocks on our SSRC, RTT from LSR/DLSR, BYE), on a virtual clock.
//!
//! Every datagram is first walked on its own: each packet's fields are read
//! and every SR, RR, BYE and CNAME rivr can parse is written back with
//! rivr's writers and must parse to the same values. Then the session takes
//! it from one of a few source addresses, between ticks on which it sends
//! audio and its own reports (which must parse too).

use std::time::{Duration, Instant};

use super::input::{Input, Seed};
use super::rtp::{self, source, PacketSpec, PeerStream, KIND_AUDIO, PEER_SSRC, SRC_NAT};
use crate::media::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};
use crate::media::rtp_session::RtpSession;

/// A datagram from a source.
const OP_DATAGRAM: u8 = 0;
/// A report from the peer with a block on our SSRC whose LSR/DLSR answer
/// our last SR (so RTT is computed), possibly skewed.
const OP_REPORT_ON_US: u8 = 1;
/// An RTP audio packet from a source (sets the peer's SSRC, latches).
const OP_RTP: u8 = 2;
/// Advance the clock 0–2.55 s, send audio and RTCP when due.
const OP_TICK: u8 = 3;
/// A BYE for our own stream written for us (`write_bye`).
const OP_BYE: u8 = 4;
const OPS: u8 = 5;

const MAX_OPS: usize = 4096;
const LOCAL_SSRC: u32 = 0x1234_5678;

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = exercise(data);
}

/// What a run reached (for the seed tests).
#[derive(Debug, Clone, Default)]
pub struct Reached {
    pub packets_walked: u64,
    pub round_trips: u64,
    pub rtt: Option<Duration>,
    pub rtcp_received: u64,
    pub remote_bye: bool,
}

/// Runs `data`; returns what it reached.
pub fn exercise(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let (codec, cfg) = rtp::session_config(input.u8());
    let mut now = Instant::now();
    let mut session = RtpSession::new(cfg.clone(), now);
    let mut peer = PeerStream {
        seq: 0,
        timestamp: 0,
    };
    let mut reached = Reached::default();
    let mut out = vec![0u8; 1500];
    let mut built = Vec::with_capacity(1500);
    // The NTP time (middle 32 bits) of our last SR, as the peer saw it.
    let mut our_last_sr: Option<u32> = None;
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % OPS {
            OP_DATAGRAM => {
                let from = source(input.u8());
                let datagram = input.bytes16(2048);
                walk(datagram, &mut reached);
                session.handle_rtcp(now, from, datagram);
            }
            OP_REPORT_ON_US => {
                let from = source(input.u8());
                let skew = input.u16();
                let dlsr = input.u32();
                let sender = input.u8() & 1 != 0;
                let block = ReportBlock {
                    ssrc: LOCAL_SSRC,
                    fraction_lost: input.u8(),
                    cumulative_lost: 0,
                    highest_seq: 0,
                    jitter: 0,
                    last_sr: our_last_sr.unwrap_or(0).wrapping_add(u32::from(skew)),
                    delay_since_last_sr: dlsr,
                };
                let n = if sender {
                    rtcp::write_sender_report(
                        built_buf(&mut built),
                        PEER_SSRC,
                        &SenderInfo::default(),
                        &[block],
                    )
                } else {
                    rtcp::write_receiver_report(built_buf(&mut built), PEER_SSRC, &[block])
                };
                if let Ok(n) = n {
                    built.truncate(n);
                    walk(&built, &mut reached);
                    session.handle_rtcp(now, from, &built);
                }
            }
            OP_RTP => {
                let from = source(input.u8());
                let spec = PacketSpec {
                    kind: KIND_AUDIO,
                    seq_step: 1,
                    ts_step: codec.timestamp_step_20ms(),
                    ..PacketSpec::default()
                };
                rtp::build_packet(&mut built, &spec, &cfg, &mut peer, &[0xFF; 160]);
                let _ = session.handle_rtp(now, from, &built);
            }
            OP_TICK => {
                now += Duration::from_millis(u64::from(input.u8()) * 10);
                let step = codec.timestamp_step_20ms();
                let _ = session.write_audio(now, &[0xFF; 160], step, &mut out);
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    if let Some(n) = session.poll_rtcp(now, &mut out) {
                        let sent = out.get(..n).unwrap_or_default();
                        our_last_sr = check_own(sent).or(our_last_sr);
                    }
                }
            }
            _ => {
                if let Some(n) = session.write_bye(&mut out) {
                    let sent = out.get(..n).unwrap_or_default();
                    check_own(sent);
                    assert!(session.poll_timeout().is_none());
                }
            }
        }
        if let Some(rtt) = session.stats().rtt {
            assert!(rtt < Duration::from_secs(60), "RTT {rtt:?}");
            reached.rtt = Some(rtt);
        }
    }
    reached.rtcp_received = session.stats().rtcp_received;
    reached.remote_bye = session.stats().remote_bye;
    reached
}

/// A zeroed 1500-byte buffer in `v`.
fn built_buf(v: &mut Vec<u8>) -> &mut [u8] {
    v.clear();
    v.resize(1500, 0);
    v
}

/// Our own report parses cleanly; returns its SR's NTP middle 32 bits.
fn check_own(sent: &[u8]) -> Option<u32> {
    let mut lsr = None;
    for p in rtcp::packets(sent) {
        match p {
            Ok(RtcpPacket::SenderReport { ssrc, info, .. }) => {
                assert_eq!(ssrc, LOCAL_SSRC);
                lsr = Some(rtcp::ntp_middle(info.ntp));
            }
            Ok(_) => {}
            Err(e) => panic!("rivr sent bad RTCP: {e}"),
        }
    }
    lsr
}

/// Walks a datagram, reading every field, and round-trips what rivr can
/// write.
fn walk(datagram: &[u8], reached: &mut Reached) {
    let mut out = [0u8; 2048];
    for packet in rtcp::packets(datagram) {
        let Ok(packet) = packet else { break };
        reached.packets_walked += 1;
        match packet {
            RtcpPacket::SenderReport { ssrc, info, blocks } => {
                let blocks: Vec<ReportBlock> = blocks.collect();
                let n = rtcp::write_sender_report(&mut out, ssrc, &info, &blocks).unwrap();
                let again = rtcp::packets(out.get(..n).unwrap()).next();
                let Some(Ok(RtcpPacket::SenderReport {
                    ssrc: s2,
                    info: i2,
                    blocks: b2,
                })) = again
                else {
                    panic!("SR did not round-trip: {again:?}");
                };
                assert_eq!((s2, i2), (ssrc, info));
                assert_eq!(b2.collect::<Vec<_>>(), blocks);
                reached.round_trips += 1;
            }
            RtcpPacket::ReceiverReport { ssrc, blocks } => {
                let blocks: Vec<ReportBlock> = blocks.collect();
                let n = rtcp::write_receiver_report(&mut out, ssrc, &blocks).unwrap();
                let again = rtcp::packets(out.get(..n).unwrap()).next();
                let Some(Ok(RtcpPacket::ReceiverReport {
                    ssrc: s2,
                    blocks: b2,
                })) = again
                else {
                    panic!("RR did not round-trip: {again:?}");
                };
                assert_eq!(s2, ssrc);
                assert_eq!(b2.collect::<Vec<_>>(), blocks);
                reached.round_trips += 1;
            }
            RtcpPacket::SourceDescription(chunks) => {
                for chunk in chunks {
                    let Some(cname) = chunk.cname else { continue };
                    let n = rtcp::write_sdes_cname(&mut out, chunk.ssrc, cname).unwrap();
                    let again = rtcp::packets(out.get(..n).unwrap()).next();
                    let Some(Ok(RtcpPacket::SourceDescription(mut c2))) = again else {
                        panic!("SDES did not round-trip: {again:?}");
                    };
                    assert_eq!(c2.next(), Some(chunk));
                    reached.round_trips += 1;
                }
            }
            RtcpPacket::Goodbye { sources, reason } => {
                let sources: Vec<u32> = sources.collect();
                let n = rtcp::write_bye(&mut out, &sources, reason).unwrap();
                let again = rtcp::packets(out.get(..n).unwrap()).next();
                let Some(Ok(RtcpPacket::Goodbye {
                    sources: s2,
                    reason: r2,
                })) = again
                else {
                    panic!("BYE did not round-trip: {again:?}");
                };
                assert_eq!(s2.collect::<Vec<_>>(), sources);
                assert_eq!(r2, reason);
                reached.round_trips += 1;
            }
            RtcpPacket::Other { body, .. } => assert!(body.len() <= datagram.len()),
        }
    }
}

/// Seeds: a peer's SR + SDES + BYE compound, a report on our SR giving an
/// RTT, a NAT'd peer whose RTCP comes from another port, junk after a good
/// packet.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut compound = [0u8; 512];
    let block = ReportBlock {
        ssrc: LOCAL_SSRC,
        fraction_lost: 10,
        cumulative_lost: -3,
        highest_seq: 70_000,
        jitter: 40,
        last_sr: 0,
        delay_since_last_sr: 0,
    };
    let info = SenderInfo {
        ntp: 0xE000_0000_8000_0000,
        rtp_timestamp: 1234,
        packet_count: 50,
        octet_count: 8000,
    };
    let mut n = rtcp::write_sender_report(&mut compound, PEER_SSRC, &info, &[block]).unwrap_or(0);
    n += rtcp::write_sdes_cname(&mut compound[n..], PEER_SSRC, b"peer@example").unwrap_or(0);
    n += rtcp::write_bye(&mut compound[n..], &[PEER_SSRC], Some(b"done")).unwrap_or(0);
    let compound = &compound[..n];

    let call = |src_rtp: u8, src_rtcp: u8, tail: &[u8]| {
        let mut s = Seed::new();
        s.u8(0);
        for _ in 0..6 {
            s.u8(OP_RTP).u8(src_rtp).u8(OP_TICK).u8(2);
        }
        // Our first SR is due 1.25–3.75 s in.
        for _ in 0..3 {
            s.u8(OP_TICK).u8(150);
        }
        s.u8(OP_REPORT_ON_US)
            .u8(src_rtcp)
            .u16(0)
            .u32(0x0000_4000)
            .u8(0)
            .u8(5);
        s.u8(OP_REPORT_ON_US).u8(src_rtcp).u16(0).u32(0).u8(1).u8(0);
        s.u8(OP_DATAGRAM).u8(src_rtcp).bytes16(tail);
        s.u8(OP_TICK).u8(250).u8(OP_BYE);
        s.into_bytes()
    };
    let mut junk = compound.to_vec();
    junk.extend_from_slice(&[0x81, 0xC9, 0x00, 0x10, 1, 2, 3]);
    vec![
        call(0, 5, compound),
        call(SRC_NAT, 2, compound),
        call(0, 5, &junk),
        {
            let mut s = Seed::new();
            s.u8(1).u8(OP_DATAGRAM).u8(5).bytes16(compound);
            s.into_bytes()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_reach_rtt_round_trips_and_bye() {
        let seeds = seeds();
        for (i, s) in seeds.iter().enumerate() {
            let r = exercise(s);
            assert!(r.round_trips >= 3, "seed {i}: {r:?}");
            if i < 3 {
                assert!(r.rtt.is_some(), "seed {i}: {r:?}");
                assert!(r.rtcp_received >= 3, "seed {i}: {r:?}");
            }
        }
        assert!(exercise(&seeds[0]).remote_bye);
        assert!(exercise(&seeds[1]).remote_bye);
    }

    #[test]
    fn from_an_unknown_source_rtcp_is_dropped() {
        let mut s = Seed::new();
        s.u8(0).u8(OP_REPORT_ON_US).u8(3).u16(0).u32(0).u8(0).u8(0);
        assert_eq!(exercise(&s.into_bytes()).rtcp_received, 0);
    }
}
