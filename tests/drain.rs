//! The graceful drain end to end (issue 13 §5): `rivr serve` holds 50
//! inbound calls (one SIPp UAC, each call hung up by SIPp after a pause)
//! and runs a campaign against a SIPp carrier, and gets SIGTERM while
//! both are going. The witnesses are SIPp's own counters and message
//! traces, not rivr's logs:
//!
//! - every one of the 50 calls ends by SIPp's BYE (SIPp counts a call that
//!   rivr's BYE interrupts as failed, and its trace shows no BYE from rivr);
//! - an INVITE and an OPTIONS sent during the drain get 503 with a
//!   Retry-After no longer than the drain timeout;
//! - rivr exits 0 soon after the last call ends, far before the timeout;
//! - the carrier sees no new INVITE from the drain's start to the restart;
//! - after a restart the campaign completes, every contact with the
//!   outcome and the count of INVITEs its number dictates (nothing lost,
//!   nothing dialled twice).

mod common;
#[path = "smpp/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::campaign::{self, rivr_cli, trace_invites};
use common::carrier::Carrier;
use common::raw_sip::{header, status, Peer};
use common::server::{repo, Rivr, RivrConfig};
use common::sipp::free_port;
use common::sipp_load::stat;
use serde_json::Value;

/// Inbound calls held through the drain.
const CALLS: u32 = 50;
/// How long SIPp holds each call before its BYE.
const HOLD_MS: u64 = 12_000;
/// `[server] drain_timeout_s`: far above what the calls need.
const DRAIN_TIMEOUT_S: u64 = 60;
const CONTACTS: usize = 120;
const CPS: u32 = 5;
const CHANNELS: u32 = 10;
const ATTEMPTS: u32 = 2;

fn number(i: usize) -> String {
    format!("+254713{i:06}")
}

/// The outcome and attempts a number's last digit dictates at the
/// carrier (tests/sipp/uas_campaign.xml).
fn expected(phone: &str) -> (&'static str, u32) {
    campaign::carrier_outcome(phone, ATTEMPTS)
}

/// Microseconds since the Unix epoch (the clock of SIPp's traces).
fn epoch_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// BYE requests SIPp received, from its message trace.
fn byes_received(trace: &str) -> usize {
    trace
        .split("message received")
        .skip(1)
        .filter(|entry| {
            entry
                .lines()
                .skip(1)
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with("BYE "))
        })
        .count()
}

/// One INVITE and one OPTIONS from a fresh peer: each must get 503 with a
/// Retry-After of 1 to `DRAIN_TIMEOUT_S` seconds.
fn refused_during_drain(rivr: &Rivr) -> Vec<String> {
    let peer = Peer::new(rivr);
    let mut wrong = Vec::new();
    let invite = peer.invite("drain-invite", "z9hG4bK-drain-inv", 1, &peer.offer());
    peer.send(invite.as_bytes());
    let port = peer.port();
    let options = format!(
        "OPTIONS sip:1000@{r} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-drain-opt;rport\r\n\
         From: <sip:lb@127.0.0.1>;tag=lb\r\nTo: <sip:1000@{r}>\r\nCall-ID: drain-options\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        r = peer.rivr
    );
    peer.send(options.as_bytes());
    let mut got: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && Instant::now() < deadline {
        let Some(msg) = peer.recv(Duration::from_millis(200)) else {
            continue;
        };
        if status(&msg).is_some_and(|s| s >= 200) {
            if let Some(id) = header(&msg, "Call-ID") {
                got.insert(id, msg);
            }
        }
    }
    for id in ["drain-invite", "drain-options"] {
        let Some(resp) = got.get(id.as_bytes()) else {
            wrong.push(format!("{id}: no final response"));
            continue;
        };
        let retry: Option<u64> = header(resp, "Retry-After")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.trim().parse().ok());
        let ok =
            status(resp) == Some(503) && retry.is_some_and(|s| (1..=DRAIN_TIMEOUT_S).contains(&s));
        if !ok {
            wrong.push(format!("{id}: {}", String::from_utf8_lossy(resp)));
        }
    }
    wrong
}

/// SIPp placing `CALLS` calls to `number`, each hung up by SIPp after
/// `HOLD_MS` (tests/sipp/uac_hangup.xml: a BYE from rivr meanwhile is an
/// unexpected message, and SIPp counts that call as failed).
fn start_callers(dir: &Path, rivr_port: u16, number: &str) -> std::process::Child {
    let file = |s: &str| dir.join(format!("callers-{s}"));
    Command::new("sipp")
        .arg(format!("127.0.0.1:{rivr_port}"))
        .arg("-sf")
        .arg(repo().join("tests/sipp/uac_hangup.xml"))
        .args(["-s", number, "-i", "127.0.0.1"])
        .args(["-p", &free_port().to_string()])
        .args(["-key", "rtp_port", "9", "-key", "codecs", "0"])
        .args(["-m", &CALLS.to_string(), "-l", &CALLS.to_string()])
        .args(["-r", "25", "-rp", "1000", "-d", &HOLD_MS.to_string()])
        .args(["-timeout", "120s", "-timeout_error", "-nostdin"])
        .args(["-trace_stat", "-fd", "1", "-stf"])
        .arg(file("stats.csv"))
        .args(["-trace_msg", "-message_file"])
        .arg(file("messages.log"))
        .args(["-trace_err", "-error_file"])
        .arg(file("errors.log"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp")
}

#[test]
fn sigterm_drains_calls_to_their_own_end_refuses_new_ones_and_the_campaign_resumes() {
    require_sipp!();
    let simdir = harness::temp_dir("drain-sim");
    let sim = harness::Sim::start(&simdir, &["--receipt-delay-ms", "50"]);
    let carrier_dir = harness::temp_dir("drain-carrier");
    let mut carrier = Carrier::start_with(
        &carrier_dir,
        "drain",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100000", "-timeout", "900s"],
    );
    let mut cfg = RivrConfig {
        rtp_ports: 300,
        extra_tables: format!(
            "[server]\ndrain_timeout_s = {DRAIN_TIMEOUT_S}\n\
             [limits]\nper_source_cps = 200\n{}",
            campaign::tables(&simdir.join("rivr.db"), sim.port, carrier.port)
        ),
        ..RivrConfig::default()
    };
    cfg = cfg.script(
        "3000",
        "hold.rhai",
        "answer();\nsleep(300000);\nhangup();\n",
    );
    let mut rivr = Rivr::start("drain", cfg);
    let config = rivr.dir.join("rivr.toml");
    let id = campaign::create(
        &rivr,
        &campaign::Blast {
            contacts: CONTACTS,
            cps: CPS,
            channels: CHANNELS,
            attempts: ATTEMPTS,
        },
        number,
    );
    rivr_cli(&config, &["start", &id]);

    let callers_dir = harness::temp_dir("drain-callers");
    let mut callers = start_callers(&callers_dir, rivr.sip_port, "3000");
    let placed = Instant::now();
    let all_up = rivr.wait_log(Duration::from_secs(30), |_| {
        rivr.stderr()
            .lines()
            .filter(|l| l.contains("call started") && l.contains("number=\"3000\""))
            .count()
            >= CALLS as usize
    });
    assert!(all_up.is_some(), "the {CALLS} calls did not all start");
    let up_after = placed.elapsed();

    let sigterm = Instant::now();
    let sigterm_us = epoch_us();
    rivr.signal("TERM");
    rivr.wait_log(Duration::from_secs(10), |l| l.contains("drain: started"))
        .unwrap_or_else(|| panic!("no drain after SIGTERM:\n{}", rivr.stderr()));
    let wrong = refused_during_drain(&rivr);
    assert!(wrong.is_empty(), "during the drain: {wrong:#?}");
    let status = rivr.wait_exit(Duration::from_secs(DRAIN_TIMEOUT_S + 15));
    let exited_after = sigterm.elapsed();
    let restart_us = epoch_us();

    // SIPp's view of the 50 calls.
    let deadline = Instant::now() + Duration::from_secs(30);
    let sipp_status = loop {
        if let Ok(Some(s)) = callers.try_wait() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = callers.kill();
            let _ = callers.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stats = std::fs::read_to_string(callers_dir.join("callers-stats.csv")).unwrap_or_default();
    let trace =
        std::fs::read_to_string(callers_dir.join("callers-messages.log")).unwrap_or_default();
    let (created, ok, failed) = (
        stat(&stats, "OutgoingCall(C)"),
        stat(&stats, "SuccessfulCall(C)"),
        stat(&stats, "FailedCall(C)"),
    );
    let rivr_byes = byes_received(&trace);
    let first_run = rivr.stderr();
    let drained = first_run
        .lines()
        .find(|l| l.contains("drain: every call ended on its own"))
        .unwrap_or("(no end-of-drain line)")
        .to_string();
    println!(
        "[drain] {CALLS} calls up {} ms after the first INVITE; SIGTERM; rivr exited {status:?} {} ms later \
         (calls held {HOLD_MS} ms, drain timeout {DRAIN_TIMEOUT_S} s)\n\
         [drain] SIPp: {created} placed, {ok} successful, {failed} failed, {rivr_byes} BYEs received from rivr\n\
         [drain] rivr: {drained}",
        up_after.as_millis(),
        exited_after.as_millis(),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "rivr did not exit 0 within {} s of SIGTERM: {status:?}",
        DRAIN_TIMEOUT_S + 15
    );
    assert_eq!(
        (created, ok, failed),
        (u64::from(CALLS), u64::from(CALLS), 0),
        "SIPp's counts; sipp exit {sipp_status:?}; errors:\n{}",
        std::fs::read_to_string(callers_dir.join("callers-errors.log")).unwrap_or_default()
    );
    assert!(
        sipp_status.is_some_and(|s| s.success()),
        "sipp: {sipp_status:?}"
    );
    assert_eq!(rivr_byes, 0, "rivr hung up calls during the drain");
    // The calls end by HOLD_MS after they were answered; rivr is gone
    // soon after the last, far before the deadline.
    assert!(
        exited_after < Duration::from_secs(DRAIN_TIMEOUT_S / 2),
        "rivr took {exited_after:?} to drain calls held {HOLD_MS} ms"
    );
    assert!(
        first_run.contains("drain: every call ended on its own"),
        "{first_run}"
    );

    // The campaign: paused by the stop, not finished, still `running`.
    let s: Value = serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
    println!("[drain] campaign at the stop: {s}");
    assert_eq!(s["state"], "running", "{s}");
    let dialed_before: Vec<i64> = trace_invites(&carrier.messages())
        .iter()
        .map(|i| i.us)
        .collect();
    let during_drain = dialed_before
        .iter()
        .filter(|&&us| us > sigterm_us + 500_000 && us < restart_us)
        .count();
    assert_eq!(
        during_drain, 0,
        "the carrier saw INVITEs after the drain started"
    );
    let dialed_at_stop = dialed_before.len();
    assert!(
        dialed_at_stop > 0 && dialed_at_stop < CONTACTS,
        "the stop should fall mid-campaign: {dialed_at_stop} INVITEs before it"
    );

    // The restart resumes it to its end.
    rivr.restart();
    let t0 = Instant::now();
    let done = loop {
        let s: Value =
            serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
        if s["state"] == "done" {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "campaign not done 240 s after the restart: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "[drain] campaign done {:?} after the restart: {done}",
        t0.elapsed()
    );
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let rows = report.as_array().expect("a report array");
    assert_eq!(rows.len(), CONTACTS);
    let wrong = campaign::report_mismatches(rows, expected);
    assert!(
        wrong.is_empty(),
        "{} contacts wrong: {wrong:#?}",
        wrong.len()
    );
    let mut per_number: HashMap<String, u32> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in carrier.log().lines().filter(|l| l.starts_with("invite ")) {
        let field = |key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key));
        // A retransmitted INVITE is the same attempt.
        if let (Some(n), Some(call_id)) = (field("number="), field("call_id=")) {
            if seen.insert(call_id.to_string()) {
                *per_number.entry(format!("+{n}")).or_default() += 1;
            }
        }
    }
    let off: Vec<String> = (0..CONTACTS)
        .map(number)
        .filter_map(|n| {
            let got = per_number.get(&n).copied().unwrap_or(0);
            (got != expected(&n).1).then(|| format!("{n}: {got} INVITEs"))
        })
        .collect();
    assert!(
        off.is_empty(),
        "INVITEs per number at the carrier: {off:#?}"
    );
    let status = rivr.terminate(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let _ = carrier.wait(Duration::from_millis(10));
}
