//! Issue 17 parts 2 and 4 against real processes on 127.0.0.1: `rivr serve`
//! (HTTP API) and `rivr sms send` with SMSCs built on PyPI `smpp34`
//! (tests/smpp/smsc_smpp34.py in `--fields` mode, which logs every field
//! of every accepted submit_sm with its arrival time).
//!
//! - A message scheduled locally 5 s ahead leaves at 5 s ± 0.5 s, by the
//!   SMSC's clock, also when rivr is killed after scheduling it and started
//!   again.
//! - `--at` / `--valid-for` / `--from` arrive as SMPP 3.4 §7.1 time fields
//!   and the sender's TON/NPI.
//! - A script's `send_sms(to, text, #{ from, at, valid_for })` arrives
//!   with the sender's TON/NPI and both time fields.
//! - Route failover: SMSC A refuses binds, or throttles every submit, and
//!   every message goes through SMSC B exactly once (both SMSCs' logs).
//!
//! Needs `.venv` (`make smpp-venv`); the test builds it when missing and
//! fails when it cannot.

mod common;
#[path = "smpp/harness.rs"]
mod harness;
#[path = "http/client.rs"]
mod http;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;
use common::smsc::PySmsc;
use http::{Client, ADMIN};
use serde_json::Value;

/// The `[[smsc]]`/`[smpp]` lines for an SMSC.
trait SmscRoute {
    fn route(&self, table: &str, extra: &str) -> String;
}

impl SmscRoute for PySmsc {
    fn route(&self, table: &str, extra: &str) -> String {
        format!(
            "{table}\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"rivr\"\npassword = \"pw\"\n\
             reconnect_min_ms = 50\nreconnect_max_ms = 500\n{extra}\n",
            self.port
        )
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// rivr serving the API, its store in `db_dir`, with these SMS tables.
fn serve(label: &str, db_dir: &Path, sms_tables: &str) -> Rivr {
    let cfg = RivrConfig {
        extra_tables: format!(
            "[store]\nurl = \"sqlite://{}/rivr.db\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         {sms_tables}",
            db_dir.display()
        ),
        ..RivrConfig::default()
    };
    Rivr::start(label, cfg)
}

fn api(rivr: &Rivr) -> Client {
    Client::new(rivr.http.expect("rivr printed no HTTP address"))
}

fn post_sms(c: &Client, body: &str) -> String {
    let a = c.post_json("/sms", Some(ADMIN), body);
    assert_eq!(a.status, 202, "POST /sms {body}: {}", a.text);
    a.body["id"].as_str().expect("an id").to_string()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// When the SMSC logged the part with this rivr message id (unix ms).
fn arrival_ms(smsc: &PySmsc, id: &str) -> Option<i64> {
    smsc.accepted()
        .iter()
        .find(|a| {
            a.get("key")
                .is_some_and(|k| k.starts_with(&format!("{id}.")))
        })
        .and_then(|a| a.get("t")?.parse::<f64>().ok())
        .map(|t| (t * 1000.0).round() as i64)
}

/// The `[store]` and `[smpp]` of a config for `rivr sms send`.
fn cli_config(dir: &Path, smsc: &PySmsc, extra: &str) -> PathBuf {
    let config = dir.join("rivr.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}/rivr.db\"\n{}",
            dir.display(),
            smsc.route("[smpp]", extra)
        ),
    )
    .unwrap();
    config
}

fn assert_on_time(smsc: &PySmsc, id: &str, at: i64) {
    let t = arrival_ms(smsc, id).unwrap_or_else(|| panic!("{id} not at the SMSC"));
    println!("[sched] {id}: due {at}, arrived {t} ({:+} ms)", t - at);
    assert!(
        (t - at).abs() <= 500,
        "{id} arrived {} ms off its time",
        t - at
    );
}

#[test]
fn a_message_scheduled_locally_leaves_on_time_also_across_a_restart() {
    let dir = harness::temp_dir("sms-sched");
    // An SMSC without scheduling: a schedule_delivery_time would be refused.
    let smsc = PySmsc::start(&dir, "smsc", &["--fields", "--no-schedule"]);
    let config = cli_config(&dir, &smsc, "schedule = \"local\"");
    // The first process stores the message, holds it, and is killed.
    let at1 = now_ms() + 5000;
    let mut first = Command::new(harness::rivr_bin())
        .args(["sms", "send", "--config"])
        .arg(&config)
        .args(["--to", "+15550001", "--text", "Your appointment is at 9:00"])
        .args(["--from", "CLINIC", "--at", &rfc3339(at1)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run rivr sms send");
    let mut line = String::new();
    BufReader::new(first.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the queued line");
    let id1 = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(line.starts_with("queued sms-"), "{line:?}");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().expect("kill the first rivr");
    let _ = first.wait();
    assert!(smsc.accepted().is_empty(), "sent before its time");
    // The next process finds it in the store and sends it on time, with
    // its own message, due a moment later.
    let at2 = now_ms() + 5000;
    let (ok, out, err) = cli(
        &config,
        &[
            "--to",
            "+15550002",
            "--text",
            "second",
            "--at",
            &rfc3339(at2),
        ],
    );
    assert!(ok, "{out}{err}");
    let id2 = out
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_default()
        .to_string();
    assert_on_time(&smsc, &id1, at1);
    assert_on_time(&smsc, &id2, at2);
    let a = smsc.accepted();
    assert_eq!(a.len(), 2, "each exactly once: {a:?}");
    assert!(
        a.iter().all(|f| f["sched"] == "-"),
        "held locally, so no schedule field: {a:?}"
    );
    assert_eq!(smsc.counter("sched_refused"), 0);
    let first = a.iter().find(|f| f["key"].starts_with(&id1)).unwrap();
    assert_eq!(
        (
            first["src"].as_str(),
            first["ston"].as_str(),
            first["snpi"].as_str()
        ),
        ("CLINIC", "5", "0")
    );
}

#[test]
fn rivr_serve_holds_scheduled_messages_from_the_api_until_due_across_a_kill() {
    let dir = harness::temp_dir("sms-sched-api");
    let smsc = PySmsc::start(&dir, "smsc", &["--fields", "--no-schedule"]);
    let mut rivr = serve(
        "sms-sched-api",
        &dir,
        &smsc.route("[smpp]", "schedule = \"local\""),
    );
    let c = api(&rivr);
    let at = now_ms() + 5000;
    let id = post_sms(
        &c,
        &format!(
            r#"{{"to":"+15550003","text":"hi","at":"{}","valid_for":"2h"}}"#,
            rfc3339(at)
        ),
    );
    // Due after the kill and restart below (a debug rivr takes up to ~10 s
    // to start on a loaded machine: it decodes every prompt first).
    let late = now_ms() + 22_000;
    let late_id = post_sms(
        &c,
        &format!(
            r#"{{"to":"+15550004","text":"later","at":"{}"}}"#,
            rfc3339(late)
        ),
    );
    let s: Value = c.get(&format!("/sms/{id}"), Some(ADMIN)).body;
    assert_eq!(
        (s["state"].as_str(), s["at"].as_str()),
        (Some("queued"), Some(rfc3339(at).as_str())),
        "{s}"
    );
    assert_eq!(s["valid_for_s"], 7200, "{s}");
    assert!(
        wait_until(Duration::from_secs(15), || !smsc.accepted().is_empty()),
        "never sent"
    );
    assert_on_time(&smsc, &id, at);
    let a = smsc.accepted();
    assert_eq!(
        a[0]["valid"], "000000020000000R",
        "sent when due, so the validity is relative: {a:?}"
    );
    let bad = c.post_json(
        "/sms",
        Some(ADMIN),
        r#"{"to":"+1555","text":"x","at":"noon"}"#,
    );
    // SIGKILLed while holding the later one; started again, it sends it on time.
    rivr.kill9();
    let killed = now_ms();
    rivr.restart();
    println!("[sched] restart took {} ms", now_ms() - killed);
    assert!(
        now_ms() < late - 500,
        "the restart took too long to judge the later message's time"
    );
    assert!(
        wait_until(Duration::from_secs(30), || smsc.accepted().len() >= 2),
        "the later message never left"
    );
    assert_on_time(&smsc, &late_id, late);
    assert_eq!(smsc.accepted().len(), 2, "each once: {:?}", smsc.accepted());
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("at")),
        "{}",
        bad.text
    );
}

/// `rivr sms send` with these arguments; (exit ok, stdout, stderr).
fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(harness::rivr_bin())
        .args(["sms", "send", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("run rivr sms send");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn schedule_validity_and_sender_ids_arrive_as_smpp_fields() {
    let dir = harness::temp_dir("sms-fields");
    let smsc = PySmsc::start(&dir, "smsc", &["--fields"]);
    let config = cli_config(
        &dir,
        &smsc,
        "source_addr = \"RIVR\"\nbind = \"transmitter+receiver\"",
    );
    let id_of = |out: &str| {
        out.lines()
            .next()
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_default()
            .to_string()
    };
    // Scheduled at the SMSC: absolute time, validity absolute from it.
    let (ok, out, err) = cli(
        &config,
        &[
            "--to",
            "+15550003",
            "--text",
            "hi",
            "--from",
            "CLINIC",
            "--at",
            "2030-01-02T04:04:05.3+01:00",
            "--valid-for",
            "2h",
        ],
    );
    assert!(ok, "{out}{err}");
    let scheduled = id_of(&out);
    // Not scheduled: a relative validity.
    let (ok, out, err) = cli(
        &config,
        &[
            "--to",
            "15550004",
            "--text",
            "hi",
            "--from",
            "+15551234567",
            "--valid-for",
            "90m",
        ],
    );
    assert!(ok, "{out}{err}");
    let relative = id_of(&out);
    let (ok, out, err) = cli(
        &config,
        &["--to", "15550005", "--text", "hi", "--from", "55555"],
    );
    assert!(ok, "{out}{err}");
    let short = id_of(&out);
    let (ok, out, err) = cli(&config, &["--to", "15550006", "--text", "hi"]);
    assert!(ok, "{out}{err}");
    let default = id_of(&out);
    let by_key: HashMap<String, HashMap<String, String>> = smsc
        .accepted()
        .into_iter()
        .map(|a| (a["key"].trim_end_matches(".1").to_string(), a))
        .collect();
    let f = |id: &str, k: &str| by_key[id][k].clone();
    println!("[fields] {by_key:?}");
    // §7.1.1: YYMMDDhhmmsstnnp in UTC (nn = 00, p = +)
    assert_eq!(f(&scheduled, "sched"), "300102030405300+");
    assert_eq!(f(&scheduled, "valid"), "300102050405300+");
    assert_eq!(
        (
            f(&scheduled, "src"),
            f(&scheduled, "ston"),
            f(&scheduled, "snpi")
        ),
        ("CLINIC".into(), "5".into(), "0".into())
    );
    // §7.1.1.2: YYMMDDhhmmss000R
    assert_eq!(f(&relative, "sched"), "-");
    assert_eq!(f(&relative, "valid"), "000000013000000R");
    assert_eq!(
        (
            f(&relative, "src"),
            f(&relative, "ston"),
            f(&relative, "snpi")
        ),
        ("15551234567".into(), "1".into(), "1".into())
    );
    assert_eq!(
        (f(&short, "ston"), f(&short, "snpi")),
        ("3".into(), "0".into())
    );
    assert_eq!(
        (
            f(&default, "src"),
            f(&default, "ston"),
            f(&default, "valid")
        ),
        ("RIVR".into(), "5".into(), "-".into())
    );
    // Four runs, each with a transmitter bind and a separate receiver bind.
    assert_eq!(
        (
            smsc.counter("bind_tx"),
            smsc.counter("bind_rx"),
            smsc.counter("bind_trx")
        ),
        (4, 4, 0)
    );
    // Bad arguments are named and nothing is sent.
    let before = smsc.accepted().len();
    let (ok, _, err) = cli(
        &config,
        &["--to", "1555", "--text", "x", "--from", "TOOLONGSENDERID"],
    );
    assert!(
        !ok && err.contains("--from") && err.contains("11 GSM"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &config,
        &["--to", "1555", "--text", "x", "--valid-for", "forever"],
    );
    assert!(!ok && err.contains("--valid-for"), "{err}");
    let (ok, _, err) = cli(&config, &["--to", "1555", "--text", "x", "--at", "9am"]);
    assert!(!ok && err.contains("--at"), "{err}");
    let (ok, _, err) = cli(
        &config,
        &["--to", "1555", "--text", "x", "--via", "nowhere"],
    );
    assert!(
        !ok && err.contains("--via") && err.contains("nowhere"),
        "{err}"
    );
    assert_eq!(smsc.accepted().len(), before);
}

/// Posts `n` messages, waits for B to have accepted them all, and checks
/// that each went through B exactly once and never through A.
fn failover(label: &str, a_opts: &[&str], a_extra: &str, n: usize) {
    let dir = harness::temp_dir(label);
    let a = PySmsc::start(&dir, "a", &[&["--fields"], a_opts].concat());
    let b = PySmsc::start(&dir, "b", &["--fields"]);
    let tables = format!(
        "{}{}",
        a.route("[[smsc]]", &format!("name = \"a\"\n{a_extra}")),
        b.route("[[smsc]]", "name = \"b\"")
    );
    let rivr = serve(label, &dir, &tables);
    let c = api(&rivr);
    let ids: Vec<String> = (0..n)
        .map(|i| {
            post_sms(
                &c,
                &format!(r#"{{"to":"+1555000{i:03}","text":"message {i}"}}"#),
            )
        })
        .collect();
    let all_at_b = wait_until(Duration::from_secs(20), || b.accepted().len() >= n);
    let at_b = b.accepted();
    assert!(all_at_b, "B has {} of {n}: {at_b:?}", at_b.len());
    std::thread::sleep(Duration::from_millis(500));
    let at_b = b.accepted();
    let keys: BTreeSet<String> = at_b.iter().map(|f| f["key"].clone()).collect();
    let want: BTreeSet<String> = ids.iter().map(|i| format!("{i}.1")).collect();
    println!(
        "[{label}] A accepted {}, binds refused {}, throttled {}; B accepted {} ({} distinct)",
        a.accepted().len(),
        a.counter("bind_refused"),
        a.counter("throttled"),
        at_b.len(),
        keys.len()
    );
    assert_eq!(at_b.len(), n, "a message twice at B: {at_b:?}");
    assert_eq!(keys, want, "B got other messages than were sent");
    assert!(
        a.accepted().is_empty(),
        "A accepted some: {:?}",
        a.accepted()
    );
    // The store has the route and the attempts; the API shows them.
    for id in &ids {
        let s = c.get(&format!("/sms/{id}"), Some(ADMIN)).body;
        assert_eq!(s["state"], "submitted", "{s}");
        assert_eq!(s["parts"][0]["route"], "b", "{s}");
        let routes = s["parts"][0]["routes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(routes.last(), Some(&Value::from("b")), "{s}");
        assert_eq!(s["parts"][0]["attempts"], routes.len(), "{s}");
    }
    // and `rivr sms status --detail` reads the same rows
    let out = Command::new(harness::rivr_bin())
        .args(["sms", "status", "--detail", "--config"])
        .arg(rivr.dir.join("rivr.toml"))
        .arg(&ids[0])
        .output()
        .expect("run rivr sms status");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("[{label}] rivr sms status --detail: {text}");
    assert!(
        text.starts_with("submitted\npart 1 route b attempts "),
        "{text}"
    );
    let r = c.get("/sms/routes", Some(ADMIN)).body;
    println!("[{label}] routes: {r}");
    assert_eq!(r["routes"][0]["name"], "a");
    assert_eq!(r["routes"][0]["up"], false, "{r}");
    assert_eq!(r["routes"][1]["up"], true, "{r}");
}

#[test]
fn smsc_a_refusing_binds_sends_every_message_through_b_once() {
    failover("sms-fo-bind", &["--refuse-binds"], "", 20);
}

#[test]
fn smsc_a_throttling_hard_sends_every_message_through_b_once() {
    failover(
        "sms-fo-throttle",
        &["--throttle-all"],
        "throttle_failover = 5",
        20,
    );
}

/// The §7.1 absolute form rivr writes (UTC), computed here independently.
fn smpp_absolute(ms: i64) -> String {
    let t = Utc.timestamp_millis_opt(ms).unwrap();
    format!("{}{}00+", t.format("%y%m%d%H%M%S"), (ms % 1000) / 100)
}

#[test]
fn a_script_sends_with_a_sender_id_a_schedule_and_a_validity() {
    require_sipp!();
    let dir = harness::temp_dir("sms-script");
    let smsc = PySmsc::start(&dir, "smsc", &["--fields"]);
    let at = (now_ms() / 1000 + 3600) * 1000 + 300;
    let script = format!(
        "answer();\nlet id = send_sms(\"+15550009\", \"Reminder\", #{{ from: \"+15551230000\", at: \"{}\", valid_for: 600 }});\nset_result(\"sms\", id);\nhangup();\n",
        rfc3339(at)
    );
    let cfg = RivrConfig {
        extra_tables: format!(
            "[store]\nurl = \"sqlite://{}/rivr.db\"\n{}",
            dir.display(),
            smsc.route("[smpp]", "")
        ),
        ..RivrConfig::default()
    }
    .script("4000", "remind.rhai", &script);
    let rivr = Rivr::start("sms-script", cfg);
    let mut caller = Caller::answered(
        &rivr,
        "sms-script",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "4000",
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    let id = cdr["results"]["sms"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(id.starts_with("sms-"), "send_sms returned no id: {cdr}");
    assert!(
        wait_until(Duration::from_secs(10), || !smsc.accepted().is_empty()),
        "nothing reached the SMSC"
    );
    let a = &smsc.accepted()[0];
    println!("[script] {a:?}");
    assert_eq!(a["key"], format!("{id}.1"));
    assert_eq!(
        (a["src"].as_str(), a["ston"].as_str(), a["snpi"].as_str()),
        ("15551230000", "1", "1")
    );
    assert_eq!(a["sched"], smpp_absolute(at), "scheduled at the SMSC");
    assert_eq!(
        a["valid"],
        smpp_absolute(at + 600_000),
        "valid 600 s from its time"
    );
}
