//! libpri as the other side of rivr's ISDN PRI tests: `tests/pri/libpri_peer.c`
//! (the "carrier"; its header comment and `tests/pri/README.md` are the
//! manual) compiled with `cc … -lpri` once per source version, started per
//! span with a temp dir of socket paths, driven with one command per line
//! on stdin and read back as one event per line from stdout.
//!
//! A missing libpri-dev fails the test (the Makefile's `make deps`
//! installs it): a PRI test that silently skipped would look green.
//!
//! ```ignore
//! let dir = Scratch::new("pri-x");
//! let span = SpanPaths::in_dir(dir.path(), "span1");
//! let carrier = LibpriPeer::start(dir.path(), "carrier", &span, &SpanOptions::e1());
//! // … start rivr with `dchannel = span.dchannel`, `bchannels = span.bchannels` …
//! carrier.wait_name("up", Duration::from_secs(10));
//! let n = carrier.call("5550100", "200", None);
//! carrier.wait_call(n, "connect", Duration::from_secs(5));
//! ```

use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rivr::media::g711::{alaw_to_linear, ulaw_to_linear, Law};

use super::server::repo;

/// How long the peer may take to bind its sockets and print `ready`.
const READY: Duration = Duration::from_secs(10);

/// Unix socket paths hold at most 107 bytes.
const MAX_SOCKET_PATH: usize = 100;

/// The compiled peer: built on first use with `cc` (or `$CC`) into
/// `CARGO_TARGET_TMPDIR/libpri-peer/<hash of the source>/`, so a test
/// binary compiles it at most once and an unchanged source not at all.
/// Panics with what to install when libpri-dev (or a C compiler) is
/// missing.
pub fn peer_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(compile_peer)
}

fn compile_peer() -> PathBuf {
    let source = repo().join("tests/pri/libpri_peer.c");
    let text = std::fs::read(&source).expect("read tests/pri/libpri_peer.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let flags = ["-O2", "-Wall", "-Wextra"];
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    cc.hash(&mut h);
    flags.hash(&mut h);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("libpri-peer")
        .join(format!("{:016x}", h.finish()));
    let bin = dir.join("libpri_peer");
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&dir).expect("create the libpri peer's build dir");
    // Another test binary may compile at the same time: each writes its
    // own file and renames it into place.
    let tmp = dir.join(format!("libpri_peer.{}.tmp", std::process::id()));
    let out = Command::new(&cc)
        .args(flags)
        .arg("-o")
        .arg(&tmp)
        .arg(&source)
        .args(["-lpri", "-lm"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler `{cc}` to build the libpri peer: {e} (install gcc)")
        });
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("libpri.h") || stderr.contains("-lpri") {
            "libpri-dev is not installed: `make deps` installs it (apt-get install libpri-dev)"
        } else {
            "tests/pri/libpri_peer.c does not compile"
        };
        panic!("{hint}\n--- {cc} ---\n{stderr}");
    }
    std::fs::rename(&tmp, &bin).expect("move the libpri peer into place");
    bin
}

/// Which end of the link the peer is (libpri's `PRI_NETWORK` / `PRI_CPE`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    Network,
    User,
}

/// The Q.931 variant (`PRI_SWITCH_EUROISDN_E1` / `PRI_SWITCH_NI2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Switch {
    EuroIsdn,
    Ni2,
}

/// How to run one span.
#[derive(Clone, Debug)]
pub struct SpanOptions {
    pub side: Side,
    pub switch: Switch,
    pub law: Law,
    /// Timeslots, e.g. `1-15,17-31`.
    pub channels: String,
    /// Connect to the paths (as rivr does) instead of listening.
    pub connect: bool,
    /// Incoming SETUPs get CALL PROCEEDING only; the test answers.
    pub manual: bool,
    /// The peer exits by itself after this long.
    pub max_seconds: u32,
    /// What answered calls send (default 1000 Hz).
    pub tone_hz: Option<u32>,
    /// A raw G.711 file (the span's law) to loop instead of the tone.
    pub play: Option<PathBuf>,
    /// Record every call to `DIR/call-N.alaw|ulaw`.
    pub record_dir: Option<PathBuf>,
    pub answer_ms: Option<u32>,
    pub clear_after_ms: Option<u32>,
    pub no_answer_ms: Option<u32>,
    /// libpri timers by name (`T200`, `T203`, `T309`, `N200`, …), in ms.
    pub timers: Vec<(&'static str, u32)>,
    /// `pri_set_debug` mask; libpri writes to the peer's stderr file.
    pub debug: u32,
}

impl SpanOptions {
    /// An E1 carrier: network side, EuroISDN, A-law, timeslots 1-15,17-31.
    pub fn e1() -> SpanOptions {
        SpanOptions {
            side: Side::Network,
            switch: Switch::EuroIsdn,
            law: Law::Alaw,
            channels: "1-15,17-31".to_owned(),
            connect: false,
            manual: false,
            max_seconds: 120,
            tone_hz: None,
            play: None,
            record_dir: None,
            answer_ms: None,
            clear_after_ms: None,
            no_answer_ms: None,
            timers: Vec::new(),
            debug: 0,
        }
    }

    /// A T1 carrier: network side, NI-2, µ-law, channels 1-23.
    pub fn t1() -> SpanOptions {
        SpanOptions {
            switch: Switch::Ni2,
            law: Law::Ulaw,
            channels: "1-23".to_owned(),
            ..SpanOptions::e1()
        }
    }

    /// The same span seen from the user side, connecting (a stand-in for
    /// rivr when two peers run back to back).
    pub fn user_connecting(mut self) -> SpanOptions {
        self.side = Side::User;
        self.connect = true;
        self
    }

    fn args(&self, paths: &SpanPaths) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--dchannel".into(),
            paths.dchannel.display().to_string(),
            "--bchannels".into(),
            paths.bchannels.clone(),
            "--switch".into(),
            match self.switch {
                Switch::EuroIsdn => "euroisdn",
                Switch::Ni2 => "ni2",
            }
            .into(),
            "--side".into(),
            match self.side {
                Side::Network => "network",
                Side::User => "user",
            }
            .into(),
            "--law".into(),
            match self.law {
                Law::Alaw => "alaw",
                Law::Ulaw => "ulaw",
            }
            .into(),
            "--channels".into(),
            self.channels.clone(),
            "--max-seconds".into(),
            self.max_seconds.to_string(),
            "--debug".into(),
            self.debug.to_string(),
        ];
        if self.connect {
            a.push("--connect".into());
        }
        if self.manual {
            a.push("--manual".into());
        }
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(name.into());
                a.push(v);
            }
        };
        opt("--tone-hz", self.tone_hz.map(|v| v.to_string()));
        opt(
            "--play",
            self.play.as_ref().map(|p| p.display().to_string()),
        );
        opt(
            "--record-dir",
            self.record_dir.as_ref().map(|p| p.display().to_string()),
        );
        opt("--answer-ms", self.answer_ms.map(|v| v.to_string()));
        opt(
            "--clear-after-ms",
            self.clear_after_ms.map(|v| v.to_string()),
        );
        opt("--no-answer-ms", self.no_answer_ms.map(|v| v.to_string()));
        for (name, ms) in &self.timers {
            a.push("--timer".into());
            a.push(format!("{name}={ms}"));
        }
        a
    }
}

/// A span's socket paths, as rivr's config names them: `dchannel` and
/// `bchannels` with `{n}` for the timeslot.
#[derive(Clone, Debug)]
pub struct SpanPaths {
    pub dchannel: PathBuf,
    pub bchannels: String,
}

impl SpanPaths {
    /// `DIR/NAME/d` and `DIR/NAME/b{n}`; creates `DIR/NAME`.
    pub fn in_dir(dir: &Path, name: &str) -> SpanPaths {
        let base = dir.join(name);
        std::fs::create_dir_all(&base).expect("create the span's socket dir");
        let paths = SpanPaths {
            dchannel: base.join("d"),
            bchannels: format!("{}/b{{n}}", base.display()),
        };
        assert!(
            paths.bchannel(31).as_os_str().len() < MAX_SOCKET_PATH,
            "socket paths under {} are too long for a Unix socket",
            base.display()
        );
        paths
    }

    /// Timeslot `ts`'s B-channel path.
    pub fn bchannel(&self, ts: u8) -> PathBuf {
        PathBuf::from(self.bchannels.replace("{n}", &ts.to_string()))
    }
}

/// One line the peer printed: `<ms> <name> key=value …`.
#[derive(Clone, Debug)]
pub struct Event {
    /// Milliseconds since the peer started (its monotonic clock).
    pub ms: u64,
    pub name: String,
    pub fields: Vec<(String, String)>,
    pub line: String,
}

impl Event {
    fn parse(line: &str) -> Option<Event> {
        let mut words = line.split_whitespace();
        let ms = words.next()?.parse().ok()?;
        let name = words.next()?.to_owned();
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Event {
            ms,
            name,
            fields,
            line: line.to_owned(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn num(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }

    /// The event's `call=`.
    pub fn call(&self) -> Option<u32> {
        self.get("call")?.parse().ok()
    }

    /// The event's `cause=`.
    pub fn cause(&self) -> Option<u8> {
        self.get("cause")?.parse().ok()
    }
}

#[derive(Default)]
struct Log {
    events: Vec<Event>,
    /// The peer closed its stdout (exited).
    closed: bool,
}

type Shared = Arc<(Mutex<Log>, Condvar)>;

/// A running libpri peer (one span).
pub struct LibpriPeer {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    log: Shared,
    label: String,
    stderr_file: PathBuf,
    pub law: Law,
}

impl LibpriPeer {
    /// Starts a peer on `paths` with `opts` (its stderr, libpri's own
    /// messages included, goes to `DIR/libpri-LABEL.stderr`) and waits
    /// for `ready`: listening, the socket paths exist when this returns.
    pub fn start(dir: &Path, label: &str, paths: &SpanPaths, opts: &SpanOptions) -> LibpriPeer {
        let stderr_file = dir.join(format!("libpri-{label}.stderr"));
        // RIVR_LIBPRI_WRAPPER="valgrind --error-exitcode=9 --log-file=…"
        // runs the peer under a checker.
        let wrapper = std::env::var("RIVR_LIBPRI_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(peer_binary());
                c
            }
            None => Command::new(peer_binary()),
        };
        let mut child = cmd
            .args(opts.args(paths))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_file).expect("create the peer's stderr file"))
            .spawn()
            .expect("start the libpri peer");
        let stdout = child.stdout.take().expect("the peer's stdout");
        let stdin = child.stdin.take();
        let log: Shared = Arc::default();
        let reader_log = Arc::clone(&log);
        std::thread::Builder::new()
            .name("libpri-peer-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(e) = Event::parse(&line) {
                        let (lock, cv) = &*reader_log;
                        lock.lock().unwrap().events.push(e);
                        cv.notify_all();
                    }
                }
                let (lock, cv) = &*reader_log;
                lock.lock().unwrap().closed = true;
                cv.notify_all();
            })
            .expect("spawn the peer's reader");
        let peer = LibpriPeer {
            child: Some(child),
            stdin,
            log,
            label: label.to_owned(),
            stderr_file,
            law: opts.law,
        };
        peer.wait_name("ready", READY);
        peer
    }

    /// Sends one command line.
    pub fn send(&self, command: &str) {
        let mut stdin = self.stdin.as_ref().expect("the peer's stdin is open");
        writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("libpri peer {} took no command: {e}", self.label));
    }

    /// How many events so far: pass to [`LibpriPeer::wait_from`] to wait
    /// only for what comes after now.
    pub fn mark(&self) -> usize {
        self.log.0.lock().unwrap().events.len()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.log.0.lock().unwrap().events.clone()
    }

    /// The first event from index `from` on that `pred` accepts, waiting
    /// up to `timeout`; `None` on timeout or once the peer exited.
    pub fn try_wait_from(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            if let Some(e) = log.events.iter().skip(from).find(|e| pred(e)) {
                return Some(e.clone());
            }
            let now = Instant::now();
            if log.closed || now >= deadline {
                return None;
            }
            log = cv.wait_timeout(log, deadline - now).unwrap().0;
        }
    }

    /// As [`LibpriPeer::try_wait_from`], panicking with the peer's output
    /// when nothing matched; `what` names the wait in the message.
    pub fn wait_from(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        self.try_wait_from(from, timeout, pred).unwrap_or_else(|| {
            panic!(
                "libpri peer {}: no `{what}` within {timeout:?}\n{}",
                self.label,
                self.diagnostics()
            )
        })
    }

    /// The first `count` events from index `from` on that `pred` accepts,
    /// in order, panicking with the peer's output if fewer come within
    /// `timeout`.
    pub fn wait_count(
        &self,
        from: usize,
        count: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            let found: Vec<Event> = log
                .events
                .iter()
                .skip(from)
                .filter(|e| pred(e))
                .take(count)
                .cloned()
                .collect();
            let now = Instant::now();
            if found.len() == count {
                return found;
            }
            if log.closed || now >= deadline {
                drop(log);
                panic!(
                    "libpri peer {}: {} of {count} `{what}` within {timeout:?}\n{}",
                    self.label,
                    found.len(),
                    self.diagnostics()
                );
            }
            log = cv.wait_timeout(log, deadline - now).unwrap().0;
        }
    }

    /// The first event named `name` (since the start).
    pub fn wait_name(&self, name: &str, timeout: Duration) -> Event {
        self.wait_from(0, timeout, name, |e| e.name == name)
    }

    /// The first event named `name` for call `call`.
    pub fn wait_call(&self, call: u32, name: &str, timeout: Duration) -> Event {
        self.wait_from(0, timeout, &format!("{name} call={call}"), |e| {
            e.name == name && e.call() == Some(call)
        })
    }

    /// Whether an event named `name` for `call` has been seen.
    pub fn saw(&self, call: u32, name: &str) -> bool {
        self.events()
            .iter()
            .any(|e| e.name == name && e.call() == Some(call))
    }

    /// Places a call (`call CALLED CALLING [CH]`) and returns its number.
    pub fn call(&self, called: &str, calling: &str, channel: Option<u8>) -> u32 {
        let from = self.mark();
        match channel {
            Some(ch) => self.send(&format!("call {called} {calling} {ch}")),
            None => self.send(&format!("call {called} {calling}")),
        }
        let e = self.wait_from(from, Duration::from_secs(5), "dialing", |e| {
            e.name == "dialing" || (e.name == "error" && e.get("cmd") == Some("call"))
        });
        assert_eq!(e.name, "dialing", "the peer refused the call: {}", e.line);
        e.call().expect("dialing has call=")
    }

    /// Clears `call` with `cause`.
    pub fn hangup(&self, call: u32, cause: u8) {
        self.send(&format!("hangup {call} {cause}"));
    }

    /// Waits for `call`'s `end` event (the call is gone on this side).
    pub fn wait_end(&self, call: u32, timeout: Duration) -> Event {
        self.wait_call(call, "end", timeout)
    }

    /// libpri's messages and anything else the peer wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// The peer's events and the tail of its stderr, for assertion text.
    pub fn diagnostics(&self) -> String {
        let events: Vec<String> = self.events().into_iter().map(|e| e.line).collect();
        let stderr = self.stderr();
        let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
        format!(
            "--- libpri peer {} events ---\n{}\n--- stderr (tail) ---\n{}",
            self.label,
            events.join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// The frames received so far on `call` (the `rx=` of its `call-state`).
    pub fn rx_frames(&self, call: u32) -> i64 {
        let from = self.mark();
        self.send("calls");
        self.send("ping");
        self.wait_from(from, Duration::from_secs(5), "pong", |e| e.name == "pong");
        self.events()[from..]
            .iter()
            .find(|e| e.name == "call-state" && e.call() == Some(call))
            .and_then(|e| e.num("rx"))
            .unwrap_or_else(|| panic!("libpri peer {}: no call {call}", self.label))
    }

    /// Waits until `call` has received `frames` more frames than now
    /// (media runs on its own clock: a loaded machine delays it).
    pub fn wait_rx_more(&self, call: u32, frames: i64, timeout: Duration) {
        let target = self.rx_frames(call) + frames;
        let deadline = Instant::now() + timeout;
        loop {
            let rx = self.rx_frames(call);
            if rx >= target {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "libpri peer {}: call {call} at {rx} frames, not {target}, after {timeout:?}",
                self.label
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `quit` and waits for the peer to exit; its exit status.
    pub fn quit(mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = self.stdin.as_ref().map(|mut s| writeln!(s, "quit"));
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for LibpriPeer {
    fn drop(&mut self) {
        // EOF on stdin makes the peer exit by itself (so a checker run by
        // RIVR_LIBPRI_WRAPPER can report); killed if it has not in 2 s.
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

/// A recording the peer made (raw G.711 in `law`), decoded with rivr's
/// G.191-exact tables.
pub fn read_recording(path: &Path, law: Law) -> Vec<f32> {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("read the peer's recording {}: {e}", path.display()));
    bytes
        .iter()
        .map(|&b| {
            f32::from(match law {
                Law::Alaw => alaw_to_linear(b),
                Law::Ulaw => ulaw_to_linear(b),
            })
        })
        .collect()
}
