//! A trunk's standing link, end to end (issue 10 §2): `rivr serve` with
//! `[[trunk]]` tables keeps a registration with SIPp as the registrar
//! (423 Min-Expires honoured, refreshed before the granted expiry runs out,
//! withdrawn with Expires: 0 at shutdown) and sends OPTIONS keepalives that
//! decide which trunk a call goes to: a trunk whose OPTIONS go unanswered
//! is down and a `dial()` goes to the next one; once it answers again,
//! calls return to it.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::carrier::Carrier;
use common::raw_sip::{first_line, header};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// What the registrar grants (seconds): short, so a refresh comes soon.
const GRANTED: u64 = 5;

/// The `Expires` values SIPp logged as `reg_N expires=V`, by N.
fn logged_expires(log: &str, n: u32) -> Option<u64> {
    let tag = format!("reg_{n} expires=");
    log.lines()
        .find_map(|l| l.split(&tag).nth(1))
        .and_then(|v| v.trim().parse().ok())
}

/// The registrar answers the first REGISTER 423 with Min-Expires: 7200;
/// rivr retries asking at least 7200; the registrar grants 5 s; rivr
/// refreshes before they run out (at 90 %: 4.5 s, measured between the
/// test seeing the grant and seeing the refresh, so within 4.0–5.0 s);
/// at shutdown rivr sends Expires: 0, answered, and SIPp's scenario passes.
#[test]
fn register_honours_min_expires_refreshes_before_expiry_and_unregisters() {
    require_sipp!();
    let dir = Scratch::new("trunk-registrar");
    let mut registrar = Carrier::start(
        dir.path(),
        "registrar",
        "uas_register.xml",
        0,
        &[
            ("min_expires", "7200".into()),
            ("granted", GRANTED.to_string()),
        ],
    );
    let mut rivr = Rivr::start(
        "trunk-register",
        RivrConfig {
            extra_tables: format!(
                "[[trunk]]\nname = \"reg\"\nuri = \"sip:127.0.0.1:{}\"\n\
                 username = \"acct\"\npassword = \"secret\"\nregister = true\n\
                 options_interval = 0\n",
                registrar.port
            ),
            ..RivrConfig::default()
        },
    );
    let granted_at = registrar
        .wait_log("granted_2", Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "no REGISTER retried after the 423:\n{}",
                registrar.diagnostics()
            )
        });
    let log = registrar.log();
    let first = logged_expires(&log, 1).expect("the first REGISTER's Expires");
    let retried = logged_expires(&log, 2).expect("the retried REGISTER's Expires");
    assert!(
        retried >= 7200,
        "the retry after 423 must ask at least Min-Expires (7200), asked {retried} (first asked {first})"
    );
    let refreshed_at = registrar
        .wait_log("reg_3 ", Duration::from_secs(GRANTED + 2))
        .unwrap_or_else(|| {
            panic!(
                "no refresh REGISTER within {GRANTED} s + 2 s of the grant:\n{}",
                registrar.diagnostics()
            )
        });
    let gap = refreshed_at.saturating_duration_since(granted_at);
    let refresh_expires = logged_expires(&registrar.log(), 3).expect("the refresh's Expires");
    eprintln!(
        "REGISTER: first Expires {first}, after 423 Expires {retried}, granted {GRANTED} s, \
         refresh after {gap:?} asking {refresh_expires}"
    );
    assert!(
        gap >= Duration::from_millis(4000) && gap < Duration::from_secs(GRANTED),
        "the refresh must come at about 90 % of {GRANTED} s (4.5 s), before expiry; came after {gap:?}"
    );
    assert!(
        refresh_expires >= 7200,
        "the refresh keeps asking Min-Expires: {refresh_expires}"
    );
    registrar
        .wait_log("granted_3", Duration::from_secs(2))
        .unwrap_or_else(|| panic!("{}", registrar.diagnostics()));

    let status = rivr.terminate(Duration::from_secs(10));
    assert!(status.is_some(), "rivr did not stop on SIGTERM");
    registrar.expect_pass(Duration::from_secs(5));
    let unregister = logged_expires(&registrar.log(), 4).expect("the shutdown REGISTER's Expires");
    assert_eq!(
        unregister, 0,
        "shutdown withdraws the registration with Expires: 0"
    );
    let stderr = rivr.stderr();
    assert!(
        stderr.contains("registered"),
        "rivr logs the registration:\n{stderr}"
    );
}

/// A trunk's far end on one UDP socket, for the keepalive test: it records
/// every request, and answers OPTIONS 200 and INVITE 486 only while
/// `answering` is set (silent, it is a trunk that went away).
struct RawTrunk {
    port: u16,
    answering: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
}

impl RawTrunk {
    fn start() -> RawTrunk {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the trunk socket");
        let port = sock.local_addr().expect("trunk address").port();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let answering = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, st) = (answering.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = buf.get(..n).unwrap_or_default().to_vec();
                let line = first_line(&msg);
                if let Ok(mut seen) = s.lock() {
                    seen.push((Instant::now(), line.clone()));
                }
                if !a.load(Ordering::Relaxed) {
                    continue;
                }
                let status = if line.starts_with("OPTIONS ") {
                    "200 OK"
                } else if line.starts_with("INVITE ") {
                    "486 Busy Here"
                } else {
                    continue;
                };
                let _ = sock.send_to(&response(&msg, status), from);
            }
        });
        RawTrunk {
            port,
            answering,
            seen,
            stop,
        }
    }

    fn requests(&self, method: &str) -> Vec<Instant> {
        self.seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(_, l)| l.starts_with(&format!("{method} ")))
                    .map(|(t, _)| *t)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for RawTrunk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A response to `req` copying its Via, From, To (with a tag), Call-ID
/// and CSeq.
fn response(req: &[u8], status: &str) -> Vec<u8> {
    let h =
        |name: &str| String::from_utf8_lossy(&header(req, name).unwrap_or_default()).into_owned();
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=rawtrunk\r\nCall-ID: {}\r\n\
         CSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq"),
    )
    .into_bytes()
}

/// Answers, dials a number through whichever trunk is up first, records
/// the outcome and hangs up.
const DIAL_SCRIPT: &str = r#"
answer();
let r = dial("15550199", #{ timeout: 10000 });
set_result("dial", r.outcome);
hangup();
"#;

/// The far legs' CDRs (outbound), in the order they were written.
fn outbound_cdrs(rivr: &Rivr) -> Vec<serde_json::Value> {
    rivr.cdrs()
        .into_iter()
        .filter(|c| c["direction"] == "outbound")
        .collect()
}

fn place_inbound_call(rivr: &Rivr, label: &str) -> Sipp {
    Sipp::start(
        rivr.dir.path(),
        label,
        rivr.sip_port,
        &CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            ..CallSpec::default()
        },
    )
}

fn wait_outbound_cdrs(rivr: &Rivr, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let cdrs = outbound_cdrs(rivr);
        if cdrs.len() >= n {
            return cdrs;
        }
        assert!(
            Instant::now() < deadline,
            "{n} outbound CDRs expected within {timeout:?}; have {cdrs:?}\n{}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two trunks, `a` first. `a`'s OPTIONS (every second) go unanswered:
/// after timer F (32 s) rivr marks it down, and a call's `dial()` goes to
/// `b` (SIPp answers it and hangs up; its CDR names trunk `b`, and `a`
/// saw no INVITE). Then `a` answers again: its next OPTIONS marks it up,
/// and the next call goes to `a` (which answers 486: CDR trunk `a`,
/// outcome busy).
#[test]
fn options_down_moves_calls_to_the_next_trunk_and_back() {
    require_sipp!();
    let a = RawTrunk::start();
    let media_sink = UdpSocket::bind("127.0.0.1:0").expect("bind a media sink");
    let media_port = media_sink.local_addr().map(|x| x.port()).unwrap_or(9);
    let rivr_cfg = |b_port: u16| {
        RivrConfig {
            extra_tables: format!(
                "[[trunk]]\nname = \"a\"\nuri = \"sip:127.0.0.1:{}\"\noptions_interval = 1\n\
             [[trunk]]\nname = \"b\"\nuri = \"sip:127.0.0.1:{b_port}\"\noptions_interval = 0\n",
                a.port
            ),
            ..RivrConfig::default()
        }
        .script("3000", "dial.rhai", DIAL_SCRIPT)
    };
    let dir = Scratch::new("trunk-b");
    let mut b = Carrier::start(
        dir.path(),
        "b",
        "uas_answer_bye.xml",
        500,
        &[("rtp_port", media_port.to_string()), ("codec", "0".into())],
    );
    let rivr = Rivr::start("trunk-options", rivr_cfg(b.port));
    let started = Instant::now();

    let down = rivr
        .wait_log(Duration::from_secs(45), |l| {
            l.contains("trunk state changed") && l.contains("\"a\"") && l.contains("up=false")
        })
        .unwrap_or_else(|| panic!("trunk a never went down:\n{}", rivr.stderr()));
    let down_after = started.elapsed();
    let options_before_down = a.requests("OPTIONS").len();
    eprintln!("trunk a down after {down_after:?} ({options_before_down} OPTIONS sent): {down}");
    assert!(
        down_after >= Duration::from_secs(30),
        "down only after timer F (32 s) without an answer, not after {down_after:?}"
    );
    assert!(options_before_down >= 2, "OPTIONS retransmitted over UDP");

    let mut caller = place_inbound_call(&rivr, "via-b");
    b.expect_pass(Duration::from_secs(20));
    caller.expect_pass(Duration::from_secs(20));
    let cdrs = wait_outbound_cdrs(&rivr, 1, Duration::from_secs(10));
    let first = cdrs.first().expect("one outbound CDR");
    eprintln!(
        "first call: trunk {} outcome {}",
        first["trunk"], first["outcome"]
    );
    assert_eq!(first["trunk"], "b", "a down: the call goes to b: {first}");
    assert_eq!(first["outcome"], "answered", "{first}");
    assert!(a.requests("INVITE").is_empty(), "a down: no INVITE to a");

    a.answering.store(true, Ordering::Relaxed);
    let up = rivr
        .wait_log(Duration::from_secs(10), |l| {
            l.contains("trunk state changed") && l.contains("\"a\"") && l.contains("up=true")
        })
        .unwrap_or_else(|| panic!("trunk a never came back up:\n{}", rivr.stderr()));
    eprintln!("trunk a up again after {:?}: {up}", started.elapsed());

    let mut caller = place_inbound_call(&rivr, "via-a");
    caller.expect_pass(Duration::from_secs(20));
    let cdrs = wait_outbound_cdrs(&rivr, 2, Duration::from_secs(10));
    let second = cdrs.get(1).expect("a second outbound CDR");
    eprintln!(
        "second call: trunk {} outcome {}",
        second["trunk"], second["outcome"]
    );
    assert_eq!(
        second["trunk"], "a",
        "a up again: traffic returns to it: {second}"
    );
    assert_eq!(second["outcome"], "busy", "{second}");
    assert_eq!(
        a.requests("INVITE").len(),
        1,
        "a got the second call's INVITE"
    );
}
