//! Inbound calls spread over three `rivr serve` nodes by Kamailio's
//! `dispatcher` (issue 15 part 5; docs/scaling.md, "Inbound across
//! nodes"). Kamailio runs deploy/kamailio/kamailio.cfg as it is, with the
//! listen address, the destinations file and a short probing interval set
//! by `-A` on its command line; the test writes the destinations file.
//! Each node has its own SQLite store: inbound calls need nothing shared.
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

mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{repo, Rivr, RivrConfig};
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
    fn start(dir: &Path, nodes: &[u16]) -> Kamailio {
        let version = Command::new("kamailio").arg("-v").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "kamailio is needed (Debian package `kamailio`, in the Makefile's APT_PKGS): {version:?}"
        );
        let list = dir.join("dispatcher.list");
        let lines: String = nodes
            .iter()
            .map(|p| format!("1 sip:127.0.0.1:{p} 0 0\n"))
            .collect();
        std::fs::write(&list, lines).expect("write dispatcher.list");
        let port = free_port("127.0.0.1");
        let log = dir.join("kamailio.stderr");
        let stderr = std::fs::File::create(&log).expect("create kamailio's log");
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(repo().join("deploy/kamailio/kamailio.cfg"))
            .arg("-A")
            .arg(format!("LISTEN=udp:127.0.0.1:{port}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .arg("-A")
            .arg(format!("CTL_SOCKET=\"unix:{}\"", dir.join("ctl").display()))
            .arg("-A")
            .arg(format!("DS_PING_INTERVAL={PING_S}"))
            .arg("-A")
            .arg(format!("DS_PROBING_THRESHOLD={THRESHOLD}"))
            .args(["-A", "CHILDREN=4", "-Y"])
            .arg(dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start kamailio");
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
    fn first_down(&self, port: u16) -> Option<f64> {
        let uri = format!("sip:127.0.0.1:{port}");
        self.first_event(&[format!("{uri} down at"), format!("{uri} refused")])
    }

    /// When a probe answered 200 put the node at `port` back (epoch s).
    fn first_up(&self, port: u16) -> Option<f64> {
        self.first_event(&[format!("node sip:127.0.0.1:{port} up at")])
    }

    /// The earliest time stamp (after " at ") of the lines with one of
    /// `marks`.
    fn first_event(&self, marks: &[String]) -> Option<f64> {
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

fn node(i: usize) -> Rivr {
    let cfg = RivrConfig {
        rtp_ports: 120,
        // Every call comes from Kamailio's one address: the per-source
        // limit is raised to the whole server's, as docs/scaling.md says.
        extra_tables: "[limits]\nper_source_cps = 200\nper_source_burst = 200\n\
                       [server]\ndrain_timeout_s = 30\n"
            .to_string(),
        ..RivrConfig::default()
    }
    .script(
        NUMBER,
        "short.rhai",
        "answer();\nplay(\"goodbye\");\nhangup();\n",
    );
    Rivr::start(&format!("cluster-inbound-{i}"), cfg)
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

/// One SIPp placing `CALLS` calls at `RATE` through Kamailio.
struct Callers {
    child: Option<Child>,
    stats: PathBuf,
    errors: PathBuf,
    started: Instant,
}

/// SIPp's counters when it ended: (created, successful, failed).
type Counts = (u64, u64, u64);

impl Callers {
    fn place(dir: &Path, label: &str, kamailio: &Kamailio) -> Callers {
        let file = |s: &str| dir.join(format!("{label}-{s}"));
        let child = Command::new("sipp")
            .arg(format!("127.0.0.1:{}", kamailio.port))
            .arg("-sf")
            .arg(repo().join("tests/sipp/uac_via_proxy.xml"))
            .args(["-s", NUMBER, "-i", "127.0.0.1"])
            .args(["-p", &free_port("127.0.0.1").to_string()])
            .args(["-m", &CALLS.to_string(), "-l", &CALLS.to_string()])
            .args(["-r", &RATE.to_string(), "-rp", "1000"])
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
    let mut nodes: Vec<Rivr> = (0..NODES).map(node).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.sip_port).collect();
    let dir = common::scratch::Scratch::new("cluster-inbound");
    let kamailio = Kamailio::start(dir.path(), &ports);
    let started_in = t0.elapsed();

    // Phase 1: 300 calls over three nodes in use.
    let mut load = Callers::place(dir.path(), "phase1", &kamailio);
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
    let mut load = Callers::place(dir.path(), "phase2", &kamailio);
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
        .first_down(drained_port)
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
    nodes[DRAINED].restart();
    let back_at = epoch_s();
    let deadline = Instant::now() + Duration::from_secs(PING_S + 5);
    let up_after = loop {
        if let Some(t) = kamailio.first_up(drained_port).filter(|t| *t >= back_at) {
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
         {up_after:.3} s after it was ready; kamailio dispatches per node \
         port {per_node:?}; test {:?}",
        DRAIN_AFTER.as_secs_f64(),
        refused.len(),
        t0.elapsed()
    );
}
