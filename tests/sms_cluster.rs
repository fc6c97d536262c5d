//! Issue 15 part 4, SMS across nodes, against real processes on 127.0.0.1:
//! two `rivr serve` nodes on one throw-away PostgreSQL (tests/pg), both
//! configured with the same `[smpp]` account on an SMSC built on PyPI
//! `smpp34` (tests/smpp/smsc_smpp34.py in `--fields` mode: it logs every
//! accepted submit_sm with its idempotency key, and every bound session's
//! start and end).
//!
//! Messages are posted to both nodes' APIs while the node that sends SMS
//! is SIGKILLed mid-run. Shown:
//! - one node is bound at a time (the SMSC's sessions never overlap);
//! - the other node takes over within its retry (1 s) of the kill;
//! - no part reaches the SMSC twice (its keys are unique), and every
//!   message ends out of `queued`: sent, or `unknown` for the few the
//!   killed node was writing at the moment it died (never sent again);
//! - messages posted to the node that does not send go out through the
//!   one that does.
//!
//! Needs `.venv` (`make smpp-venv`) and PostgreSQL; fails without them.

mod common;
#[path = "http/client.rs"]
mod http;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::server::{Rivr, RivrConfig};
use common::smsc::PySmsc;
use http::{Client, ADMIN};

/// Messages posted to each node before, and to the survivor after, the kill.
const BEFORE: usize = 60;
const AFTER: usize = 40;

fn node(label: &str, url: &str, smsc: &PySmsc) -> Rivr {
    let cfg = RivrConfig {
        extra_tables: format!(
            "[store]\nurl = \"{url}\"\n\
             [cluster]\nnode_id = \"{label}\"\nlease_s = 5\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
             [smpp]\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"rivr\"\npassword = \"pw\"\n\
             reconnect_min_ms = 50\nreconnect_max_ms = 500\n",
            smsc.port
        ),
        ..RivrConfig::default()
    };
    Rivr::start(label, cfg)
}

fn api(rivr: &Rivr) -> Client {
    Client::new(rivr.http.expect("rivr printed no HTTP address"))
}

fn post_sms(c: &Client, to: &str, text: &str) -> Option<String> {
    let a = c.post_json(
        "/sms",
        Some(ADMIN),
        &format!(r#"{{"to":"{to}","text":"{text}"}}"#),
    );
    (a.status == 202).then(|| a.body["id"].as_str().map(str::to_string))?
}

fn state(c: &Client, id: &str) -> String {
    let a = c.get(&format!("/sms/{id}"), Some(ADMIN));
    a.body["state"].as_str().unwrap_or("?").to_string()
}

/// (time, bound?) of every session start and end the SMSC logged.
fn sessions(smsc: &PySmsc) -> Vec<(f64, bool)> {
    smsc.log_lines("session ")
        .iter()
        .filter_map(|l| {
            let t = l
                .split(' ')
                .find_map(|w| w.strip_prefix("t="))?
                .parse()
                .ok()?;
            Some((t, l.contains(" bound ")))
        })
        .collect()
}

fn epoch_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn one_node_sends_and_the_other_takes_over_without_sending_twice() {
    let dir = common::scratch::Scratch::new("sms-cluster");
    let smsc = PySmsc::start(dir.path(), "smsc", &["--fields"]);
    let url = common::pg::database();

    let mut a = node("sms-a", &url, &smsc);
    assert!(
        wait_until(Duration::from_secs(20), || smsc.counter("binds") >= 1),
        "node a never bound: {}",
        smsc.log()
    );
    let b = node("sms-b", &url, &smsc);
    assert!(
        b.wait_log(Duration::from_secs(10), |l| l
            .contains("another node sends SMS"))
            .is_some(),
        "node b does not say it stands by: {}",
        b.stderr()
    );
    let (ca, cb) = (api(&a), api(&b));

    // Both nodes take messages; a sends all of them.
    let mut ids: Vec<(String, String)> = Vec::new();
    for i in 0..BEFORE {
        for (c, who) in [(&ca, "a"), (&cb, "b")] {
            let to = format!("+25470{:07}", ids.len());
            if let Some(id) = post_sms(c, &to, &format!("cluster {who} {i}")) {
                ids.push((id, to));
            }
        }
    }
    let posted_before = ids.len();
    assert_eq!(posted_before, 2 * BEFORE, "a POST /sms was refused");
    // Some have gone out through a, others are in flight or stored.
    assert!(
        wait_until(Duration::from_secs(20), || smsc.accepted().len()
            >= BEFORE / 2),
        "a sends nothing: {}",
        a.stderr()
    );
    let sent_by_a_at_kill = smsc.accepted().len();
    a.kill9();
    let killed = epoch_s();
    println!("[sms-cluster] node a SIGKILLed with {sent_by_a_at_kill} of {posted_before} parts at the SMSC");

    for i in 0..AFTER {
        let to = format!("+25470{:07}", ids.len());
        let id = post_sms(&cb, &to, &format!("cluster after {i}")).expect("b takes messages");
        ids.push((id, to));
    }

    // Every message leaves `queued`.
    let mut states: HashMap<String, String> = HashMap::new();
    let done = wait_until(Duration::from_secs(60), || {
        states = ids
            .iter()
            .map(|(id, _)| (id.clone(), state(&cb, id)))
            .collect();
        states.values().all(|s| s != "queued" && s != "?")
    });
    let mut by_state: HashMap<&str, usize> = HashMap::new();
    for s in states.values() {
        *by_state.entry(s.as_str()).or_default() += 1;
    }
    println!("[sms-cluster] {} messages: {by_state:?}", ids.len());
    assert!(done, "messages left queued: {by_state:?}\n{}", b.stderr());

    // No part twice at the SMSC; every message not `unknown` is there.
    let accepted = smsc.accepted();
    let mut keys: HashMap<String, usize> = HashMap::new();
    for acc in &accepted {
        *keys
            .entry(acc.get("key").cloned().unwrap_or_default())
            .or_default() += 1;
    }
    let twice: Vec<&String> = keys
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "parts sent twice: {twice:?}");
    let unknown = by_state.get("unknown").copied().unwrap_or(0);
    for (id, _) in &ids {
        let s = &states[id];
        if s != "unknown" {
            assert!(
                keys.contains_key(&format!("{id}.1")),
                "{id} is {s} but never reached the SMSC"
            );
        }
    }
    assert!(
        unknown <= 10,
        "{unknown} messages unknown: more than a window's worth in flight at the kill"
    );
    // An `unknown` one may have reached the SMSC (its answer was lost
    // with a): nothing else did.
    let known: std::collections::HashSet<String> =
        ids.iter().map(|(id, _)| format!("{id}.1")).collect();
    let stray: Vec<&String> = keys.keys().filter(|k| !known.contains(*k)).collect();
    assert!(stray.is_empty(), "parts nobody posted: {stray:?}");

    // One bound session at a time; b bound soon after a died.
    let mut open = 0i32;
    let mut most = 0;
    let mut rebound = None;
    for (t, bound) in sessions(&smsc) {
        open += if bound { 1 } else { -1 };
        most = most.max(open);
        if bound && t > killed && rebound.is_none() {
            rebound = Some(t - killed);
        }
    }
    let rebound = rebound.expect("no bind after the kill");
    println!(
        "[sms-cluster] {} parts at the SMSC, none twice, {unknown} unknown; at most {most} session bound at once; b bound {rebound:.2} s after the kill",
        accepted.len()
    );
    assert_eq!(most, 1, "two nodes bound at once: {:?}", sessions(&smsc));
    assert!(rebound < 3.0, "b took {rebound:.2} s to take over");
    assert!(
        b.stderr().contains("this node sends SMS now"),
        "{}",
        b.stderr()
    );
}
