//! Inbound calls end to end, signalling side (issue 2 e–f): SIPp against
//! `rivr serve` for the answers a UAS owes (404, 488, OPTIONS 200, one call
//! per retransmitted INVITE, 487 after CANCEL), and scripts that loop or
//! throw ending their own call cleanly while a good call next to them still
//! hears its prompt.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::Duration;

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// e) A number with no route gets 404 (SIPp ACKs it).
#[test]
fn e_unknown_number_gets_404() {
    require_sipp!();
    let rivr = Rivr::start("e-404", RivrConfig::default());
    let spec = CallSpec {
        scenario: "uac_404.xml",
        number: "9999",
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), "e-404", rivr.sip_port, &spec);
    sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&call_id(&sipp), SIGNALLING);
    assert_eq!(cdr["end"], "rejected", "{cdr}");
    assert_eq!(cdr["answered"], false, "{cdr}");
}

/// An offer with only G.729 (18) gets 488: rivr speaks PCMU and PCMA.
#[test]
fn e_offer_without_a_common_codec_gets_488() {
    require_sipp!();
    let rivr = Rivr::start("e-488", RivrConfig::default());
    let spec = CallSpec {
        scenario: "uac_488.xml",
        number: "1000",
        codecs: "18",
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), "e-488", rivr.sip_port, &spec);
    sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&call_id(&sipp), SIGNALLING);
    assert_eq!(cdr["end"], "rejected", "{cdr}");
}

/// e) OPTIONS gets 200.
#[test]
fn e_options_gets_200() {
    require_sipp!();
    let rivr = Rivr::start("e-options", RivrConfig::default());
    let spec = CallSpec {
        scenario: "uac_options.xml",
        ..CallSpec::default()
    };
    Sipp::start(rivr.dir.path(), "e-options", rivr.sip_port, &spec).expect_pass(SIGNALLING);
    // An OPTIONS ping is not a call.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rivr.cdrs().is_empty(),
        "OPTIONS made a CDR: {:?}",
        rivr.cdrs()
    );
}

/// e) The same INVITE three times (one branch) while the call rings is one
/// call: the copies get the 180 again, then one answer, one dialog (To
/// tag), one script run, one CDR.
#[test]
fn e_invite_sent_three_times_is_one_call() {
    require_sipp!();
    let rivr = Rivr::start(
        "e-x3",
        RivrConfig::default().script(
            "3003",
            "rings.rhai",
            "// Rings for 2 s, so the copies arrive while it rings.\n\
             ring();\nsleep(2000);\nanswer();\nplay(\"goodbye\");\nhangup();\n",
        ),
    );
    let mut caller = Caller::answered(
        &rivr,
        "e-x3",
        CallSpec {
            scenario: "uac_invite_x3.xml",
            number: "3003",
            // The copies are explicit; without -nr SIPp answers each
            // repeated 180 by resending its last INVITE, ping-pong.
            extra_args: &["-nr"],
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    // Give a (wrong) second call time to end and write its CDR too.
    std::thread::sleep(Duration::from_secs(2));
    let cdrs = rivr.cdrs();
    let stderr = rivr.stderr();
    let ended = stderr.lines().filter(|l| l.contains("call ended")).count();
    let messages = caller.sipp.messages();
    let to_tags: std::collections::BTreeSet<&str> = invite_responses(&messages)
        .filter_map(|m| m.lines().find(|l| l.starts_with("To:")))
        .filter_map(|l| l.split("tag=").nth(1))
        .collect();
    println!(
        "[e-x3] CDRs: {}, `call ended` log lines: {ended}, To tags answered: {to_tags:?}",
        cdrs.len()
    );
    assert_eq!(
        cdrs.len(),
        1,
        "one INVITE sent three times made {} CDRs: {cdrs:?}",
        cdrs.len()
    );
    assert_eq!(ended, 1, "rivr ended {ended} calls; stderr:\n{stderr}");
    assert_eq!(
        to_tags.len(),
        1,
        "responses carried several To tags (dialogs): {to_tags:?}"
    );
    assert_eq!(cdrs[0]["end"], "local-bye", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["script"], "hangup", "{}", cdrs[0]);
}

/// e) CANCEL while the call rings: 200 to the CANCEL, 487 to the INVITE.
#[test]
fn e_cancel_before_answer_gets_487() {
    require_sipp!();
    let rivr = Rivr::start(
        "e-cancel",
        RivrConfig::default().script(
            "3002",
            "slow.rhai",
            "// Rings for 20 s before answering.\nring();\nsleep(20000);\nanswer();\nplay(\"goodbye\");\n",
        ),
    );
    let spec = CallSpec {
        scenario: "uac_cancel.xml",
        number: "3002",
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), "e-cancel", rivr.sip_port, &spec);
    sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&call_id(&sipp), SIGNALLING);
    println!("[e-cancel] CDR: {cdr}");
    assert_eq!(cdr["end"], "cancelled", "{cdr}");
    assert_eq!(cdr["answered"], false, "{cdr}");
}

/// f) One script stuck in `loop {}` and one that throws, each on its own
/// call, while a third call to the menu runs beside them: both bad calls
/// end with a BYE from rivr and a `failed:` CDR naming file:line:col, and
/// the menu caller still hears main_menu whole.
#[test]
fn f_looping_and_throwing_scripts_end_cleanly_beside_a_good_call() {
    require_sipp!();
    let rivr = Rivr::start(
        "f-bad-scripts",
        RivrConfig::default()
            .script(
                "3000",
                "stuck.rhai",
                "answer();\nlog(\"spinning\");\nloop {}\n",
            )
            .script("3001", "throws.rhai", "answer();\nthrow \"boom\";\n"),
    );
    let menu = prompt("main_menu");
    let hold_ms = menu.duration_ms() + 3000;
    let good_spec = CallSpec {
        scenario: "uac_hangup.xml",
        number: "1000",
        hold_ms,
        ..CallSpec::default()
    };
    let bad_spec = |number| CallSpec {
        scenario: "uac_wait_bye.xml",
        number,
        ..CallSpec::default()
    };
    // The three calls go out back to back; the bad ones answer at once.
    let dir = rivr.dir.path();
    let mut good_peer = common::rtp::RtpPeer::bind();
    let mut good = Sipp::start(
        dir,
        "f-good",
        rivr.sip_port,
        &CallSpec {
            rtp_port: good_peer.port,
            ..good_spec
        },
    );
    let mut stuck = Caller::answered(&rivr, "f-stuck", bad_spec("3000"));
    let mut throws = Caller::answered(&rivr, "f-throws", bad_spec("3001"));
    let good_answer = good.wait_answer(SIGNALLING);
    good_peer.start_sending(good_answer.rtp, good_answer.payload_type, 101);

    stuck.sipp.expect_pass(SIGNALLING);
    throws.sipp.expect_pass(SIGNALLING);
    good.expect_pass(SIGNALLING + Duration::from_millis(hold_ms));

    let heard = Heard::decode(&good_peer.packets(), 0);
    let (_, ncc) = align(&heard.samples, &to_f32(menu.pcm_8k()));
    let stuck_cdr = rivr.wait_cdr(&stuck.answer.call_id, SIGNALLING);
    let throws_cdr = rivr.wait_cdr(&throws.answer.call_id, SIGNALLING);
    let good_cdr = rivr.wait_cdr(&good_answer.call_id, SIGNALLING);
    println!(
        "[f] beside the bad scripts main_menu NCC = {ncc:.4}\n[f] loop CDR: {stuck_cdr}\n\
         [f] throw CDR: {throws_cdr}"
    );
    assert!(ncc >= 0.9, "the good call's prompt suffered: NCC {ncc:.4}");
    for (cdr, file, line, what) in [
        (&stuck_cdr, "stuck.rhai", 3, ""),
        (&throws_cdr, "throws.rhai", 2, "boom"),
    ] {
        let script = cdr["script"].as_str().unwrap_or_default();
        assert!(script.starts_with("failed:"), "{file}: {cdr}");
        assert!(
            script.contains(&format!("{file}:{line}:")),
            "{file}: the failure does not name {file}:{line}:col: {cdr}"
        );
        assert!(script.contains(what), "{file}: {cdr}");
        assert_eq!(cdr["end"], "local-bye", "{file}: {cdr}");
    }
    assert_eq!(good_cdr["end"], "remote-bye", "{good_cdr}");
    assert!(
        rivr.wait_log(Duration::from_secs(10), |l| l.contains("call ended")
            && l.contains("active=0"))
            .is_some(),
        "calls left after all three ended; stderr:\n{}",
        rivr.stderr()
    );
}

/// The responses to INVITE in a SIPp message log, one string each.
fn invite_responses(log: &str) -> impl Iterator<Item = &str> {
    log.split("-----------------------------------------------")
        .filter_map(|block| block.find("SIP/2.0 ").map(|i| &block[i..]))
        .filter(|m| {
            m.lines()
                .any(|l| l.starts_with("CSeq:") && l.contains("INVITE"))
        })
}

/// The Call-ID of the call SIPp placed, from its message log.
fn call_id(sipp: &Sipp) -> String {
    sipp.messages()
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: ").map(|v| v.trim().to_owned()))
        .expect("SIPp logged its INVITE")
}
