//! Inbound calls spread over three `rivr serve` nodes by Kamailio's
//! `dispatcher` (issue 15 parts 5 and 6; docs/scaling.md, "Inbound across
//! nodes"), everything started the way deploy/ starts it, on 127.0.0.1:
//!
//! - Kamailio: the `ExecStart` of deploy/systemd/rivr-kamailio.service
//!   with its variables set by the test (listen address, probing every
//!   `PING_S` s with threshold `THRESHOLD`, 4 children) and the installed
//!   paths replaced: deploy/kamailio/kamailio.cfg as it is,
//!   deploy/kamailio/dispatcher.list with the nodes' addresses for its
//!   example ones, the runtime dir in the test's.
//! - Each node: deploy/rivr/node.toml with its example values replaced
//!   (node id `rivr-N`, one shared PostgreSQL database from
//!   tests/pg/start-pg.sh, its own dir as the state folder, port 0) plus
//!   the test's two routes, run by the `ExecStart` of
//!   deploy/systemd/rivr@.service for instance `rivr-N` (the binary under
//!   test for /usr/local/bin/rivr) with the unit's environment.
//! - `systemd-analyze verify` accepts the two units (a test of its own).
//!
//! SIPp places short IVR calls through Kamailio
//! (tests/sipp/uac_via_proxy.xml: INVITE, ACK and BYE along the route set
//! Kamailio records; the node answers, plays a prompt and hangs up).
//!
//! - Phase 1, 300 calls: every one answered (SIPp's counters), each node
//!   took 100 ± 20 % (its own CDR file).
//! - Phase 2, 300 more: one node gets SIGTERM mid-run (rivr's drain:
//!   OPTIONS and new INVITEs 503). Every call is still answered; Kamailio
//!   dispatches no INVITE to the draining node later than the probing
//!   bound after the signal (Kamailio's log, stamped per INVITE), the
//!   node's CDRs hold no call that started after that bound, and the two
//!   others take its share.
//! - Phase 3: the node starts again; the next probe it answers 200 puts it
//!   back.
//! - Phase 4: another node is filled to its `[limits] max_calls` by calls
//!   placed to it directly: its probes get 503, Kamailio takes it out by
//!   probing alone (no INVITE of its refused), calls placed through
//!   Kamailio meanwhile all go to the others, and it is put back once its
//!   calls end.

mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::deploy;
use common::server::{binary, repo, Launch, Rivr};
use common::sipp_load::{free_port, stat};

const NODES: usize = 3;
const CALLS: u32 = 300;
/// New calls per second, through Kamailio.
const RATE: u32 = 30;
/// `ds_ping_interval` in the test (the deploy default is 10 s).
const PING_S: u64 = 2;
/// `ds_probing_threshold` in the test (the deploy default is 2).
const THRESHOLD: u64 = 1;
/// The node drained in phase 2.
const DRAINED: usize = 1;
/// How long into phase 2 the node is drained (a third of its 10 s).
const DRAIN_AFTER: Duration = Duration::from_secs(3);
/// The number the calls dial: answer, a prompt, hang up.
const NUMBER: &str = "3000";
/// The number phase 4's calls held on one node dial: answer, wait.
const HOLD_NUMBER: &str = "4000";
/// The node filled in phase 4, and its `[limits] max_calls` (far above
/// the ~10 calls up at once it has in phases 1 and 2).
const FULL: usize = 0;
const FULL_MAX_CALLS: u32 = 25;
/// How long phase 4's callers hold their calls.
const HOLD_MS: u64 = 10_000;
/// Calls placed through Kamailio while node `FULL` is full (at 15/s).
const PHASE4_CALLS: u32 = 30;

/// Seconds since the Unix epoch, as Kamailio's `$TV(Sn)` prints them.
fn epoch_s() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

/// Kamailio running deploy/kamailio/kamailio.cfg in the foreground.
struct Kamailio {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Kamailio {
    /// Runs the `ExecStart` of deploy/systemd/rivr-kamailio.service: its
    /// variables set by the test (listen address, probing), the installed
    /// paths replaced by the test's (deploy/kamailio/kamailio.cfg as it is,
    /// deploy/kamailio/dispatcher.list with the nodes' addresses for its
    /// example ones, the runtime dir in `dir`).
    fn start(dir: &Path, nodes: &[u16]) -> Kamailio {
        let version = Command::new("kamailio").arg("-v").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "kamailio is needed (Debian package `kamailio`, in the Makefile's APT_PKGS): {version:?}"
        );
        let examples = ["10.0.0.11:5060", "10.0.0.12:5060", "10.0.0.13:5060"];
        assert_eq!(nodes.len(), examples.len(), "one example line per node");
        let pairs: Vec<(&str, String)> = examples
            .iter()
            .zip(nodes)
            .map(|(e, p)| (*e, format!("127.0.0.1:{p}")))
            .collect();
        let list = dir.join("dispatcher.list");
        std::fs::write(&list, deploy::replaced("kamailio/dispatcher.list", &pairs))
            .expect("write dispatcher.list");
        let port = free_port("127.0.0.1");
        let unit = deploy::unit(
            "rivr-kamailio.service",
            None,
            &[
                ("LISTEN", format!("udp:127.0.0.1:{port}")),
                ("DS_PING_INTERVAL", PING_S.to_string()),
                ("DS_PROBING_THRESHOLD", THRESHOLD.to_string()),
                ("CHILDREN", "4".to_string()),
            ],
        );
        let argv = unit.command(&[
            (
                "/etc/rivr/kamailio.cfg",
                deploy::file("kamailio/kamailio.cfg").display().to_string(),
            ),
            ("/etc/rivr/dispatcher.list", list.display().to_string()),
            ("/run/kamailio", dir.display().to_string()),
        ]);
        let log = dir.join("kamailio.stderr");
        let stderr = std::fs::File::create(&log).expect("create kamailio's log");
        eprintln!("cluster_inbound: {}", argv.join(" "));
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(unit.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", argv[0]));
        let k = Kamailio {
            child: Some(child),
            port,
            log,
        };
        k.wait_ready();
        k
    }

    /// Until Kamailio answers its own OPTIONS health check.
    fn wait_ready(&self) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let me = sock.local_addr().expect("probe address");
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let ping = format!(
                "OPTIONS sip:127.0.0.1:{k} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ready{n}\r\n\
                 From: <sip:test@127.0.0.1>;tag=t\r\nTo: <sip:127.0.0.1:{k}>\r\nCall-ID: ready{n}\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                k = self.port,
                n = deadline.elapsed().as_nanos()
            );
            let _ = sock.send_to(ping.as_bytes(), ("127.0.0.1", self.port));
            if let Ok(n) = sock.recv(&mut buf) {
                if buf.get(..n).is_some_and(|b| b.starts_with(b"SIP/2.0 200")) {
                    return;
                }
            }
        }
        panic!(
            "kamailio did not answer OPTIONS within 15 s:\n{}",
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every INVITE Kamailio sent to a node: (epoch s, Call-ID, node port).
    fn dispatches(&self) -> Vec<(f64, String, u16)> {
        self.stderr()
            .lines()
            .filter_map(|l| {
                let rest = l.split("dispatch: INVITE ").nth(1)?;
                let mut w = rest.split_whitespace();
                let call_id = w.next()?.to_string();
                let _to = w.next()?;
                let port = w.next()?.rsplit(':').next()?.parse().ok()?;
                let _at = w.next()?;
                let t = w.next()?.parse().ok()?;
                Some((t, call_id, port))
            })
            .collect()
    }

    /// When Kamailio first took the node at `port` out (epoch s): a failed
    /// probe (`down`) or a refused INVITE (`refused`), whichever came
    /// first.
    fn first_down(&self, port: u16, since: f64) -> Option<f64> {
        let uri = format!("sip:127.0.0.1:{port}");
        self.first_event(&[format!("{uri} down at"), format!("{uri} refused")], since)
    }

    /// When a probe alone took the node at `port` out (epoch s): the
    /// `dst-down` line of a probe names the node (of a refused INVITE, the
    /// INVITE's Request-URI).
    fn first_probe_down(&self, port: u16, since: f64) -> Option<f64> {
        self.first_event(&[format!("node sip:127.0.0.1:{port} down at")], since)
    }

    /// When a probe answered 200 put the node at `port` back (epoch s).
    fn first_up(&self, port: u16, since: f64) -> Option<f64> {
        self.first_event(&[format!("node sip:127.0.0.1:{port} up at")], since)
    }

    /// The earliest time stamp (after " at ") not before `since` of the
    /// lines with one of `marks`.
    fn first_event(&self, marks: &[String], since: f64) -> Option<f64> {
        self.stderr()
            .lines()
            .filter(|l| marks.iter().any(|m| l.contains(m.as_str())))
            .filter_map(|l| {
                l.rsplit(" at ")
                    .next()?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .filter(|t| *t >= since)
            .reduce(f64::min)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: the main process stops its children too.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Node `i` as deploy/ runs one: deploy/rivr/node.toml with its example
/// values replaced (the node id `rivr-N`, the shared database, its own
/// dir for the state folder, 127.0.0.1 port 0, an RTP range of its own;
/// node `FULL` also gets `max_calls`) and the test's two routes added,
/// started by the `ExecStart` of deploy/systemd/rivr@.service for
/// instance `rivr-N` (the binary under test and the config's path put in).
fn node(i: usize, store: &str) -> Rivr {
    let id = format!("rivr-{}", i + 1);
    Rivr::start_with(&format!("cluster-inbound-{id}"), 120, |dir, (lo, hi)| {
        let mut toml = deploy::replaced(
            "rivr/node.toml",
            &[
                ("node_id = \"rivr-1\"", format!("node_id = \"{id}\"")),
                ("/var/lib/rivr/rivr-1", dir.display().to_string()),
                (
                    "postgres://rivr:SECRET@10.0.0.20:5432/rivr",
                    store.to_string(),
                ),
                ("10.0.0.11:5060", "127.0.0.1:0".to_string()),
                ("\"10.0.0.5\"", "\"127.0.0.1\"".to_string()),
                ("20000-29999", format!("{lo}-{hi}")),
                (
                    "/usr/share/rivr/prompts",
                    repo().join("prompts").display().to_string(),
                ),
                (
                    "/etc/rivr/scripts",
                    repo().join("scripts").display().to_string(),
                ),
                // Nobody answers there: the trunk is down, and unused.
                ("sip:sip.carrier.example", "sip:127.0.0.1:9".to_string()),
            ],
        );
        if i == FULL {
            assert!(
                toml.contains("\n[limits]\n"),
                "node.toml has a [limits] table"
            );
            toml = toml.replacen(
                "\n[limits]\n",
                &format!("\n[limits]\nmax_calls = {FULL_MAX_CALLS}\n"),
                1,
            );
        }
        // The test's numbers (an exact number comes before the "*" route).
        for (number, file, source) in [
            (
                NUMBER,
                "short.rhai",
                "answer();\nplay(\"goodbye\");\nhangup();\n",
            ),
            (HOLD_NUMBER, "hold.rhai", "answer();\nsleep(60000);\n"),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, source).expect("write a test script");
            toml.push_str(&format!(
                "\n[[route]]\nnumber = {number:?}\nscript = {:?}\n",
                path.display().to_string()
            ));
        }
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(&config, toml).expect("write the node's config");
        let unit = deploy::unit("rivr@.service", Some(&id), &[]);
        let installed = format!("/etc/rivr/{id}.toml");
        let command = unit.command(&[
            ("/usr/local/bin/rivr", binary().display().to_string()),
            (installed.as_str(), config.display().to_string()),
        ]);
        eprintln!("cluster_inbound: {}", command.join(" "));
        Launch {
            config,
            command,
            env: unit.env,
        }
    })
}

/// `FULL_MAX_CALLS` calls placed straight to the node at `port`, each
/// held `HOLD_MS` and hung up by SIPp (tests/sipp/uac_hangup.xml).
fn hold_calls(dir: &Path, port: u16) -> Holders {
    let n = FULL_MAX_CALLS.to_string();
    let child = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sf")
        .arg(repo().join("tests/sipp/uac_hangup.xml"))
        .args(["-s", HOLD_NUMBER, "-i", "127.0.0.1"])
        .args(["-p", &free_port("127.0.0.1").to_string()])
        .args(["-key", "rtp_port", "9", "-key", "codecs", "0"])
        .args(["-m", &n, "-l", &n, "-r", "50", "-rp", "1000"])
        .args(["-d", &HOLD_MS.to_string()])
        .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp");
    Holders(Some(child))
}

/// The SIPp holding calls on one node, killed if the test ends first.
struct Holders(Option<Child>);

impl Holders {
    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let mut child = self.0.take().expect("sipp started");
        child.wait()
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls to `HOLD_NUMBER` up on a node: started, not yet ended (its log).
fn held(rivr: &Rivr) -> usize {
    let log = rivr.stderr();
    let started: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("call started") && l.contains(&format!("number=\"{HOLD_NUMBER}\"")))
        .filter_map(|l| l.split(" id=").nth(1)?.split_whitespace().next())
        .collect();
    let ended = log
        .lines()
        .filter(|l| l.contains("call ended"))
        .filter_map(|l| l.split(" id=").nth(1)?.split_whitespace().next())
        .filter(|id| started.contains(id))
        .count();
    started.len() - ended
}

/// Answered inbound calls in a node's CDR file: (SIP Call-ID, start).
fn answered(rivr: &Rivr) -> Vec<(String, f64)> {
    rivr.cdrs()
        .into_iter()
        .filter(|c| c["leg"] == 0 && c["direction"] == "inbound" && c["answered"] == true)
        .map(|c| {
            let start = c["started_at"]
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp_micros() as f64 / 1e6)
                .unwrap_or_else(|| panic!("CDR without a readable started_at: {c}"));
            (c["transport_id"].as_str().unwrap_or("").to_string(), start)
        })
        .collect()
}

/// One SIPp placing calls through Kamailio.
struct Callers {
    child: Option<Child>,
    stats: PathBuf,
    errors: PathBuf,
    started: Instant,
}

/// SIPp's counters when it ended: (created, successful, failed).
type Counts = (u64, u64, u64);

impl Callers {
    fn place(dir: &Path, label: &str, kamailio: &Kamailio, calls: u32, rate: u32) -> Callers {
        let file = |s: &str| dir.join(format!("{label}-{s}"));
        let child = Command::new("sipp")
            .arg(format!("127.0.0.1:{}", kamailio.port))
            .arg("-sf")
            .arg(repo().join("tests/sipp/uac_via_proxy.xml"))
            .args(["-s", NUMBER, "-i", "127.0.0.1"])
            .args(["-p", &free_port("127.0.0.1").to_string()])
            .args(["-m", &calls.to_string(), "-l", &calls.to_string()])
            .args(["-r", &rate.to_string(), "-rp", "1000"])
            .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(file("stats.csv"))
            .args(["-trace_err", "-error_file"])
            .arg(file("errors.log"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        Callers {
            child: Some(child),
            stats: file("stats.csv"),
            errors: file("errors.log"),
            started: Instant::now(),
        }
    }

    /// Waits for SIPp's end; its counters and how long it ran.
    fn wait(&mut self) -> (Counts, Duration) {
        let mut child = self.child.take().expect("sipp started");
        let deadline = Instant::now() + Duration::from_secs(70);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let took = self.started.elapsed();
        let csv = std::fs::read_to_string(&self.stats).unwrap_or_default();
        let counts = (
            stat(&csv, "OutgoingCall(C)"),
            stat(&csv, "SuccessfulCall(C)"),
            stat(&csv, "FailedCall(C)"),
        );
        (counts, took)
    }

    fn errors(&self) -> String {
        let log = std::fs::read_to_string(&self.errors).unwrap_or_default();
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Callers {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn kamailio_spreads_calls_over_three_nodes_and_moves_a_draining_nodes_share() {
    require_sipp!();
    let t0 = Instant::now();
    let store = common::pg::database();
    let mut nodes: Vec<Rivr> = (0..NODES).map(|i| node(i, &store)).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.sip_port).collect();
    let dir = common::scratch::Scratch::new("cluster-inbound");
    let kamailio = Kamailio::start(dir.path(), &ports);
    let started_in = t0.elapsed();

    // Phase 1: 300 calls over three nodes in use.
    let mut load = Callers::place(dir.path(), "phase1", &kamailio, CALLS, RATE);
    let (r1, phase1_took) = load.wait();
    assert_eq!(
        r1,
        (u64::from(CALLS), u64::from(CALLS), 0),
        "phase 1: every call answered and ended; SIPp errors:\n{}\nkamailio:\n{}",
        load.errors(),
        kamailio.stderr()
    );
    let settle = Instant::now() + Duration::from_secs(10);
    while nodes.iter().map(|n| answered(n).len()).sum::<usize>() < CALLS as usize {
        assert!(Instant::now() < settle, "phase 1: CDRs missing");
        std::thread::sleep(Duration::from_millis(100));
    }
    let phase1: Vec<usize> = nodes.iter().map(|n| answered(n).len()).collect();
    let share = f64::from(CALLS) / NODES as f64;
    for (i, &n) in phase1.iter().enumerate() {
        assert!(
            (n as f64 - share).abs() <= 0.2 * share,
            "phase 1: node {i} took {n} of {CALLS} calls (each should take {share} ± 20 %): {phase1:?}"
        );
    }

    // Phase 2: one node drains a third of the way in.
    let mut load = Callers::place(dir.path(), "phase2", &kamailio, CALLS, RATE);
    std::thread::sleep(DRAIN_AFTER);
    let drain_at = epoch_s();
    nodes[DRAINED].signal("TERM");
    let (r2, _) = load.wait();
    assert_eq!(
        r2,
        (u64::from(CALLS), u64::from(CALLS), 0),
        "phase 2: every call answered and ended although a node drained; SIPp errors:\n{}\nkamailio:\n{}",
        load.errors(),
        kamailio.stderr()
    );
    let exit = nodes[DRAINED].wait_exit(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "the drained node exits 0 once its calls ended: {exit:?}\n{}",
        nodes[DRAINED].stderr()
    );
    let settle = Instant::now() + Duration::from_secs(10);
    while nodes.iter().map(|n| answered(n).len()).sum::<usize>() < 2 * CALLS as usize {
        assert!(Instant::now() < settle, "phase 2: CDRs missing");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The bound: a probe within PING_S of the drain, and THRESHOLD failed
    // ones take the node out; 0.5 s for the probe's round trip and timer.
    let bound = (PING_S * THRESHOLD) as f64 + 0.5;
    let drained_port = ports[DRAINED];
    let to_drained: Vec<f64> = kamailio
        .dispatches()
        .into_iter()
        .filter(|(t, _, p)| *p == drained_port && *t >= drain_at)
        .map(|(t, _, _)| t)
        .collect();
    let last_to_drained = to_drained.iter().copied().fold(drain_at, f64::max) - drain_at;
    assert!(
        last_to_drained <= bound,
        "an INVITE reached the draining node {last_to_drained:.3} s after SIGTERM (bound {bound} s)"
    );
    let down_after = kamailio
        .first_down(drained_port, drain_at)
        .map(|t| t - drain_at)
        .unwrap_or_else(|| {
            panic!(
                "kamailio never took the draining node out:\n{}",
                kamailio.stderr()
            )
        });
    assert!(
        down_after <= bound,
        "the draining node was taken out {down_after:.3} s after SIGTERM (bound {bound} s)"
    );
    let late: Vec<(String, f64)> = answered(&nodes[DRAINED])
        .into_iter()
        .filter(|(_, start)| *start > drain_at + bound)
        .collect();
    assert!(
        late.is_empty(),
        "calls started on the draining node after the bound: {late:?}"
    );

    let total: Vec<usize> = nodes.iter().map(|n| answered(n).len()).collect();
    let phase2: Vec<usize> = total.iter().zip(&phase1).map(|(t, p)| t - p).collect();
    let survivors: Vec<usize> = (0..NODES)
        .filter(|&i| i != DRAINED)
        .map(|i| phase2[i])
        .collect();
    let moved = CALLS as usize - phase2[DRAINED];
    for (&n, i) in survivors.iter().zip((0..NODES).filter(|&i| i != DRAINED)) {
        let fair = moved as f64 / survivors.len() as f64;
        assert!(
            (n as f64 - fair).abs() <= 0.2 * fair,
            "phase 2: node {i} took {n} of the {moved} calls the two others shared: {phase2:?}"
        );
    }
    // Phase 3: the node starts again on its address; the next probe it
    // answers 200 puts it back.
    // (A probe may reach it between its bind and its ready line.)
    let restart_from = epoch_s();
    nodes[DRAINED].restart();
    let back_at = epoch_s();
    let deadline = Instant::now() + Duration::from_secs(PING_S + 5);
    let up_after = loop {
        if let Some(t) = kamailio.first_up(drained_port, restart_from) {
            break t - back_at;
        }
        assert!(
            Instant::now() < deadline,
            "kamailio did not put the restarted node back within {} s:\n{}",
            PING_S + 5,
            kamailio.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        up_after <= PING_S as f64 + 0.5,
        "the restarted node was put back {up_after:.3} s after it was ready (probe every {PING_S} s)"
    );

    // Phase 4: node FULL filled to max_calls by calls placed to it directly.
    let full_port = ports[FULL];
    let fill_at = epoch_s();
    let mut holders = hold_calls(dir.path(), full_port);
    let full_wait = Instant::now() + Duration::from_secs(15);
    while held(&nodes[FULL]) < FULL_MAX_CALLS as usize {
        assert!(
            Instant::now() < full_wait,
            "node {FULL} never held {FULL_MAX_CALLS} calls:\n{}",
            nodes[FULL].stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let full_at = epoch_s();
    let down_wait = Instant::now() + Duration::from_secs(PING_S + 3);
    let probe_down = loop {
        if let Some(t) = kamailio.first_probe_down(full_port, fill_at) {
            break t;
        }
        assert!(
            Instant::now() < down_wait,
            "kamailio's probes did not take the full node out:\n{}",
            kamailio.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let full_down_after = probe_down - full_at;
    assert!(
        full_down_after <= bound,
        "the full node was taken out {full_down_after:.3} s after it was full (bound {bound} s)"
    );
    // Calls through Kamailio while it is full: all to the other nodes.
    let phase4_from = epoch_s();
    let mut load = Callers::place(dir.path(), "phase4", &kamailio, PHASE4_CALLS, 15);
    let (r4, _) = load.wait();
    assert_eq!(
        r4,
        (u64::from(PHASE4_CALLS), u64::from(PHASE4_CALLS), 0),
        "phase 4: every call answered; SIPp errors:\n{}",
        load.errors()
    );
    assert!(
        held(&nodes[FULL]) >= FULL_MAX_CALLS as usize,
        "node {FULL} was still full when phase 4's calls were over"
    );
    let phase4: Vec<usize> = ports
        .iter()
        .map(|&port| {
            kamailio
                .dispatches()
                .iter()
                .filter(|(t, _, p)| *t >= phase4_from && *p == port)
                .count()
        })
        .collect();
    let during_full: Vec<(f64, String, u16)> = kamailio
        .dispatches()
        .into_iter()
        .filter(|(t, _, p)| *t >= probe_down && *p == full_port)
        .collect();
    assert!(
        during_full.is_empty(),
        "INVITEs sent to the full node while it was full: {during_full:?}"
    );
    // The node is no longer full once its first held call has ended; the
    // next probe puts it back (and none before: it answered 503 till then).
    let free_wait = Instant::now() + Duration::from_millis(HOLD_MS) + Duration::from_secs(10);
    while held(&nodes[FULL]) >= FULL_MAX_CALLS as usize {
        assert!(
            Instant::now() < free_wait,
            "the calls held on node {FULL} did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let freed_at = epoch_s();
    let up_wait = Instant::now() + Duration::from_secs(PING_S + 3);
    let up_at = loop {
        if let Some(t) = kamailio.first_up(full_port, probe_down) {
            break t;
        }
        assert!(
            Instant::now() < up_wait,
            "kamailio did not put the node back once its calls ended:\n{}",
            kamailio.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let full_up_after = up_at - freed_at;
    assert!(
        full_up_after >= -0.1,
        "the node was put back {:.3} s before its first held call ended, while full",
        -full_up_after
    );
    assert!(
        full_up_after <= bound,
        "the node was put back {full_up_after:.3} s after its first held call ended (bound {bound} s)"
    );
    let holders_ok = holders.wait().expect("the held calls end");
    assert!(
        holders_ok.success(),
        "the calls held on node {FULL} ended well: {holders_ok:?}"
    );

    // Refusals the drained node answered 503 (Kamailio sent them on).
    let refused: Vec<String> = kamailio
        .stderr()
        .lines()
        .filter(|l| l.contains(&format!("sip:127.0.0.1:{drained_port} refused")))
        .map(str::to_string)
        .collect();
    let per_node: HashMap<u16, usize> =
        kamailio
            .dispatches()
            .into_iter()
            .fold(HashMap::new(), |mut m, (_, _, p)| {
                *m.entry(p).or_default() += 1;
                m
            });
    eprintln!(
        "cluster_inbound: nodes and kamailio up in {started_in:?}; phase 1 ({CALLS} calls at {RATE}/s) \
         took {phase1_took:?}, answered per node {phase1:?}; phase 2: node {DRAINED} drained \
         {:.1} s in, taken out {down_after:.3} s after SIGTERM (probe every {PING_S} s, threshold \
         {THRESHOLD}), last INVITE to it {last_to_drained:.3} s after, {} INVITEs refused 503 by \
         it and sent to another node, answered per node {phase2:?}; restarted, put back \
         {up_after:.3} s after it was ready; phase 4: node {FULL} full ({FULL_MAX_CALLS} calls) \
         taken out by a probe {full_down_after:.3} s after, {PHASE4_CALLS} calls through \
         kamailio meanwhile went per node {phase4:?}, put back {full_up_after:.3} s after its \
         first held call ended; kamailio dispatches per node \
         port {per_node:?}; test {:?}",
        DRAIN_AFTER.as_secs_f64(),
        refused.len(),
        t0.elapsed()
    );
}

/// systemd accepts the two units the cluster test runs the command lines
/// of (`systemd-analyze verify`, offline in a root dir of its own).
#[test]
fn deploy_units_pass_systemd_analyze_verify() {
    if let Err(e) = deploy::systemd_verify(&[
        ("rivr@.service", "rivr@rivr-1.service"),
        ("rivr-kamailio.service", "rivr-kamailio.service"),
    ]) {
        panic!("{e}");
    }
}
