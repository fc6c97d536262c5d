//! A `rivr serve` child process on a temp config: started and waited for
//! (its stdout ready line gives the SIP port), stderr captured to a file,
//! CDRs read back as JSON, killed on drop. A crash test can SIGKILL it and
//! start it again in the same dir, on the same config and SIP port
//! ([`Rivr::kill9`], [`Rivr::restart`]); each run's stderr has its own file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::scratch::{rtp_range, Scratch};

/// The CDRs of a CDR file (`[cdr] file`), one JSON object a line; a last
/// line not yet ended by its newline is still being written and is left
/// for the next read. A complete line that is not JSON fails the test.
pub fn cdrs_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("CDR line {l:?}: {e}")))
        .collect()
}

/// Waits for the CDR, in the CDR file `path`, of the leg whose SIP Call-ID
/// is `call_id`; `context` is added to the failure (the server's stderr).
pub fn wait_cdr_in(
    path: &Path,
    call_id: &str,
    timeout: Duration,
    context: impl Fn() -> String,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(cdr) = cdrs_in(path)
            .into_iter()
            .find(|c| c["transport_id"] == call_id)
        {
            return cdr;
        }
        assert!(
            Instant::now() < deadline,
            "no CDR for call {call_id} within {timeout:?}; CDRs: {:?}\n{}",
            cdrs_in(path),
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long rivr may take to decode its prompts and bind (a debug build on
/// a loaded 2-core machine).
const STARTUP: Duration = Duration::from_secs(90);

/// The repository root (prompts/, scripts/).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What to start rivr with; the menu (1000) and survey (2000) routes are
/// always there.
pub struct RivrConfig {
    /// Test-owned scripts: (number, file name, source), written to the
    /// temp dir.
    pub scripts: Vec<(String, String, String)>,
    /// RTP ports to reserve.
    pub rtp_ports: u16,
    /// Extra lines for the `[script]` table.
    pub script_table: String,
    /// Extra lines for the `[rtp]` table (after `ports`).
    pub rtp_table: String,
    /// Extra lines for the `[sip]` table (e.g. `trusted`).
    pub sip_table: String,
    /// Starts rivr under `prlimit --nofile=N:N` (soft and hard), so it
    /// cannot raise its descriptor limit.
    pub nofile: Option<u64>,
    /// More tables appended to the config (e.g. `[store]`, `[smpp]`).
    pub extra_tables: String,
    /// More arguments after `serve --config FILE` (e.g. `--log-format json`).
    pub serve_args: Vec<String>,
}

impl Default for RivrConfig {
    fn default() -> Self {
        RivrConfig {
            scripts: Vec::new(),
            rtp_ports: 40,
            script_table: String::new(),
            rtp_table: String::new(),
            sip_table: String::new(),
            nofile: None,
            extra_tables: String::new(),
            serve_args: Vec::new(),
        }
    }
}

impl RivrConfig {
    /// Routes `number` to a script with `source`, stored as `file`.
    pub fn script(mut self, number: &str, file: &str, source: &str) -> Self {
        self.scripts
            .push((number.to_owned(), file.to_owned(), source.to_owned()));
        self
    }
}

pub struct Rivr {
    child: Option<Child>,
    pub sip_port: u16,
    /// The HTTP API's address, when the config has `[http]` (from the
    /// line rivr prints before its ready line).
    pub http: Option<std::net::SocketAddr>,
    pub rtp_lo: u16,
    pub rtp_hi: u16,
    pub dir: Scratch,
    /// One stderr file per run, the first one's first.
    stderr_paths: Vec<PathBuf>,
    cdr_path: PathBuf,
    config_path: PathBuf,
    label: String,
    nofile: Option<u64>,
    serve_args: Vec<String>,
    /// The command line [`Rivr::start_with`] was given, instead of
    /// `rivr serve --config FILE`.
    launch: Option<Launch>,
}

/// How [`Rivr::start_with`] starts rivr: a config file the caller wrote
/// and a whole command line (e.g. deploy/rivr/node.toml and the `ExecStart`
/// of deploy/systemd/rivr@.service, their example values replaced).
pub struct Launch {
    /// The config file, in the node's dir.
    pub config: PathBuf,
    /// The program (rivr) and its arguments.
    pub command: Vec<String>,
    /// Environment variables set for it (the unit's `Environment=`).
    pub env: Vec<(String, String)>,
}

/// The binary under test: `RIVR_BIN` (the Makefile points it at the release
/// build) or cargo's debug build.
pub fn binary() -> PathBuf {
    std::env::var_os("RIVR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rivr")))
}

impl Rivr {
    /// Writes the config into a fresh temp dir, starts rivr and waits for
    /// its ready line.
    pub fn start(label: &str, cfg: RivrConfig) -> Rivr {
        super::failure::remember_failures();
        let dir = Scratch::new(label);
        let (rtp_lo, rtp_hi) = rtp_range(cfg.rtp_ports);
        let cdr_path = dir.join("cdr.jsonl");
        let stderr_path = dir.join("rivr.stderr");
        let mut toml = format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\n{sip_table}\n\
             [rtp]\nports = \"{rtp_lo}-{rtp_hi}\"\n{rtp_table}\n\
             [media]\nprompts = {prompts:?}\n\
             [cdr]\npath = {cdr:?}\n\
             [script]\n{script_table}\n\
             [[route]]\nnumber = \"1000\"\nscript = {menu:?}\n\
             [[route]]\nnumber = \"2000\"\nscript = {survey:?}\n",
            prompts = repo().join("prompts").display().to_string(),
            cdr = cdr_path.display().to_string(),
            script_table = cfg.script_table,
            rtp_table = cfg.rtp_table,
            sip_table = cfg.sip_table,
            menu = repo().join("scripts/main_menu.rhai").display().to_string(),
            survey = repo().join("scripts/survey.rhai").display().to_string(),
        );
        for (number, file, source) in &cfg.scripts {
            let path = dir.join(file);
            std::fs::write(&path, source).expect("write a test script");
            toml.push_str(&format!(
                "[[route]]\nnumber = {number:?}\nscript = {:?}\n",
                path.display().to_string()
            ));
        }
        toml.push_str(&cfg.extra_tables);
        let config_path = dir.join("rivr.toml");
        std::fs::write(&config_path, toml).expect("write rivr.toml");

        let mut rivr = Rivr {
            child: None,
            sip_port: 0,
            http: None,
            rtp_lo,
            rtp_hi,
            dir,
            stderr_paths: vec![stderr_path],
            cdr_path,
            config_path,
            label: label.to_owned(),
            nofile: cfg.nofile,
            serve_args: cfg.serve_args,
            launch: None,
        };
        rivr.spawn();
        rivr
    }

    /// rivr on a config and command line the caller makes: `setup` gets the
    /// node's new dir and its RTP port range, writes the config there and
    /// returns how to start rivr. The config must write its CDRs to the
    /// dir's `cdr.jsonl` and listen on `"127.0.0.1:0"` (so that
    /// [`Rivr::restart`] can pin the port it got). Waits for the ready line.
    pub fn start_with(
        label: &str,
        rtp_ports: u16,
        setup: impl FnOnce(&Path, (u16, u16)) -> Launch,
    ) -> Rivr {
        super::failure::remember_failures();
        let dir = Scratch::new(label);
        let (rtp_lo, rtp_hi) = rtp_range(rtp_ports);
        let launch = setup(dir.path(), (rtp_lo, rtp_hi));
        assert!(!launch.command.is_empty(), "start_with: an empty command");
        let mut rivr = Rivr {
            child: None,
            sip_port: 0,
            http: None,
            rtp_lo,
            rtp_hi,
            stderr_paths: vec![dir.join("rivr.stderr")],
            cdr_path: dir.join("cdr.jsonl"),
            config_path: launch.config.clone(),
            dir,
            label: label.to_owned(),
            nofile: None,
            serve_args: Vec::new(),
            launch: Some(launch),
        };
        rivr.spawn();
        rivr
    }

    /// Starts `rivr serve` on the config written by [`Rivr::start`], its
    /// stderr to the newest of `stderr_paths`, and waits for its ready
    /// line (which sets `sip_port`).
    fn spawn(&mut self) {
        let stderr_path = self.stderr_paths.last().expect("a stderr file");
        let stderr = std::fs::File::create(stderr_path).expect("create rivr.stderr");
        let mut command = match (&self.launch, self.nofile) {
            (Some(launch), _) => {
                let mut c = Command::new(&launch.command[0]);
                c.args(&launch.command[1..])
                    .envs(launch.env.iter().map(|(k, v)| (k, v)));
                c
            }
            // prlimit sets its own limits and then execs rivr (same pid).
            (None, Some(n)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(binary());
                c
            }
            (None, None) => Command::new(binary()),
        };
        if self.launch.is_none() {
            command
                .arg("serve")
                .arg("--config")
                .arg(&self.config_path)
                .args(&self.serve_args);
        }
        let mut child = command
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining after the ready line so rivr never blocks on a
            // full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .strip_prefix("rivr HTTP API on http://")
                        .and_then(|a| a.trim_end_matches('/').parse().ok())
                    {
                        self.http = Some(addr);
                    }
                    if let Some(port) = parse_ready_line(&line) {
                        self.sip_port = port;
                        eprintln!("[{}] {line}", self.label);
                        return;
                    }
                }
                Err(_) => panic!(
                    "rivr printed no ready line within {STARTUP:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// SIGKILL (no shutdown of any kind, as in a crash or an OOM kill),
    /// then reaps the process. `None` if it was not running.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // `Child::kill` is SIGKILL on Unix.
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts rivr again after [`Rivr::kill9`] (or an exit): the same dir,
    /// config and store, and the same SIP port, since the calls a dead
    /// process placed (the carrier's answers, the dialogs it stored) point
    /// at it. The first run's `listen` port 0 is pinned to the port it got.
    /// Waits for the ready line; the new run's stderr goes to a new file.
    pub fn restart(&mut self) {
        assert!(
            !self.is_running(),
            "restart: the previous rivr is still running"
        );
        let port = self.sip_port;
        assert_ne!(port, 0, "restart: the first run gave no SIP port");
        let toml = std::fs::read_to_string(&self.config_path).expect("read rivr.toml");
        let pinned = toml.replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
            1,
        );
        std::fs::write(&self.config_path, pinned).expect("write rivr.toml");
        let n = self.stderr_paths.len() + 1;
        let next = self.dir.join(&format!("rivr.{n}.stderr"));
        self.stderr_paths.push(next);
        self.spawn();
        assert_eq!(
            self.sip_port, port,
            "the restarted rivr listens on another SIP port"
        );
    }

    /// How many times rivr was started (1 + restarts).
    pub fn runs(&self) -> usize {
        self.stderr_paths.len()
    }

    /// Everything rivr logged so far: with more than one run, every run's
    /// stderr in order, each after a `=== rivr run N (file) ===` line.
    pub fn stderr(&self) -> String {
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        if let [only] = self.stderr_paths.as_slice() {
            return read(only);
        }
        let mut out = String::new();
        for (i, p) in self.stderr_paths.iter().enumerate() {
            out.push_str(&format!("=== rivr run {} ({}) ===\n", i + 1, p.display()));
            out.push_str(&read(p));
        }
        out
    }

    /// `rivr ARGS --config <its rivr.toml>` (a command beside the server:
    /// `sms results`, `dnc list`, …), which must succeed; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(binary())
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .output()
            .unwrap_or_else(|e| panic!("rivr {args:?}: {e}"));
        assert!(
            out.status.success(),
            "rivr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until rivr's stderr has a line for which `pred` holds.
    pub fn wait_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stderr().lines().find(|l| pred(l)) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The CDRs written so far, one JSON object each.
    pub fn cdrs(&self) -> Vec<Value> {
        cdrs_in(&self.cdr_path)
    }

    /// Waits for the first leg's CDR of the call rivr knows as `id` (its
    /// `call_id`, as the API and scripts name it).
    pub fn wait_cdr_of(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(cdr) = self
                .cdrs()
                .into_iter()
                .find(|c| c["call_id"] == id && c["leg"] == 0)
            {
                return cdr;
            }
            assert!(
                Instant::now() < deadline,
                "no CDR for call {id} within {timeout:?}; CDRs: {:?}\nrivr stderr:\n{}",
                self.cdrs(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the CDR of the leg whose SIP Call-ID is `call_id`.
    pub fn wait_cdr(&self, call_id: &str, timeout: Duration) -> Value {
        wait_cdr_in(&self.cdr_path, call_id, timeout, || {
            format!("rivr stderr:\n{}", self.stderr())
        })
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal("TERM");
        self.wait_exit(timeout)
    }

    /// Sends signal `name` ("TERM", "INT") to rivr, if it runs.
    pub fn signal(&self, name: &str) {
        if let Some(child) = self.child.as_ref() {
            let status = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(child.id().to_string())
                .status();
            assert!(
                status.as_ref().is_ok_and(|s| s.success()),
                "kill -{name}: {status:?}"
            );
        }
    }

    /// Waits up to `timeout` for rivr to exit; its status (`None`: still
    /// running, or it was not running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process has not exited (it is reaped if it has).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id, for /proc figures.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Rivr {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // The tail of every run's stderr (a crash test has several).
            let runs = self.stderr_paths.len();
            let lines = (120 / runs).clamp(10, 60);
            for (i, p) in self.stderr_paths.iter().enumerate() {
                let log = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(lines).collect();
                if runs > 1 {
                    eprintln!(
                        "--- rivr run {} of {runs} stderr ({}, last {} lines) ---",
                        i + 1,
                        p.display(),
                        tail.len()
                    );
                } else {
                    eprintln!("--- rivr stderr (last {} lines) ---", tail.len());
                }
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
            super::failure::repeat_failure();
        }
    }
}

/// `rivr 0.1.0 listening on udp+tcp 127.0.0.1:PORT (rtp …` → PORT.
fn parse_ready_line(line: &str) -> Option<u16> {
    let rest = line.split("listening on udp+tcp ").nth(1)?;
    let addr = rest.split_whitespace().next()?;
    addr.rsplit(':').next()?.parse().ok()
}

#[test]
fn ready_line_gives_the_port() {
    assert_eq!(
        parse_ready_line(
            "rivr 0.1.0 listening on udp+tcp 127.0.0.1:40123 (rtp 20000-20039); routes: 1000 -> a"
        ),
        Some(40123)
    );
    assert_eq!(parse_ready_line("something else"), None);
}
