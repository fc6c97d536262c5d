//! `rivr demo`, run as a newcomer runs it: the binary, nothing else
//! started. Its output is the witness: the campaign reaches 30/30 and
//! `done`, the report has one row per contact with the outcome and the
//! attempts its number's last digit dictates (the carrier simulator's
//! rule: 2 busy, 3 rings out, 4 503, 5 answers and hangs up, others
//! answer; two attempts for the ones not answered, and an SMS delivered to
//! each of them), the carrier saw exactly the INVITEs the attempts add up
//! to, the inbound call was answered and rivr's menu heard the caller's
//! keys, the dashboard URL is printed, and the exit status is 0 — all
//! within a bounded time. With `--keep`, the printed URL and token serve
//! the API until Ctrl-C (SIGINT), which also ends with 0.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CONTACTS: usize = 30;
/// The demo takes ~20 s on a quiet machine; CI shares its cores.
const LIMIT: Duration = Duration::from_secs(120);

fn binary() -> PathBuf {
    std::env::var_os("RIVR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rivr")))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Kills the demo if the test fails first (with `--keep` it would serve
/// on).
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rivr demo ARGS` in the repo; its stdout lines on a channel.
fn start(args: &[&str]) -> (Demo, mpsc::Receiver<String>) {
    let mut child = Command::new(binary())
        .arg("demo")
        .args(args)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rivr demo");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Demo(child), rx)
}

/// Lines until `stop` matches one (inclusive) or the output ends; panics
/// past `deadline`, killing the demo.
fn read_until(
    child: &mut Child,
    rx: &mpsc::Receiver<String>,
    deadline: Instant,
    stop: impl Fn(&str) -> bool,
    seen: &mut Vec<String>,
) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                println!("{line}");
                let end = stop(&line);
                seen.push(line);
                if end {
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "rivr demo not done within {LIMIT:?}; output:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
}

fn wait_exit(child: &mut Child, deadline: Instant) -> std::process::ExitStatus {
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rivr demo did not exit within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a contact must end with: (outcome, attempts, heard, sms).
fn expected(phone: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    match phone.chars().last() {
        Some('2') => ("busy", "2", "-", "delivered"),
        Some('3') => ("no_answer", "2", "-", "delivered"),
        Some('4') => ("congestion", "2", "-", "delivered"),
        // The callee hangs up 2 s into a ~5 s prompt.
        Some('5') => ("answered", "1", "-", "-"),
        _ => ("answered", "1", "opening_hours", "-"),
    }
}

/// Checks everything the demo printed (see the file's comment).
fn check_output(lines: &[String]) {
    let all = lines.join("\n");
    let full = format!("campaign [{}] {CONTACTS}/{CONTACTS} done", "#".repeat(30));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&full) && l.ends_with("| done")),
        "the campaign never showed {CONTACTS}/{CONTACTS} done:\n{all}"
    );
    let head = lines
        .iter()
        .position(|l| l.starts_with("phone ") && l.contains("outcome"))
        .unwrap_or_else(|| panic!("no report table:\n{all}"));
    let rows: Vec<&String> = lines[head + 1..]
        .iter()
        .take_while(|l| l.starts_with('+'))
        .collect();
    assert_eq!(rows.len(), CONTACTS, "report rows:\n{all}");
    let mut invites = 0;
    for (i, row) in rows.iter().enumerate() {
        // The carrier column has spaces: read from the right.
        let f: Vec<&str> = row.split_whitespace().collect();
        let n = f.len();
        let phone = f[0];
        assert_eq!(phone, format!("+254712000{}", 100 + i), "{row}");
        let (outcome, attempts, heard, sms) = expected(phone);
        let got = (f[n - 7], f[n - 6], f[n - 3], f[n - 2], f[n - 1]);
        assert_eq!(got, (outcome, attempts, heard, sms, "yes"), "{row}");
        invites += attempts.parse::<u32>().unwrap();
    }
    assert!(
        all.contains(&format!(
            "carrier saw {invites} INVITEs: answered 21, busy 6, rang out 6, 503 6"
        )),
        "the carrier's count is not the report's ({invites} INVITEs):\n{all}"
    );
    let inbound = lines
        .iter()
        .find(|l| l.starts_with("inbound call to 1000"))
        .unwrap_or_else(|| panic!("no inbound call line:\n{all}"));
    assert!(inbound.contains(": answered,"), "{inbound}");
    assert!(inbound.contains("ended by rivr"), "{inbound}");
    assert!(inbound.ends_with("the caller pressed 2 1"), "{inbound}");
    assert!(
        lines
            .iter()
            .any(|l| l == "rivr's menu heard: main menu 2, information menu 1"),
        "the menu did not hear 2 then 1:\n{all}"
    );
    assert!(
        lines.iter().any(|l| {
            l
            == "every contact ended as its number dictates; the inbound call went through the menu"
        }),
        "{all}"
    );
}

/// The dashboard URL's address and read token.
fn dashboard(lines: &[String]) -> (String, String) {
    let url = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("dashboard: http://"))
        .unwrap_or_else(|| panic!("no dashboard URL:\n{}", lines.join("\n")));
    let (addr, token) = url.split_once("/?token=").expect("URL with a token");
    assert!(addr.starts_with("127.0.0.1:"), "{url}");
    assert_eq!(token.len(), 32, "{url}");
    (addr.to_string(), token.to_string())
}

#[test]
fn the_demo_runs_its_campaign_and_inbound_call_and_exits_0() {
    let t0 = Instant::now();
    let deadline = t0 + LIMIT;
    let (mut demo, rx) = start(&[]);
    let child = &mut demo.0;
    let mut lines = Vec::new();
    read_until(child, &rx, deadline, |_| false, &mut lines);
    let status = wait_exit(child, deadline);
    println!(
        "[demo] exit {status} after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(status.success(), "exit {status}:\n{}", lines.join("\n"));
    check_output(&lines);
    dashboard(&lines);
    // Its temporary folder is gone.
    let files = lines
        .iter()
        .find_map(|l| l.strip_prefix("files: "))
        .and_then(|l| l.split(" (").next())
        .expect("files line");
    assert!(!PathBuf::from(files).exists(), "{files} left behind");
}

#[test]
fn with_keep_the_printed_dashboard_serves_until_sigint() {
    let dir = std::env::temp_dir().join(format!("rivr-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let deadline = Instant::now() + LIMIT;
    let (mut demo, rx) = start(&["--keep", "--dir", dir.to_str().unwrap()]);
    let child = &mut demo.0;
    let mut lines = Vec::new();
    read_until(
        child,
        &rx,
        deadline,
        |l| l.starts_with("--keep:"),
        &mut lines,
    );
    check_output(&lines);
    let (addr, token) = dashboard(&lines);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let get = |path: &str, token: Option<&str>| {
        let mut r = agent.get(format!("http://{addr}{path}"));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        r.call().expect("GET").status().as_u16()
    };
    assert_eq!(get("/trunks", Some(&token)), 200, "the printed token reads");
    assert_eq!(get("/trunks", None), 401);
    // The files stay with --dir.
    assert!(dir.join("rivr.toml").is_file() && dir.join("cdr.jsonl").is_file());
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    read_until(child, &rx, deadline, |_| false, &mut lines);
    let status = wait_exit(child, deadline);
    assert!(status.success(), "exit {status} after SIGINT");
    let _ = std::fs::remove_dir_all(&dir);
}
