//! Many legitimate callers at once: one SIPp process that places `calls`
//! calls at `rate` per second from a source address of the test's choosing,
//! each streaming G.711 µ-law RTP to rivr (`rtp_stream`, looped) while rivr
//! plays its prompts, held `hold_ms` and hung up (the scenario is
//! `tests/load/uac_load.xml`). SIPp's cumulative counters are read back from
//! its statistics file when it has ended.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rivr::media::g711::{self, Law};

use super::caller::prompt;
use super::server::repo;

/// What to place.
pub struct LoadSpec<'a> {
    /// Source address of SIP and RTP (e.g. "127.0.0.2").
    pub ip: &'a str,
    pub number: &'a str,
    pub calls: u32,
    /// New calls per second.
    pub rate: u32,
    /// How long each call is held before SIPp hangs up.
    pub hold_ms: u64,
    /// `-t` transport: "u1" (UDP, one socket) or "t1" (TCP, one connection).
    pub transport: &'a str,
}

/// A running load.
pub struct SippLoad {
    child: Option<Child>,
    stats_file: PathBuf,
    error_file: PathBuf,
    pub started: Instant,
}

/// SIPp's cumulative counters at the end of its run.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub status: Option<ExitStatus>,
    pub created: u64,
    pub successful: u64,
    pub failed: u64,
    /// When the test saw SIPp exit.
    pub ended: Option<Instant>,
}

impl LoadResult {
    /// Successful calls in percent of those placed.
    pub fn success_pct(&self) -> f64 {
        if self.created == 0 {
            return 0.0;
        }
        100.0 * self.successful as f64 / self.created as f64
    }
}

/// A port free on `ip` for both UDP and TCP a moment ago.
pub fn free_port(ip: &str) -> u16 {
    loop {
        let udp = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        let port = udp.local_addr().expect("probe address").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// An even port free on `ip` with the odd one above it, for SIPp's media
/// (`-mp`: it uses the port and the next ones).
fn free_media_port(ip: &str) -> u16 {
    for _ in 0..200 {
        let a = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        let port = a.local_addr().expect("probe address").port();
        if port % 2 == 0 && port < 65_000 && UdpSocket::bind((ip, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free media port pair on {ip}");
}

/// The callers' voice: a prompt as raw µ-law, for `rtp_stream`.
fn caller_audio(dir: &Path) -> PathBuf {
    let pcm = prompt("survey_q1").pcm_8k().to_vec();
    let mut ulaw = vec![0u8; pcm.len()];
    g711::encode(Law::Ulaw, &pcm, &mut ulaw);
    let path = dir.join("caller.ulaw");
    std::fs::write(&path, ulaw).expect("write the callers' audio");
    path
}

impl SippLoad {
    /// Starts SIPp; its files go to `dir`.
    pub fn start(dir: &Path, label: &str, rivr_port: u16, spec: &LoadSpec) -> SippLoad {
        let audio = caller_audio(dir);
        let template = std::fs::read_to_string(repo().join("tests/load/uac_load.xml"))
            .expect("read tests/load/uac_load.xml");
        let scenario = dir.join(format!("{label}-uac_load.xml"));
        std::fs::write(
            &scenario,
            template
                .replace("HOLD_MS", &spec.hold_ms.to_string())
                .replace("CALLER_AUDIO", &audio.display().to_string()),
        )
        .expect("write the scenario");
        let stats_file = dir.join(format!("{label}-stats.csv"));
        let error_file = dir.join(format!("{label}-errors.log"));
        let screen = std::fs::File::create(dir.join(format!("{label}-screen.log")))
            .expect("create SIPp screen file");
        let child = Command::new("sipp")
            .arg(format!("127.0.0.1:{rivr_port}"))
            .arg("-sf")
            .arg(&scenario)
            .args(["-s", spec.number, "-i", spec.ip, "-mi", spec.ip])
            .args(["-p", &free_port(spec.ip).to_string()])
            .args(["-mp", &free_media_port(spec.ip).to_string()])
            .args(["-t", spec.transport])
            .args(["-m", &spec.calls.to_string()])
            .args(["-r", &spec.rate.to_string(), "-rp", "1000"])
            .args(["-l", &(spec.calls).to_string()])
            .args(["-max_socket", "1024"])
            .args(["-timeout", "120s", "-timeout_error", "-nostdin"])
            .args(["-trace_stat", "-fd", "1"])
            .arg("-stf")
            .arg(&stats_file)
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&error_file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(screen)
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        SippLoad {
            child: Some(child),
            stats_file,
            error_file,
            started: Instant::now(),
        }
    }

    /// Waits for SIPp to end (killing it after `timeout`) and reads its
    /// counters.
    pub fn wait(&mut self, timeout: Duration) -> LoadResult {
        let deadline = Instant::now() + timeout;
        let mut result = LoadResult::default();
        if let Some(child) = self.child.as_mut() {
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    result.status = Some(status);
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.child = None;
        }
        result.ended = Some(Instant::now());
        let stats = std::fs::read_to_string(&self.stats_file).unwrap_or_default();
        result.created = stat(&stats, "OutgoingCall(C)");
        result.successful = stat(&stats, "SuccessfulCall(C)");
        result.failed = stat(&stats, "FailedCall(C)");
        result
    }

    /// SIPp's counters once it has ended by itself; `None` while it runs.
    pub fn try_result(&mut self) -> Option<LoadResult> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        let mut result = self.wait(Duration::ZERO);
        result.status = Some(status);
        Some(result)
    }

    /// The first lines of SIPp's error log, for assertion text.
    pub fn errors(&self) -> String {
        let log = std::fs::read_to_string(&self.error_file).unwrap_or_default();
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for SippLoad {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of `column` in the last row of SIPp's `;`-separated stats.
pub fn stat(csv: &str, column: &str) -> u64 {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return 0 };
    let Some(i) = header.split(';').position(|c| c == column) else {
        return 0;
    };
    lines
        .next_back()
        .and_then(|row| row.split(';').nth(i))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn stats_columns_are_read_from_the_last_row() {
    let csv = "StartTime;OutgoingCall(C);SuccessfulCall(C);FailedCall(C);\n\
               x;10;9;1;\n\
               y;440;439;1;\n";
    assert_eq!(stat(csv, "OutgoingCall(C)"), 440);
    assert_eq!(stat(csv, "SuccessfulCall(C)"), 439);
    assert_eq!(stat(csv, "FailedCall(C)"), 1);
    assert_eq!(stat(csv, "Missing"), 0);
}
