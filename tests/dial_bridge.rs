//! `dial()` end to end (issue 10): a SIPp caller calls `rivr serve`, whose
//! script answers and dials a number on a trunk; SIPp is the carrier and
//! answers in PCMA. Each side's RTP is a phone owned by the test that
//! talks (a prompt's speech) and records what it hears, so the audio is
//! measured both ways after rivr transcoded it (PCMU or Opus on the
//! caller's leg, PCMA on the far one): segment NCC as in
//! `tests/media_bridge.rs`. Also shown: a caller's RFC 4733 key reaches
//! the far end as a telephone-event, the caller hears ringback while the
//! far end rings, either side's BYE ends both legs, and the CDR file holds
//! one record per leg with the call's shared id.

mod common;

use std::time::{Duration, Instant};

use rivr::codec::Codec;
use serde_json::Value;

use common::audio::FRAME;
use common::caller::SIGNALLING;
use common::carrier::Carrier;
use common::phone::{segment_ncc, speech, Phone, Script, EVENT_PT};
use common::rtp::{event_code, Packet};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// The caller's flow: answer, bridge to 2000 on the carrier, report.
const DIAL: &str = r#"
answer();
let r = dial("2000", #{ trunk: "carrier", timeout: 20000 });
set_result("dial", r.outcome);
set_result("dial_talk_ms", r.talk_ms.to_string());
"#;

fn rivr_with_carrier(label: &str, carrier_port: u16) -> Rivr {
    Rivr::start(
        label,
        RivrConfig {
            extra_tables: format!(
                "[[trunk]]\nname = \"carrier\"\nkind = \"sip\"\n\
                 uri = \"sip:127.0.0.1:{carrier_port}\"\ncaller_id = \"15550100\"\n\
                 max_channels = 4\ncps = 5\nring_timeout = 30\noptions_interval = 0\n"
            ),
            ..RivrConfig::default()
        }
        .script("3000", "dial.rhai", DIAL),
    )
}

/// Both CDR records of the one call, leg 0 (the caller) first.
fn both_legs(rivr: &Rivr) -> (Value, Value) {
    let deadline = Instant::now() + SIGNALLING;
    loop {
        let mut cdrs = rivr.cdrs();
        if cdrs.len() >= 2 {
            assert_eq!(cdrs.len(), 2, "one record per leg, no more: {cdrs:#?}");
            cdrs.sort_by_key(|c| c["leg"].as_u64());
            let far = cdrs.pop().unwrap_or_default();
            let caller = cdrs.pop().unwrap_or_default();
            return (caller, far);
        }
        assert!(
            Instant::now() < deadline,
            "two CDR records expected, have {cdrs:#?}\nrivr stderr:\n{}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_cdrs(rivr: &Rivr, far_end: &str, caller_end: &str) -> (Value, Value) {
    let (caller, far) = both_legs(rivr);
    println!("CDR leg 0: {caller}\nCDR leg 1: {far}");
    assert_eq!(
        caller["call_id"], far["call_id"],
        "the legs share the call id"
    );
    assert_eq!(
        (caller["leg"].as_u64(), far["leg"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(caller["direction"], "inbound");
    assert_eq!(far["direction"], "outbound");
    assert_eq!(far["trunk"], "carrier");
    assert_eq!(far["to"], "2000");
    assert_ne!(
        caller["transport_id"], far["transport_id"],
        "two SIP dialogs"
    );
    for leg in [&caller, &far] {
        assert_eq!(leg["outcome"], "answered", "{leg}");
        assert_eq!(leg["answered"], true, "{leg}");
    }
    assert_eq!(far["end"], far_end, "{far}");
    assert_eq!(caller["end"], caller_end, "{caller}");
    (caller, far)
}

/// Telephone-event packets of `key` among `packets`.
fn events_of(packets: &[Packet], key: char) -> Vec<&Packet> {
    packets
        .iter()
        .filter(|p| p.payload_type == EVENT_PT && p.payload.first() == Some(&event_code(key)))
        .collect()
}

/// The pieces of one bridged call: the carrier (SIPp on `far_scenario`,
/// its `-d` pause `far_pause_ms`, answering PCMA to the far phone), rivr
/// with the dial script, and the caller (SIPp on `caller`, its RTP port
/// the caller phone's).
struct Bridge {
    _files: Scratch,
    carrier: Carrier,
    rivr: Rivr,
    far_phone: Phone,
    caller_phone: Phone,
    caller: Sipp,
}

fn bridge(label: &str, far_scenario: &str, far_pause_ms: u64, caller: CallSpec) -> Bridge {
    let far_phone = Phone::bind();
    let files = Scratch::new(&format!("{label}-far"));
    let carrier = Carrier::start(
        files.path(),
        "far",
        far_scenario,
        far_pause_ms,
        &[
            ("rtp_port", far_phone.addr().port().to_string()),
            ("codec", "8".into()),
        ],
    );
    let rivr = rivr_with_carrier(label, carrier.port);
    let caller_phone = Phone::bind();
    let caller = Sipp::start(
        rivr.dir.path(),
        "caller",
        rivr.sip_port,
        &CallSpec {
            number: "3000",
            rtp_port: caller_phone.addr().port(),
            ..caller
        },
    );
    Bridge {
        _files: files,
        carrier,
        rivr,
        far_phone,
        caller_phone,
        caller,
    }
}

/// A PCMU caller bridged to a PCMA far end; both talk at once, the caller
/// presses 5, then the far end hangs up: rivr ends the caller's leg too.
#[test]
fn a_pcmu_caller_and_a_pcma_far_end_hear_each_other_until_the_far_end_hangs_up() {
    require_sipp!();
    // The carrier answers at once, then talks for 9 s and sends BYE.
    let Bridge {
        _files,
        mut carrier,
        rivr,
        mut far_phone,
        mut caller_phone,
        mut caller,
    } = bridge(
        "dial-pcmu",
        "uas_answer_bye.xml",
        9_000,
        CallSpec {
            scenario: "uac_wait_bye.xml",
            codecs: "0",
            ..CallSpec::default()
        },
    );
    let answer = caller.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 0, "the caller's leg is PCMU");
    let offer = carrier.wait_offer(SIGNALLING);
    carrier
        .wait_log("acked", SIGNALLING)
        .unwrap_or_else(|| panic!("rivr never ACKed the carrier:\n{}", carrier.diagnostics()));

    let (caller_says, far_says) = (speech("water_info", 5.5), speech("survey_intro", 3.8));
    let mut cs = Script::new(Codec::Pcmu);
    cs.silence(1000)
        .audio(&caller_says)
        .silence(600)
        .press('5', 120)
        .silence(600);
    let mut fs = Script::new(Codec::Pcma);
    fs.silence(1000).audio(&far_says).silence(1000);
    caller_phone.play(&mut cs, answer.rtp);
    far_phone.play(&mut fs, offer.rtp);

    carrier.expect_pass(SIGNALLING);
    caller.expect_pass(SIGNALLING);

    println!("the far end (PCMA) hears the caller (PCMU):");
    let at_far = segment_ncc(&far_phone.heard(Codec::Pcma), &caller_says);
    println!("the caller (PCMU) hears the far end (PCMA):");
    let at_caller = segment_ncc(&caller_phone.heard(Codec::Pcmu), &far_says);
    println!(
        "NCC caller → far end: mean {:.3}, lowest {:.3}, {:.3}; far end → caller: mean {:.3}, lowest {:.3}, {:.3}",
        at_far.mean, at_far.lowest, at_far.second, at_caller.mean, at_caller.lowest, at_caller.second
    );
    at_far.check("PCMU → PCMA", 0.8);
    at_caller.check("PCMA → PCMU", 0.8);

    let far_packets = far_phone.packets();
    assert!(
        far_packets
            .iter()
            .all(|p| p.payload_type == 8 || p.payload_type == EVENT_PT),
        "the far end gets PCMA and telephone-events only"
    );
    let fives = events_of(&far_packets, '5');
    let starts = fives.iter().filter(|p| p.marker).count();
    let ends = fives
        .iter()
        .filter(|p| p.payload.get(1).is_some_and(|f| f & 0x80 != 0))
        .count();
    println!(
        "the far end received 5 as {} telephone-event packets ({starts} marked, {ends} ends)",
        fives.len()
    );
    assert_eq!(
        (starts, ends),
        (1, 3),
        "the caller's 5, relayed once and ended"
    );

    let (caller_cdr, far_cdr) = check_cdrs(&rivr, "remote-bye", "local-bye");
    assert_eq!(caller_cdr["results"]["dial"], "answered", "{caller_cdr}");
    let talk = far_cdr["talk_ms"].as_u64().unwrap_or(0);
    assert!(
        (8_500..15_000).contains(&talk),
        "the far end talked 9 s: talk_ms {talk}"
    );
    let script_talk: u64 = caller_cdr["results"]["dial_talk_ms"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        script_talk.abs_diff(talk) < 500,
        "dial() told the script talk_ms {script_talk}, the CDR says {talk}"
    );
}

/// Mean square of the 440 + 480 Hz ringback in `x` against everything
/// else (Goertzel over 20 ms frames).
fn ringback_share(x: &[f32]) -> f64 {
    let power = |f: &[f32], hz: f64| {
        let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in f {
            let s0 = f64::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (f.len() as f64).powi(2) * 2.0
    };
    let (mut tone, mut total) = (0.0, 0.0);
    for f in x.chunks_exact(FRAME) {
        tone += power(f, 440.0) + power(f, 480.0);
        total += f.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / FRAME as f64;
    }
    if total == 0.0 {
        0.0
    } else {
        tone / total
    }
}

/// An Opus caller bridged to a PCMA far end that rings 2 s first: the
/// caller hears ringback, then the two hear each other; the caller hangs
/// up and rivr sends the far end a BYE.
#[test]
fn an_opus_caller_hears_ringback_then_the_pcma_far_end_and_its_bye_ends_both() {
    require_sipp!();
    // The carrier rings 2 s, answers, waits for rivr's BYE; the caller
    // hangs up 12 s after its answer.
    let Bridge {
        _files,
        mut carrier,
        rivr,
        mut far_phone,
        mut caller_phone,
        mut caller,
    } = bridge(
        "dial-opus",
        "uas_answer.xml",
        2_000,
        CallSpec {
            scenario: "uac_opus_hangup.xml",
            hold_ms: 12_000,
            ..CallSpec::default()
        },
    );
    let answer = caller.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 111, "the caller's leg is Opus");
    let offer = carrier.wait_offer(SIGNALLING);
    // While the far end rings, the caller's phone sends silence and hears
    // ringback.
    let mut quiet = Script::new(Codec::Opus);
    quiet.silence(1_500);
    caller_phone.play(&mut quiet, answer.rtp);
    carrier
        .wait_log("acked", SIGNALLING)
        .unwrap_or_else(|| panic!("rivr never ACKed the carrier:\n{}", carrier.diagnostics()));
    let ringing = caller_phone.heard(Codec::Opus);
    let share = ringback_share(&ringing);
    println!(
        "while the far end rang the caller heard {:.2} s, {:.0} % of its power at 440 + 480 Hz",
        ringing.len() as f64 / 8000.0,
        share * 100.0
    );
    assert!(
        ringing.len() >= 8_000 && share >= 0.5,
        "the caller did not hear ringback while the far end rang"
    );
    caller_phone.forget();

    let (caller_says, far_says) = (speech("water_info", 5.5), speech("survey_intro", 3.8));
    let mut cs = Script::new(Codec::Opus);
    cs.silence(800).audio(&caller_says).silence(600);
    let mut fs = Script::new(Codec::Pcma);
    fs.silence(800).audio(&far_says).silence(2_000);
    caller_phone.play(&mut cs, answer.rtp);
    far_phone.play(&mut fs, offer.rtp);

    caller.expect_pass(SIGNALLING);
    carrier.expect_pass(SIGNALLING);
    assert_eq!(
        carrier.received("BYE").len(),
        1,
        "rivr hung the far end up once the caller left"
    );

    println!("the far end (PCMA) hears the caller (Opus):");
    let at_far = segment_ncc(&far_phone.heard(Codec::Pcma), &caller_says);
    println!("the caller (Opus) hears the far end (PCMA):");
    let at_caller = segment_ncc(&caller_phone.heard(Codec::Opus), &far_says);
    println!(
        "NCC caller → far end: mean {:.3}, lowest {:.3}, {:.3}; far end → caller: mean {:.3}, lowest {:.3}, {:.3}",
        at_far.mean, at_far.lowest, at_far.second, at_caller.mean, at_caller.lowest, at_caller.second
    );
    // Opus codes fricatives by their spectrum more than their waveform.
    at_far.check("Opus → PCMA", 0.6);
    at_caller.check("PCMA → Opus", 0.6);

    let (_, far_cdr) = check_cdrs(&rivr, "local-bye", "remote-bye");
    let ring = far_cdr["ring_ms"].as_u64().unwrap_or(0);
    assert!(
        (1_900..6_000).contains(&ring),
        "the far end rang 2 s: ring_ms {ring}"
    );
}
