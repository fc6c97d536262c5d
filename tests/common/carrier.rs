//! SIPp as the carrier rivr calls: one `sipp -m 1` UAS child on a scenario
//! from `tests/sipp/uas_*.xml`, listening on a free port of 127.0.0.1, with
//! the test's values injected by `-key`. The scenarios `<log>` what the test
//! needs to read back while the call runs (rivr's SDP offer as
//! `rivr_offer=IP:PORT call_id=… pts=…`, and named milestones such as
//! `acked`), and SIPp's message trace shows what rivr sent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::repo;
use super::sipp::{free_port, wait_child, SippResult};

/// A running SIPp UAS.
pub struct Carrier {
    child: Option<Child>,
    pub port: u16,
    label: String,
    log_file: PathBuf,
    error_file: PathBuf,
    message_file: PathBuf,
    started: Instant,
}

/// rivr's SDP offer, as SIPp logged it from the INVITE.
#[derive(Clone, Debug)]
pub struct Offer {
    pub rtp: SocketAddr,
    pub call_id: String,
    /// The payload types of the m= line, in order.
    pub payload_types: Vec<u8>,
}

impl Carrier {
    /// Starts SIPp on `scenario` (a file in `tests/sipp/`) with `keys`;
    /// `pause_ms` is how long the scenario's bare `<pause/>` lasts (SIPp's
    /// `-d`: a pause cannot take a key). Its files go to `dir`.
    pub fn start(
        dir: &Path,
        label: &str,
        scenario: &str,
        pause_ms: u64,
        keys: &[(&str, String)],
    ) -> Carrier {
        Carrier::start_with(dir, label, scenario, pause_ms, keys, &[])
    }

    /// As [`Carrier::start`], for `calls` calls (SIPp's `-m`).
    pub fn start_calls(
        dir: &Path,
        label: &str,
        scenario: &str,
        pause_ms: u64,
        keys: &[(&str, String)],
        calls: u32,
    ) -> Carrier {
        let m = calls.to_string();
        Carrier::start_with(dir, label, scenario, pause_ms, keys, &["-m", &m])
    }

    /// As [`Carrier::start`], with more SIPp options (`-t t1`: TCP, one
    /// connection for everything; `-m N`: N calls, not one).
    pub fn start_with(
        dir: &Path,
        label: &str,
        scenario: &str,
        pause_ms: u64,
        keys: &[(&str, String)],
        extra_args: &[&str],
    ) -> Carrier {
        super::failure::remember_failures();
        let file = |suffix: &str| dir.join(format!("carrier-{label}-{suffix}"));
        let (log_file, error_file, message_file, screen_file) = (
            file("logs.log"),
            file("errors.log"),
            file("messages.log"),
            file("screen.log"),
        );
        let port = free_port();
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(repo().join("tests/sipp").join(scenario))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string()])
            .args(["-d", &pause_ms.to_string()]);
        for (k, v) in keys {
            cmd.args(["-key", k, v]);
        }
        // One call unless the options say how many.
        if !extra_args.contains(&"-m") {
            cmd.args(["-m", "1"]);
        }
        cmd.args(["-timeout", "60s", "-timeout_error", "-nostdin"]);
        // After the defaults, so that a `-timeout` of the test's wins.
        cmd.args(extra_args);
        cmd.arg("-trace_err")
            .arg("-error_file")
            .arg(&error_file)
            .arg("-trace_logs")
            .arg("-log_file")
            .arg(&log_file)
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&message_file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&screen_file).expect("create SIPp screen file"))
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start sipp");
        Carrier {
            child: Some(child),
            port,
            label: label.to_owned(),
            log_file,
            error_file,
            message_file,
            started: Instant::now(),
        }
    }

    /// SIPp's scenario log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Waits for a log line containing `needle`; the instant the test saw
    /// it (polled every 2 ms), or `None` after `timeout` or once SIPp exited
    /// without it.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Some(Instant::now());
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                // It may have logged the line just before exiting.
                return self.log().contains(needle).then(Instant::now);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for rivr's INVITE and returns its SDP offer.
    pub fn wait_offer(&mut self, timeout: Duration) -> Offer {
        let found = self.wait_log("rivr_offer=", timeout);
        let offer = found.and_then(|_| self.log().lines().find_map(parse_offer_log));
        offer.unwrap_or_else(|| {
            panic!(
                "no INVITE with an SDP offer reached SIPp ({}) within {timeout:?}:\n{}",
                self.label,
                self.diagnostics()
            )
        })
    }

    /// Waits for SIPp to exit (killing it after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> SippResult {
        wait_child(&mut self.child, timeout)
    }

    /// Waits and asserts the scenario passed (exit code 0).
    pub fn expect_pass(&mut self, timeout: Duration) -> SippResult {
        let result = self.wait(timeout);
        assert!(
            result.passed(),
            "SIPp carrier scenario ({}) failed: {:?} after {:?}\n{}",
            self.label,
            result.status,
            result.ended.saturating_duration_since(self.started),
            self.diagnostics()
        );
        result
    }

    /// SIPp's error log so far (`-trace_err`: unexpected messages, timeouts).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(&self.error_file).unwrap_or_default()
    }

    /// The SIP messages SIPp sent and received so far.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.message_file).unwrap_or_default()
    }

    /// The requests SIPp received with method `method`, whole, in order.
    pub fn received(&self, method: &str) -> Vec<String> {
        received_messages(&self.messages())
            .into_iter()
            .filter(|m| m.starts_with(&format!("{method} ")))
            .collect()
    }

    /// SIPp's error log and the messages it exchanged, for assertion text.
    pub fn diagnostics(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let messages = self.messages();
        let tail: String = messages
            .chars()
            .rev()
            .take(8000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        // A campaign's log runs to thousands of lines: its end is enough.
        let log = self.log();
        let log_tail: Vec<&str> = log.lines().rev().take(60).collect();
        let log_tail: Vec<&str> = log_tail.into_iter().rev().collect();
        format!(
            "--- SIPp errors ---\n{}\n--- SIPp log (last {} lines of {}) ---\n{}\n--- SIPp messages (tail) ---\n{}",
            read(&self.error_file),
            log_tail.len(),
            self.log_file.display(),
            log_tail.join("\n"),
            tail
        )
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- carrier {} ---\n{}", self.label, self.diagnostics());
            super::failure::repeat_failure();
        }
    }
}

/// `rivr_offer=127.0.0.1:20040 call_id=X pts=0 8 101` → Offer.
fn parse_offer_log(line: &str) -> Option<Offer> {
    let rest = line.split("rivr_offer=").nth(1)?;
    let (addr, rest) = rest.split_once(" call_id=")?;
    let (call_id, pts) = rest.split_once(" pts=")?;
    Some(Offer {
        rtp: addr.trim().parse().ok()?,
        call_id: call_id.trim().to_owned(),
        payload_types: pts
            .split_whitespace()
            .map(|p| p.parse().ok())
            .collect::<Option<Vec<u8>>>()?,
    })
}

/// The messages SIPp's `-trace_msg` file says it received. Each entry is a
/// banner line of dashes and a timestamp, then `UDP message received [N]
/// bytes :` (or `… sent …`), then the message.
fn received_messages(trace: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut entry: Vec<&str> = Vec::new();
    let mut flush = |entry: &mut Vec<&str>| {
        let mut lines = entry.iter().skip_while(|l| l.trim().is_empty());
        if lines.next().is_some_and(|l| l.contains("message received")) {
            let body: Vec<&str> = lines.copied().collect();
            out.push(body.join("\n").trim().to_owned());
        }
        entry.clear();
    };
    for line in trace.lines() {
        if line.starts_with("-----") {
            flush(&mut entry);
        } else {
            entry.push(line);
        }
    }
    flush(&mut entry);
    out
}

#[test]
fn received_messages_are_split_from_the_trace() {
    let trace = "----------- 2026-12-04 01:04:20.1\nUDP message received [365] bytes :\n\n\
                 BYE sip:a SIP/2.0\nCSeq: 2 BYE\n\n\n----------- 2026-12-04 01:04:20.2\n\
                 UDP message sent (284 bytes):\n\nSIP/2.0 200 OK\n\n";
    assert_eq!(
        received_messages(trace),
        vec!["BYE sip:a SIP/2.0\nCSeq: 2 BYE".to_string()]
    );
}

#[test]
fn offer_log_line_parses() {
    let o = parse_offer_log("rivr_offer=127.0.0.1:20040 call_id=ab@127.0.0.1 pts=0 8 101")
        .expect("parses");
    assert_eq!(o.rtp, "127.0.0.1:20040".parse().unwrap());
    assert_eq!(o.call_id, "ab@127.0.0.1");
    assert_eq!(o.payload_types, vec![0, 8, 101]);
    assert!(parse_offer_log("rivr_offer=nonsense call_id=x pts=0").is_none());
}
