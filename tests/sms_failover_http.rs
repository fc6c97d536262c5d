//! The HTTP provider as a member of the fallback order: SMSC A (PyPI
//! `smpp34`, refusing every bind) first, an Infobip stand-in over HTTPS
//! (tests/sms_http/provider_mock.py, a test CA trusted through `ca_file`)
//! second. Messages sent with `rivr sms send` are encoded for A's SMPP
//! parts when stored; when A goes down they are encoded again for the
//! provider and claimed for it, and each arrives there exactly once, none
//! at A; `rivr sms status --detail` shows the route.

mod common;
#[path = "http/client.rs"]
mod http;
#[path = "sms_http/harness.rs"]
mod sms;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::smsc::PySmsc;
use sms::{infobip_messages, scratch, Mock, KEY};

fn rivr_bin() -> PathBuf {
    std::env::var_os("RIVR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rivr")))
}

fn rivr(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(rivr_bin())
        .args(["sms"])
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run rivr sms");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn smsc_a_refusing_binds_sends_every_message_through_the_http_provider_once() {
    let dir = scratch("sms-fo-http");
    let a = PySmsc::start(&dir, "a", &["--fields", "--refuse-binds"]);
    let mock = Mock::start(&dir);
    let config = dir.join("rivr.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}/rivr.db\"\n\n\
             [[smsc]]\nname = \"a\"\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"rivr\"\n\
             password = \"pw\"\nreconnect_min_ms = 50\nreconnect_max_ms = 500\nprefixes = [\"+1555\"]\n\n\
             [sms_http]\nprovider = \"infobip\"\nbase_url = \"https://127.0.0.1:{}\"\n\
             api_key = \"{KEY}\"\nfrom = \"CLINIC\"\nca_file = {:?}\nprefixes = [\"+1555\"]\n",
            dir.display(),
            a.port,
            mock.port,
            dir.join("ca.pem").display().to_string()
        ),
    )
    .unwrap();
    // One single-part GSM text, one three-part GSM text, one UCS-2 text:
    // stored as SMPP parts for A, encoded again for the provider.
    let texts = [
        "message one".to_string(),
        "B".repeat(400),
        "Grüße ☺ zwei".to_string(),
    ];
    let mut ids = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let to = format!("+1555000{i:03}");
        let (ok, out, err) = rivr(&config, &["send", "--to", &to, "--text", t]);
        println!("[fo-http] rivr sms send {to}: {out}{err}");
        assert!(ok, "rivr sms send failed: {out}{err}");
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("queued "))
            .expect("an id")
            .to_string();
        assert!(out.contains("state submitted"), "{out}");
        ids.push(id);
    }
    std::thread::sleep(Duration::from_millis(300));
    let msgs = infobip_messages(&mock.requests());
    println!("[fo-http] provider got {} messages: {msgs:?}", msgs.len());
    let got: Vec<(String, String)> = msgs
        .iter()
        .map(|m| {
            (
                m["destinations"][0]["to"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                m["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("1555000{i:03}"), t.clone()))
        .collect();
    let tos: BTreeSet<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        got.len(),
        texts.len(),
        "a message twice or missing: {got:?}"
    );
    assert_eq!(tos.len(), texts.len(), "a message twice: {got:?}");
    for w in &want {
        assert!(
            got.iter()
                .any(|(to, text)| to.trim_start_matches('+') == w.0 && text == &w.1),
            "{w:?} not at the provider whole: {got:?}"
        );
    }
    let accepted = a.log_lines("accepted ");
    println!(
        "[fo-http] A: binds refused {:?}, accepted {}",
        a.log_lines("bind_refused ").last(),
        accepted.len()
    );
    assert!(accepted.is_empty(), "A accepted some: {accepted:?}");
    assert!(
        !a.log_lines("bind_refused ").is_empty(),
        "A never refused a bind"
    );
    // The route of every part, as `rivr sms status --detail` shows it.
    let parts = [1, 3, 1];
    for (id, n) in ids.iter().zip(parts) {
        let (ok, out, err) = rivr(&config, &["status", "--detail", id]);
        println!("[fo-http] rivr sms status --detail {id}: {out}{err}");
        assert!(ok, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"submitted"), "{out}");
        let routes: Vec<&&str> = lines.iter().filter(|l| l.starts_with("part ")).collect();
        assert_eq!(routes.len(), n, "{out}");
        for (k, l) in routes.iter().enumerate() {
            // Claimed for A first and encoded again for the provider when
            // A was declared down; or, when A's refusal came before the
            // message was stored, encoded for the provider from the start.
            // Both end at the provider once (its log, above).
            let moved = format!("part {} route http attempts 2 (routes a, http)", k + 1);
            let direct = format!("part {} route http attempts 1 (routes http)", k + 1);
            assert!(**l == moved || **l == direct, "{out}");
        }
    }
}
