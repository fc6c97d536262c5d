//! The voice blast the campaign tests run (tests/campaign_run.rs,
//! tests/campaign_crash.rs): `rivr campaign` from the test, the tables
//! that point rivr at the SIPp carrier, the SMSC simulator and a store,
//! and the campaign itself (contacts with a `name`, a script that stores
//! it and hangs up after a second, retries of 3 s, an SMS fallback).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::{binary, Rivr};

/// `rivr campaign ARGS[0] --config CONFIG ARGS[1..]`, which must succeed;
/// its standard output.
pub fn rivr_cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("campaign")
        .arg(args[0])
        .arg("--config")
        .arg(config)
        .args(&args[1..])
        .output()
        .expect("run rivr campaign");
    assert!(
        out.status.success(),
        "rivr campaign {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `[store]`, `[smpp]` and the carrier trunk (`carrier`: 50 cps, 60
/// channels, a 2 s ring timeout, no keepalive).
pub fn tables(db: &Path, smsc_port: u16, carrier_port: u16) -> String {
    format!(
        "[store]\nurl = \"sqlite://{db}\"\n\
         [smpp]\nhost = \"127.0.0.1\"\nport = {smsc_port}\nsystem_id = \"rivrsim\"\npassword = \"pw\"\n\
         [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{carrier_port}\"\ncps = 50\nmax_channels = 60\nring_timeout = 2\noptions_interval = 0\n",
        db = db.display(),
    )
}

/// The outcome the SIPp carrier (tests/sipp/uas_campaign.xml) gives a
/// number by its last digit, and the attempts that takes with `attempts`
/// allowed: 2 busy, 3 no answer, 4 congestion (each retried to the last
/// attempt), anything else answered at once.
pub fn carrier_outcome(phone: &str, attempts: u32) -> (&'static str, u32) {
    match phone.chars().last() {
        Some('2') => ("busy", attempts),
        Some('3') => ("no_answer", attempts),
        Some('4') => ("congestion", attempts),
        _ => ("answered", 1),
    }
}

/// The blast's size and pace.
pub struct Blast {
    pub contacts: usize,
    pub cps: u32,
    pub channels: u32,
    pub attempts: u32,
}

/// `contacts.csv` (`number(0..contacts)`, named `Person i`) and
/// `blast.rhai` (stores the name, talks `talk_ms`, hangs up) in rivr's
/// dir; their paths.
pub fn blast_files(
    rivr: &Rivr,
    contacts: usize,
    number: impl Fn(usize) -> String,
    talk_ms: u32,
) -> (PathBuf, PathBuf) {
    let mut csv = String::from("phone,name\n");
    for i in 0..contacts {
        csv.push_str(&format!("{},Person {i}\n", number(i)));
    }
    let list = rivr.dir.join("contacts.csv");
    std::fs::write(&list, csv).expect("write contacts.csv");
    let script = rivr.dir.join("blast.rhai");
    std::fs::write(
        &script,
        format!("set_result(\"name\", call.vars[\"name\"]);\nsleep({talk_ms});\nhangup();\n"),
    )
    .expect("write blast.rhai");
    (list, script)
}

/// Creates the blast for `rivr` (contacts `number(0..contacts)`, named
/// `Person i`) and returns its id, checking the import took every row.
pub fn create(rivr: &Rivr, b: &Blast, number: impl Fn(usize) -> String) -> String {
    let config = rivr.dir.join("rivr.toml");
    let (contacts, script) = blast_files(rivr, b.contacts, number, 1000);
    let created = rivr_cli(
        &config,
        &[
            "create",
            "--name",
            "blast",
            "--contacts",
            &contacts.display().to_string(),
            "--script",
            &script.display().to_string(),
            "--trunk",
            "carrier",
            "--cps",
            &b.cps.to_string(),
            "--max-channels",
            &b.channels.to_string(),
            "--attempts",
            &b.attempts.to_string(),
            "--retry",
            "busy=3s,no_answer=3s,congestion=3s",
            "--hours",
            "00:00-24:00",
            "--tz",
            "UTC",
            "--sms-fallback",
            "Hello {name}, we tried to call you.",
        ],
    );
    created_id(&created, b.contacts)
}

/// The campaign id `rivr campaign create` printed (the last word of its
/// first line), checking the import took all `contacts` rows.
pub fn created_id(created: &str, contacts: usize) -> String {
    let first = created.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{contacts} contacts")),
        "{created}"
    );
    first
        .split_whitespace()
        .last()
        .expect("the id ends the first line")
        .to_string()
}

/// What in a campaign report (`rivr campaign report --format json`) differs
/// from `expected(phone)` (the outcome and attempts its number dictates),
/// and answered contacts whose script did not store their name.
pub fn report_mismatches(
    rows: &[serde_json::Value],
    expected: impl Fn(&str) -> (&'static str, u32),
) -> Vec<String> {
    let mut wrong = Vec::new();
    for r in rows {
        let phone = r["phone"].as_str().unwrap_or_default();
        let (outcome, attempts) = expected(phone);
        if r["outcome"] != outcome || r["attempts"] != attempts {
            wrong.push(format!(
                "{phone}: {} after {} (want {outcome} after {attempts})",
                r["outcome"], r["attempts"]
            ));
        }
        if outcome == "answered" && r["results"]["name"].as_str() != r["fields"]["name"].as_str() {
            wrong.push(format!("{phone}: results {}", r["results"]));
        }
    }
    wrong
}

/// The first INVITE of each Call-ID in SIPp's message trace.
pub struct TraceInvite {
    /// Arrival, µs since the Unix epoch.
    pub us: i64,
    pub call_id: String,
    pub attempt_header: Option<String>,
}

/// Each trace entry starts with a dashed line ending in the local date
/// and time (µs), then `UDP message received [N] bytes:`.
pub fn trace_invites(trace: &str) -> Vec<TraceInvite> {
    use chrono::TimeZone;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for entry in format!("\n{trace}").split("\n-----").skip(1) {
        let mut lines = entry.lines();
        let stamp = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches('-')
            .trim();
        if !lines.next().is_some_and(|l| l.contains("message received")) {
            continue;
        }
        let body: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
        if !body.first().is_some_and(|l| l.starts_with("INVITE ")) {
            continue;
        }
        let header = |name: &str| {
            body.iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let call_id = header("Call-ID")
            .or_else(|| header("i"))
            .unwrap_or_default();
        let Ok(t) = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.f") else {
            continue;
        };
        let Some(t) = chrono::Local.from_local_datetime(&t).earliest() else {
            continue;
        };
        if seen.insert(call_id.clone()) {
            out.push(TraceInvite {
                us: t.timestamp_micros(),
                call_id,
                attempt_header: header("X-Rivr-Attempt"),
            });
        }
    }
    out.sort_by_key(|i| i.us);
    out
}

/// The most arrivals in any window of `window_us`, and when the first
/// of them came.
pub fn busiest_window(times_us: &[i64], window_us: i64) -> (usize, i64) {
    let (mut best, mut at, mut lo) = (0, 0, 0);
    for hi in 0..times_us.len() {
        while times_us[hi] - times_us[lo] >= window_us {
            lo += 1;
        }
        if hi - lo + 1 > best {
            best = hi - lo + 1;
            at = times_us[lo];
        }
    }
    (best, at)
}

/// The shortest time any `n` consecutive arrivals took (µs): with `n` =
/// cps + 1 it is how far the pace stayed from breaking the 1 s window
/// (≥ 1 s: never broken; the margin shows how much jitter it survived).
pub fn tightest_span(times_us: &[i64], n: usize) -> Option<i64> {
    if n < 2 {
        return None;
    }
    times_us.windows(n).map(|w| w[n - 1] - w[0]).min()
}
