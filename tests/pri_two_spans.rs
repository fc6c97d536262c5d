//! Two E1 spans on one PRI trunk, each with libpri as its carrier
//! (tests/pri/libpri_peer.c, network side): 60 calls at once each way
//! through the whole of rivr, every one answered and carrying frames both
//! ways for its whole length; and the D-channel of a span closed mid-call
//! and reopened, the call kept through the call layer (Q.931 §5.8 and
//! T309: the link is back long before T309's 90 s).

mod common;

use std::time::{Duration, Instant};

use common::libpri::{Event, LibpriPeer, SpanOptions, SpanPaths};
use common::pri_rivr::{rivr_call, span_table, trunk_table};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};

/// libpri retries SABME every second; rivr connects at start.
const LINK: Duration = Duration::from_secs(10);

struct Carrier {
    peers: Vec<LibpriPeer>,
    tables: String,
}

/// Two spans, `span1` and `span2`, each a libpri network side, and the
/// trunk `e1` over both (hunt lowest, 60 channels, `cps`).
fn carriers(dir: &Scratch, cps: u32) -> Carrier {
    let mut peers = Vec::new();
    let mut tables = String::new();
    for name in ["span1", "span2"] {
        let paths = SpanPaths::in_dir(dir.path(), name);
        let opts = SpanOptions {
            answer_ms: Some(100),
            max_seconds: 300,
            ..SpanOptions::e1()
        };
        peers.push(LibpriPeer::start(dir.path(), name, &paths, &opts));
        tables.push_str(&span_table(name, &paths));
    }
    tables.push_str(&trunk_table(
        &["span1", "span2"],
        &format!("hunt = \"lowest\"\ncps = {cps}\nring_timeout = 20"),
    ));
    Carrier { peers, tables }
}

/// Each call's `end` on a peer, from `from` on.
fn ends(peer: &LibpriPeer, from: usize, count: usize, timeout: Duration) -> Vec<Event> {
    peer.wait_count(from, count, timeout, "end", |e| e.name == "end")
}

/// Every call carried frames both ways for at least `ms`.
fn assert_media(ends: &[Event], ms: i64) {
    let frames = ms / 20;
    for e in ends {
        let (rx, tx) = (e.num("rx").unwrap_or(0), e.num("tx").unwrap_or(0));
        assert!(
            rx >= frames && tx >= frames,
            "a call carried rx {rx} tx {tx} frames, want {frames} each way: {}",
            e.line
        );
        assert_eq!(e.num("bad"), Some(0), "{}", e.line);
    }
}

const TALK: &str = r#"
answer();
sleep(8000);
hangup();
"#;

#[test]
fn sixty_incoming_calls_on_two_spans_run_their_scripts_at_once() {
    let dir = Scratch::new("pri-two-in");
    let carrier = carriers(&dir, 30);
    let rivr = Rivr::start(
        "pri-two-in",
        RivrConfig {
            extra_tables: carrier.tables.clone(),
            ..RivrConfig::default()
        }
        .script("7002", "talk.rhai", TALK),
    );
    for p in &carrier.peers {
        p.wait_name("up", LINK);
    }
    let marks: Vec<usize> = carrier.peers.iter().map(|p| p.mark()).collect();
    let started = Instant::now();
    for p in &carrier.peers {
        for _ in 0..30 {
            p.call("7002", "5551234", None);
        }
    }
    for (p, &m) in carrier.peers.iter().zip(&marks) {
        p.wait_count(m, 30, Duration::from_secs(20), "connect", |e| {
            e.name == "connect"
        });
    }
    let all_up = started.elapsed();
    // Every call's script sleeps 8 s after its answer: all 60 are up at
    // once unless answering them took that long.
    for p in &carrier.peers {
        assert!(
            !p.events().iter().any(|e| e.name == "end"),
            "a call ended before all 60 were answered ({all_up:?})"
        );
    }
    eprintln!("60 calls answered within {all_up:?}");
    for (p, &m) in carrier.peers.iter().zip(&marks) {
        let ends = ends(p, m, 30, Duration::from_secs(30));
        assert_media(&ends, 7_000);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let cdrs = loop {
        let cdrs = rivr.cdrs();
        if cdrs.len() >= 60 || Instant::now() >= deadline {
            break cdrs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(cdrs.len(), 60, "one CDR per call");
    for span in ["span1", "span2"] {
        let n = cdrs
            .iter()
            .filter(|c| {
                c["outcome"] == "answered"
                    && c["transport_id"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&format!("{span}/")))
            })
            .count();
        assert_eq!(n, 30, "answered calls on {span}");
    }
}

#[test]
fn sixty_outgoing_calls_fill_the_first_span_then_the_second() {
    let dir = Scratch::new("pri-two-out");
    let carrier = carriers(&dir, 60);
    let marks: Vec<usize> = carrier.peers.iter().map(|p| p.mark()).collect();
    let lines = rivr_call(
        dir.path(),
        "sixty",
        &carrier.tables,
        Some(TALK),
        &["--count", "60"],
        "5551230",
        Duration::from_secs(60),
    );
    assert_eq!(lines.len(), 60, "one line per call");
    for l in &lines {
        assert_eq!(l["outcome"], "answered", "{l}");
        assert!(l["talk_ms"].as_u64().unwrap_or(0) >= 7_900, "{l}");
    }
    for (p, &m) in carrier.peers.iter().zip(&marks) {
        let events = p.events();
        let setups = events[m..].iter().filter(|e| e.name == "setup").count();
        assert_eq!(
            setups, 30,
            "SETUPs on one span (lowest hunting fills span1 first)"
        );
        // Up at once: every call answered before any ended.
        let first_end = events[m..]
            .iter()
            .position(|e| e.name == "end")
            .expect("the calls ended");
        let answered_before = events[m..m + first_end]
            .iter()
            .filter(|e| e.name == "answered")
            .count();
        assert_eq!(answered_before, 30, "answered before the first end");
        assert_media(&ends(p, m, 30, Duration::from_secs(5)), 7_000);
    }
}

const LONG_TALK: &str = r#"
answer();
sleep(6000);
set_result("kept", "yes");
hangup();
"#;

#[test]
fn the_d_channel_closed_mid_call_comes_back_and_the_call_is_kept() {
    let dir = Scratch::new("pri-two-dclose");
    let carrier = carriers(&dir, 30);
    let rivr = Rivr::start(
        "pri-two-dclose",
        RivrConfig {
            extra_tables: carrier.tables.clone(),
            ..RivrConfig::default()
        }
        .script("7003", "long.rhai", LONG_TALK),
    );
    let peer = &carrier.peers[0];
    peer.wait_name("up", LINK);
    let call = peer.call("7003", "5551234", None);
    peer.wait_call(call, "connect", Duration::from_secs(10));
    // Until rivr has libpri's CONNECT ACKNOWLEDGE the call is not active,
    // and Q.931 clears a call not active when the link fails (cause 27):
    // close the D-channel only once rivr says the call is active.
    let active = || rivr.stderr().contains("PRI call active");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !active() {
        assert!(Instant::now() < deadline, "rivr never had the call active");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mark = peer.mark();
    peer.send("close-d 300");
    peer.wait_from(mark, Duration::from_secs(5), "d-closed", |e| {
        e.name == "d-closed"
    });
    // rivr reconnects a second later and re-establishes LAPD.
    peer.wait_from(mark, Duration::from_secs(10), "d-connected", |e| {
        e.name == "d-connected"
    });
    let ups = || {
        rivr.stderr()
            .lines()
            .filter(|l| l.contains("PRI span's D-channel link span=span1 up=true"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ups() < 2 {
        assert!(
            Instant::now() < deadline,
            "rivr's link on span1 did not come back; stderr:\n{}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let end = peer.wait_end(call, Duration::from_secs(20));
    let cdr = loop {
        if let Some(c) = rivr.cdrs().into_iter().find(|c| c["to"] == "7003") {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        cdr["results"]["kept"], "yes",
        "the script ran to its end: {cdr}"
    );
    assert_eq!(cdr["end"], "local-bye", "rivr cleared it, normally: {cdr}");
    assert!(cdr["talk_ms"].as_u64().unwrap_or(0) >= 5_900, "{cdr}");
    // The B-channel carried the call through the outage.
    assert_media(std::slice::from_ref(&end), 5_500);
}
