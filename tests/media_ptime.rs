//! Packet time end to end (issue 10, "ptime"): `rivr serve` called by SIPp
//! on 127.0.0.1 whose offer says `a=ptime:30`, with the caller's RTP owned
//! by the test and speaking 30 ms packets both ways:
//!
//! - rivr answers `a=ptime:30` and sends PCMU in 30 ms packets (240 bytes,
//!   timestamps stepping by 240), about 33 a second; the prompt it plays
//!   correlates with the prompt's source;
//! - the caller sends 30 ms packets (240 bytes, timestamp step 240) with
//!   in-band DTMF keys in them; each packet straddles rivr's 20 ms ticks,
//!   so a key is heard only if rivr decodes every packet whole (before
//!   this, rivr kept the first 160 samples of each and dropped the rest).
//!
//! Inbound the caller is SIPp (`uac_ptime_wait_bye.xml`); outbound the
//! carrier is SIPp (`uas_answer_ptime.xml`) answering `a=ptime:30` to
//! rivr's offer (which states `a=ptime:20` and `a=maxptime:60`).
//!
//! Two more calls:
//!
//! - an Opus caller offering `a=ptime:10` (`uac_opus_ptime_wait_bye.xml`)
//!   gets 10 ms Opus packets only (TOC: one 10 ms frame), timestamps
//!   stepping 480, about 100 a second; `main_menu` is played twice, first
//!   through the leg's own encoder (the prompt has no 10 ms frames yet),
//!   then from the prompt's shared 10 ms frames, byte for byte as this
//!   process encodes them; both decode (libopus) to the prompt;
//! - a PCMU caller re-INVITEs mid-prompt with only `a=ptime` changed,
//!   20 → 30 → 20 ms (`uac_reinvite_ptime.xml`): rivr answers each with
//!   the new ptime and switches its packet size on the same stream —
//!   same SSRC, contiguous sequence numbers, each timestamp step the
//!   previous packet's length, no gap — and the prompt heard across both
//!   switches is whole.
//!
//! The sender here is the test's own (a socket, a clock, rivr's G.711
//! table encoder and tone generator, timestamps counted by hand); the
//! keys rivr recognised come back in the call's CDR.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rivr::media::g711::{self, Law};
use rivr::media::opus::packet::toc;
use rivr::media::prompt::Prompt;
use rivr::media::tone::ToneGenerator;

use common::audio::{align, decode_opus_ptime, ncc_at, to_f32, Heard};
use common::caller::{prompt, SIGNALLING};
use common::carrier::Carrier;
use common::dialer::{CallSetup, Dialer};
use common::rtp::{parse_rtp, Packet, RtpPeer};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// The number routed to [`PLAY_THEN_GATHER`].
const NUMBER: &str = "4000";

/// Plays the menu prompt whole (not barge-in, so what the caller sends
/// meanwhile cannot cut it), then gathers keys until 2.5 s pass without
/// one and stores them in the CDR.
const PLAY_THEN_GATHER: &str = r#"
answer();
play("main_menu");
let keys = gather(#{ max_digits: 64, finish_on: "", timeout: 20000, inter_digit_timeout: 2500 });
set_result("keys", keys);
hangup();
"#;

/// The issue's bar for "the audio heard is the prompt".
const MIN_NCC: f64 = 0.9;

/// The caller's packet time.
const PTIME_MS: u32 = 30;
/// Samples (and PCMU bytes) in one of its packets.
const PACKET: usize = PTIME_MS as usize * 8;

/// What the caller's sender is told.
enum Send {
    /// Key, tone on, tone off (ms).
    Key(char, u32, u32),
}

/// A caller's RTP socket that sends PCMU in 30 ms packets and records
/// everything it receives.
struct Peer30 {
    port: u16,
    received: Arc<Mutex<Vec<Packet>>>,
    stop: Arc<AtomicBool>,
    commands: Option<mpsc::Sender<Send>>,
    threads: Vec<JoinHandle<()>>,
    /// (bytes, timestamp) of every packet sent.
    sent: Arc<Mutex<Vec<(usize, u32)>>>,
    /// rivr's RTP address once the answer gave it; nothing is sent before.
    dest: Arc<Mutex<Option<SocketAddr>>>,
    _rtcp: UdpSocket,
}

impl Peer30 {
    fn bind() -> Peer30 {
        for _ in 0..200 {
            let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
            let port = rtp.local_addr().expect("RTP address").port();
            if port % 2 != 0 {
                continue;
            }
            let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) else {
                continue;
            };
            rtp.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("read timeout");
            let received = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let rx = {
                let (sock, received, stop) = (
                    rtp.try_clone().expect("clone"),
                    received.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((n, from)) = sock.recv_from(&mut buf) {
                            if let Some(p) = parse_rtp(&buf[..n], Instant::now(), from) {
                                received.lock().unwrap().push(p);
                            }
                        }
                    }
                })
            };
            let mut peer = Peer30 {
                port,
                received,
                stop,
                commands: None,
                threads: vec![rx],
                sent: Arc::new(Mutex::new(Vec::new())),
                dest: Arc::new(Mutex::new(None)),
                _rtcp: rtcp,
            };
            peer.start_sender(rtp);
            return peer;
        }
        panic!("no free even RTP port pair");
    }

    /// Starts the sender thread; it waits for the destination first.
    fn start_sender(&mut self, sock: UdpSocket) {
        let (tx, rx) = mpsc::channel::<Send>();
        self.commands = Some(tx);
        let stop = self.stop.clone();
        let sent = self.sent.clone();
        let dest = self.dest.clone();
        self.threads.push(std::thread::spawn(move || {
            let mut seq: u16 = 0x4321;
            let mut ts: u32 = 0x1000_0000;
            let mut tone: Option<ToneGenerator> = None;
            let mut started: Option<Instant> = None;
            let mut n: u64 = 0;
            let mut pcm = [0i16; PACKET];
            let mut packet = [0u8; 12 + PACKET];
            while !stop.load(Ordering::Relaxed) {
                let Some(to) = *dest.lock().unwrap() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let t0 = *started.get_or_insert_with(Instant::now);
                let due = t0 + Duration::from_millis(u64::from(PTIME_MS) * n);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if tone.is_none() {
                    if let Ok(Send::Key(key, on, off)) = rx.try_recv() {
                        tone = ToneGenerator::dtmf(key, on, off, -10.0);
                    }
                }
                pcm.fill(0);
                if let Some(g) = tone.as_mut() {
                    g.fill(&mut pcm);
                    if g.is_finished() {
                        tone = None;
                    }
                }
                packet[0] = 0x80;
                packet[1] = if n == 0 { 0x80 } else { 0 };
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                packet[4..8].copy_from_slice(&ts.to_be_bytes());
                packet[8..12].copy_from_slice(&0x3030_3030u32.to_be_bytes());
                g711::encode(Law::Ulaw, &pcm, &mut packet[12..]);
                let _ = sock.send_to(&packet, to);
                sent.lock().unwrap().push((PACKET, ts));
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(PACKET as u32);
                n += 1;
            }
        }));
    }

    fn send_to(&self, dest: SocketAddr) {
        *self.dest.lock().unwrap() = Some(dest);
    }

    fn press(&self, key: char, on_ms: u32, off_ms: u32) {
        if let Some(c) = &self.commands {
            c.send(Send::Key(key, on_ms, off_ms)).expect("sender alive");
        }
    }

    fn packets(&self) -> Vec<Packet> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Peer30 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.commands = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Inbound: a 30 ms caller both ways. rivr answers `a=ptime:30`, sends the
/// whole prompt in 240-byte packets with timestamp step 240 (NCC ≥ 0.9
/// against the prompt), and hears in-band keys in the caller's 30 ms
/// packets (every key gathered, none extra).
#[test]
fn inbound_30ms_caller_both_ways() {
    require_sipp!();
    let label = "ptime30-in";
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script(NUMBER, "play_then_gather.rhai", PLAY_THEN_GATHER),
    );
    let menu = prompt("main_menu");
    let peer = Peer30::bind();
    let spec = CallSpec {
        scenario: "uac_ptime_wait_bye.xml",
        number: NUMBER,
        rtp_port: peer.port,
        codecs: "0",
        extra_args: &["-key", "ptime", "30"],
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 0);
    peer.send_to(answer.rtp);
    let messages = sipp.messages();
    let answer_sdp = messages
        .rsplit("SIP/2.0 200")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        messages.contains("a=ptime:30") && answer_sdp.contains("a=ptime:30"),
        "rivr's answer does not state a=ptime:30:\n{messages}"
    );

    // The prompt plays out whole before the gather starts; press after it.
    let prompt_ms = menu.duration_ms();
    std::thread::sleep(Duration::from_millis(prompt_ms + 1500));
    let keys = "159#*0D";
    for key in keys.chars() {
        peer.press(key, 90, 110);
        std::thread::sleep(Duration::from_millis(200));
    }
    sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&answer.call_id, SIGNALLING);
    let got = cdr["results"]["keys"]
        .as_str()
        .unwrap_or_else(|| panic!("no results.keys in the CDR: {cdr}"))
        .to_owned();

    check_both_ways(label, &peer, &menu, keys, &got);
}

/// What both directions must show: rivr's PCMU packets all 240 bytes with
/// timestamp step 240, about 30 ms apart, carrying `menu` (NCC ≥ 0.9);
/// the test's own packets 30 ms; the keys pressed in them all gathered.
fn check_both_ways(label: &str, peer: &Peer30, menu: &Prompt, keys: &str, got: &str) {
    let packets: Vec<Packet> = peer
        .packets()
        .into_iter()
        .filter(|p| p.payload_type == 0)
        .collect();
    assert!(packets.len() > 100, "rivr sent {} packets", packets.len());
    let sizes_ok = packets.iter().filter(|p| p.payload.len() == PACKET).count();
    let mut steps = packets
        .windows(2)
        .filter(|w| w[1].seq == w[0].seq.wrapping_add(1))
        .map(|w| w[1].ts.wrapping_sub(w[0].ts));
    let first_bad_step = steps.clone().find(|&s| s != PACKET as u32);
    let n_steps = steps.by_ref().count();
    let span = packets
        .last()
        .unwrap()
        .arrival
        .saturating_duration_since(packets[0].arrival);
    let mean_gap_ms = span.as_secs_f64() * 1000.0 / (packets.len() - 1) as f64;
    let heard = Heard::decode(&packets, 0);
    let (lag, ncc) = align(&heard.samples, &to_f32(menu.pcm_8k()));
    let sent = peer.sent.lock().unwrap().clone();
    let sent_steps_ok = sent
        .windows(2)
        .all(|w| w[1].1.wrapping_sub(w[0].1) == PACKET as u32 && w[0].0 == PACKET);
    println!(
        "[{label}] rivr → caller: {} PCMU packets, {sizes_ok} of {PACKET} bytes, {n_steps} \
         timestamp steps (first not {PACKET}: {first_bad_step:?}), mean gap {mean_gap_ms:.1} ms; \
         main_menu at {} ms, NCC = {ncc:.4}",
        packets.len(),
        lag / 8
    );
    println!(
        "[{label}] caller → rivr: {} packets of {PACKET} bytes, step {PACKET}; pressed {keys:?} \
         in-band (90 ms on, 110 ms off, −10 dBm0); rivr gathered {got:?}",
        sent.len()
    );
    assert_eq!(
        sizes_ok,
        packets.len(),
        "rivr sent PCMU packets that are not {PACKET} bytes (30 ms)"
    );
    assert_eq!(
        first_bad_step, None,
        "a timestamp step between consecutive packets is not {PACKET}"
    );
    assert!(
        (27.0..=33.0).contains(&mean_gap_ms),
        "rivr's packets come every {mean_gap_ms:.1} ms on average, not 30"
    );
    assert!(
        ncc >= MIN_NCC,
        "the audio heard does not correlate with main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );
    assert!(sent_steps_ok, "the test's own sender was not 30 ms");
    assert_eq!(
        got, keys,
        "in-band keys in 30 ms packets: recognised ≠ pressed"
    );
}

/// Outbound: the carrier (SIPp) answers rivr's offer with `a=ptime:30`
/// and points media at the test's 30 ms peer; the same checks both ways.
#[test]
fn outbound_30ms_carrier_both_ways() {
    require_sipp!();
    let label = "ptime30-out";
    let dir = Scratch::new(label);
    let menu = prompt("main_menu");
    let peer = Peer30::bind();
    let mut carrier = Carrier::start(
        dir.path(),
        label,
        "uas_answer_ptime.xml",
        200,
        &[
            ("rtp_port", peer.port.to_string()),
            ("codec", "0".into()),
            ("ptime", "30".into()),
        ],
    );
    // The carrier's answer has telephone-events while its keys are tones
    // in the 30 ms packets: `always` scans such a leg (the default `auto`
    // would not).
    let mut call = Dialer::start_with_media(
        dir.path(),
        label,
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: Some(PLAY_THEN_GATHER_OUT),
            args: &[],
            number: "15550100",
        },
        "inband_dtmf = \"always\"",
    );
    let offer = carrier.wait_offer(SIGNALLING);
    carrier
        .wait_log("acked", SIGNALLING)
        .unwrap_or_else(|| panic!("rivr never ACKed the 200:\n{}", carrier.diagnostics()));
    peer.send_to(offer.rtp);
    let invite = carrier.received("INVITE").join("\n");
    assert!(
        invite.contains("a=ptime:20") && invite.contains("a=maxptime:60"),
        "rivr's offer states neither a=ptime:20 nor a=maxptime:60:\n{invite}"
    );
    std::thread::sleep(Duration::from_millis(menu.duration_ms() + 1500));
    let keys = "37*A";
    for key in keys.chars() {
        peer.press(key, 90, 110);
        std::thread::sleep(Duration::from_millis(200));
    }
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    let got = placed.result("keys").unwrap_or_default().to_owned();
    check_both_ways(label, &peer, &menu, keys, &got);
}

/// [`PLAY_THEN_GATHER`] for an outbound call (already answered).
const PLAY_THEN_GATHER_OUT: &str = r#"
play("main_menu");
let keys = gather(#{ max_digits: 64, finish_on: "", timeout: 20000, inter_digit_timeout: 2500 });
set_result("keys", keys);
"#;

/// The number routed to [`PLAY_TWICE`].
const TWICE: &str = "4010";

/// The menu twice, then hang up.
const PLAY_TWICE: &str = r#"
answer();
play("main_menu");
play("main_menu");
hangup();
"#;

/// The issue's bar for an Opus call hearing the prompt (as
/// `inbound_opus.rs`).
const MIN_NCC_OPUS: f64 = 0.85;
const OPUS_PT: u8 = 111;

/// The text of the first 200 OK to INVITE with CSeq `cseq`, as SIPp logged it.
fn ok_to_invite(messages: &str, cseq: u32) -> String {
    messages
        .split("SIP/2.0 200")
        .skip(1)
        // Each logged message ends where SIPp's separator line starts.
        .map(|m| m.split("\n-----").next().unwrap_or(m))
        .find(|m| m.contains(&format!("CSeq: {cseq} INVITE")))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no 200 OK to INVITE {cseq}:\n{messages}"))
}

/// The packets of `pt` in sequence order.
fn in_order(packets: Vec<Packet>, pt: u8) -> Vec<Packet> {
    let mut p: Vec<Packet> = packets
        .into_iter()
        .filter(|p| p.payload_type == pt)
        .collect();
    if let Some(first) = p.first().map(|p| p.seq) {
        p.sort_by_key(|x| x.seq.wrapping_sub(first));
    }
    p
}

/// An Opus caller asking `a=ptime:10` gets nothing but 10 ms Opus packets
/// (timestamp step 480, ~100/s), and both plays of `main_menu` — the
/// first through the leg's encoder, the second from the prompt's shared
/// 10 ms frames — decode to the prompt (NCC ≥ 0.85).
#[test]
fn an_opus_caller_asking_10ms_gets_10ms_opus_packets() {
    require_sipp!();
    let label = "opus10";
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script(TWICE, "play_twice.rhai", PLAY_TWICE),
    );
    let menu = prompt("main_menu");
    // What rivr's shared 10 ms frames must be: this process encodes the
    // same PCM with the same code and libopus.
    assert!(menu.prepare_opus_10ms(), "libopus refused 10 ms frames");
    let peer = RtpPeer::bind();
    let spec = CallSpec {
        scenario: "uac_opus_ptime_wait_bye.xml",
        number: TWICE,
        rtp_port: peer.port,
        extra_args: &["-key", "ptime", "10"],
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, OPUS_PT, "Opus was offered first");
    sipp.expect_pass(SIGNALLING + Duration::from_millis(2 * menu.duration_ms()));
    let ok = ok_to_invite(&sipp.messages(), 1);
    assert!(
        ok.contains("a=ptime:10\r\n") || ok.contains("a=ptime:10\n"),
        "rivr's answer does not state a=ptime:10:\n{ok}"
    );

    let all = peer.packets();
    let packets = in_order(all.clone(), OPUS_PT);
    assert!(
        packets.len() > 1000,
        "rivr sent {} Opus packets",
        packets.len()
    );
    assert_eq!(
        packets.len(),
        all.len(),
        "rivr sent a payload type other than Opus"
    );
    let not_10ms: Vec<(u16, Option<(usize, u8)>)> = packets
        .iter()
        .map(|p| {
            (
                p.seq,
                toc(&p.payload).map(|t| (t.frame_samples_48k, t.code)),
            )
        })
        .filter(|(_, t)| *t != Some((480, 0)))
        .collect();
    let steps: Vec<u32> = packets
        .windows(2)
        .filter(|w| w[1].seq == w[0].seq.wrapping_add(1))
        .map(|w| w[1].ts.wrapping_sub(w[0].ts))
        .collect();
    let first_bad_step = steps.iter().find(|&&s| s != 480);
    let arrivals = packets.iter().map(|p| p.arrival);
    let span = arrivals
        .clone()
        .max()
        .unwrap()
        .saturating_duration_since(arrivals.min().unwrap());
    let rate = (packets.len() - 1) as f64 / span.as_secs_f64();

    let (heard, decoded, missing) = decode_opus_ptime(&packets, OPUS_PT, 10);
    let shared: Vec<&[u8]> = (0..menu.frame_count())
        .flat_map(|i| menu.opus_10ms(i).unwrap())
        .collect();
    // The second play: where rivr's packets are the shared frames, all
    // of them in order.
    let second = (0..packets.len().saturating_sub(shared.len()))
        .find(|&k| {
            packets[k..k + shared.len()]
                .iter()
                .zip(&shared)
                .all(|(p, s)| p.payload == *s)
        })
        .unwrap_or_else(|| {
            let first_match = packets
                .iter()
                .position(|p| p.payload == shared[shared.len() / 2]);
            panic!(
                "rivr never sent main_menu's shared 10 ms frames in order ({} packets; \
                 the middle frame first seen at packet {first_match:?})",
                packets.len()
            )
        });
    let first_seq = packets[0].seq;
    let second_at = usize::from(packets[second].seq.wrapping_sub(first_seq)) * 80;
    let reference = to_f32(menu.pcm_8k());
    let heard = to_f32(&heard);
    let (lag1, ncc1) = align(&heard[..second_at], &reference);
    let from = second_at.saturating_sub(160);
    let (lag2, ncc2) = align(&heard[from..], &reference);
    let shared_in_first = packets[..second]
        .iter()
        .filter(|p| shared.iter().any(|s| p.payload == *s))
        .count();
    let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
    println!(
        "[{label}] rivr → caller: {} Opus packets ({decoded} decoded, {missing} missing), \
         {} not one 10 ms frame, {} timestamp steps (first not 480: {first_bad_step:?}), \
         {rate:.1} packets/s, mean payload {:.1} bytes ({:.1} kb/s); main_menu played \
         through the leg's encoder at {} ms, NCC = {ncc1:.4} ({shared_in_first} of its \
         packets equal a shared frame); from the shared 10 ms frames (all {} packets \
         byte-identical) at {} ms, NCC = {ncc2:.4}",
        packets.len(),
        not_10ms.len(),
        steps.len(),
        bytes as f64 / packets.len() as f64,
        bytes as f64 * 8.0 / span.as_secs_f64() / 1000.0,
        lag1 / 8,
        shared.len(),
        (from + lag2) / 8,
    );
    assert!(
        not_10ms.is_empty(),
        "packets that are not one 10 ms Opus frame (seq, (samples at 48 kHz, code)): {:?}",
        &not_10ms[..not_10ms.len().min(10)]
    );
    assert_eq!(first_bad_step, None, "a timestamp step is not 480");
    assert!(steps.len() + 20 >= packets.len(), "packets missing");
    assert!(
        (95.0..=105.0).contains(&rate),
        "{rate:.1} packets a second, not about 100"
    );
    assert!(
        ncc1 >= MIN_NCC_OPUS,
        "the first play does not decode to main_menu: NCC {ncc1:.4}"
    );
    assert!(
        ncc2 >= MIN_NCC_OPUS,
        "the second play does not decode to main_menu: NCC {ncc2:.4}"
    );
    assert!(
        shared_in_first < shared.len() / 2,
        "the first play was already the shared frames"
    );
}

/// The number routed to [`PLAY_THEN_HANG_UP`].
const PLAY_ONCE: &str = "4020";

/// The menu, then hang up.
const PLAY_THEN_HANG_UP: &str = r#"
answer();
play("main_menu");
hangup();
"#;

/// A re-INVITE that changes only `a=ptime` (20 → 30 → 20 ms PCMU) while
/// the menu plays: answered with the new ptime each time; rivr's packets
/// go 160 → 240 → 160 bytes on one stream, timestamps continuous, no
/// gap, and the prompt is heard whole (NCC ≥ 0.9 overall and over the
/// two seconds around each switch).
#[test]
fn a_reinvite_changing_only_the_ptime_switches_the_packet_size_mid_call() {
    require_sipp!();
    let label = "reinvite-ptime";
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script(PLAY_ONCE, "play_once.rhai", PLAY_THEN_HANG_UP),
    );
    let menu = prompt("main_menu");
    let peer = RtpPeer::bind();
    let spec = CallSpec {
        scenario: "uac_reinvite_ptime.xml",
        number: PLAY_ONCE,
        rtp_port: peer.port,
        codecs: "0",
        extra_args: &["-key", "ptime", "20", "-key", "ptime2", "30"],
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 0);
    sipp.expect_pass(SIGNALLING + Duration::from_millis(menu.duration_ms()));
    let messages = sipp.messages();
    for (cseq, ptime) in [(1, 20), (2, 30), (3, 20)] {
        let ok = ok_to_invite(&messages, cseq);
        assert!(
            ok.contains(&format!("a=ptime:{ptime}\r"))
                || ok.contains(&format!("a=ptime:{ptime}\n")),
            "the answer to INVITE {cseq} does not state a=ptime:{ptime}:\n{ok}"
        );
    }

    let packets = in_order(peer.packets(), 0);
    assert!(packets.len() > 300, "rivr sent {} packets", packets.len());
    // Runs of equal packet size, in order.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for p in &packets {
        match runs.last_mut() {
            Some((size, n)) if *size == p.payload.len() => *n += 1,
            _ => runs.push((p.payload.len(), 1)),
        }
    }
    let ssrcs = packets.iter().filter(|p| p.ssrc != packets[0].ssrc).count();
    let seq_breaks = packets
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .count();
    let ts_jumps: Vec<(u16, u32, usize)> = packets
        .windows(2)
        .filter(|w| w[1].ts.wrapping_sub(w[0].ts) != w[0].payload.len() as u32)
        .map(|w| (w[1].seq, w[1].ts.wrapping_sub(w[0].ts), w[0].payload.len()))
        .collect();
    let max_gap = packets
        .windows(2)
        .map(|w| w[1].arrival.saturating_duration_since(w[0].arrival))
        .max()
        .unwrap_or_default();
    // Where the size changed, in samples from the first packet.
    let mut switches = Vec::new();
    let mut at = 0;
    for (size, n) in runs.iter().take(runs.len().saturating_sub(1)) {
        at += size * n;
        switches.push(at);
    }
    let heard = Heard::decode(&packets, 0);
    let reference = to_f32(menu.pcm_8k());
    let (lag, ncc) = align(&heard.samples, &reference);
    let around: Vec<f64> = switches
        .iter()
        .map(|&s| {
            let (lo, hi) = (s.saturating_sub(8000), s + 8000);
            match reference.get(lo.saturating_sub(lag)..hi.saturating_sub(lag)) {
                Some(r) if lo >= lag => ncc_at(&heard.samples, r, lo),
                _ => 0.0,
            }
        })
        .collect();
    println!(
        "[{label}] rivr → caller: {} PCMU packets, runs (bytes, packets) {runs:?}, switches \
         at {:?} ms, one SSRC ({ssrcs} others), {seq_breaks} sequence breaks, timestamp \
         steps ≠ the previous packet's length: {ts_jumps:?}, largest arrival gap {:.1} ms; \
         main_menu at {} ms, NCC = {ncc:.4}, over ±1 s around each switch {around:.4?}",
        packets.len(),
        switches.iter().map(|s| s / 8).collect::<Vec<_>>(),
        max_gap.as_secs_f64() * 1000.0,
        lag / 8,
    );
    let sizes: Vec<usize> = runs.iter().map(|r| r.0).collect();
    assert_eq!(
        sizes,
        [160, 240, 160],
        "packet sizes do not go 20 → 30 → 20 ms: runs {runs:?}"
    );
    assert!(
        runs.iter().all(|r| r.1 >= 40),
        "a run is too short to be a switch by re-INVITE: {runs:?}"
    );
    assert_eq!(ssrcs, 0, "the stream changed SSRC");
    assert_eq!(seq_breaks, 0, "sequence numbers are not contiguous");
    assert!(ts_jumps.is_empty(), "timestamps jumped: {ts_jumps:?}");
    assert!(
        max_gap <= Duration::from_millis(70),
        "a gap of {max_gap:?} between two packets"
    );
    assert!(ncc >= MIN_NCC, "main_menu NCC {ncc:.4} < {MIN_NCC}");
    assert!(
        around.iter().all(|&c| c >= MIN_NCC),
        "the audio around a switch is not the prompt: {around:?}"
    );
}
