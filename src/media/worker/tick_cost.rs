//! A fixed worker workload for measuring what one call costs per tick:
//! `CALLS` answered calls on one worker, each playing a prompt to its
//! peer while the peer sends it speech (one PCMU packet per tick), served
//! for `TICKS` ticks at the real 20 ms cadence. Only `Worker::tick` is
//! timed (and, under callgrind, counted: `--toggle-collect` on it); the
//! peers' sending and draining happen between ticks.
//!
//! ```text
//! cargo test --release --lib media::worker::tick_cost -- --ignored --nocapture
//! valgrind --tool=callgrind --collect-atstart=no \
//!   --toggle-collect='rivr::media::worker::Worker::tick' <test binary> \
//!   --ignored --exact media::worker::tick_cost::worker_tick_cost
//! ```
//!
//! `worker_tick_cost` uses only what the worker had before the per-call
//! media core was split out (`Worker::new`, `apply(Add/Start/
//! PeerConfirmed/Play)`, `tick`), so it measures both sides of that
//! change. The `bridged` variants put the same calls in bridges (two
//! joins each, nothing playing): PCMU↔PCMA, and Opus↔PCMA (one live Opus
//! encoder per bridge). The `opus` variants play the prompt over Opus: at
//! 20 ms, and to peers that asked for 10 ms packets, from the prompt's
//! shared 10 ms frames (`opus_10ms_shared`) or through each leg's own
//! encoder, as a first play does before the prompt has them
//! (`opus_10ms_live`).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::codec::Codec;
use crate::media::g711;
use crate::media::opus::{OpusConfig, OpusEncoder};
use crate::media::ports::PortAllocator;
use crate::media::prompt::Prompt;
use crate::media::rtp_session::RtpSessionConfig;

const CALLS: usize = 50;
const TICKS: u32 = 500;

/// Speech-like 8 kHz audio: bursts of a wobbling two-tone with pauses.
fn speechlike(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = i as f64 / 8000.0;
            if (i / 2400) % 4 == 3 {
                return 0;
            }
            let f = 180.0 + 60.0 * (t * 3.0).sin();
            let x = (t * f * std::f64::consts::TAU).sin() * 0.5
                + (t * 3.1 * f * std::f64::consts::TAU).sin() * 0.2;
            (x * 12_000.0) as i16
        })
        .collect()
}

/// What the calls of a workload do.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// Bridged in pairs (0↔1, 2↔3, …), nothing playing.
    Bridged,
    /// Each plays the prompt, sent `ptime_ms` packets; `shared`: the
    /// prompt has its 10 ms Opus frames before the play starts (else no
    /// preparer makes them, and 10 ms legs encode the prompt themselves).
    Play { ptime_ms: u32, shared: bool },
}

/// The calls of a workload: each one's codec, and what they do.
fn run(label: &str, codec_of: impl Fn(usize) -> Codec, load: Load) {
    let lo = IpAddr::from([127, 0, 0, 1]);
    let (_tx, rx) = crossbeam_channel::unbounded();
    let mut w = Worker::new(
        0,
        rx,
        Arc::new(MediaFailures::default()),
        Arc::new(super::totals::MediaTotals::default()),
        super::live::LiveTable::default(),
        super::Preparer::none(),
    );
    let ports = Arc::new(PortAllocator::new(44_000, 44_400));
    let prompt = Arc::new(Prompt::from_pcm_8k("load", speechlike(8000 * 12)));
    let bridged = load == Load::Bridged;
    let ptime_ms = match load {
        Load::Play { ptime_ms, shared } => {
            if shared {
                prompt.prepare_opus_10ms();
            }
            ptime_ms
        }
        Load::Bridged => 20,
    };
    let talk = speechlike(8000 * 12);
    // What the peers send, per codec: 20 ms payloads of `talk`.
    let g711_of = |codec: Codec| -> Vec<Vec<u8>> {
        talk.chunks(160)
            .map(|f| {
                let mut b = vec![0u8; 160];
                g711::encode(codec.g711_law().unwrap_or(g711::Law::Ulaw), f, &mut b);
                b
            })
            .collect()
    };
    let opus_frames = || -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(OpusConfig::at_rate(8000).unwrap()).unwrap();
        let mut buf = [0u8; 1500];
        talk.chunks_exact(160)
            .map(|f| {
                let n = enc.encode(f, &mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    };
    let payloads = [
        g711_of(Codec::Pcmu),
        g711_of(Codec::Pcma),
        if (0..CALLS).any(|i| codec_of(i) == Codec::Opus) {
            opus_frames()
        } else {
            Vec::new()
        },
    ];
    let payloads_of = |codec: Codec| match codec {
        Codec::Pcmu => &payloads[0],
        Codec::Pcma => &payloads[1],
        Codec::Opus => &payloads[2],
    };
    let t0 = Instant::now();
    let mut peers: Vec<(UdpSocket, SocketAddr, Codec)> = Vec::with_capacity(CALLS);
    let mut owners = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let codec = codec_of(i);
        let peer = UdpSocket::bind((lo, 0)).unwrap();
        peer.set_nonblocking(true).unwrap();
        let remote = peer.local_addr().unwrap();
        let pair = ports.allocate(lo).unwrap();
        let local = SocketAddr::new(lo, pair.port);
        let call = MediaId(i as u64 + 1);
        let (events, heard) = crossbeam_channel::unbounded::<MediaEvent>();
        owners.push(heard);
        let setup = MediaCallSetup {
            call,
            ports: pair,
            session: RtpSessionConfig {
                local_ssrc: 1,
                payload_type: codec.offer_payload_type(),
                clock_rate: codec.clock_rate(),
                telephone_event_pt: Some(101),
                telephone_event_rate: 8000,
                remote_rtp: remote,
                remote_rtcp: remote,
                initial_seq: 1,
                initial_timestamp: 1,
                cname: "load".into(),
                ptime_ms,
            },
            codec,
            configured: true,
            events: Box::new(events),
            allocator: ports.clone(),
            early_media_unverified: Duration::ZERO,
            inband_dtmf: crate::media::inband_policy::InbandDtmf::Always,
        };
        w.apply(MediaCommand::Add(Box::new(setup)), t0);
        w.apply(MediaCommand::Start { call, early: false }, t0);
        w.apply(MediaCommand::PeerConfirmed { call }, t0);
        if !bridged {
            w.apply(
                MediaCommand::Play {
                    call,
                    id: 1,
                    prompts: vec![prompt.clone()],
                    interruptible: false,
                },
                t0,
            );
        }
        peers.push((peer, local, codec));
    }
    if bridged {
        for i in (0..CALLS).step_by(2) {
            let (a, b) = (MediaId(i as u64 + 1), MediaId(i as u64 + 2));
            w.apply(
                MediaCommand::Join {
                    listener: a,
                    source: b,
                },
                t0,
            );
            w.apply(
                MediaCommand::Join {
                    listener: b,
                    source: a,
                },
                t0,
            );
        }
    }
    let mut busy = Duration::ZERO;
    let mut packet = [0u8; 1500];
    let mut sink = [0u8; 2048];
    let start = Instant::now();
    for t in 0..TICKS {
        for (peer, local, codec) in &peers {
            let frames = payloads_of(*codec);
            let payload = &frames[t as usize % frames.len()];
            let step = codec.timestamp_step_20ms();
            packet[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x5e, 0xed]);
            packet[1] = codec.offer_payload_type();
            packet[2..4].copy_from_slice(&(t as u16).to_be_bytes());
            packet[4..8].copy_from_slice(&(t * step).to_be_bytes());
            packet[12..12 + payload.len()].copy_from_slice(payload);
            let _ = peer.send_to(&packet[..12 + payload.len()], local);
        }
        let now = Instant::now();
        w.tick(now);
        busy += now.elapsed();
        for (peer, _, _) in &peers {
            while peer.recv_from(&mut sink).is_ok() {}
        }
        let due = start + TICK * (t + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let per = busy / (CALLS as u32 * TICKS);
    println!(
        "worker tick: {CALLS} {label}, {TICKS} ticks: \
         {:.2} ms per tick, {} ns per call-tick",
        busy.as_secs_f64() * 1000.0 / f64::from(TICKS),
        per.as_nanos()
    );
}

#[test]
#[ignore = "a cost measurement, run by hand (see the module doc)"]
fn worker_tick_cost() {
    let load = Load::Play {
        ptime_ms: 20,
        shared: false,
    };
    run("playing calls receiving PCMU", |_| Codec::Pcmu, load);
}

#[test]
#[ignore = "a cost measurement, run by hand (see the module doc)"]
fn worker_tick_cost_opus_20ms() {
    let load = Load::Play {
        ptime_ms: 20,
        shared: false,
    };
    run("Opus calls playing at 20 ms", |_| Codec::Opus, load);
}

#[test]
#[ignore = "a cost measurement, run by hand (see the module doc)"]
fn worker_tick_cost_opus_10ms_shared() {
    let load = Load::Play {
        ptime_ms: 10,
        shared: true,
    };
    run(
        "Opus calls playing at 10 ms, shared frames",
        |_| Codec::Opus,
        load,
    );
}

#[test]
#[ignore = "a cost measurement, run by hand (see the module doc)"]
fn worker_tick_cost_opus_10ms_live() {
    let load = Load::Play {
        ptime_ms: 10,
        shared: false,
    };
    run(
        "Opus calls playing at 10 ms, live encoded",
        |_| Codec::Opus,
        load,
    );
}

#[test]
#[ignore = "a cost measurement, run by hand (see the module doc)"]
fn worker_tick_cost_bridged_g711() {
    let codec = |i: usize| if i % 2 == 0 { Codec::Pcmu } else { Codec::Pcma };
    run("calls in PCMU-PCMA bridges", codec, Load::Bridged);
}

#[test]
#[ignore = "a cost measurement, run by hand (see the module doc)"]
fn worker_tick_cost_bridged_opus() {
    let codec = |i: usize| if i % 2 == 0 { Codec::Opus } else { Codec::Pcma };
    run("calls in Opus-PCMA bridges", codec, Load::Bridged);
}
