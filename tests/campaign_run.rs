//! A campaign dialed by `rivr serve` against SIPp as the carrier, whose
//! answer is fixed by each number's last digit (tests/sipp/uas_campaign.xml:
//! 2 busy, 3 rings until cancelled, 4 503, 5 the callee hangs up, others
//! answered), with `rivr smsc-sim` as the SMSC. The last ten numbers go
//! on the do-not-call list just after the campaign starts: the check is at
//! dial time, so they are never dialed. The witnesses are the
//! carrier's log (INVITEs per number, per second, calls up at once) and
//! the SMSC's (texts per number), not rivr's own store; the report must
//! agree with them.

mod common;
#[path = "smpp/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::campaign::{self, busiest_window, rivr_cli, tightest_span, trace_invites};
use common::carrier::Carrier;
use common::server::{Rivr, RivrConfig};
use common::wire::WireCapture;
use serde_json::Value;

const CONTACTS: usize = 1000;
const CPS: u32 = 25;
const CHANNELS: u32 = 20;
const ATTEMPTS: u32 = 2;
/// Put on the do-not-call list after the start (dialed last, ~40 s later).
const DNC_FROM: usize = CONTACTS - 10;

fn number(i: usize) -> String {
    format!("+254712{i:06}")
}

/// The outcome a number ends with and the attempts it takes (a number on
/// the do-not-call list is claimed once and never dialed).
fn expected(phone: &str) -> (&'static str, u32) {
    let index: usize = phone[phone.len() - 6..].parse().unwrap_or(0);
    if index >= DNC_FROM {
        return ("dnc", 1);
    }
    campaign::carrier_outcome(phone, ATTEMPTS)
}

/// The INVITEs the carrier sees for a number.
fn invites_expected(phone: &str) -> u32 {
    match expected(phone) {
        ("dnc", _) => 0,
        (_, n) => n,
    }
}

/// Whether the number gets the SMS fallback (no answer; never a `dnc`).
fn texted(phone: &str) -> bool {
    !matches!(expected(phone).0, "answered" | "dnc")
}

/// One INVITE the carrier received: (ms, number, call id).
type Invite = (u64, String, String);

/// Each INVITE, and the end ms of each call, from the carrier's log.
fn carrier_calls(log: &str) -> (Vec<Invite>, HashMap<String, u64>) {
    let field = |line: &str, key: &str| -> Option<String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let mut invites = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut ends = HashMap::new();
    for line in log.lines() {
        let (Some(t), Some(id)) = (field(line, "t="), field(line, "call_id=")) else {
            continue;
        };
        let Ok(t) = t.parse::<u64>() else { continue };
        if line.starts_with("invite ") {
            // A retransmitted INVITE is the same attempt.
            if seen.insert(id.clone()) {
                invites.push((t, field(line, "number=").unwrap_or_default(), id));
            }
        } else if line.starts_with("end ") {
            ends.insert(id, t);
        }
    }
    invites.sort();
    (invites, ends)
}

#[test]
fn a_thousand_contacts_end_with_their_numbers_outcomes_within_cps_and_channels() {
    require_sipp!();
    let simdir = harness::temp_dir("campaign-run-sim");
    let sim = harness::Sim::start(&simdir, &["--receipt-delay-ms", "50"]);
    let carrier_dir = harness::temp_dir("campaign-run-carrier");
    let carrier = Carrier::start_with(
        &carrier_dir,
        "campaign",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100000", "-timeout", "900s"],
    );
    // The pace is judged on the wire (see common::wire).
    let wire = WireCapture::start(&carrier_dir, carrier.port);
    let mut cfg = RivrConfig {
        rtp_ports: 200,
        ..RivrConfig::default()
    };
    cfg.extra_tables = campaign::tables(&simdir.join("rivr.db"), sim.port, carrier.port);
    let mut rivr = Rivr::start("campaign-run", cfg);
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
    let late: Vec<String> = (DNC_FROM..CONTACTS).map(number).collect();
    let out = Command::new(harness::rivr_bin())
        .args(["dnc", "add", "--config"])
        .arg(&config)
        .args(&late)
        .output()
        .expect("run rivr dnc add");
    assert!(
        out.status.success(),
        "rivr dnc add: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t0 = Instant::now();
    let mut last_print = t0;
    let status = loop {
        let s: Value =
            serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
        if s["state"] == "done" {
            break s;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            println!("[campaign] {:?}: {s}", t0.elapsed());
            last_print = Instant::now();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(400),
            "campaign not done in 400 s: {s}\n{}",
            rivr.stderr()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(rivr.is_running(), "rivr exited: {}", rivr.stderr());
        std::thread::sleep(Duration::from_millis(500));
    };
    let took = t0.elapsed();
    println!("[campaign] done in {took:?}: {status}");

    // The report agrees with what each number does.
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), CONTACTS);
    let wrong = campaign::report_mismatches(rows, expected);
    assert!(
        wrong.is_empty(),
        "{} contacts wrong, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );

    // The carrier's log: attempts per number, pace, channels.
    let (invites, ends) = carrier_calls(&carrier.log());
    let mut per_number: HashMap<String, u32> = HashMap::new();
    for (_, n, _) in &invites {
        // The carrier logs the digits after the `+`.
        *per_number.entry(format!("+{n}")).or_default() += 1;
    }
    let twice: Vec<_> = (0..CONTACTS)
        .map(number)
        .filter(|n| per_number.get(n).copied().unwrap_or(0) != invites_expected(n))
        .collect();
    assert!(
        twice.is_empty(),
        "numbers with the wrong count of INVITEs at the carrier: {:?}",
        &twice[..twice.len().min(10)]
    );
    // Pace from the INVITEs' arrival on the carrier's interface (µs,
    // the kernel's clock); SIPp's own trace is printed beside it.
    let times: Vec<i64> = wire.stop().iter().map(|i| i.us).collect();
    assert_eq!(
        times.len(),
        invites.len(),
        "INVITEs on the wire and in the carrier's log"
    );
    let read_times: Vec<i64> = trace_invites(&carrier.messages())
        .iter()
        .map(|i| i.us)
        .collect();
    println!(
        "[campaign] as SIPp read them: at most {} in any 1 s, the closest {} took {:.1} ms",
        busiest_window(&read_times, 1_000_000).0,
        CPS + 1,
        tightest_span(&read_times, CPS as usize + 1).unwrap_or(i64::MAX) as f64 / 1e3
    );
    let (max_in_second, busiest_at) = busiest_window(&times, 1_000_000);
    let tightest = tightest_span(&times, CPS as usize + 1).unwrap_or(i64::MAX);
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for (t, _, id) in &invites {
        edges.push((*t, 1));
        edges.push((ends.get(id).copied().unwrap_or(u64::MAX), -1));
    }
    edges.sort();
    let (mut up, mut max_up) = (0i32, 0i32);
    for (_, d) in edges {
        up += d;
        max_up = max_up.max(up);
    }
    let span_s = (times.last().unwrap_or(&0) - times.first().unwrap_or(&0)) as f64 / 1e6;
    println!(
        "[campaign] carrier: {} INVITEs over {span_s:.1} s ({:.1}/s), at most {max_in_second} in any 1 s on the wire (cps {CPS}; the closest {} took {:.1} ms), at most {max_up} calls up at once (max_channels {CHANNELS})",
        invites.len(),
        invites.len() as f64 / span_s.max(0.001),
        CPS + 1,
        tightest as f64 / 1e3,
    );
    assert!(
        max_in_second <= CPS as usize,
        "the carrier saw {max_in_second} INVITEs in one second, from {:.3} s after the first; the closest {} INVITEs took {:.1} ms",
        (busiest_at - times.first().copied().unwrap_or(0)) as f64 / 1e6,
        CPS + 1,
        tightest as f64 / 1e3,
    );
    assert!(
        max_up <= CHANNELS as i32,
        "the carrier saw {max_up} calls up at once"
    );

    // The SMSC's log: one text per contact voice could not reach.
    let mut texts: HashMap<String, u32> = HashMap::new();
    let sms_deadline = Instant::now() + Duration::from_secs(30);
    let failed: usize = (0..CONTACTS).map(number).filter(|n| texted(n)).count();
    loop {
        texts.clear();
        for a in sim.accepted() {
            *texts.entry(a.dest.clone()).or_default() += 1;
        }
        if texts.len() >= failed || Instant::now() > sms_deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let bad_sms: Vec<String> = (0..CONTACTS)
        .map(number)
        .filter(|n| {
            let want = u32::from(texted(n));
            let got = texts
                .get(n)
                .or_else(|| texts.get(n.trim_start_matches('+')))
                .copied()
                .unwrap_or(0);
            got != want
        })
        .collect();
    println!(
        "[campaign] SMSC: {} texts to {} numbers ({failed} expected)",
        texts.values().sum::<u32>(),
        texts.len()
    );
    assert!(
        bad_sms.is_empty(),
        "numbers texted the wrong number of times: {:?}",
        &bad_sms[..bad_sms.len().min(10)]
    );
    assert_eq!(status["outcomes"]["answered"], 693, "{status}");
    assert_eq!(status["outcomes"]["dnc"], 10, "{status}");
    rivr.terminate(Duration::from_secs(10));
}
