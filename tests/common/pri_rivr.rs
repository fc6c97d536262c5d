//! rivr as a PRI box in the tests: the `[[span]]` and `kind = "pri"`
//! trunk tables for spans whose carrier is a libpri peer, and `rivr call`
//! on such a trunk with its JSON lines (tests/pri_calls.rs,
//! tests/pri_two_spans.rs).

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::libpri::SpanPaths;
use super::scratch::rtp_range;
use super::server::{binary, repo};

/// A `[[span]]` named `name` on `paths`: E1, EuroISDN, A-law, rivr the
/// user side, the socket transport.
pub fn span_table(name: &str, paths: &SpanPaths) -> String {
    span_table_of(name, paths, "etsi", "alaw")
}

/// As [`span_table`] for a T1: National ISDN-2, µ-law, channels 1–23.
pub fn t1_span_table(name: &str, paths: &SpanPaths) -> String {
    span_table_of(name, paths, "ni2", "ulaw")
}

fn span_table_of(name: &str, paths: &SpanPaths, variant: &str, law: &str) -> String {
    format!(
        "[[span]]\nname = {name:?}\nvariant = {variant:?}\nlaw = {law:?}\nside = \"user\"\n\
         transport = \"socket\"\ndchannel = {d:?}\nbchannels = {b:?}\n",
        d = paths.dchannel.display().to_string(),
        b = paths.bchannels,
    )
}

/// The PRI trunk `e1` over `spans` (caller id 5550100), with `extra` keys.
pub fn trunk_table(spans: &[&str], extra: &str) -> String {
    let list: Vec<String> = spans.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[trunk]]\nname = \"e1\"\nkind = \"pri\"\nspans = [{}]\ncaller_id = \"5550100\"\n{extra}\n",
        list.join(", ")
    )
}

/// `rivr call --config … --trunk e1 [ARGS] NUMBER` with `tables` after a
/// minimal config; every JSON line it printed (one per call), in order.
/// Fails the test if it does not exit successfully within `timeout`.
pub fn rivr_call(
    dir: &Path,
    label: &str,
    tables: &str,
    script: Option<&str>,
    args: &[&str],
    number: &str,
    timeout: Duration,
) -> Vec<Value> {
    let (lo, hi) = rtp_range(4);
    let toml = format!(
        "[sip]\nlisten = \"127.0.0.1:0\"\n[rtp]\nports = \"{lo}-{hi}\"\n\
         [media]\nprompts = {prompts:?}\n[cdr]\npath = {cdr:?}\n{tables}",
        prompts = repo().join("prompts").display().to_string(),
        cdr = dir.join(format!("{label}-cdr.jsonl")).display().to_string(),
    );
    let config = dir.join(format!("{label}.toml"));
    std::fs::write(&config, toml).expect("write the config");
    let mut cmd = Command::new(binary());
    cmd.arg("call")
        .arg("--config")
        .arg(&config)
        .arg("--trunk")
        .arg("e1")
        .args(args);
    if let Some(source) = script {
        let path = dir.join(format!("{label}.rhai"));
        std::fs::write(&path, source).expect("write the script");
        cmd.arg("--script").arg(path);
    }
    let stderr_path = dir.join(format!("{label}.stderr"));
    let stdout_path = dir.join(format!("{label}.stdout"));
    let mut child = cmd
        .arg(number)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start rivr call");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for rivr call") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rivr call {number} did not end within {timeout:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::fs::File::open(&stdout_path)
        .and_then(|mut f| f.read_to_string(&mut out))
        .expect("read rivr call's stdout");
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "rivr call {number}: {status}; stderr:\n{stderr}"
    );
    let lines: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON line; stderr:\n{stderr}");
    lines
}
