//! `rivr call` as a child process: a temp `rivr.toml` with one `[[trunk]]`
//! pointing at the test's carrier, an optional test-owned script, the call
//! placed, and the one JSON line it prints parsed. The child is killed on
//! drop; its stderr is kept in the test's temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::scratch::rtp_range;
use super::server::{binary, repo};

/// What to write in `rivr.toml` and pass to `rivr call`.
pub struct CallSetup<'a> {
    /// The carrier's SIP port on 127.0.0.1.
    pub trunk_port: u16,
    /// URI parameters after the port (`;transport=tcp`), or "".
    pub trunk_params: &'a str,
    /// More `[[trunk]]` lines (credentials, codecs, …).
    pub trunk_extra: &'a str,
    /// A test-owned script (its source), run once answered.
    pub script: Option<&'a str>,
    /// More arguments before the number (`--ring-timeout 2`, `--var k=v`).
    pub args: &'a [&'a str],
    pub number: &'a str,
}

/// A running `rivr call`.
pub struct Dialer {
    child: Option<Child>,
    label: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    pub started: Instant,
}

/// How `rivr call` ended.
pub struct Placed {
    pub status: ExitStatus,
    /// The JSON object it printed.
    pub json: Value,
    /// From the start of the process to its exit.
    pub elapsed: Duration,
    pub stderr: String,
}

impl Placed {
    pub fn outcome(&self) -> &str {
        self.json["outcome"].as_str().unwrap_or("")
    }

    pub fn result(&self, key: &str) -> Option<&str> {
        self.json["results"][key].as_str()
    }

    pub fn ms(&self, key: &str) -> u64 {
        self.json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} is not a number in {}", self.json))
    }
}

impl Dialer {
    /// Writes the config (and script) into `dir` and starts `rivr call`.
    pub fn start(dir: &Path, label: &str, setup: &CallSetup) -> Dialer {
        Dialer::start_with_media(dir, label, setup, "")
    }

    /// As [`Dialer::start`], with `media_extra` lines in `[media]`.
    pub fn start_with_media(
        dir: &Path,
        label: &str,
        setup: &CallSetup,
        media_extra: &str,
    ) -> Dialer {
        let (rtp_lo, rtp_hi) = rtp_range(8);
        let mut toml = format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\n\
             [rtp]\nports = \"{rtp_lo}-{rtp_hi}\"\n\
             [media]\nprompts = {prompts:?}\n{media_extra}\n\
             [cdr]\npath = {cdr:?}\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{port}{params}\"\n{extra}\n",
            prompts = repo().join("prompts").display().to_string(),
            cdr = dir.join(format!("{label}-cdr.jsonl")).display().to_string(),
            port = setup.trunk_port,
            params = setup.trunk_params,
            extra = setup.trunk_extra,
        );
        toml.push('\n');
        let config = dir.join(format!("{label}-rivr.toml"));
        std::fs::write(&config, toml).expect("write rivr.toml");
        let mut cmd = Command::new(binary());
        cmd.arg("call").arg("--config").arg(&config);
        if let Some(source) = setup.script {
            let path = dir.join(format!("{label}.rhai"));
            std::fs::write(&path, source).expect("write the test script");
            cmd.arg("--script").arg(path);
        }
        cmd.args(setup.args).arg(setup.number);
        let stdout_path = dir.join(format!("{label}-rivr.stdout"));
        let stderr_path = dir.join(format!("{label}-rivr.stderr"));
        let child = cmd
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary().display()));
        Dialer {
            child: Some(child),
            label: label.to_owned(),
            stdout_path,
            stderr_path,
            started: Instant::now(),
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits for `rivr call` to exit (at most `timeout`); its stdout lines.
    fn wait_lines(&mut self, timeout: Duration) -> (ExitStatus, Duration, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("rivr call was started");
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rivr call ({}) did not exit within {timeout:?}; stderr:\n{}",
                    self.label,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = self.started.elapsed();
        self.child = None;
        let stdout = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        let lines = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        (status, elapsed, lines)
    }

    /// Waits for a `rivr call --count N` to exit; every line it printed.
    pub fn finish_all(&mut self, timeout: Duration) -> Vec<Value> {
        let (status, _, lines) = self.wait_lines(timeout);
        assert!(
            status.success(),
            "rivr call ({}) exited {status}; stderr:\n{}",
            self.label,
            self.stderr()
        );
        lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("rivr call printed {l:?}: {e}"))
            })
            .collect()
    }

    /// Waits for `rivr call` to exit (at most `timeout`) and parses its line.
    pub fn finish(&mut self, timeout: Duration) -> Placed {
        let (status, elapsed, lines) = self.wait_lines(timeout);
        let stderr = self.stderr();
        assert!(
            status.success() && lines.len() == 1,
            "rivr call ({}) exited {status} with {} stdout lines (want 0 and one JSON line):\n{}\nstderr:\n{stderr}",
            self.label,
            lines.len(),
            lines.join("\n")
        );
        let json: Value = serde_json::from_str(&lines[0])
            .unwrap_or_else(|e| panic!("rivr call printed {:?}: {e}", lines[0]));
        for key in [
            "id",
            "number",
            "trunk",
            "outcome",
            "sip_status",
            "reason",
            "q850",
            "ring_ms",
            "talk_ms",
            "results",
        ] {
            assert!(json.get(key).is_some(), "no {key:?} in {json}");
        }
        eprintln!("[{}] rivr call: {json}", self.label);
        Placed {
            status,
            json,
            elapsed,
            stderr,
        }
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- rivr call {} stderr (last {} lines) ---",
                self.label,
                tail.len()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
