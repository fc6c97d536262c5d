//! CDRs in the store, end to end: a real `rivr serve` takes inbound calls
//! from SIPp (one answered by a script that calls `set_result`, one the
//! script rejects with 486, one to a number with no route) and dials a
//! three-contact campaign through SIPp as the carrier (two answered, one
//! busy). `rivr cdr list` must then show one row per leg with the outcome,
//! SIP status, Q.850 cause, talk time and results; the same records as the
//! JSON-lines file; and its filters and paging must hold.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::caller::{Caller, SIGNALLING};
use common::campaign::{self, rivr_cli};
use common::carrier::Carrier;
use common::server::{binary, Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};
use serde_json::Value;

/// `rivr cdr list --config CONFIG ARGS`, which must succeed: the rows
/// (JSON lines) and the `next:` cursor stderr ends with, if any.
fn cdr_list(config: &Path, args: &[&str]) -> (Vec<Value>, Option<String>) {
    let (out, next) = cdr_list_text(config, args);
    let rows = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("row {l:?}: {e}")))
        .collect();
    (rows, next)
}

fn cdr_list_text(config: &Path, args: &[&str]) -> (String, Option<String>) {
    let out = Command::new(binary())
        .args(["cdr", "list", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("run rivr cdr list");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rivr cdr list {args:?}: {stderr}");
    let next = stderr
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("next: "))
        .map(str::to_string);
    (String::from_utf8_lossy(&out.stdout).into_owned(), next)
}

fn call_ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| format!("{}/{}", r["call_id"], r["leg"]))
        .collect()
}

fn number(i: usize) -> String {
    format!("+25471200000{i}")
}

#[test]
fn every_leg_is_a_row_that_the_list_filters_and_pages() {
    require_sipp!();
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(2);
    let carrier_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cdr-store-carrier-{}", std::process::id()));
    std::fs::create_dir_all(&carrier_dir).expect("carrier dir");
    let carrier = Carrier::start_with(
        &carrier_dir,
        "cdr",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100", "-timeout", "300s"],
    );
    let mut cfg = RivrConfig::default()
        .script(
            "3000",
            "answered.rhai",
            "answer();\nset_result(\"choice\", \"2\");\nset_result(\"lang\", \"sw\");\nsleep(1500);\nhangup();\n",
        )
        .script("3001", "busy.rhai", "reject(486);\n")
        .script("3002", "long.rhai", "answer();\nsleep(60000);\n");
    cfg.extra_tables = format!(
        "[[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{}\"\ncps = 10\nmax_channels = 5\nring_timeout = 2\noptions_interval = 0\n",
        carrier.port
    );
    let mut rivr = Rivr::start("cdr-store", cfg);
    let config = rivr.dir.join("rivr.toml");

    // Inbound: answered with results, rejected by the script, no route.
    let mut answered = Caller::answered(
        &rivr,
        "answered",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            ..CallSpec::default()
        },
    );
    answered.sipp.expect_pass(SIGNALLING);
    for (label, scenario, number) in [
        ("rejected", "uac_486.xml", "3001"),
        ("unrouted", "uac_404.xml", "9999"),
    ] {
        Sipp::start(
            rivr.dir.path(),
            label,
            rivr.sip_port,
            &CallSpec {
                scenario,
                number,
                ..CallSpec::default()
            },
        )
        .expect_pass(SIGNALLING);
    }

    // Outbound: a campaign of three (numbers ending 0 and 1 answered, 2 busy).
    let id = campaign::create(
        &rivr,
        &campaign::Blast {
            contacts: 3,
            cps: 5,
            channels: 3,
            attempts: 1,
        },
        number,
    );
    rivr_cli(&config, &["start", &id]);

    // Six legs: the rows follow the file's lines by one store write.
    let deadline = Instant::now() + SIGNALLING;
    let all = loop {
        let (rows, next) = cdr_list(&config, &[]);
        assert_eq!(next, None);
        if rows.len() >= 6 && rivr.cdrs().len() >= 6 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} rows and {} file records within {SIGNALLING:?}: {rows:?}\nrivr stderr:\n{}",
            rows.len(),
            rivr.cdrs().len(),
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("[cdr-store] rows:");
    for r in &all {
        println!("  {r}");
    }
    assert_eq!(all.len(), 6, "one row per leg: {all:?}");

    // The file has the same records: every field of a line is in its row.
    let file = rivr.cdrs();
    assert_eq!(file.len(), 6);
    let by_leg: HashMap<String, &Value> = all
        .iter()
        .map(|r| (format!("{}/{}", r["call_id"], r["leg"]), r))
        .collect();
    for line in &file {
        let key = format!("{}/{}", line["call_id"], line["leg"]);
        let row = by_leg
            .get(&key)
            .unwrap_or_else(|| panic!("no row for {line}"));
        for (k, v) in line.as_object().expect("a JSON object") {
            if k == "duration_ms" {
                continue;
            }
            assert_eq!(&row[k], v, "{k} of {key}: file {line} row {row}");
        }
    }

    let find = |pred: &dyn Fn(&Value) -> bool, what: &str| -> Value {
        let hits: Vec<&Value> = all.iter().filter(|r| pred(r)).collect();
        assert_eq!(hits.len(), 1, "{what}: {hits:?}");
        hits[0].clone()
    };
    let a = find(&|r| r["to"] == "3000", "the answered inbound call");
    assert_eq!(
        (&a["direction"], &a["outcome"], &a["end"], &a["q850"]),
        (
            &"inbound".into(),
            &"answered".into(),
            &"local-bye".into(),
            &16.into()
        ),
        "{a}"
    );
    assert_eq!(a["transport_id"], answered.answer.call_id.as_str(), "{a}");
    assert_eq!(
        a["results"],
        serde_json::json!({"choice": "2", "lang": "sw"})
    );
    let talk = a["talk_ms"].as_u64().expect("talk_ms");
    assert!((1400..10_000).contains(&talk), "talk_ms {talk}");
    assert_eq!(a["campaign"], Value::Null);

    let r = find(&|r| r["to"] == "3001", "the rejected inbound call");
    assert_eq!(
        (&r["outcome"], &r["sip_status"], &r["q850"], &r["talk_ms"]),
        (&"rejected".into(), &486.into(), &17.into(), &0.into()),
        "{r}"
    );
    let n = find(&|r| r["to"] == "9999", "the unrouted call");
    assert_eq!(
        (&n["outcome"], &n["sip_status"], &n["q850"], &n["script"]),
        (
            &"rejected".into(),
            &404.into(),
            &1.into(),
            &"none (no route)".into()
        ),
        "{n}"
    );
    let busy = find(&|r| r["to"] == number(2).as_str(), "the busy contact");
    assert_eq!(
        (
            &busy["direction"],
            &busy["outcome"],
            &busy["sip_status"],
            &busy["q850"]
        ),
        (&"outbound".into(), &"busy".into(), &486.into(), &17.into()),
        "{busy}"
    );
    for i in 0..3 {
        let c = find(&|r| r["to"] == number(i).as_str(), "a contact");
        assert_eq!(c["campaign"], id.as_str(), "{c}");
        assert!(c["attempt"].as_str().is_some_and(|a| !a.is_empty()), "{c}");
        assert_eq!(c["trunk"], "carrier", "{c}");
        if i < 2 {
            assert_eq!(c["outcome"], "answered", "{c}");
            assert_eq!(c["results"]["name"], format!("Person {i}"), "{c}");
            let talk = c["talk_ms"].as_u64().expect("talk_ms");
            assert!((900..10_000).contains(&talk), "talk_ms {talk}: {c}");
        }
    }

    // Filters.
    let ids = |args: &[&str]| -> HashSet<String> {
        let (rows, next) = cdr_list(&config, args);
        assert_eq!(next, None, "{args:?}");
        call_ids(&rows).into_iter().collect()
    };
    let of = |pred: &dyn Fn(&Value) -> bool| -> HashSet<String> {
        call_ids(&all.iter().filter(|r| pred(r)).cloned().collect::<Vec<_>>())
            .into_iter()
            .collect()
    };
    let campaign_rows = ids(&["--campaign", &id]);
    assert_eq!(campaign_rows.len(), 3);
    assert_eq!(campaign_rows, of(&|r| r["campaign"] == id.as_str()));
    assert_eq!(ids(&["--outcome", "busy"]), of(&|r| r["outcome"] == "busy"));
    assert_eq!(ids(&["--outcome", "rejected"]).len(), 2);
    assert_eq!(ids(&["--outcome", "answered"]).len(), 3);
    assert_eq!(
        ids(&["--number", &number(1)]),
        of(&|r| r["to"] == number(1).as_str())
    );
    assert_eq!(ids(&["--number", "3000"]).len(), 1);
    // SIPp's From is `sip:caller@…`: its user part is the number.
    assert_eq!(
        ids(&["--number", "caller"]),
        of(&|r| r["direction"] == "inbound")
    );
    assert_eq!(ids(&["--campaign", &id, "--outcome", "answered"]).len(), 2);
    let start = t0.to_rfc3339();
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(ids(&["--since", &start]).len(), 6);
    assert_eq!(ids(&["--since", &later]).len(), 0);
    assert_eq!(ids(&["--until", &start]).len(), 0);
    assert_eq!(ids(&["--since", &start, "--until", &later]).len(), 6);

    // Paging: 4 + 2, in the same order as one page, nothing twice.
    let (p1, next) = cdr_list(&config, &["--limit", "4"]);
    let next = next.expect("a next cursor after a full page");
    let (p2, last) = cdr_list(&config, &["--limit", "4", "--after", &next]);
    assert_eq!((p1.len(), p2.len(), last), (4, 2, None));
    let mut walked = call_ids(&p1);
    walked.extend(call_ids(&p2));
    assert_eq!(walked, call_ids(&all));

    // CSV: a header and one line per row.
    let (csv, _) = cdr_list_text(&config, &["--format", "csv", "--outcome", "busy"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("id,call_id,leg,"), "{csv}");
    assert!(lines[1].contains(",busy,486,"), "{csv}");

    // Usage errors name the option.
    let out = Command::new(binary())
        .args(["cdr", "list", "--config"])
        .arg(&config)
        .args(["--outcome", "picked_up"])
        .output()
        .expect("run rivr cdr list");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--outcome"));

    // A call up at shutdown: the first SIGTERM drains (the call stays up),
    // the second ends it at once, and rivr exits only once its row is in
    // the store.
    let mut held = Caller::answered(
        &rivr,
        "held",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3002",
            ..CallSpec::default()
        },
    );
    rivr.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rivr.is_running(),
        "the first SIGTERM drains, it does not stop"
    );
    let status = rivr
        .terminate(SIGNALLING)
        .expect("rivr exits after the second SIGTERM");
    assert!(status.success(), "{status}");
    held.sipp.expect_pass(SIGNALLING);
    let (rows, _) = cdr_list(&config, &["--number", "3002"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&rows[0]["end"], &rows[0]["outcome"]),
        (&"shutdown".into(), &"answered".into()),
        "{}",
        rows[0]
    );
    assert_eq!(rivr.cdrs().len(), 7);
}
