//! Seed inputs of the `rtp` target: calls that reach the decoder, the
//! in-band detector, the RFC 4733 receiver, latching and RTCP.

use super::input::Seed;
use super::rtp::{
    PacketSpec, KIND_AUDIO, KIND_EVENT, KIND_MARKER, OP_PACKET, OP_RTCP, OP_STALL, OP_TICK, SRC_NAT,
};
use crate::codec::Codec;
use crate::media::g711::{self, Law};
use crate::media::opus::{OpusConfig, OpusEncoder};
use crate::media::rtcp::{self, ReportBlock};
use crate::media::tone::ToneGenerator;

/// Configuration bytes (see `rtp::session_config`).
const PCMU_TE8K: u8 = 0;
const PCMA_TE8K: u8 = 1;
const OPUS_TE48K: u8 = 2 | 0x08;
const OPUS_NO_TE: u8 = 2 | 0x04;

fn packet(seed: &mut Seed, src: u8, spec: PacketSpec, payload: &[u8]) {
    seed.u8(OP_PACKET).u8(src);
    spec.write(seed);
    seed.bytes16(payload);
}

fn audio(seed: &mut Seed, src: u8, ts_step: u32, marker: bool, payload: &[u8]) {
    let kind = KIND_AUDIO | if marker { KIND_MARKER } else { 0 };
    let frame = if ts_step >= 960 { 960 } else { 160 };
    let spec = PacketSpec {
        kind,
        // A timestamp step of more than one frame is a lost packet, except
        // after an event (whose packets took sequence numbers of their own).
        seq_step: if ts_step > frame && ts_step != 960 {
            (ts_step / frame) as u16
        } else {
            1
        },
        ts_step,
        ..PacketSpec::default()
    };
    packet(seed, src, spec, payload);
}

fn tick(seed: &mut Seed, ms: u8) {
    seed.u8(OP_TICK).u8(ms);
}

/// 20 ms frames of 8 kHz audio: silence, then `digit` as a tone from frame
/// 10 for `tone_frames` frames.
fn frames(n: usize, digit: char, tone_frames: usize) -> Vec<[i16; 160]> {
    let mut tone = ToneGenerator::dtmf(digit, 20 * tone_frames as u32, 0, -10.0);
    (0..n)
        .map(|i| {
            let mut pcm = [0i16; 160];
            if i >= 10 {
                if let Some(t) = tone.as_mut() {
                    t.fill(&mut pcm);
                }
            }
            pcm
        })
        .collect()
}

/// A press of `event` as RFC 4733 packets: start (marker), two updates,
/// three end packets; then audio resumes after the event's duration.
fn event(seed: &mut Seed, src: u8, event: u8, frame: u32) {
    for i in 0..6u32 {
        let end = i >= 3;
        let duration = (frame * (i.min(3) + 1)) as u16;
        let kind = KIND_EVENT | if i == 0 { KIND_MARKER } else { 0 };
        let spec = PacketSpec {
            kind,
            seq_step: 1,
            ts_step: if i == 0 { frame } else { 0 },
            ..PacketSpec::default()
        };
        let payload = [
            event,
            if end { 0x80 | 10 } else { 10 },
            (duration >> 8) as u8,
            duration as u8,
        ];
        packet(seed, src, spec, &payload);
        tick(seed, 20);
    }
}

fn rtcp_rr(seed: &mut Seed, src: u8) {
    let mut out = [0u8; 256];
    let block = ReportBlock {
        ssrc: 0x1234_5678,
        fraction_lost: 3,
        cumulative_lost: 2,
        highest_seq: 1050,
        jitter: 12,
        last_sr: 0,
        delay_since_last_sr: 0,
    };
    let Ok(n) = rtcp::write_receiver_report(&mut out, super::rtp::PEER_SSRC, &[block]) else {
        return;
    };
    let Ok(m) = rtcp::write_sdes_cname(out.get_mut(n..).unwrap_or_default(), 1, b"peer") else {
        return;
    };
    seed.u8(OP_RTCP)
        .u8(src)
        .bytes16(out.get(..n + m).unwrap_or_default());
}

fn g711_call(config: u8, law: Law, src: u8, digit: char) -> Vec<u8> {
    let mut seed = Seed::new();
    seed.u8(config);
    for (i, pcm) in frames(40, digit, 6).iter().enumerate() {
        let mut payload = [0u8; 160];
        g711::encode(law, pcm, &mut payload);
        audio(&mut seed, src, 160, i == 0, &payload);
        tick(&mut seed, 20);
    }
    event(&mut seed, src, 7, 160);
    for (i, pcm) in frames(10, '1', 0).iter().enumerate() {
        let mut payload = [0u8; 160];
        g711::encode(law, pcm, &mut payload);
        // The first frame after the event's six packets comes 6 frames on.
        audio(
            &mut seed,
            src,
            if i == 0 { 960 } else { 160 },
            i == 0,
            &payload,
        );
        tick(&mut seed, 20);
    }
    rtcp_rr(&mut seed, if src == SRC_NAT { 2 } else { 5 });
    // Our first report is due 1.25–3.75 s into the call.
    seed.u8(OP_STALL).u16(300);
    tick(&mut seed, 20);
    seed.into_bytes()
}

fn opus_call(config: u8, digit: char) -> Vec<u8> {
    let mut seed = Seed::new();
    seed.u8(config);
    let Ok(mut enc) = OpusEncoder::new(OpusConfig {
        inband_fec: true,
        packet_loss_pct: 10,
        ..OpusConfig::at_rate(8000).unwrap_or_default()
    }) else {
        return seed.into_bytes();
    };
    let step = Codec::Opus.timestamp_step_20ms();
    let mut buf = [0u8; 1500];
    let mut lost = 0;
    for (i, pcm) in frames(40, digit, 6).iter().enumerate() {
        let Ok(n) = enc.encode(pcm, &mut buf) else {
            continue;
        };
        if i == 13 {
            // A lost packet: the next one's FEC rebuilds it.
            lost += step;
        } else {
            audio(
                &mut seed,
                0,
                step + lost,
                i == 0,
                buf.get(..n).unwrap_or_default(),
            );
            lost = 0;
        }
        tick(&mut seed, 20);
    }
    event(&mut seed, 0, 11, step);
    rtcp_rr(&mut seed, 5);
    seed.into_bytes()
}

/// Every seed.
pub(super) fn all() -> Vec<Vec<u8>> {
    vec![
        g711_call(PCMU_TE8K, Law::Ulaw, 0, '5'),
        g711_call(PCMA_TE8K, Law::Alaw, SRC_NAT, '9'),
        opus_call(OPUS_TE48K, '#'),
        opus_call(OPUS_NO_TE, '3'),
    ]
}
