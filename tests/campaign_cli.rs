//! `rivr campaign` and `rivr dnc` against a real SQLite file: a list with
//! bad rows is imported with their lines reported, the id is the last word
//! of the first line, state changes follow the rules, status and report
//! say what the store holds, and bad options are refused by name.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn rivr(args: &[&str]) -> Output {
    let bin = std::env::var("RIVR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rivr").to_string());
    Command::new(bin).args(args).output().expect("run rivr")
}

fn ok(args: &[&str]) -> String {
    let out = rivr(args);
    assert!(
        out.status.success(),
        "rivr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str], want: &str) {
    let out = rivr(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rivr {args:?} should fail");
    assert!(
        err.contains(want),
        "rivr {args:?}: {err:?} should say {want:?}"
    );
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn setup(name: &str) -> (Dir, String) {
    let d = std::env::temp_dir().join(format!("rivr-campaign-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let cfg = d.join("rivr.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:5999\"\ncps = 10\nmax_channels = 5\n",
            d.join("rivr.db").display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("flow.rhai"),
        "answer();\nset_result(\"heard\", \"yes\");\n",
    )
    .unwrap();
    std::fs::write(
        d.join("list.csv"),
        "phone,name,tz\n\
         (650) 253-0000,Ann,America/New_York\n\
         +254 712 345678,Baraka,Africa/Nairobi\n\
         123,Bad,\n\
         650.253.0000,Dup,\n\
         +44 20 7946 0958,Cy,Mars/Olympus\n\
         +44 20 7946 0959,Dee,\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    (Dir(d), cfg)
}

fn path(d: &Dir, f: &str) -> String {
    d.0.join(f).display().to_string()
}

fn status(cfg: &str, id: &str) -> Value {
    serde_json::from_str(&ok(&["campaign", "status", "--config", cfg, id, "--json"])).unwrap()
}

#[test]
fn create_reports_bad_rows_and_state_changes_follow_the_rules() {
    let (d, cfg) = setup("create");
    let out = ok(&[
        "campaign",
        "create",
        "--config",
        &cfg,
        "--name",
        "flu",
        "--contacts",
        &path(&d, "list.csv"),
        "--script",
        &path(&d, "flow.rhai"),
        "--trunk",
        "carrier",
        "--country",
        "US",
        "--retry",
        "busy=10m,no_answer=30m",
        "--hours",
        "09:00-20:00",
        "--days",
        "mon-sat",
        "--sms-fallback",
        "Hello {name}",
        "--ends",
        "2030-01-01T18:00",
    ]);
    println!("{out}");
    let first = out.lines().next().unwrap();
    let id = first.split_whitespace().last().unwrap().to_string();
    assert!(id.starts_with('c'), "{first}");
    assert!(first.starts_with("3 contacts"), "{first}");
    // Each row left out is named by its line.
    for line in [":4:", ":5:", ":6:"] {
        assert!(out.contains(line), "{out}");
    }
    assert!(
        out.contains("line 2"),
        "the duplicate names the first: {out}"
    );

    let s = status(&cfg, &id);
    assert_eq!(s["state"], "created");
    assert_eq!(
        (s["total"].as_u64(), s["remaining"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(s["in_progress"], 0);
    assert_eq!(s["outcomes"], serde_json::json!({}));

    let listed = ok(&["campaign", "list", "--config", &cfg]);
    assert!(
        listed.contains(&id) && listed.contains("created") && listed.contains("flu"),
        "{listed}"
    );

    fails(&["campaign", "resume", "--config", &cfg, &id], "is created");
    ok(&["campaign", "start", "--config", &cfg, &id]);
    assert_eq!(status(&cfg, &id)["state"], "running");
    fails(&["campaign", "start", "--config", &cfg, &id], "is running");
    ok(&["campaign", "pause", "--config", &cfg, &id]);
    assert_eq!(status(&cfg, &id)["state"], "paused");
    ok(&["campaign", "resume", "--config", &cfg, &id]);
    ok(&["campaign", "cancel", "--config", &cfg, &id]);
    assert_eq!(status(&cfg, &id)["state"], "cancelled");
    fails(
        &["campaign", "resume", "--config", &cfg, &id],
        "is cancelled",
    );
    fails(
        &["campaign", "status", "--config", &cfg, "c000"],
        "no campaign",
    );

    let csv = ok(&[
        "campaign", "report", "--config", &cfg, &id, "--format", "csv",
    ]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("phone,name,attempts,outcome,refined_outcome,answered_by,sip_status,q850,talk_s,sms_id,sms_state")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with("+16502530000,Ann,0,"), "{csv}");
    let json: Value = serde_json::from_str(&ok(&[
        "campaign", "report", "--config", &cfg, &id, "--format", "json",
    ]))
    .unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[1]["phone"], "+254712345678");
    assert_eq!(list[1]["fields"]["name"], "Baraka");
}

#[test]
fn bad_options_are_refused_by_name() {
    let (d, cfg) = setup("bad");
    let list = path(&d, "list.csv");
    let script = path(&d, "flow.rhai");
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "campaign",
            "create",
            "--config",
            &cfg,
            "--name",
            "x",
            "--contacts",
            &list,
            "--script",
            &script,
            "--country",
            "US",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&'static str], want: &str| {
        let args = base(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, want);
    };
    run(&["--trunk", "nope"], "--trunk \"nope\"");
    run(&["--trunk", "carrier", "--retry", "busy=10x"], "--retry");
    run(&["--trunk", "carrier", "--hours", "20:00-09:00"], "--hours");
    run(&["--trunk", "carrier", "--tz", "Mars/Olympus"], "--tz");
    run(
        &["--trunk", "carrier", "--sms-fallback", "Hi {nickname}"],
        "{nickname}",
    );
    run(
        &["--trunk", "carrier", "--sms-on", "busy"],
        "--sms-fallback",
    );
    run(&["--trunk", "carrier", "--country", "XX"], "--country");
    run(&["--trunk", "carrier", "--ends", "tomorrow"], "--ends");
    // Without a country, a national number is never guessed.
    let out = ok(&[
        "campaign",
        "create",
        "--config",
        &cfg,
        "--name",
        "intl",
        "--contacts",
        &list,
        "--script",
        &script,
        "--trunk",
        "carrier",
    ]);
    assert!(out.starts_with("2 contacts"), "{out}");
    assert!(out.contains("no country was given"), "{out}");
}

#[test]
fn the_do_not_call_list() {
    let (d, cfg) = setup("dnc");
    let out = ok(&[
        "dnc",
        "add",
        "--config",
        &cfg,
        "--country",
        "US",
        "(650) 253-0000",
        "+254712345678",
    ]);
    assert_eq!(out.trim(), "added 2 of 2");
    let out = ok(&["dnc", "add", "--config", &cfg, "+1 650 253 0000"]);
    assert_eq!(out.trim(), "added 0 of 1", "already listed");
    fails(
        &["dnc", "add", "--config", &cfg, "650 253 0000"],
        "no country",
    );
    let listed = ok(&["dnc", "list", "--config", &cfg]);
    assert_eq!(listed, "+16502530000 cli\n+254712345678 cli\n");
    let out = ok(&["dnc", "remove", "--config", &cfg, "+254712345678"]);
    assert_eq!(out.trim(), "removed 1 of 1");
    let out = ok(&[
        "dnc",
        "import",
        "--config",
        &cfg,
        "--country",
        "US",
        &path(&d, "list.csv"),
    ]);
    assert!(out.starts_with("added 2 of 3"), "{out}");
    let listed = ok(&["dnc", "list", "--config", &cfg]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.contains(&format!("+442079460959 import:{}", path(&d, "list.csv"))),
        "{listed}"
    );
}
