//! The probe call of the load scripts (issue 18, "quality under load"): one
//! call placed into a `rivr serve` that is already holding the load, its
//! RTP owned by this process and recorded, so what a caller hears while
//! rivr is busy is measured rather than assumed. `tests/load/inbound.sh`
//! runs it (`PROBE=1`) once all the load's calls are up; it is `#[ignore]`d
//! so `make test` does not run it without a load around it.
//!
//! The probe dials `PROBE_NUMBER`, routed by the load's config to
//! `tests/load/probe.rhai`: rivr answers, plays `main_menu` and gathers three
//! keys, which the probe presses as RFC 4733 events once the prompt is
//! over. It passes when:
//! - the prompt it heard correlates with `main_menu` at NCC ≥ 0.99;
//! - no two of rivr's RTP packets arrived more than 40 ms apart;
//! - the keys in the call's CDR are the keys pressed.
//!
//! Environment: `PROBE_SIP_PORT` (rivr's SIP port on 127.0.0.1),
//! `PROBE_CDR` (rivr's CDR file), `PROBE_DIR` (where SIPp's files go),
//! `PROBE_NUMBER` (default 3999). Prints one line
//! `PROBE ncc=… max_gap_ms=… keys=… ok=…`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, EVENT_PT, SIGNALLING};
use common::rtp::RtpPeer;
use common::server::wait_cdr_in;
use common::sipp::{CallSpec, Sipp};

const KEYS: &str = "472";
const MIN_NCC: f64 = 0.99;
const MAX_GAP: Duration = Duration::from_millis(40);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (see tests/load_probe.rs)"))
}

#[test]
#[ignore = "run by tests/load/inbound.sh PROBE=1 against a loaded rivr"]
fn probe_call_under_load() {
    let port: u16 = env("PROBE_SIP_PORT")
        .parse()
        .expect("PROBE_SIP_PORT is a port");
    let cdr_path = PathBuf::from(env("PROBE_CDR"));
    let dir = PathBuf::from(env("PROBE_DIR"));
    let number = std::env::var("PROBE_NUMBER").unwrap_or_else(|_| "3999".into());
    let menu = prompt("main_menu");
    let reference = to_f32(menu.pcm_8k());
    let prompt_len = Duration::from_millis(menu.pcm_8k().len() as u64 / 8);

    let mut peer = RtpPeer::bind();
    let spec = CallSpec {
        scenario: "uac_wait_bye.xml",
        number: &number,
        rtp_port: peer.port,
        codecs: "0",
        ..CallSpec::default()
    };
    let placed = Instant::now();
    let mut sipp = Sipp::start(&dir, "probe", port, &spec);
    let answer = sipp.wait_answer(SIGNALLING);
    let answered_in = placed.elapsed();
    peer.start_sending(answer.rtp, answer.payload_type, EVENT_PT);
    // The whole prompt, then the keys (a key would cut the prompt short).
    std::thread::sleep(prompt_len + Duration::from_millis(700));
    for key in KEYS.chars() {
        peer.press(key, 100);
        std::thread::sleep(Duration::from_millis(300));
    }
    sipp.expect_pass(SIGNALLING);

    let packets = peer.packets();
    let heard = Heard::decode(&packets, 0);
    let (lag, ncc) = align(&heard.samples, &reference);
    let max_gap = packets
        .windows(2)
        .map(|w| w[1].arrival.saturating_duration_since(w[0].arrival))
        .max()
        .unwrap_or(Duration::MAX);
    let cdr = wait_cdr_in(&cdr_path, &answer.call_id, SIGNALLING, String::new);
    let keys = cdr["results"]["keys"].as_str().unwrap_or("").to_string();
    let ok = ncc >= MIN_NCC && max_gap <= MAX_GAP && keys == KEYS;
    println!(
        "PROBE ncc={ncc:.4} max_gap_ms={} keys={keys} pressed={KEYS} packets={} answer_ms={} prompt_at_ms={} ok={}",
        max_gap.as_millis(),
        packets.len(),
        answered_in.as_millis(),
        lag / 8,
        u8::from(ok)
    );
    assert!(
        ncc >= MIN_NCC,
        "the probe heard main_menu at NCC {ncc:.4} < {MIN_NCC}"
    );
    assert!(
        max_gap <= MAX_GAP,
        "a gap of {} ms between rivr's packets (limit {} ms)",
        max_gap.as_millis(),
        MAX_GAP.as_millis()
    );
    assert_eq!(
        keys, KEYS,
        "rivr recognised {keys:?}, the probe pressed {KEYS}: {cdr}"
    );
}
