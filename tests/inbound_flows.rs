//! Inbound calls end to end beyond the letters: the survey flow
//! (2000) answered with RFC 4733 keys ends up in the CDR, a key by SIP INFO
//! picks a menu branch, and a second SIGTERM ends live calls with a BYE.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::{Duration, Instant};

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

/// Waits until `ms` of rivr's audio have arrived on the caller's socket.
fn wait_heard_ms(caller: &Caller, ms: u64) {
    let packets = usize::try_from(ms / 20).unwrap_or(usize::MAX);
    assert!(
        caller.peer.wait_count(packets, SIGNALLING),
        "rivr's RTP stopped before {ms} ms"
    );
}

/// The survey: keys 4 (satisfaction, during survey_q1) and 1 (recommend,
/// during survey_q2) land in the CDR's results; rivr hangs up after
/// survey_thanks.
#[test]
fn survey_answers_by_rfc4733_reach_the_cdr() {
    require_sipp!();
    let rivr = Rivr::start("survey", RivrConfig::default());
    let mut caller = Caller::answered(
        &rivr,
        "survey",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "2000",
            codecs: "8",
            ..CallSpec::default()
        },
    );
    let intro = prompt("survey_intro").duration_ms();
    let q1 = prompt("survey_q1").duration_ms();
    // Each key goes 1 s into its question's prompt (barge-in).
    wait_heard_ms(&caller, intro + 1000);
    caller.peer.press('4', 100);
    wait_heard_ms(&caller, intro + q1.min(2000) + 2500);
    caller.peer.press('1', 100);
    caller.sipp.expect_pass(SIGNALLING);

    let heard = Heard::decode(&caller.peer.packets(), 8);
    let (_, thanks_ncc) = align(&heard.samples, &to_f32(prompt("survey_thanks").pcm_8k()));
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    println!("[survey] survey_thanks NCC = {thanks_ncc:.4}; CDR: {cdr}");
    assert_eq!(cdr["results"]["satisfaction"], "4", "{cdr}");
    assert_eq!(cdr["results"]["recommend"], "yes", "{cdr}");
    assert_eq!(cdr["script"], "hangup", "{cdr}");
    assert!(
        thanks_ncc >= 0.9,
        "survey_thanks not heard: NCC {thanks_ncc:.4}"
    );
}

/// A key sent by SIP INFO (`application/dtmf-relay`, `Signal=1`) 3 s into
/// the menu picks its branch: opening_hours is heard after main_menu, then
/// rivr hangs up.
#[test]
fn sip_info_digit_picks_the_menu_branch() {
    require_sipp!();
    let rivr = Rivr::start("info", RivrConfig::default());
    let mut caller = Caller::answered(
        &rivr,
        "info",
        CallSpec {
            scenario: "uac_info_digit.xml",
            number: "1000",
            hold_ms: 3000,
            extra_args: &["-key", "key", "1"],
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let heard = Heard::decode(&caller.peer.packets(), 0);
    let (menu_lag, menu_ncc) = align(
        &heard.samples,
        &to_f32(&prompt("main_menu").pcm_8k()[..16_000]),
    );
    let branch = prompt("opening_hours");
    let (branch_lag, branch_ncc) = align(&heard.samples, &to_f32(branch.pcm_8k()));
    println!(
        "[info] main_menu head NCC = {menu_ncc:.4} at {} ms; opening_hours NCC = {branch_ncc:.4} at {} ms",
        menu_lag / 8,
        branch_lag / 8
    );
    assert!(
        menu_ncc >= 0.9,
        "main_menu not heard first: NCC {menu_ncc:.4}"
    );
    assert!(
        branch_ncc >= 0.9,
        "opening_hours not heard after INFO Signal=1: NCC {branch_ncc:.4}"
    );
    assert!(
        branch_lag > menu_lag,
        "the branch came before the main menu"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["script"], "hangup", "{cdr}");
}

/// SIGTERM with a call up starts a drain: the call goes on; a second
/// SIGTERM ends the drain at once: rivr sends BYE (SIPp answers it),
/// exits 0, and the CDR says `shutdown`. (tests/drain.rs has the drain
/// that runs its course.)
#[test]
fn a_second_sigterm_ends_the_drain_and_live_calls_with_bye() {
    require_sipp!();
    let mut rivr = Rivr::start("sigterm", RivrConfig::default());
    let mut caller = Caller::answered(
        &rivr,
        "sigterm",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "1000",
            ..CallSpec::default()
        },
    );
    wait_heard_ms(&caller, 1000);
    rivr.signal("TERM");
    rivr.wait_log(SIGNALLING, |l| l.contains("drain: started"))
        .unwrap_or_else(|| panic!("no drain after SIGTERM:\n{}", rivr.stderr()));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        rivr.is_running(),
        "the drain waits for the call in progress"
    );
    let signalled = Instant::now();
    let status = rivr.terminate(Duration::from_secs(15));
    let took = signalled.elapsed();
    caller.sipp.expect_pass(SIGNALLING);
    println!(
        "[sigterm] rivr exited {status:?} {} ms after the second SIGTERM",
        took.as_millis()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "rivr did not exit 0 within 15 s of the second SIGTERM: {status:?}"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, Duration::from_secs(1));
    assert_eq!(cdr["end"], "shutdown", "{cdr}");
    assert!(
        rivr.stderr()
            .contains("drain: interrupted by a second signal"),
        "{}",
        rivr.stderr()
    );
}
