//! Inbound calls end to end, media side (issue 2 a–d): `rivr serve` called
//! by SIPp on 127.0.0.1, with the caller's RTP socket owned by the test so
//! the audio is measured — correlation against the prompt rivr should play,
//! the time a key press takes to stop it, and that media stops and the port
//! is freed when the caller hangs up.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::audio::{
    align, frame_energy, g711_roundtrip, ncc_at, prompt_stop, to_f32, Heard, FRAME, SPEECH_MS,
};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Transport};

/// The bar for "the audio heard is the prompt".
const MIN_NCC: f64 = 0.9;
/// The bar for barge-in.
const MAX_STOP: Duration = Duration::from_millis(100);

/// a) The menu number answers with PCMU (offered first) and the caller hears
/// the whole `main_menu` prompt.
#[test]
fn a_menu_call_answers_pcmu_and_plays_the_menu_prompt() {
    require_sipp!();
    menu_prompt_is_heard("a-udp", Transport::Udp);
}

/// a) The same over TCP signalling.
#[test]
fn a_menu_call_over_tcp_plays_the_menu_prompt() {
    require_sipp!();
    menu_prompt_is_heard("a-tcp", Transport::Tcp);
}

fn menu_prompt_is_heard(label: &str, transport: Transport) {
    let rivr = Rivr::start(label, RivrConfig::default());
    let menu = prompt("main_menu");
    // The prompt, a little silence before it, and not yet the 5 s timeout.
    let hold_ms = menu.duration_ms() + 3000;
    let mut caller = Caller::answered(
        &rivr,
        label,
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "1000",
            codecs: "0 8",
            hold_ms,
            transport,
            ..CallSpec::default()
        },
    );
    assert_eq!(
        caller.answer.payload_type, 0,
        "offer \"0 8\": rivr must answer with the first codec it supports, PCMU"
    );
    caller
        .sipp
        .expect_pass(SIGNALLING + Duration::from_millis(hold_ms));
    let packets = caller.peer.packets();
    let heard = Heard::decode(&packets, 0);
    let (lag, ncc) = align(&heard.samples, &to_f32(menu.pcm_8k()));
    let first = packets.first().expect("rivr sent RTP");
    let last = packets.last().expect("rivr sent RTP");
    let span = last.arrival.saturating_duration_since(first.arrival);
    let max_gap = packets
        .windows(2)
        .map(|w| w[1].arrival.saturating_duration_since(w[0].arrival))
        .max()
        .unwrap_or_default();
    println!(
        "[{label}] heard {:.2} s in {} packets over {:.2} s (max gap {} ms) from {}; \
         main_menu starts {} ms in, NCC = {ncc:.4}; RTCP packets: {}",
        heard.samples.len() as f64 / 8000.0,
        packets.len(),
        span.as_secs_f64(),
        max_gap.as_millis(),
        first.from,
        lag / 8,
        caller.peer.rtcp_count()
    );
    assert!(
        ncc >= MIN_NCC,
        "the audio heard does not correlate with main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );
    assert!(
        packets.iter().all(|p| p.payload_type == 0),
        "rivr sent a payload type other than the negotiated PCMU"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["answered"], true, "{cdr}");
    assert_eq!(cdr["end"], "remote-bye", "{cdr}");
    assert_eq!(
        cdr["to"].as_str().map(|t| t.contains("1000")),
        Some(true),
        "{cdr}"
    );
    assert!(
        caller.peer.rtcp_count() >= 1,
        "no RTCP arrived on the caller's RTP port + 1 during a {hold_ms} ms call"
    );
}

/// b) An RFC 4733 key mid-prompt, PCMU.
#[test]
fn b_rfc4733_key_mid_prompt_stops_it_and_plays_the_branch() {
    require_sipp!();
    key_barges_in("b-pcmu", "0 8", 0);
}

/// c) The same with PCMA.
#[test]
fn c_rfc4733_key_mid_prompt_with_pcma() {
    require_sipp!();
    key_barges_in("c-pcma", "8 0", 8);
}

/// Presses 1 during `main_menu` while the prompt is speaking (not in a
/// pause, so a cut is unambiguous), then checks: the prompt was heard up to
/// the key, it stopped within 100 ms of the first event packet, the branch
/// prompt `opening_hours` follows, and rivr's BYE reached SIPp.
fn key_barges_in(label: &str, codecs: &str, pt: u8) {
    let rivr = Rivr::start(label, RivrConfig::default());
    let menu = prompt("main_menu");
    let r = to_f32(menu.pcm_8k());
    let coded = g711_roundtrip(menu.pcm_8k(), pt);
    let mut caller = Caller::answered(
        &rivr,
        label,
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "1000",
            codecs,
            ..CallSpec::default()
        },
    );
    assert_eq!(caller.answer.payload_type, pt, "offer {codecs:?}");

    // Where the prompt sits in the stream: align its first 1.5 s once 2.5 s
    // of speech have been heard.
    let head = r.get(..12_000).expect("main_menu is longer than 1.5 s");
    let deadline = Instant::now() + SIGNALLING;
    let lag = loop {
        let heard = Heard::decode(&caller.peer.packets(), pt);
        let onset = frame_energy(&heard.samples)
            .iter()
            .position(|&e| e > SPEECH_MS);
        if let Some(onset) = onset {
            if heard.samples.len() >= (onset + 125) * FRAME {
                let (lag, ncc) = align(&heard.samples, head);
                assert!(
                    ncc >= MIN_NCC,
                    "the first 1.5 s heard are not main_menu: NCC {ncc:.4}"
                );
                break lag;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no prompt heard within {SIGNALLING:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    // Press at a frame followed by 200 ms of speech, at least 0.5 s ahead.
    let energy = frame_energy(&coded);
    let now_frame = (caller.peer.count() * FRAME).saturating_sub(lag) / FRAME;
    let press_frame = (now_frame + 25..energy.len().saturating_sub(10))
        .find(|&f| energy[f..f + 10].iter().all(|&e| e > SPEECH_MS))
        .expect("main_menu has 200 ms of continuous speech after the current point");
    let press_at_sample = lag + press_frame * FRAME;
    assert!(
        caller
            .peer
            .wait_count(press_at_sample / FRAME + 1, Duration::from_secs(30)),
        "RTP stopped before the key press point"
    );
    let key_sent = caller.peer.press('1', 100);

    caller.sipp.expect_pass(SIGNALLING);
    let heard = Heard::decode(&caller.peer.packets(), pt);
    let x = &heard.samples;
    let key_sample = heard
        .packets
        .iter()
        .find(|(_, arrival)| *arrival >= key_sent)
        .map(|(start, _)| *start)
        .expect("audio arrived after the key press");
    let before = ncc_at(x, &r[..key_sample - lag], lag);
    // The detector must see the prompt continuing right up to the key, or
    // a cut found after it would mean nothing.
    let lead_in = key_sample - 5 * FRAME;
    let first_miss = prompt_stop(x, &coded, lag, lead_in);
    assert!(
        first_miss >= key_sample,
        "the prompt was not playing sample-exact in the 100 ms before the key \
         (mismatch {} ms before it)",
        (key_sample - first_miss) / 8
    );
    let stop = prompt_stop(x, &coded, lag, key_sample);
    let stop_packet = heard.packet_at(stop).expect("a packet at the stop point");
    let (_, stop_arrival) = heard.packets[stop_packet];
    let latency = stop_arrival.saturating_duration_since(key_sent);
    let after_key_frames = (stop - key_sample) / FRAME;

    let branch = prompt("opening_hours");
    let rest = x.get(stop..).unwrap_or_default();
    let (branch_lag, branch_ncc) = align(rest, &to_f32(branch.pcm_8k()));
    let goodbye = prompt("goodbye");
    let after_branch = rest
        .get(branch_lag + branch.pcm_8k().len()..)
        .unwrap_or_default();
    let (_, goodbye_ncc) = align(after_branch, &to_f32(goodbye.pcm_8k()));
    println!(
        "[{label}] key '1' at {:.2} s into main_menu; prompt before the key NCC = {before:.4}; \
         prompt stopped {} ms after the first event packet ({after_key_frames} more prompt frames); \
         opening_hours starts {} ms later, NCC = {branch_ncc:.4}; goodbye NCC = {goodbye_ncc:.4}",
        (key_sample - lag) as f64 / 8000.0,
        latency.as_millis(),
        branch_lag / 8,
    );
    assert!(
        before >= MIN_NCC,
        "main_menu before the key: NCC {before:.4}"
    );
    assert!(
        latency <= MAX_STOP,
        "the prompt kept playing {} ms after the key (limit {} ms)",
        latency.as_millis(),
        MAX_STOP.as_millis()
    );
    assert!(
        branch_ncc >= MIN_NCC,
        "the branch prompt opening_hours was not heard after the key: NCC {branch_ncc:.4}"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["end"], "local-bye", "{cdr}");
    assert_eq!(cdr["script"], "hangup", "{cdr}");
}

/// d) The caller hangs up 3 s into the menu prompt: rivr's RTP stops, the
/// port pair is free again, no call is left and the CDR says who ended it.
#[test]
fn d_caller_hangs_up_mid_prompt() {
    require_sipp!();
    let rivr = Rivr::start("d-hangup", RivrConfig::default());
    let menu = prompt("main_menu");
    let mut caller = Caller::answered(
        &rivr,
        "d-hangup",
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "1000",
            codecs: "0",
            hold_ms: 3000,
            ..CallSpec::default()
        },
    );
    let bye_done = caller.sipp.expect_pass(SIGNALLING).ended;
    // Anything still in flight has arrived by now.
    std::thread::sleep(Duration::from_millis(500));
    let packets = caller.peer.packets();
    let heard = Heard::decode(&packets, 0);
    let (_, ncc) = align(&heard.samples, &to_f32(&menu.pcm_8k()[..12_000]));
    let last = packets.last().expect("rivr sent RTP").arrival;
    let late: Vec<_> = packets
        .iter()
        .filter(|p| p.arrival > bye_done + Duration::from_millis(100))
        .collect();
    println!(
        "[d-hangup] main_menu head NCC = {ncc:.4}; last RTP {} ms after SIPp saw the 200 to its BYE",
        signed_ms(last, bye_done)
    );
    assert!(
        ncc >= MIN_NCC,
        "main_menu was not playing before the hangup: NCC {ncc:.4}"
    );
    assert!(
        late.is_empty(),
        "rivr kept sending RTP after the call ended: {} packets later than 100 ms",
        late.len()
    );

    let port = caller.answer.rtp.port();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rtp = UdpSocket::bind(("127.0.0.1", port));
        let rtcp = UdpSocket::bind(("127.0.0.1", port + 1));
        if rtp.is_ok() && rtcp.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rivr's RTP/RTCP ports {port}/{} are still bound 5 s after the call: {rtp:?} {rtcp:?}",
            port + 1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = rivr.wait_log(Duration::from_secs(10), |l| {
        l.contains("call ended") && l.contains("active=0")
    });
    assert!(
        ended.is_some(),
        "rivr did not log `call ended … active=0`; stderr:\n{}",
        rivr.stderr()
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["script"], "caller-hung-up", "{cdr}");
    assert_eq!(cdr["end"], "remote-bye", "{cdr}");
    assert_eq!(cdr["answered"], true, "{cdr}");
}

/// `a - b` in milliseconds, negative when `a` came first.
fn signed_ms(a: Instant, b: Instant) -> i128 {
    a.saturating_duration_since(b).as_millis() as i128
        - b.saturating_duration_since(a).as_millis() as i128
}
