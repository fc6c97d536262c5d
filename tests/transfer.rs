//! `transfer()` end to end (issue 14): a SIPp caller calls `rivr serve`,
//! whose script answers and transfers it with REFER (RFC 3515); the
//! caller's SIPp plays the transferee. Shown: REFER's Refer-To (a number
//! becomes a URI in the caller's domain) and Referred-By; rivr's 200 to
//! each NOTIFY and its BYE after the final 2xx sipfrag (RFC 5589 §6); the
//! script's result and the CDR; a refused REFER (603) and a failed
//! transfer (486 sipfrag) leave the call up and the script plays
//! `goodbye` (heard, by correlation); with `fallback: "dial"` a REFER
//! answered 501 becomes a `dial()` bridge to a second SIPp (a carrier).
//!
//! Timings between messages are printed; run with `--nocapture`.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::carrier::Carrier;
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

/// Transfers to 2000; on failure says goodbye; the result goes to the CDR.
const TRANSFER: &str = r#"
answer();
let r = transfer("2000", #{ timeout: 10000 });
set_result("ok", r.ok);
set_result("status", r.status);
set_result("reason", r.reason);
set_result("via", r.via);
if !r.ok {
    play("goodbye");
}
"#;

/// As TRANSFER, with the dial() fallback on the carrier trunk.
const FALLBACK: &str = r#"
answer();
let r = transfer("2000", #{ timeout: 10000, fallback: "dial", trunk: "carrier" });
set_result("ok", r.ok);
set_result("via", r.via);
set_result("refer_status", r.refer_status);
set_result("outcome", r.outcome);
"#;

/// One SIP message of SIPp's trace: when, sent or received, first line,
/// whole text.
struct Msg {
    at: f64,
    sent: bool,
    first: String,
    text: String,
}

/// SIPp's `-trace_msg` file: blocks headed by a dashed line with a
/// timestamp ("----… 2026-12-05 02:14:01.123456"), then "UDP message sent"
/// or "received", then the message.
fn trace(raw: &str) -> Vec<Msg> {
    let mut out = Vec::new();
    for block in raw.split("\n-----").skip(1) {
        let mut lines = block.lines();
        let head = lines.next().unwrap_or("");
        let Some(time) = head.split_whitespace().last() else {
            continue;
        };
        let secs = time
            .split(':')
            .map(|p| p.parse::<f64>().unwrap_or(0.0))
            .fold(0.0, |acc, p| acc * 60.0 + p);
        let kind = lines.next().unwrap_or("");
        let sent = kind.contains("sent");
        let text: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
        let first = text
            .first()
            .map(|l| l.trim().to_string())
            .unwrap_or_default();
        out.push(Msg {
            at: secs,
            sent,
            first,
            text: text.join("\n"),
        });
    }
    out
}

/// The index of the first message after `from` matching `pred`.
fn find(msgs: &[Msg], from: usize, pred: impl Fn(&Msg) -> bool) -> Option<usize> {
    (from..msgs.len()).find(|i| pred(&msgs[*i]))
}

fn header<'a>(m: &'a Msg, name: &str) -> Option<&'a str> {
    m.text
        .lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn cseq_method(m: &Msg) -> String {
    header(m, "CSeq")
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string()
}

fn refer_call(label: &str, scenario: &str, keys: &[&str]) -> (Rivr, Caller) {
    let rivr = Rivr::start(
        label,
        RivrConfig::default().script("3000", "transfer.rhai", TRANSFER),
    );
    let caller = Caller::answered(
        &rivr,
        label,
        CallSpec {
            scenario,
            number: "3000",
            codecs: "0",
            extra_args: keys,
            ..CallSpec::default()
        },
    );
    (rivr, caller)
}

/// The REFER rivr sent: Refer-To is 2000 in the caller's domain (SIPp's
/// From host), Referred-By the URI it called.
fn check_refer(m: &Msg) {
    assert!(m.first.starts_with("REFER sip:"), "{}", m.text);
    let refer_to = header(m, "Refer-To").unwrap_or("");
    assert!(
        refer_to.starts_with("<sip:2000@127.0.0.1:") && refer_to.ends_with('>'),
        "Refer-To: {refer_to}"
    );
    let referred_by = header(m, "Referred-By").unwrap_or("");
    assert!(
        referred_by.starts_with("<sip:3000@127.0.0.1:") && referred_by.ends_with('>'),
        "Referred-By: {referred_by}"
    );
}

fn ms(d: f64) -> f64 {
    (d * 1000.0 * 10.0).round() / 10.0
}

#[test]
fn a_2xx_sipfrag_completes_the_transfer_and_rivr_hangs_up() {
    require_sipp!();
    let (rivr, mut caller) = refer_call(
        "transfer-ok",
        "uac_refer_notify.xml",
        &["-key", "final_frag", "200 OK"],
    );
    caller.sipp.expect_pass(SIGNALLING);
    let msgs = trace(&caller.sipp.messages());
    let refer = find(&msgs, 0, |m| !m.sent && m.first.starts_with("REFER ")).expect("a REFER");
    check_refer(&msgs[refer]);
    let accepted = find(&msgs, refer, |m| {
        m.sent && m.first.starts_with("SIP/2.0 202")
    })
    .unwrap();
    let n1 = find(&msgs, accepted, |m| {
        m.sent && m.first.starts_with("NOTIFY ")
    })
    .unwrap();
    let ok1 = find(&msgs, n1, |m| !m.sent && cseq_method(m) == "NOTIFY").unwrap();
    let n2 = find(&msgs, ok1, |m| m.sent && m.first.starts_with("NOTIFY ")).unwrap();
    let ok2 = find(&msgs, n2, |m| !m.sent && cseq_method(m) == "NOTIFY").unwrap();
    let bye = find(&msgs, ok2, |m| !m.sent && m.first.starts_with("BYE ")).unwrap();
    for ok in [ok1, ok2] {
        assert_eq!(msgs[ok].first, "SIP/2.0 200 OK", "{}", msgs[ok].text);
    }
    assert!(
        msgs[n2].text.contains("SIP/2.0 200 OK"),
        "the final sipfrag"
    );
    // Nothing from rivr between the final NOTIFY's 200 and the BYE.
    assert_eq!(bye, ok2 + 1, "BYE right after the final NOTIFY's 200");
    println!(
        "[transfer-ok] REFER→202 {} ms (SIPp), NOTIFY 100→200 {} ms, final NOTIFY→200 {} ms, 200→BYE {} ms, REFER→BYE {} ms",
        ms(msgs[accepted].at - msgs[refer].at),
        ms(msgs[ok1].at - msgs[n1].at),
        ms(msgs[ok2].at - msgs[n2].at),
        ms(msgs[bye].at - msgs[ok2].at),
        ms(msgs[bye].at - msgs[refer].at),
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    println!("[transfer-ok] CDR: {cdr}");
    assert_eq!(cdr["results"]["ok"], "true", "{cdr}");
    assert_eq!(cdr["results"]["status"], "200", "{cdr}");
    assert_eq!(cdr["results"]["via"], "refer", "{cdr}");
    assert_eq!(cdr["end"], "transferred", "{cdr}");
    assert_eq!(cdr["reason"], "transferred to 2000", "{cdr}");
    assert_eq!(cdr["outcome"], "answered", "{cdr}");
}

/// A failure keeps the call: the script plays goodbye, heard by the
/// caller, then ends the call (BYE).
fn failed_transfer(label: &str, scenario: &str, keys: &[&str], status: &str) {
    let (rivr, mut caller) = refer_call(label, scenario, keys);
    caller.sipp.expect_pass(SIGNALLING);
    let msgs = trace(&caller.sipp.messages());
    let refer = find(&msgs, 0, |m| !m.sent && m.first.starts_with("REFER ")).expect("a REFER");
    check_refer(&msgs[refer]);
    let answer = find(&msgs, refer, |m| m.sent && cseq_method(m) == "REFER").unwrap();
    let bye = find(&msgs, answer, |m| !m.sent && m.first.starts_with("BYE ")).unwrap();
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    let heard = Heard::decode(&caller.peer.packets(), 0);
    let goodbye = prompt("goodbye");
    let (_, ncc) = align(&heard.samples, &to_f32(goodbye.pcm_8k()));
    println!(
        "[{label}] REFER→its answer {} ms, answer→BYE {} ms (goodbye is {} ms); goodbye NCC = {ncc:.4}; CDR: {cdr}",
        ms(msgs[answer].at - msgs[refer].at),
        ms(msgs[bye].at - msgs[answer].at),
        goodbye.duration_ms()
    );
    assert!(
        ncc >= 0.9,
        "goodbye not heard after the failed transfer: NCC {ncc:.4}"
    );
    assert!(
        msgs[bye].at - msgs[answer].at >= goodbye.duration_ms() as f64 / 1000.0 - 0.1,
        "the call went on for the prompt"
    );
    assert_eq!(cdr["results"]["ok"], "false", "{cdr}");
    assert_eq!(cdr["results"]["status"], status, "{cdr}");
    assert_eq!(cdr["results"]["via"], "refer", "{cdr}");
    assert_eq!(cdr["end"], "local-bye", "{cdr}");
    assert_eq!(cdr["script"], "completed", "{cdr}");
}

#[test]
fn a_refer_declined_603_leaves_the_call_up_and_the_script_goes_on() {
    require_sipp!();
    failed_transfer("transfer-603", "uac_refer_603.xml", &[], "603");
}

#[test]
fn a_486_sipfrag_is_reported_as_a_failure() {
    require_sipp!();
    failed_transfer(
        "transfer-486",
        "uac_refer_notify.xml",
        &["-key", "final_frag", "486 Busy Here"],
        "486",
    );
}

/// Both CDR records of the one call, leg 0 (the caller) first.
fn both_legs(rivr: &Rivr) -> (Value, Value) {
    let deadline = Instant::now() + SIGNALLING;
    loop {
        let mut cdrs = rivr.cdrs();
        if cdrs.len() >= 2 {
            assert_eq!(cdrs.len(), 2, "one record per leg: {cdrs:#?}");
            cdrs.sort_by_key(|c| c["leg"].as_u64());
            let far = cdrs.pop().unwrap_or_default();
            return (cdrs.pop().unwrap_or_default(), far);
        }
        assert!(
            Instant::now() < deadline,
            "two CDR records expected, have {cdrs:#?}\nrivr stderr:\n{}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_refer_refused_501_falls_back_to_a_dial_bridge() {
    require_sipp!();
    let files = Scratch::new("transfer-fallback-far");
    // The carrier answers and hangs up after 2 s of talk.
    let mut carrier = Carrier::start(
        files.path(),
        "far",
        "uas_answer_bye.xml",
        2_000,
        &[("rtp_port", "9".into()), ("codec", "0".into())],
    );
    let rivr = Rivr::start(
        "transfer-fallback",
        RivrConfig {
            extra_tables: format!(
                "[[trunk]]\nname = \"carrier\"\nkind = \"sip\"\n\
                 uri = \"sip:127.0.0.1:{}\"\ncaller_id = \"15550100\"\n\
                 max_channels = 4\ncps = 5\nring_timeout = 30\noptions_interval = 0\n",
                carrier.port
            ),
            ..RivrConfig::default()
        }
        .script("3000", "fallback.rhai", FALLBACK),
    );
    let mut caller = Caller::answered(
        &rivr,
        "transfer-fallback",
        CallSpec {
            scenario: "uac_refer_501.xml",
            number: "3000",
            codecs: "0",
            ..CallSpec::default()
        },
    );
    let offer = carrier.wait_offer(SIGNALLING);
    carrier.expect_pass(SIGNALLING);
    caller.sipp.expect_pass(SIGNALLING);
    let msgs = trace(&caller.sipp.messages());
    let refer = find(&msgs, 0, |m| !m.sent && m.first.starts_with("REFER ")).expect("a REFER");
    check_refer(&msgs[refer]);
    let refused = find(&msgs, refer, |m| m.sent && cseq_method(m) == "REFER").unwrap();
    assert!(msgs[refused].first.starts_with("SIP/2.0 501"));
    let (leg0, leg1) = both_legs(&rivr);
    println!(
        "[transfer-fallback] REFER→501 {} ms; carrier INVITE seen (call {}); CDR leg 0: {leg0}\nCDR leg 1: {leg1}",
        ms(msgs[refused].at - msgs[refer].at),
        offer.call_id,
    );
    assert_eq!(leg0["call_id"], leg1["call_id"], "one call, two legs");
    assert_eq!(leg1["direction"], "outbound");
    assert_eq!(leg1["trunk"], "carrier");
    assert_eq!(leg1["to"], "2000");
    assert_eq!(leg1["outcome"], "answered", "{leg1}");
    assert_eq!(leg1["end"], "remote-bye", "the carrier hung up: {leg1}");
    let talk = leg1["talk_ms"].as_u64().unwrap_or(0);
    assert!((1_900..5_000).contains(&talk), "bridged ~2 s: {leg1}");
    assert_eq!(leg1["transport_id"], offer.call_id.as_str());
    assert_eq!(leg0["results"]["via"], "dial", "{leg0}");
    assert_eq!(leg0["results"]["ok"], "true", "{leg0}");
    assert_eq!(leg0["results"]["refer_status"], "501", "{leg0}");
    assert_eq!(leg0["results"]["outcome"], "answered", "{leg0}");
    assert_eq!(leg0["end"], "local-bye", "{leg0}");
}
