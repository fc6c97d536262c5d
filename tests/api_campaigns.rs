//! Issue 13's campaign routes against a running `rivr serve`, with a real
//! HTTP client (ureq) and SIPp as the carrier (tests/sipp/uas_campaign.xml:
//! the number's last digit fixes the answer).
//!
//! - A list with bad rows is created (rows reported by line, the campaign
//!   still made); bad settings are refused by name and create nothing; an
//!   oversized upload is 413; a read token cannot write, no token cannot
//!   read. A campaign outside its calling hours goes through every state
//!   change and the refused ones (409 with the state).
//! - One campaign runs to done: its status agrees with its report and with
//!   the carrier's log, and the report read in pages of 7 (JSON and CSV)
//!   is the whole report with no row twice or missing, equal to what
//!   `rivr campaign report` prints.

#[path = "http/client.rs"]
mod client;
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Timelike;
use client::{assert_error, encode, Answer, Client, ADMIN, READ};
use common::campaign::report_mismatches;
use common::carrier::Carrier;
use common::scratch::Scratch;
use common::server::{binary, Rivr, RivrConfig};
use serde_json::{json, Value};

const MAX_BODY: usize = 8192;
const CONTACTS: usize = 30;

/// The settings of the tests' campaigns.
const BASE: [(&str, &str); 7] = [
    ("name", "api blast"),
    ("script", "blast.rhai"),
    ("trunk", "carrier"),
    ("cps", "10"),
    ("attempts", "1"),
    ("retry", "none"),
    ("hours", "00:00-24:00"),
];

/// `BASE` with `over` in place of its settings (an empty value drops one).
fn with(over: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut q: Vec<(&str, &str)> = BASE
        .iter()
        .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    q.extend(over.iter().filter(|(_, v)| !v.is_empty()).copied());
    q
}

/// rivr with the API, a store and the `carrier` trunk at `carrier_port`,
/// and the scripts `blast.rhai` (stores the contact's name, talks 300 ms)
/// and `broken.rhai` (does not compile) beside its config.
fn start(label: &str, carrier_port: u16) -> (Rivr, Client) {
    let extra = format!(
        "[store]\nurl = \"sqlite://rivr.db\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = {MAX_BODY}\n\
         [[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [[http.token]]\ntoken = \"{READ}\"\nrole = \"read\"\n\
         [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{carrier_port}\"\ncps = 50\nmax_channels = 60\nring_timeout = 2\noptions_interval = 0\n"
    );
    let rivr = Rivr::start(
        label,
        RivrConfig {
            extra_tables: extra,
            ..RivrConfig::default()
        },
    );
    // Scripts are named relative to the config file's directory.
    std::fs::write(
        rivr.dir.join("blast.rhai"),
        "set_result(\"name\", call.vars[\"name\"]);\nsleep(300);\nhangup();\n",
    )
    .expect("write blast.rhai");
    std::fs::write(rivr.dir.join("broken.rhai"), "answer(;\n").expect("write broken.rhai");
    let api = Client::new(rivr.http.expect("rivr printed its HTTP API address"));
    (rivr, api)
}

fn number(i: usize) -> String {
    format!("+254712100{i:03}")
}

/// The outcome a number's last digit gives (one attempt each).
fn expected(phone: &str) -> (&'static str, u32) {
    match phone.chars().last() {
        Some('2') => ("busy", 1),
        Some('3') => ("no_answer", 1),
        Some('4') => ("congestion", 1),
        _ => ("answered", 1),
    }
}

/// The list: `CONTACTS` good rows with bad ones among them. Returns the
/// CSV, the line of each good number, and the lines of the bad rows.
fn contact_list() -> (String, BTreeMap<u64, String>, Vec<u64>) {
    let mut csv = String::from("phone,name\n");
    let mut line = 1;
    let (mut good, mut bad) = (BTreeMap::new(), Vec::new());
    for i in 0..CONTACTS {
        let extra = match i {
            5 => Some("123,Too short".to_string()),
            11 => Some(format!("{},Again", number(0))),
            17 => Some(format!("{},Three,cells", number(40))),
            23 => Some("not a phone,Nobody".to_string()),
            _ => None,
        };
        if let Some(row) = extra {
            csv.push_str(&row);
            csv.push('\n');
            line += 1;
            bad.push(line);
        }
        csv.push_str(&format!("{},Person {i}\n", number(i)));
        line += 1;
        good.insert(line, number(i));
    }
    (csv, good, bad)
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// `rivr campaign ARGS…` against rivr's config; its standard output.
fn cli(rivr: &Rivr, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("campaign")
        .arg(args[0])
        .arg("--config")
        .arg(rivr.dir.join("rivr.toml"))
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

/// INVITEs per number (digits after `+`) in the carrier's log.
fn carrier_invites(log: &str) -> HashMap<String, u32> {
    let mut seen = HashSet::new();
    let mut per = HashMap::new();
    for l in log.lines().filter(|l| l.starts_with("invite ")) {
        let field = |k: &str| l.split_whitespace().find_map(|w| w.strip_prefix(k));
        let (Some(n), Some(id)) = (field("number="), field("call_id=")) else {
            continue;
        };
        // A retransmitted INVITE is the same attempt.
        if seen.insert(id.to_string()) {
            *per.entry(format!("+{n}")).or_insert(0) += 1;
        }
    }
    per
}

#[test]
fn create_refuses_bad_settings_by_name_and_state_changes_follow_the_rules() {
    // No call is placed: nothing listens on the trunk's port.
    let (mut rivr, api) = start("api-campaigns-rules", 9);
    let base = BASE;
    let (csv, _, bad) = contact_list();
    assert!(csv.len() < MAX_BODY, "the list fits the body limit");

    // Auth: no token, a read token on a write.
    assert_error(&api.get("/campaigns", None), 401, None, "token", "no token");
    let a = api.call(
        "/campaigns?name=x&script=blast.rhai&trunk=carrier",
        None,
        Some(("text/csv", csv.as_bytes())),
    );
    assert_error(&a, 401, None, "token", "create with no token");
    let a = api.call(
        &format!("/campaigns?{}", encode(&base)),
        Some(READ),
        Some(("text/csv", csv.as_bytes())),
    );
    assert_error(&a, 403, None, "read-only", "create with the read token");
    let l = api.get("/campaigns", Some(READ));
    assert_eq!(
        (l.status, &l.body["count"]),
        (200, &Value::from(0)),
        "{}",
        l.text
    );

    // Bad requests, each named, none creating anything.
    let refused: Vec<(Answer, u16, Option<&str>, &str, &str)> = vec![
        (
            api.create(&with(&[("trunk", "nope")]), csv.as_bytes()),
            400,
            Some("trunk"),
            "\"nope\"",
            "unknown trunk",
        ),
        (
            api.create(&with(&[("cps", "0")]), csv.as_bytes()),
            400,
            Some("cps"),
            "1 to 10000",
            "cps 0",
        ),
        (
            api.create(&with(&[("cps", "fast")]), csv.as_bytes()),
            400,
            Some("cps"),
            "fast",
            "cps not a number",
        ),
        (
            api.create(&with(&[("amd", "maybe")]), csv.as_bytes()),
            400,
            Some("amd"),
            "true or false",
            "amd not a boolean",
        ),
        (
            api.create(&with(&[("retry", "no_answer:sit-xx=1h")]), csv.as_bytes()),
            400,
            Some("retry"),
            "\"sit-xx\" is not a refined outcome's detail",
            "a refined outcome with an unknown detail",
        ),
        (
            api.create(&with(&[("attempts", "0")]), csv.as_bytes()),
            400,
            Some("attempts"),
            "attempts",
            "no attempts",
        ),
        (
            api.create(&with(&[("script", "broken.rhai")]), csv.as_bytes()),
            400,
            Some("script"),
            "broken.rhai:1:",
            "a script that does not compile",
        ),
        (
            api.create(&with(&[("script", "missing.rhai")]), csv.as_bytes()),
            400,
            Some("script"),
            "missing.rhai",
            "no such script",
        ),
        (
            api.create(&with(&[("name", "")]), csv.as_bytes()),
            400,
            Some("name"),
            "required",
            "no name",
        ),
        (
            api.create(&with(&[("hours", "20:00-09:00")]), csv.as_bytes()),
            400,
            Some("hours"),
            "20:00-09:00",
            "bad hours",
        ),
        (
            api.create(&with(&[("sms_fallback", "Hi {nickname}")]), csv.as_bytes()),
            400,
            Some("sms_fallback"),
            "{nickname}",
            "a template key that is no column",
        ),
        (
            api.create(&base, b"phone,name\n"),
            400,
            Some("contacts"),
            "no contact to call",
            "a list with a header only",
        ),
        (
            api.create(&base, b""),
            400,
            Some("contacts"),
            "no header row",
            "an empty body",
        ),
        (
            api.create(&base, b"phone,name\n123,A\nabc,B\n"),
            400,
            Some("contacts"),
            "2 invalid",
            "a list with no good row",
        ),
        (
            api.create(&base, b"phone,name\n+254712100001,\xff\xfe\n"),
            400,
            Some("contacts"),
            "UTF-8",
            "not UTF-8",
        ),
        (
            api.create(&with(&[("colour", "red")]), csv.as_bytes()),
            400,
            None,
            "colour",
            "an unknown parameter",
        ),
        (
            api.call(
                &format!("/campaigns?{}", encode(&base)),
                Some(ADMIN),
                Some(("application/json", csv.as_bytes())),
            ),
            415,
            None,
            "text/csv",
            "JSON, not CSV",
        ),
    ];
    for (a, status, field, says, what) in &refused {
        assert_error(a, *status, *field, says, what);
    }
    // An upload over [http] max_body_bytes.
    let mut big = String::from("phone,name\n");
    let mut i = 0;
    while big.len() <= 2 * MAX_BODY {
        big.push_str(&format!("+2547130{i:05},Person {i}\n"));
        i += 1;
    }
    assert_error(
        &api.create(&base, big.as_bytes()),
        413,
        None,
        "",
        "an oversized upload",
    );
    let l = api.get("/campaigns", Some(READ));
    assert_eq!(
        l.body["count"], 0,
        "a refused request created something: {}",
        l.text
    );

    // A list with bad rows: they are reported by line, the campaign made.
    let a = api.create(&base, csv.as_bytes());
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_str().expect("an id").to_string();
    assert_eq!(a.headers.get("location"), Some(&format!("/campaigns/{id}")));
    assert_eq!(a.body["state"], "created");
    assert_eq!(a.body["contacts"], CONTACTS);
    assert_eq!(
        (&a.body["invalid"], &a.body["duplicates"]),
        (&Value::from(3), &Value::from(1)),
        "{}",
        a.text
    );
    let rejected = a.body["rejected"].as_array().expect("rejected rows");
    let lines: Vec<u64> = rejected.iter().filter_map(|r| r["line"].as_u64()).collect();
    assert_eq!(lines, bad, "{}", a.text);
    let dup = rejected
        .iter()
        .find(|r| r["value"] == number(0))
        .expect("the duplicate");
    assert!(
        dup["why"].as_str().is_some_and(|w| w.contains("line 2")),
        "{dup}"
    );
    let cells = rejected
        .iter()
        .find(|r| r["value"] == number(40))
        .expect("three cells");
    assert!(
        cells["why"].as_str().is_some_and(|w| w.contains("3 cells")),
        "{cells}"
    );

    // Another outside its calling hours: it may run but dials no one.
    let hour = chrono::Utc::now().hour();
    let away = if hour < 12 {
        "20:00-21:00"
    } else {
        "02:00-03:00"
    };
    let idle_csv = "phone\n+254712200001\n+254712200002\n";
    let a = api.create(
        &with(&[("name", "idle"), ("hours", away)]),
        idle_csv.as_bytes(),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let idle = a.body["id"].as_str().expect("an id").to_string();
    let act = |what: &str, token: &str| api.post(&format!("/campaigns/{idle}/{what}"), Some(token));
    let conflict = |what: &str, state: &str| {
        let a = act(what, ADMIN);
        assert_eq!(a.status, 409, "{what} from {state}: {}", a.text);
        assert_eq!(a.body["state"], state, "{what}: {}", a.text);
        assert!(
            a.body["error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("is {state}"))),
            "{}",
            a.text
        );
    };
    let moved = |what: &str, state: &str| {
        let a = act(what, ADMIN);
        assert_eq!(
            (a.status, &a.body["state"]),
            (200, &Value::from(state)),
            "{what}: {}",
            a.text
        );
        let s = api.get(&format!("/campaigns/{idle}"), Some(READ));
        assert_eq!(s.body["state"], state, "GET after {what}: {}", s.text);
    };
    conflict("resume", "created");
    conflict("pause", "created");
    assert_error(
        &act("start", READ),
        403,
        None,
        "read-only",
        "start with the read token",
    );
    moved("start", "running");
    conflict("start", "running");
    moved("pause", "paused");
    conflict("pause", "paused");
    moved("resume", "running");
    moved("cancel", "cancelled");
    conflict("resume", "cancelled");
    conflict("cancel", "cancelled");
    assert_error(
        &act("restart", ADMIN),
        404,
        None,
        "restart",
        "an unknown action",
    );
    assert_error(
        &api.post("/campaigns/c000/start", Some(ADMIN)),
        404,
        None,
        "c000",
        "start an unknown campaign",
    );
    assert_error(
        &api.get("/campaigns/c000", Some(READ)),
        404,
        None,
        "c000",
        "status of an unknown campaign",
    );
    assert_error(
        &api.get("/campaigns/c000/report", Some(READ)),
        404,
        None,
        "c000",
        "report of an unknown campaign",
    );

    // The list: both, as they were left.
    let l = api.get("/campaigns", Some(READ));
    assert_eq!(l.body["count"], 2, "{}", l.text);
    assert_eq!(l.body["total"], 2, "{}", l.text);
    assert!(l.body["next_offset"].is_null(), "{}", l.text);
    // In pages of one, and filtered by state.
    let p1 = api.get("/campaigns?limit=1", Some(READ));
    assert_eq!(
        (
            &p1.body["count"],
            &p1.body["total"],
            &p1.body["next_offset"]
        ),
        (&json!(1), &json!(2), &json!(1)),
        "{}",
        p1.text
    );
    let p2 = api.get("/campaigns?offset=1&limit=1", Some(READ));
    assert_eq!(p2.body["count"], 1, "{}", p2.text);
    assert!(p2.body["next_offset"].is_null(), "{}", p2.text);
    let mut paged = vec![
        p1.body["campaigns"][0]["id"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        p2.body["campaigns"][0]["id"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    ];
    paged.sort();
    let mut both = vec![id.clone(), idle.clone()];
    both.sort();
    assert_eq!(paged, both, "two pages of one hold both campaigns");
    let c = api.get("/campaigns?state=cancelled", Some(READ));
    assert_eq!(
        (&c.body["count"], &c.body["total"]),
        (&json!(1), &json!(1)),
        "{}",
        c.text
    );
    assert_eq!(c.body["campaigns"][0]["id"], idle.as_str());
    for (q, field) in [
        ("state=gone", "state"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
    ] {
        assert_error(
            &api.get(&format!("/campaigns?{q}"), Some(READ)),
            400,
            Some(field),
            field,
            q,
        );
    }
    let by_id: HashMap<String, &Value> = l.body["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .map(|c| (c["id"].as_str().unwrap_or("").to_string(), c))
        .collect();
    assert_eq!(by_id[&id]["state"], "created");
    assert_eq!(by_id[&id]["total"], CONTACTS);
    assert_eq!(by_id[&idle]["state"], "cancelled");
    assert_eq!(
        (
            by_id[&idle]["total"].as_u64(),
            by_id[&idle]["dialed"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert!(rivr.is_running(), "{}", rivr.stderr());
}

#[test]
fn a_campaign_started_over_http_runs_to_done_and_its_report_pages() {
    require_sipp!();
    let carrier_dir = Scratch::new("api-campaigns-carrier");
    let carrier = Carrier::start_with(
        carrier_dir.path(),
        "api-campaigns",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100000", "-timeout", "300s"],
    );
    let (mut rivr, api) = start("api-campaigns-run", carrier.port);
    let (csv, good, _) = contact_list();
    let a = api.create(&BASE, csv.as_bytes());
    assert_eq!(
        (a.status, &a.body["contacts"]),
        (201, &Value::from(CONTACTS)),
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().expect("an id").to_string();

    // The blast runs against the carrier to done.
    let s = api.get(&format!("/campaigns/{id}"), Some(READ));
    assert_eq!(
        (s.body["state"].as_str(), s.body["total"].as_u64()),
        (Some("created"), Some(CONTACTS as u64)),
        "{}",
        s.text
    );
    let a = api.post(&format!("/campaigns/{id}/start"), Some(ADMIN));
    assert_eq!(
        (a.status, &a.body["state"]),
        (200, &Value::from("running")),
        "{}",
        a.text
    );
    let mut status = Value::Null;
    let done = wait_for(Duration::from_secs(90), || {
        status = api.get(&format!("/campaigns/{id}"), Some(READ)).body;
        status["state"] == "done" || !rivr.is_running()
    });
    assert!(
        done && status["state"] == "done",
        "not done in 90 s: {status}\n{}",
        rivr.stderr()
    );
    println!("[api-campaigns] {status}");

    // The report, in pages of 7: every contact once, in list order.
    let mut rows: Vec<Value> = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let p = api.get(
            &format!("/campaigns/{id}/report?format=json&limit=7&after={after}"),
            Some(READ),
        );
        assert_eq!(p.status, 200, "{}", p.text);
        let page = p.body["rows"].as_array().expect("rows").clone();
        assert_eq!(p.body["count"], page.len());
        pages += 1;
        rows.extend(page);
        match p.body["next_after"].as_u64() {
            Some(n) => {
                assert!(n > after, "the cursor moved on: {}", p.text);
                after = n;
            }
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(pages, CONTACTS.div_ceil(7), "pages of 7");
    let got: BTreeMap<u64, String> = rows
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["phone"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), got.len(), "a row came twice");
    assert_eq!(
        got, good,
        "the paged report is not the list's good rows at their lines"
    );
    let whole = api.get(&format!("/campaigns/{id}/report?limit=1000"), Some(READ));
    assert_eq!(whole.body["rows"].as_array().map(Vec::len), Some(CONTACTS));
    assert_eq!(whole.body["next_after"], Value::Null);
    assert_eq!(
        Value::Array(rows.clone()),
        whole.body["rows"],
        "pages differ from one read"
    );
    let wrong = report_mismatches(&rows, expected);
    assert!(wrong.is_empty(), "report rows wrong: {wrong:?}");

    // Status agrees with the report and the carrier.
    let count = |o: &str| rows.iter().filter(|r| r["outcome"] == o).count() as u64;
    let want = |o: &str| good.values().filter(|n| expected(n).0 == o).count() as u64;
    for (key, outcome) in [
        ("answered", "answered"),
        ("busy", "busy"),
        ("no_answer", "no_answer"),
        ("failed", "congestion"),
    ] {
        assert_eq!(
            status[key].as_u64(),
            Some(count(outcome)),
            "{key}: {status}"
        );
        assert_eq!(count(outcome), want(outcome), "{outcome} in the report");
    }
    assert_eq!(status["done"], CONTACTS);
    assert_eq!(status["remaining"], 0);
    assert_eq!(status["dialed"], CONTACTS);
    assert_eq!(
        status["outcomes"]["congestion"].as_u64(),
        Some(want("congestion"))
    );
    let invites = carrier_invites(&carrier.log());
    let dialed: u32 = good
        .values()
        .map(|n| invites.get(n).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        u64::from(dialed),
        status["dialed"].as_u64().unwrap_or(0),
        "carrier INVITEs vs status: {invites:?}"
    );
    let strays: Vec<&String> = invites
        .keys()
        .filter(|n| !good.values().any(|g| g == *n))
        .collect();
    assert!(
        strays.is_empty(),
        "the carrier got numbers not in the blast (a bad row): {strays:?}"
    );
    assert!(
        good.values().all(|n| invites.get(n) == Some(&1)),
        "one INVITE per contact: {invites:?}"
    );

    // CSV pages: the same header on each, together the whole report, and
    // that is what `rivr campaign report` prints.
    let full = api.get(
        &format!("/campaigns/{id}/report?format=csv&limit=1000"),
        Some(READ),
    );
    assert_eq!(full.status, 200);
    assert!(full
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("text/csv")));
    assert!(!full.headers.contains_key("x-next-after"));
    assert_eq!(
        full.text,
        cli(&rivr, &["report", &id, "--format", "csv"]),
        "the API and the CLI disagree"
    );
    let mut full_lines = full.text.lines();
    let header = full_lines.next().expect("a header").to_string();
    assert!(
        header.starts_with("phone,name,attempts,outcome"),
        "{header}"
    );
    let mut csv_rows: Vec<String> = Vec::new();
    let mut after = 0;
    loop {
        let p = api.get(
            &format!("/campaigns/{id}/report?format=csv&limit=7&after={after}"),
            Some(READ),
        );
        let mut lines = p.text.lines();
        assert_eq!(
            lines.next(),
            Some(header.as_str()),
            "each page has the header"
        );
        csv_rows.extend(lines.map(str::to_string));
        match p.headers.get("x-next-after") {
            Some(n) => after = n.parse().expect("a line number"),
            None => break,
        }
    }
    assert_eq!(csv_rows, full_lines.map(str::to_string).collect::<Vec<_>>());
    let cli_status: Value = serde_json::from_str(&cli(&rivr, &["status", &id, "--json"])).unwrap();
    assert_eq!(
        cli_status, status,
        "`rivr campaign status --json` and GET /campaigns/{{id}}"
    );

    // Bad report queries.
    for (q, field) in [
        ("format=xml", "format"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=-1", "after"),
        ("limit=ten", "limit"),
    ] {
        let a = api.get(&format!("/campaigns/{id}/report?{q}"), Some(READ));
        assert_error(&a, 400, Some(field), field, q);
    }

    let l = api.get("/campaigns", Some(READ));
    assert_eq!(l.body["count"], 1, "{}", l.text);
    assert_eq!(l.body["campaigns"][0]["state"], "done");
    assert_eq!(l.body["campaigns"][0]["answered"], status["answered"]);
    assert!(rivr.is_running(), "{}", rivr.stderr());
}
