//! SIPp as the caller: one `sipp -m 1` child per call on a scenario from
//! `tests/sipp/`, with the test's RTP port and codecs injected by `-key`.
//! The scenarios `<log>` rivr's RTP address from the 200 OK; the test reads
//! it back from the log file while the call is up.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::server::repo;

/// True when a `sipp` binary runs.
pub fn available() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// One SIPp call to place.
pub struct CallSpec<'a> {
    /// File name in `tests/sipp/`.
    pub scenario: &'a str,
    /// The dialed number (`[service]`).
    pub number: &'a str,
    /// The caller's RTP port for the SDP (`[rtp_port]`).
    pub rtp_port: u16,
    /// Payload types for the m= line (`[codecs]`), e.g. "0" or "8 0".
    pub codecs: &'a str,
    /// `-d`: how long scenarios with a bare `<pause/>` hold the call.
    pub hold_ms: u64,
    pub transport: Transport,
    /// More SIPp options, e.g. `-nr`.
    pub extra_args: &'a [&'a str],
}

impl Default for CallSpec<'_> {
    fn default() -> Self {
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "1000",
            rtp_port: 9,
            codecs: "0",
            hold_ms: 1000,
            transport: Transport::Udp,
            extra_args: &[],
        }
    }
}

/// A running SIPp.
pub struct Sipp {
    child: Option<Child>,
    label: String,
    log_file: PathBuf,
    error_file: PathBuf,
    message_file: PathBuf,
    screen_file: PathBuf,
    started: Instant,
}

/// How a SIPp run ended.
#[derive(Debug)]
pub struct SippResult {
    pub status: Option<ExitStatus>,
    /// When the test saw SIPp exit.
    pub ended: Instant,
}

impl SippResult {
    pub fn passed(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// rivr's media address and payload type, as SIPp saw them in the 200 OK.
#[derive(Clone, Debug)]
pub struct Answer {
    pub rtp: SocketAddr,
    pub payload_type: u8,
    pub call_id: String,
}

/// Waits for a SIPp child to exit (at most `timeout`, then it is killed
/// and the result has no status); the child is taken either way.
pub fn wait_child(child: &mut Option<Child>, timeout: Duration) -> SippResult {
    let deadline = Instant::now() + timeout;
    let Some(c) = child.as_mut() else {
        return SippResult {
            status: None,
            ended: Instant::now(),
        };
    };
    loop {
        if let Ok(Some(status)) = c.try_wait() {
            let ended = Instant::now();
            *child = None;
            return SippResult {
                status: Some(status),
                ended,
            };
        }
        if Instant::now() >= deadline {
            let _ = c.kill();
            let _ = c.wait();
            *child = None;
            return SippResult {
                status: None,
                ended: Instant::now(),
            };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A UDP+TCP port that was free a moment ago, for SIPp's `-p`.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = udp.local_addr().expect("probe address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Sipp {
    /// Starts one call against rivr on `rivr_port`; SIPp's files go to `dir`.
    pub fn start(dir: &Path, label: &str, rivr_port: u16, spec: &CallSpec) -> Sipp {
        let file = |suffix: &str| dir.join(format!("sipp-{label}-{suffix}"));
        let (log_file, error_file, message_file, screen_file) = (
            file("logs.log"),
            file("errors.log"),
            file("messages.log"),
            file("screen.log"),
        );
        let scenario = repo().join("tests/sipp").join(spec.scenario);
        let mut cmd = Command::new("sipp");
        cmd.arg(format!("127.0.0.1:{rivr_port}"))
            .arg("-sf")
            .arg(&scenario)
            .args(["-s", spec.number, "-m", "1", "-i", "127.0.0.1"])
            .args(["-p", &free_port().to_string()])
            .args(["-key", "rtp_port", &spec.rtp_port.to_string()])
            .args(["-key", "codecs", spec.codecs])
            .args(["-d", &spec.hold_ms.to_string()])
            .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
            .arg("-trace_err")
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
        cmd.args(spec.extra_args);
        if spec.transport == Transport::Tcp {
            cmd.args(["-t", "t1"]);
        }
        let child = cmd.spawn().expect("start sipp");
        Sipp {
            child: Some(child),
            label: label.to_owned(),
            log_file,
            error_file,
            message_file,
            screen_file,
            started: Instant::now(),
        }
    }

    /// Waits for the scenario's `rivr_rtp=` log line (written when the
    /// 200 OK arrives).
    pub fn wait_answer(&mut self, timeout: Duration) -> Answer {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
            if let Some(answer) = log.lines().find_map(parse_answer_log) {
                return answer;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "SIPp ({}) ended with {status} before a 200 OK:\n{}",
                        self.label,
                        self.diagnostics()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "no 200 OK logged by SIPp ({}) within {timeout:?}:\n{}",
                self.label,
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
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
            "SIPp scenario ({}) failed: {:?} after {:?}\n{}",
            self.label,
            result.status,
            result.ended.saturating_duration_since(self.started),
            self.diagnostics()
        );
        result
    }

    /// SIPp's error log and the messages it exchanged, for assertion text.
    pub fn diagnostics(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let messages = read(&self.message_file);
        let tail: String = messages
            .chars()
            .rev()
            .take(6000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "--- SIPp errors ---\n{}\n--- SIPp messages (tail) ---\n{}",
            read(&self.error_file),
            tail
        )
    }

    /// The SIP messages SIPp sent and received so far.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.message_file).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `rivr_rtp=127.0.0.1:30000 pt=0 call_id=…` → Answer.
fn parse_answer_log(line: &str) -> Option<Answer> {
    let rest = line.split("rivr_rtp=").nth(1)?;
    let mut fields = rest.split_whitespace();
    let rtp = fields.next()?.parse().ok()?;
    let payload_type = fields.next()?.strip_prefix("pt=")?.parse().ok()?;
    let call_id = fields.next()?.strip_prefix("call_id=")?.to_owned();
    Some(Answer {
        rtp,
        payload_type,
        call_id,
    })
}

#[test]
fn answer_log_line_parses() {
    let a = parse_answer_log("2026-11-26 ... rivr_rtp=127.0.0.1:20040 pt=8 call_id=1-77@127.0.0.1")
        .expect("parses");
    assert_eq!(a.rtp, "127.0.0.1:20040".parse().unwrap());
    assert_eq!(a.payload_type, 8);
    assert_eq!(a.call_id, "1-77@127.0.0.1");
    assert!(parse_answer_log("rivr_rtp=nonsense pt=0").is_none());
}
