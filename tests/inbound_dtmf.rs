//! Key presses end to end (issue 3): `rivr serve` called by SIPp on
//! 127.0.0.1, the caller's RTP owned by the test, and a script that gathers
//! every key and writes them in the CDR — so what rivr recognised is
//! compared, key for key, with what was pressed:
//!
//! - in-band DTMF tones in G.711 (PCMU and PCMA) from a caller whose offer
//!   has no telephone-event, so the detector is the only way in;
//! - the same, and RFC 4733 events, through 5 % loss and a 0–80 ms random
//!   hold per packet (40 ± 40 ms: packets reorder), every key recognised
//!   and none extra;
//! - SIP INFO, `application/dtmf` and `application/dtmf-relay`.
//!
//! One live call is one draw of the network; the in-band path through the
//! same impairment is also run on a virtual clock over many seeds (rivr's
//! jitter buffer, G.711 decoder + PLC and detector, chained as the media
//! worker chains them), which gives the recognition rate.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::{Duration, Instant};

use rivr::codec::Codec;
use rivr::media::dtmf_detect::DtmfDetector;
use rivr::media::g711::{self, Law};
use rivr::media::listener::Listener;
use rivr::media::tone::ToneGenerator;

use common::caller::{Caller, EVENT_PT, SIGNALLING};
use common::rtp::{Impairment, Network, RtpPeer};
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// The number routed to [`GATHER_ALL`].
const NUMBER: &str = "3000";

/// Gathers every key until 2.5 s pass without one (no finish key, room for
/// far more keys than any test presses, so an extra key shows), stores
/// them in the CDR and hangs up.
const GATHER_ALL: &str = r#"
answer();
let keys = gather(#{ max_digits: 64, finish_on: "", timeout: 20000, inter_digit_timeout: 2500 });
log(`gathered ${keys}`);
set_result("keys", keys);
hangup();
"#;

/// Silence sent before the first key, as a caller takes a moment (rivr is
/// in its gather by then; keys typed ahead would be kept anyway). Short
/// enough that the impaired tests press keys while rivr's jitter buffer
/// is still adapting to the network.
const LEAD_IN: Duration = Duration::from_millis(600);

/// The caller's network for the impaired tests: 5 % loss, each packet held
/// 0–80 ms. The seed fixes every draw in packet order, so the loss among
/// the first N packets is the same on every run.
const IMPAIRED: Impairment = Impairment {
    loss: 0.05,
    max_delay: Duration::from_millis(80),
    seed: 0x0d7f_e2e5,
};

fn rivr(label: &str) -> Rivr {
    Rivr::start(
        label,
        RivrConfig::default().script(NUMBER, "gather_all.rhai", GATHER_ALL),
    )
}

/// Places a call on `scenario` and starts the caller's RTP (through
/// `impairment` if any).
fn call<'a>(
    rivr: &Rivr,
    label: &str,
    scenario: &'a str,
    codecs: &'a str,
    impairment: Option<Impairment>,
    extra_args: &'a [&'a str],
) -> Caller {
    let mut peer = RtpPeer::bind();
    let spec = CallSpec {
        scenario,
        number: NUMBER,
        rtp_port: peer.port,
        codecs,
        extra_args,
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    peer.start_sending_impaired(answer.rtp, answer.payload_type, EVENT_PT, impairment);
    Caller { sipp, peer, answer }
}

/// Tone level (dBm0 per frequency) and duration (ms) of the `i`th in-band
/// press: levels cycle over −10, −13, −17 and −20 dBm0 and durations over
/// 80, 90 and 100 ms, so each length is heard at each level.
fn inband_press(i: usize) -> (f32, u32) {
    const LEVELS: [f32; 4] = [-10.0, -13.0, -17.0, -20.0];
    const ON_MS: [u32; 3] = [80, 90, 100];
    (LEVELS[i % LEVELS.len()], ON_MS[i % ON_MS.len()])
}

/// Pause after each in-band tone.
const INBAND_OFF_MS: u32 = 100;

/// Presses `keys` in-band, one after the other; returns when the last tone
/// has started.
fn press_inband(caller: &Caller, keys: &str) {
    for (i, key) in keys.chars().enumerate() {
        let (level, on_ms) = inband_press(i);
        caller.peer.press_inband(key, on_ms, INBAND_OFF_MS, level);
    }
}

/// Waits for rivr's BYE (the gather's inter-digit timeout ended it) and
/// returns the keys in the call's CDR.
fn gathered(rivr: &Rivr, caller: &mut Caller) -> String {
    caller.sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(
        cdr["script"], "hangup",
        "the script did not end normally: {cdr}"
    );
    cdr["results"]["keys"]
        .as_str()
        .unwrap_or_else(|| panic!("no results.keys in the CDR: {cdr}"))
        .to_owned()
}

/// a) In-band only, PCMU: keys 1–4, #, *, 5, 6.
#[test]
fn a_inband_keys_pcmu_drive_a_gather() {
    require_sipp!();
    inband_only("inband-pcmu", "0", 0, "1234#*56");
}

/// a) In-band only, PCMA: the other eight keys (0, 7–9, A–D).
#[test]
fn a_inband_keys_pcma_drive_a_gather() {
    require_sipp!();
    inband_only("inband-pcma", "8", 8, "0987ADBC");
}

fn inband_only(label: &str, codecs: &str, pt: u8, keys: &str) {
    let rivr = rivr(label);
    let mut caller = call(&rivr, label, "uac_inband_wait_bye.xml", codecs, None, &[]);
    assert_eq!(caller.answer.payload_type, pt, "offer {codecs:?}");
    let messages = caller.sipp.messages();
    assert!(
        !messages.to_ascii_lowercase().contains("telephone-event"),
        "telephone-event appears in the offer or rivr's answer; this call must have no RFC 4733:\n{messages}"
    );
    std::thread::sleep(LEAD_IN);
    let started = Instant::now();
    press_inband(&caller, keys);
    let pressing = started.elapsed();
    let got = gathered(&rivr, &mut caller);
    println!(
        "[{label}] pressed {keys:?} in-band (PT {pt}, 80–100 ms at −10…−20 dBm0, 100 ms apart, \
         {:.2} s); rivr gathered {got:?}",
        pressing.as_secs_f64()
    );
    assert_eq!(got, keys, "in-band keys recognised ≠ keys pressed");
}

/// b) In-band through 5 % loss and 0–80 ms jitter: all 16 keys plus a
/// repeated one (the pause between two presses of the same key must
/// survive a lost or late frame).
#[test]
fn b_inband_keys_survive_loss_and_jitter() {
    require_sipp!();
    let label = "inband-impaired";
    let keys = "147*2580369#ABCD11";
    let rivr = rivr(label);
    let mut caller = call(
        &rivr,
        label,
        "uac_inband_wait_bye.xml",
        "0",
        Some(IMPAIRED),
        &[],
    );
    std::thread::sleep(LEAD_IN);
    press_inband(&caller, keys);
    let got = gathered(&rivr, &mut caller);
    let stats = caller.peer.impair_stats();
    println!("[{label}] caller → rivr: {stats}");
    println!("[{label}] pressed {keys:?} in-band (PCMU); rivr gathered {got:?}");
    check_impairment(&stats);
    assert!(
        stats.tone_frames_sent > 0,
        "no tone frames went out: {stats}"
    );
    assert_eq!(
        got, keys,
        "in-band keys through 5 % loss + 40 ms jitter: recognised ≠ pressed"
    );
}

/// b) RFC 4733 events through the same network: all 16 keys plus a
/// repeated one; loss may take an event's first packet (with the marker)
/// or some of its end packets, and a press may overtake the previous one's
/// last end packets.
#[test]
fn b_rfc4733_keys_survive_loss_and_jitter() {
    require_sipp!();
    let label = "rfc4733-impaired";
    let keys = "D*C#B0A987654321**";
    let rivr = rivr(label);
    let mut caller = call(&rivr, label, "uac_wait_bye.xml", "8", Some(IMPAIRED), &[]);
    assert_eq!(caller.answer.payload_type, 8);
    std::thread::sleep(LEAD_IN);
    for key in keys.chars() {
        caller.peer.press(key, 100);
        // 100 ms of events, three end packets, then some audio frames.
        std::thread::sleep(Duration::from_millis(220));
    }
    let got = gathered(&rivr, &mut caller);
    let stats = caller.peer.impair_stats();
    println!("[{label}] caller → rivr: {stats}");
    println!("[{label}] pressed {keys:?} as RFC 4733 (PCMA call); rivr gathered {got:?}");
    check_impairment(&stats);
    assert!(stats.events_sent > 0, "no event packets went out: {stats}");
    assert_eq!(
        got, keys,
        "RFC 4733 keys through 5 % loss + 40 ms jitter: recognised ≠ pressed"
    );
}

/// b) The in-band path of (b) on a virtual clock, 200 seeds: the caller's
/// packets as the live test sends them (the same 18 keys after 600 ms of
/// silence, the same impairment), arriving at rivr's media worker, which
/// reads its sockets on a 20 ms tick (so arrivals are seen at the tick),
/// then rivr's own `media::listener::Listener` (jitter buffer → G.711
/// decode or PLC → detector), as the worker runs it. Key errors (missed, extra or wrong, as an
/// edit distance) must stay under 0.25 % of the keys pressed, 97 runs in
/// 100 must recognise every key, and no run may hear a key twice (a press
/// split by concealment): loss alone takes 2–3 of the 4–5 frames of a tone
/// now and then, which no receiver recovers.
#[test]
fn b_inband_keys_through_loss_and_jitter_on_a_virtual_clock() {
    let keys = "147*2580369#ABCD11";
    const RUNS: u64 = 200;
    let (mut exact, mut errors, mut late, mut lost) = (0u64, 0usize, 0u64, 0u64);
    let mut extra_keys = 0usize;
    let mut worst = String::new();
    for seed in 1..=RUNS {
        let run = virtual_inband_call(keys, seed);
        let e = edit_distance(keys, &run.got);
        if e == 0 {
            exact += 1;
        } else if worst.len() < 300 {
            worst.push_str(&format!(" seed {seed}: {:?};", run.got));
        }
        errors += e;
        extra_keys += run.got.chars().count().saturating_sub(keys.len());
        late += run.late;
        lost += run.lost;
    }
    let pressed = keys.len() * RUNS as usize;
    let error_pct = 100.0 * errors as f64 / pressed as f64;
    println!(
        "[virtual] {RUNS} calls × {} in-band keys, 5 % loss + 0–80 ms hold: {exact} recognised \
         every key; {errors} key errors in {pressed} ({error_pct:.2} %); per call {:.1} packets \
         lost, {:.1} late in the jitter buffer;{worst}",
        keys.len(),
        lost as f64 / RUNS as f64,
        late as f64 / RUNS as f64,
    );
    assert_eq!(extra_keys, 0, "keys heard twice:{worst}");
    assert!(
        error_pct < 0.25 && exact * 100 >= RUNS * 97,
        "in-band keys through 5 % loss + 0–80 ms jitter: {errors} key errors in {pressed} \
         ({error_pct:.2} %), {exact}/{RUNS} calls exact"
    );
}

struct VirtualRun {
    got: String,
    late: u64,
    lost: u64,
}

/// One call of the virtual-clock test; `seed` drives the impairment and
/// the phase of rivr's tick against the caller's.
fn virtual_inband_call(keys: &str, seed: u64) -> VirtualRun {
    const FRAME: Duration = Duration::from_millis(20);
    let law = Law::Ulaw;
    let mut frames: Vec<[u8; 160]> = Vec::new();
    let lead_frames = LEAD_IN.as_millis() / FRAME.as_millis();
    frames.resize(lead_frames as usize, [law.silence_byte(); 160]);
    for (i, key) in keys.chars().enumerate() {
        let (level, on_ms) = inband_press(i);
        let mut tone = ToneGenerator::dtmf(key, on_ms, INBAND_OFF_MS, level).expect("a DTMF key");
        while !tone.is_finished() {
            let mut pcm = [0i16; 160];
            tone.fill(&mut pcm);
            let mut payload = [0u8; 160];
            g711::encode(law, &pcm, &mut payload);
            frames.push(payload);
        }
    }
    // The gather's 2.5 s inter-digit timeout.
    frames.extend(std::iter::repeat_n([law.silence_byte(); 160], 125));

    let epoch = Instant::now();
    let mut net = Network::new(Impairment { seed, ..IMPAIRED });
    let mut lost = 0;
    for (k, payload) in frames.iter().enumerate() {
        let sent = epoch + FRAME * k as u32;
        if !net.offer(sent, k as u16, payload) {
            lost += 1;
        }
    }
    let phase = Duration::from_micros(seed * 7919 % 20_000);
    let mut listener = Listener::new(Codec::from(law));
    let mut got = String::new();
    for tick in 0..frames.len() as u32 + 10 {
        let now = epoch + phase + FRAME * tick;
        while net.next_due().is_some_and(|due| due <= now) {
            let Some(p) = net.pop() else { break };
            let k = u32::from(p.seq);
            listener.push(now, p.seq, k * 160, 0x5eed_cafe, false, &p.bytes);
        }
        got.extend(listener.tick(now));
    }
    VirtualRun {
        got,
        late: listener.jitter_stats().late,
        lost,
    }
}

/// Levenshtein distance: the keys missed, added or changed.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The impairment did what it says (fixed by the seed, so these hold on
/// every run): about 5 % loss, holds spanning the 0–80 ms range, reordering.
fn check_impairment(s: &common::rtp::ImpairStats) {
    assert!(
        (3.0..=8.0).contains(&s.loss_pct()),
        "the loss applied is not about 5 %: {s}"
    );
    assert!(
        s.max_hold_ms >= 70.0 && (30.0..=50.0).contains(&s.mean_hold_ms),
        "the holds are not 0–80 ms: {s}"
    );
    assert!(s.reordered > 0, "no packet was reordered: {s}");
}

/// c) SIP INFO `application/dtmf`: the body is the key alone.
#[test]
fn c_sip_info_application_dtmf_drives_a_gather() {
    require_sipp!();
    sip_info("info-dtmf", "uac_info_dtmf.xml", ["5", "9", "#"], "59#");
}

/// c) SIP INFO `application/dtmf-relay`: `Signal=5\r\nDuration=160`.
#[test]
fn c_sip_info_dtmf_relay_drives_a_gather() {
    require_sipp!();
    sip_info(
        "info-relay",
        "uac_info_dtmf_relay.xml",
        ["5", "*", "D"],
        "5*D",
    );
}

fn sip_info(label: &str, scenario: &str, bodies: [&str; 3], expected: &str) {
    let rivr = rivr(label);
    let args = [
        "-key", "d1", bodies[0], "-key", "d2", bodies[1], "-key", "d3", bodies[2],
    ];
    let mut caller = call(&rivr, label, scenario, "0", None, &args);
    let got = gathered(&rivr, &mut caller);
    println!("[{label}] INFO keys {bodies:?} ({scenario}); rivr gathered {got:?}");
    assert_eq!(
        got, expected,
        "keys sent by SIP INFO ({scenario}) ≠ gathered"
    );
}

/// d) The other direction: a script plays generated tone prompts
/// (`tone:dtmf:KEYS`, then `tone:beep`) on a PCMA call; the caller decodes
/// what rivr sent, runs a DTMF detector over it and finds every key in
/// order, then a 1 kHz beep of 250 ms.
#[test]
fn d_rivr_plays_dtmf_keys_and_a_beep_in_band() {
    require_sipp!();
    const TONES: &str = r#"
answer();
play(["tone:dtmf:159#AD0*", "tone:beep"]);
sleep(300);
hangup();
"#;
    let label = "tones-out";
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script("3001", "tones.rhai", TONES),
    );
    let mut peer = RtpPeer::bind();
    let spec = CallSpec {
        scenario: "uac_inband_wait_bye.xml",
        number: "3001",
        rtp_port: peer.port,
        codecs: "8",
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 8);
    peer.start_sending(answer.rtp, answer.payload_type, EVENT_PT);
    sipp.expect_pass(SIGNALLING);
    let mut packets: Vec<_> = peer
        .packets()
        .into_iter()
        .filter(|p| p.payload_type == 8)
        .collect();
    packets.sort_by_key(|p| p.seq);
    let mut detector = DtmfDetector::new();
    let mut heard = String::new();
    let mut pcm = Vec::new();
    for p in &packets {
        let mut frame = vec![0i16; p.payload.len()];
        g711::decode(Law::Alaw, &p.payload, &mut frame);
        heard.extend(detector.process(&frame).map(|d| d.digit));
        pcm.extend(frame);
    }
    // The beep: the strongest 250 ms of 1 kHz after the keys.
    let share_1k = |x: &[i16]| {
        let w = 2.0 * std::f64::consts::PI * 1000.0 / 8000.0;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s0 = f64::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let total: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum();
        if total > 0.0 {
            2.0 * power / (x.len() as f64 * total)
        } else {
            0.0
        }
    };
    let beep = pcm
        .windows(2000)
        .step_by(80)
        .map(share_1k)
        .fold(0.0f64, f64::max);
    println!(
        "[{label}] {} PCMA packets from rivr; detector heard {heard:?}; best 250 ms 1 kHz share {beep:.3}",
        packets.len()
    );
    assert_eq!(heard, "159#AD0*", "keys rivr played in-band");
    assert!(beep > 0.95, "no 250 ms 1 kHz beep: share {beep:.3}");
}

/// What a caller heard of a `send_dtmf` script: the keys in RFC 4733
/// events (decoded by rivr's receiver, itself tested against the RFC's
/// packet sequences) and the keys in the audio (in-band detector).
fn keys_rivr_sent(label: &str, scenario: &str, codecs: &str) -> (String, String, usize) {
    const SEND: &str = r#"
answer();
send_dtmf("1234#*AD");
sleep(300);
hangup();
"#;
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script("3002", "send.rhai", SEND),
    );
    let mut peer = RtpPeer::bind();
    let spec = CallSpec {
        scenario,
        number: "3002",
        rtp_port: peer.port,
        codecs,
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    peer.start_sending(answer.rtp, answer.payload_type, EVENT_PT);
    sipp.expect_pass(SIGNALLING);
    let mut packets = peer.packets();
    packets.sort_by_key(|p| p.seq);
    let mut receiver = rivr::media::rfc4733::Receiver::new();
    let mut detector = DtmfDetector::new();
    let (mut as_events, mut in_band, mut event_packets) = (String::new(), String::new(), 0);
    for p in &packets {
        if p.payload_type == EVENT_PT {
            event_packets += 1;
            if let Some(e) = receiver.handle(p.arrival, p.ssrc, p.seq, p.ts, p.marker, &p.payload) {
                as_events.push(e.digit);
            }
        } else if p.payload_type == answer.payload_type {
            let law = if answer.payload_type == 8 {
                Law::Alaw
            } else {
                Law::Ulaw
            };
            let mut frame = vec![0i16; p.payload.len()];
            g711::decode(law, &p.payload, &mut frame);
            in_band.extend(detector.process(&frame).map(|d| d.digit));
        }
    }
    println!(
        "[{label}] rivr sent {event_packets} telephone-event packets: keys {as_events:?}; in-band keys {in_band:?}"
    );
    (as_events, in_band, event_packets)
}

/// e) `send_dtmf` on a call with telephone-event sends RFC 4733 events
/// (nothing in-band); on a call without, the same keys go in-band.
#[test]
fn e_send_dtmf_uses_rfc4733_when_negotiated_else_in_band() {
    require_sipp!();
    let (events, in_band, packets) = keys_rivr_sent("send-rfc4733", "uac_wait_bye.xml", "0");
    assert_eq!(events, "1234#*AD", "keys sent as telephone-events");
    assert_eq!(in_band, "", "no key may also be heard in-band");
    // 100 ms per key: four packets with a growing duration, then the
    // final duration three times with the E bit (RFC 4733 §2.5.1.4).
    assert_eq!(packets, 8 * 7, "telephone-event packets");
    let (events, in_band, packets) = keys_rivr_sent("send-inband", "uac_inband_wait_bye.xml", "8");
    assert_eq!((events.as_str(), packets), ("", 0));
    assert_eq!(in_band, "1234#*AD", "keys sent in-band");
}
