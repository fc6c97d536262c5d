//! A campaign on a PRI trunk: the dialer inside `rivr serve` does not
//! care whether a trunk is SIP or PRI. 30 contacts are dialed through the
//! trunk `e1`, whose carrier is libpri (tests/pri/libpri_peer.c, network
//! side, E1), and each ends with the outcome libpri's answer to its number
//! dictates (the last digit: 2 busy, 3 rings out, 4 no circuit, 6 no
//! answer, 1 unallocated, others answered), retried as the campaign says,
//! every attempt one SETUP at the carrier.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::campaign::{blast_files, created_id, report_mismatches, rivr_cli};
use common::libpri::{LibpriPeer, SpanOptions, SpanPaths};
use common::pri_rivr::{span_table, trunk_table};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use serde_json::Value;

const CONTACTS: usize = 30;
const ATTEMPTS: u32 = 2;

fn number(i: usize) -> String {
    format!("+254712000{i:03}")
}

/// The outcome a number ends with and its attempts.
fn expected(phone: &str) -> (&'static str, u32) {
    match phone.chars().last() {
        Some('1') => ("unreachable", 1),
        Some('2') => ("busy", ATTEMPTS),
        Some('3') | Some('6') => ("no_answer", ATTEMPTS),
        Some('4') => ("congestion", ATTEMPTS),
        _ => ("answered", 1),
    }
}

#[test]
fn a_campaign_on_a_pri_trunk_ends_each_contact_as_libpri_answers_its_number() {
    let dir = Scratch::new("pri-campaign");
    let paths = SpanPaths::in_dir(dir.path(), "span1");
    let peer = LibpriPeer::start(
        dir.path(),
        "network",
        &paths,
        &SpanOptions {
            no_answer_ms: Some(1_000),
            clear_after_ms: Some(3_000),
            max_seconds: 300,
            ..SpanOptions::e1()
        },
    );
    let tables = format!(
        "[store]\nurl = \"sqlite://{db}\"\n{span}{trunk}",
        db = dir.join("rivr.db").display(),
        span = span_table("span1", &paths),
        trunk = trunk_table(&["span1"], "cps = 10\nmax_channels = 8\nring_timeout = 2"),
    );
    let mut rivr = Rivr::start(
        "pri-campaign",
        RivrConfig {
            extra_tables: tables,
            ..RivrConfig::default()
        },
    );
    peer.wait_name("up", Duration::from_secs(10));
    let config = rivr.dir.join("rivr.toml");
    let (contacts, script) = blast_files(&rivr, CONTACTS, number, 500);
    let created = rivr_cli(
        &config,
        &[
            "create",
            "--name",
            "pri-blast",
            "--contacts",
            &contacts.display().to_string(),
            "--script",
            &script.display().to_string(),
            "--trunk",
            "e1",
            "--attempts",
            &ATTEMPTS.to_string(),
            "--retry",
            "busy=2s,no_answer=2s,congestion=2s",
            "--hours",
            "00:00-24:00",
            "--tz",
            "UTC",
        ],
    );
    let id = created_id(&created, CONTACTS);
    rivr_cli(&config, &["start", &id]);
    let t0 = Instant::now();
    loop {
        let s: Value =
            serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
        if s["state"] == "done" {
            println!("[pri campaign] done in {:?}: {s}", t0.elapsed());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "campaign not done in 120 s: {s}\n{}",
            rivr.stderr()
        );
        assert!(rivr.is_running(), "rivr exited: {}", rivr.stderr());
        std::thread::sleep(Duration::from_millis(500));
    }
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let rows = report.as_array().expect("report rows");
    assert_eq!(rows.len(), CONTACTS);
    let mut setups: HashMap<String, u32> = HashMap::new();
    for e in peer.events().iter().filter(|e| e.name == "setup") {
        *setups
            .entry(e.get("called").unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let mut wrong = report_mismatches(rows, expected);
    for r in rows {
        let phone = r["phone"].as_str().unwrap_or_default();
        let (_, attempts) = expected(phone);
        // The carrier sees the digits after the `+`.
        let digits = phone.strip_prefix('+').unwrap_or(phone);
        let seen = setups.get(digits).copied().unwrap_or(0);
        if seen != attempts {
            wrong.push(format!(
                "{phone}: {seen} SETUPs at the carrier, want {attempts}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} contacts wrong: {wrong:#?}",
        wrong.len()
    );
    let _ = rivr.terminate(Duration::from_secs(10));
}
