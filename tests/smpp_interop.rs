//! Interop with SMPP code rivr did not write, on 127.0.0.1: rivr's client
//! against an SMSC built on PyPI `smpp34`, and the PyPI `smpplib` client
//! against `rivr smsc-sim`. Needs `.venv` (`make smpp-venv`, which the test
//! runs itself when `.venv` is missing); if it cannot be made the tests
//! fail, unless `RIVR_SKIP_SMPP_VENV=1` asks to skip them on purpose.

#[path = "smpp/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::*;
use rivr::sms::{MessageState, SmsService};

fn venv_python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let py = root.join(".venv/bin/python");
    let ready = || {
        py.exists()
            && Command::new(&py)
                .args(["-c", "import smpp34, smpplib"])
                .status()
                .is_ok_and(|s| s.success())
    };
    // The same script as `make smpp-venv`, once per test binary (both tests
    // may get here at the same time); PyPI is one of the reachable
    // registries, so the test sets itself up when it can.
    static SETUP: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| {
        if !ready() {
            let _ = Command::new("bash")
                .arg(root.join("tests/smpp/setup-venv.sh"))
                .status();
        }
    });
    if ready() {
        return Some(py);
    }
    assert!(
        std::env::var_os("RIVR_SKIP_SMPP_VENV").is_some_and(|v| v == "1"),
        ".venv with smpp34 and smpplib is missing and could not be made: run `make smpp-venv` \
         (or set RIVR_SKIP_SMPP_VENV=1 to skip these tests on purpose)"
    );
    eprintln!("*** SKIPPED (RIVR_SKIP_SMPP_VENV=1): .venv with smpp34/smpplib missing ***");
    None
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/smpp")
        .join(name)
}

struct PySmsc {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for PySmsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_py_smsc(py: &PathBuf, dir: &std::path::Path) -> PySmsc {
    let log = dir.join("pysmsc.log");
    let mut child = Command::new(py)
        .arg(script("smsc_smpp34.py"))
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    PySmsc { child, port, log }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rivr_client_against_an_smpp34_smsc() {
    let Some(py) = venv_python() else { return };
    let dir = temp_dir("py-smsc");
    let smsc = start_py_smsc(&py, &dir);
    let cfg_path = write_config(&dir, smsc.port, "window = 5\n");
    let svc = SmsService::start(&load_config(&cfg_path)).await.unwrap();
    let texts = [
        "Hello {GSM-7} €5".to_string(),
        "Привет, UCS-2 ✓".to_string(),
        "Three parts. ".repeat(30),
    ];
    let mut ids = Vec::new();
    for t in &texts {
        ids.push(svc.submit("15550001", t).await.unwrap());
    }
    for id in &ids {
        let s = svc
            .wait_for(id, Duration::from_secs(20), MessageState::is_final)
            .await
            .unwrap();
        assert_eq!(s, MessageState::Delivered, "{id}");
    }
    svc.shutdown(Duration::from_secs(5)).await;
    let log = std::fs::read_to_string(&smsc.log).unwrap();
    let acc: Vec<&str> = log.lines().filter(|l| l.starts_with("accepted")).collect();
    assert_eq!(acc.len(), 5, "1 + 1 + 3 parts:\n{log}");
    // The window lets the SMSC log them in any order; find each by content.
    let gsm = acc
        .iter()
        .filter(|l| l.contains("dc=0 esm=0 sm=48656c6c6f201b28"));
    assert_eq!(gsm.count(), 1, "GSM-7 with an escaped brace:\n{log}");
    let ucs2 = acc.iter().filter(|l| l.contains("dc=8 esm=0 sm=041f0440"));
    assert_eq!(ucs2.count(), 1, "UCS-2:\n{log}");
    let mut seqs: Vec<String> = acc
        .iter()
        .filter(|l| l.contains("esm=64 sm=050003"))
        .filter_map(|l| {
            l.split("sm=050003")
                .nth(1)
                .and_then(|h| h.get(2..6))
                .map(str::to_string)
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, ["0301", "0302", "0303"], "3-part UDH:\n{log}");

    // And the CLI, end to end, against the same SMSC.
    let out = Command::new(rivr_bin())
        .args(["sms", "send", "--config"])
        .arg(&cfg_path)
        .args([
            "--to",
            "15550002",
            "--text",
            "via the CLI",
            "--wait-receipt",
            "10",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("state delivered"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("smpp34 SMSC: GSM-7, UCS-2, 3-part and CLI submits delivered with receipts");
}

#[test]
fn smpplib_client_against_rivr_smsc_sim() {
    let Some(py) = venv_python() else { return };
    let dir = temp_dir("smpplib");
    let sim = Sim::start(&dir, &["--receipt-delay-ms", "50"]);
    let out = Command::new(&py)
        .arg(script("client_smpplib.py"))
        .arg(sim.port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acc = sim.accepted();
    assert_eq!(acc.len(), 5);
    assert_eq!(acc.iter().filter(|a| a.dc == 8).count(), 1);
    assert_eq!(
        acc.iter()
            .filter(|a| a.esm & 0x40 != 0 && a.sm_hex.starts_with("050003"))
            .count(),
        3
    );
    println!("smpplib: {}", stdout.trim());
}
