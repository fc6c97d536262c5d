//! The whole server on PostgreSQL: `rivr serve` with `[store] url =
//! "postgres://…"` (a throw-away server from tests/pg/start-pg.sh) runs a
//! campaign against SIPp as the carrier (tests/sipp/uas_campaign.xml: the
//! last digit picks the answer: 2 busy, 3 rings until cancelled, 4 503,
//! others answered) with `rivr smsc-sim` as the SMSC for the SMS fallback.
//! The witnesses are the carrier's log (INVITEs per number) and the SMSC's
//! (texts per number); the report, read back by the CLI through the same
//! url, must agree, and the rows must be in PostgreSQL itself.

mod common;
#[path = "smpp/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::campaign::{self, rivr_cli};
use common::carrier::Carrier;
use common::server::{Rivr, RivrConfig};
use serde_json::Value;

const CONTACTS: usize = 40;
const ATTEMPTS: u32 = 2;

fn number(i: usize) -> String {
    format!("+254713{i:06}")
}

fn expected(phone: &str) -> (&'static str, u32) {
    campaign::carrier_outcome(phone, ATTEMPTS)
}

#[test]
fn a_campaign_runs_with_its_store_on_postgresql() {
    require_sipp!();
    let url = common::pg::database();
    let simdir = harness::temp_dir("store-pg-sim");
    let sim = harness::Sim::start(&simdir, &["--receipt-delay-ms", "50"]);
    let carrier_dir = harness::temp_dir("store-pg-carrier");
    let carrier = Carrier::start_with(
        &carrier_dir,
        "campaign",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100000", "-timeout", "120s"],
    );
    let sqlite = simdir.join("unused.db");
    let mut cfg = RivrConfig {
        rtp_ports: 60,
        ..RivrConfig::default()
    };
    cfg.extra_tables = campaign::tables(&sqlite, sim.port, carrier.port).replace(
        &format!("url = \"sqlite://{}\"", sqlite.display()),
        &format!("url = \"{url}\""),
    );
    assert!(cfg.extra_tables.contains(&url), "{}", cfg.extra_tables);
    let mut rivr = Rivr::start("store-pg", cfg);
    let config = rivr.dir.join("rivr.toml");
    // A second `rivr serve` on the same database as the same node (the
    // default node id, the host name) refuses to start, before it binds
    // anything; nodes with ids of their own share it (tests/cluster_campaign.rs).
    let second = std::process::Command::new(harness::rivr_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run a second rivr serve");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && err.contains("is held by another running `rivr serve`"),
        "second rivr serve: {} {err}",
        second.status
    );
    let id = campaign::create(
        &rivr,
        &campaign::Blast {
            contacts: CONTACTS,
            cps: 20,
            channels: 10,
            attempts: ATTEMPTS,
        },
        number,
    );
    rivr_cli(&config, &["start", &id]);

    let t0 = Instant::now();
    let status = loop {
        let s: Value =
            serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
        if s["state"] == "done" {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "campaign not done in 90 s: {s}\n{}",
            rivr.stderr()
        );
        assert!(rivr.is_running(), "rivr exited: {}", rivr.stderr());
        std::thread::sleep(Duration::from_millis(300));
    };
    println!("[store-pg] done in {:?}: {status}", t0.elapsed());

    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), CONTACTS);
    let wrong = campaign::report_mismatches(rows, expected);
    assert!(wrong.is_empty(), "{wrong:?}");

    // The carrier saw each number as often as its answer dictates.
    let mut invites: HashMap<String, u32> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in carrier.log().lines().filter(|l| l.starts_with("invite ")) {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_default()
                .to_string()
        };
        if seen.insert(field("call_id=")) {
            *invites.entry(format!("+{}", field("number="))).or_default() += 1;
        }
    }
    let off: Vec<String> = (0..CONTACTS)
        .map(number)
        .filter(|n| invites.get(n).copied().unwrap_or(0) != expected(n).1)
        .collect();
    assert!(
        off.is_empty(),
        "wrong INVITE counts at the carrier: {off:?}"
    );

    // One text per contact voice could not reach.
    let failed = (0..CONTACTS)
        .map(number)
        .filter(|n| expected(n).0 != "answered")
        .count();
    let mut texts: HashMap<String, u32> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while texts.len() < failed && Instant::now() < deadline {
        texts.clear();
        for a in sim.accepted() {
            *texts
                .entry(a.dest.trim_start_matches('+').to_string())
                .or_default() += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(texts.len(), failed, "texted numbers: {texts:?}");
    assert!(texts.values().all(|n| *n == 1), "{texts:?}");

    // The rows are in PostgreSQL, not in a file beside the config.
    let pg = |sql: &str| common::pg::query(&url, sql);
    assert_eq!(
        pg(&format!(
            "SELECT COUNT(*) FROM contacts WHERE campaign_id = '{id}' AND state = 'done'"
        )),
        CONTACTS.to_string()
    );
    let attempts: usize = (0..CONTACTS).map(|i| expected(&number(i)).1 as usize).sum();
    assert_eq!(
        pg("SELECT COUNT(*) FROM attempts WHERE state = 'done'"),
        attempts.to_string()
    );
    assert_eq!(pg("SELECT COUNT(*) FROM sms_messages"), failed.to_string());
    let cdrs: usize = pg("SELECT COUNT(*) FROM cdrs").parse().unwrap_or(0);
    assert_eq!(cdrs, attempts, "one CDR per call placed");
    assert!(!sqlite.exists(), "a SQLite file was written");
    println!(
        "[store-pg] {CONTACTS} contacts, {attempts} attempts, {failed} texts, {cdrs} CDRs in PostgreSQL"
    );
    // The database's load for the whole run (import, dialing, texts,
    // CDRs), from PostgreSQL's own counters, read once rivr has closed its
    // connections (a backend reports its counters when it exits).
    rivr.terminate(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let tables = pg(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables \
         WHERE relname <> '_sqlx_migrations' AND n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname",
    );
    let mut written = 0u64;
    for t in tables.lines() {
        let f: Vec<&str> = t.split('|').collect();
        written += f[1..]
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .sum::<u64>();
    }
    let commits = pg("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
    println!(
        "[store-pg] rows written: {written} ({:.2} per attempt; table|inserted|updated|deleted: {}); \
         {commits} transactions in all (migrations and this test's status polls included)",
        written as f64 / attempts as f64,
        tables.lines().collect::<Vec<_>>().join(", ")
    );
}
