//! `dial()` from a SIP caller to a PRI trunk: SIPp calls `rivr serve`,
//! whose script dials a number on the PRI trunk `e1`, whose carrier is
//! libpri (tests/pri/libpri_peer.c: network side, E1, A-law). The caller
//! talks PCMU, the B-channel carries A-law, so rivr transcodes both ways;
//! the audio is measured both ways by segment NCC (the caller's speech in
//! libpri's recording of the B-channel, libpri's speech in what the
//! caller's phone heard). libpri clears the call after 9 s and rivr ends
//! the caller's leg with it; the CDR file holds both legs.

mod common;

use std::time::{Duration, Instant};

use rivr::codec::Codec;
use rivr::media::g711::linear_to_alaw;

use common::caller::SIGNALLING;
use common::libpri::{read_recording, LibpriPeer, SpanOptions, SpanPaths};
use common::phone::{segment_ncc, speech, Phone, Script};
use common::pri_rivr::{span_table, trunk_table};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// libpri retries SABME every second; rivr connects at start.
const LINK: Duration = Duration::from_secs(10);

/// Answer, bridge to 5551235 on the PRI trunk (libpri answers it and
/// clears it after `--clear-after-ms`), report.
const DIAL: &str = r#"
answer();
let r = dial("5551235", #{ trunk: "e1", timeout: 20000 });
set_result("dial", r.outcome);
set_result("q850", r.q850.to_string());
"#;

#[test]
fn a_pcmu_sip_caller_dialed_to_a_pri_trunk_and_libpri_hear_each_other() {
    require_sipp!();
    let dir = Scratch::new("pri-dial");
    let paths = SpanPaths::in_dir(dir.path(), "span1");
    // What libpri says: speech, A-law, looped on the B-channel.
    let far_says = speech("survey_intro", 3.8);
    let far_file = dir.join("far.alaw");
    let bytes: Vec<u8> = far_says.iter().map(|&s| linear_to_alaw(s)).collect();
    std::fs::write(&far_file, bytes).expect("write the far end's audio");
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).expect("the recordings' dir");
    let peer = LibpriPeer::start(
        dir.path(),
        "network",
        &paths,
        &SpanOptions {
            play: Some(far_file),
            record_dir: Some(rec.clone()),
            clear_after_ms: Some(9_000),
            ..SpanOptions::e1()
        },
    );
    let rivr = Rivr::start(
        "pri-dial",
        RivrConfig {
            extra_tables: span_table("span1", &paths)
                + trunk_table(&["span1"], "ring_timeout = 20").as_str(),
            ..RivrConfig::default()
        }
        .script("3000", "dial.rhai", DIAL),
    );
    peer.wait_name("up", LINK);

    let mut caller_phone = Phone::bind();
    let mut caller = Sipp::start(
        rivr.dir.path(),
        "caller",
        rivr.sip_port,
        &CallSpec {
            number: "3000",
            rtp_port: caller_phone.addr().port(),
            scenario: "uac_wait_bye.xml",
            codecs: "0",
            ..CallSpec::default()
        },
    );
    let answer = caller.wait_answer(SIGNALLING);
    assert_eq!(answer.payload_type, 0, "the caller's leg is PCMU");
    let setup = peer.wait_name("setup", SIGNALLING);
    let call = setup.call().expect("setup has call=");
    assert_eq!(setup.get("called"), Some("5551235"), "{}", setup.line);

    let caller_says = speech("water_info", 5.5);
    let mut cs = Script::new(Codec::Pcmu);
    cs.silence(1000).audio(&caller_says).silence(1000);
    caller_phone.play(&mut cs, answer.rtp);

    let end = peer.wait_end(call, Duration::from_secs(30));
    caller.expect_pass(SIGNALLING);
    eprintln!("libpri: {}", end.line);

    println!("libpri (A-law) hears the caller (PCMU):");
    let heard = read_recording(&rec.join(format!("call-{call}.alaw")), peer.law);
    let at_far = segment_ncc(&heard, &caller_says);
    println!("the caller (PCMU) hears libpri (A-law):");
    let at_caller = segment_ncc(&caller_phone.heard(Codec::Pcmu), &far_says);
    println!(
        "NCC caller → libpri: mean {:.3}, lowest {:.3}; libpri → caller: mean {:.3}, lowest {:.3}",
        at_far.mean, at_far.lowest, at_caller.mean, at_caller.lowest
    );
    at_far.check("PCMU → A-law B-channel", 0.8);
    at_caller.check("A-law B-channel → PCMU", 0.8);

    let deadline = Instant::now() + SIGNALLING;
    let cdrs = loop {
        let c = rivr.cdrs();
        if c.len() >= 2 || Instant::now() >= deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(cdrs.len(), 2, "one record per leg: {cdrs:#?}");
    let caller_cdr = cdrs.iter().find(|c| c["leg"] == 0).expect("leg 0");
    let far_cdr = cdrs.iter().find(|c| c["leg"] == 1).expect("leg 1");
    assert_eq!(caller_cdr["call_id"], far_cdr["call_id"]);
    assert_eq!(caller_cdr["transport"], "sip");
    assert_eq!(far_cdr["transport"], "pri");
    assert_eq!(far_cdr["trunk"], "e1");
    assert_eq!(far_cdr["outcome"], "answered", "{far_cdr}");
    assert_eq!(far_cdr["end"], "remote-bye", "libpri cleared it: {far_cdr}");
    assert_eq!(far_cdr["q850"], 16, "{far_cdr}");
    assert_eq!(caller_cdr["results"]["dial"], "answered", "{caller_cdr}");
    assert_eq!(caller_cdr["end"], "local-bye", "{caller_cdr}");
}
