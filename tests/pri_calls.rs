//! Calls over ISDN PRI through the whole of rivr — `rivr serve` and
//! `rivr call` as processes, the call layer, scripts and B-channel media —
//! against libpri as the carrier's network side (tests/pri/libpri_peer.c,
//! E1, EuroISDN, A-law, on the socket span). An incoming SETUP routes by
//! its called number to a script whose prompt reaches the carrier (the
//! peer's recording correlates with it) and whose gather hears the
//! carrier's in-band keys; outgoing calls through a `kind = "pri"` trunk
//! end with the outcome and cause libpri gives each number, and an
//! answered one hears the carrier's tone (the script's in-band detector
//! and the peer's counters show media both ways).

mod common;
#[path = "http/client.rs"]
mod http;

use std::path::Path;
use std::time::{Duration, Instant};

use common::audio::{align, g711_roundtrip};
use common::caller::prompt;
use common::libpri::{read_recording, LibpriPeer, SpanOptions, SpanPaths};
use common::pri_rivr::{self, span_table, t1_span_table, trunk_table};
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use serde_json::Value;

/// libpri retries SABME every second; rivr connects at start.
const LINK: Duration = Duration::from_secs(10);
/// The issue's bar for "the audio heard is the prompt".
const MIN_NCC: f64 = 0.9;

/// One span (`span1`, rivr the user side) and the PRI trunk `e1` on it.
fn span_tables(paths: &SpanPaths) -> String {
    span_table("span1", paths) + trunk_table(&["span1"], "ring_timeout = 10").as_str()
}

/// The peer as the network side of an E1 that records every call.
fn carrier(dir: &Path, paths: &SpanPaths) -> LibpriPeer {
    carrier_on(dir, paths, SpanOptions::e1())
}

fn carrier_on(dir: &Path, paths: &SpanPaths, line: SpanOptions) -> LibpriPeer {
    let opts = SpanOptions {
        record_dir: Some(dir.to_path_buf()),
        clear_after_ms: Some(1_500),
        no_answer_ms: Some(1_000),
        ..line
    };
    LibpriPeer::start(dir, "network", paths, &opts)
}

const INBOUND_SCRIPT: &str = r#"
answer();
play("main_menu");
let keys = gather(#{ max_digits: 4, timeout: 8000 });
set_result("keys", keys);
hangup();
"#;

#[test]
fn an_incoming_setup_runs_its_script_its_prompt_reaches_the_carrier_and_inband_keys_drive_gather() {
    incoming_call("pri-calls-in", false);
}

/// The same on a T1: National ISDN-2, µ-law on the B-channel.
#[test]
fn the_same_over_a_t1_span_in_national_isdn_2_and_mu_law() {
    incoming_call("pri-calls-t1", true);
}

fn incoming_call(label: &str, t1: bool) {
    let dir = Scratch::new(label);
    let paths = SpanPaths::in_dir(dir.path(), "span1");
    let (peer, tables, ext, pt) = if t1 {
        let peer = carrier_on(dir.path(), &paths, SpanOptions::t1());
        let tables =
            t1_span_table("span1", &paths) + trunk_table(&["span1"], "ring_timeout = 10").as_str();
        (peer, tables, "ulaw", 0)
    } else {
        (carrier(dir.path(), &paths), span_tables(&paths), "alaw", 8)
    };
    let tables = format!(
        "{tables}[http]\nlisten = \"127.0.0.1:0\"\n[[http.token]]\ntoken = \"{}\"\n",
        http::READ
    );
    let rivr = Rivr::start(
        label,
        RivrConfig {
            extra_tables: tables,
            ..RivrConfig::default()
        }
        .script("7001", "in.rhai", INBOUND_SCRIPT),
    );
    peer.wait_name("up", LINK);
    // The API's view of the span: its D-channel up, its B-channels.
    let api = http::Client::new(rivr.http.expect("the HTTP API address"));
    let span = |api: &http::Client| {
        let t = api.get("/trunks", Some(http::READ));
        t.body["trunks"][0]["spans"][0].clone()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while span(&api)["up"] != true && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = span(&api);
    assert_eq!(s["name"], "span1", "{s}");
    assert_eq!(s["up"], true, "{s}");
    assert_eq!(s["channels"], if t1 { 23 } else { 30 }, "{s}");
    assert_eq!(s["channels_in_use"], 0, "{s}");

    let call = peer.call("7001", "5551234", None);
    let connect = peer.wait_call(call, "connect", Duration::from_secs(10));
    let busy = span(&api);
    assert_eq!(
        busy["channels_in_use"], 1,
        "a call holds one B-channel: {busy}"
    );
    // Typed ahead while the prompt plays; the gather gets them after it.
    peer.send(&format!("dtmf {call} 42#"));
    let end = peer.wait_end(call, Duration::from_secs(40));
    let channel = end.num("channel").expect("end has channel=");
    eprintln!("connect: {}\nend: {}", connect.line, end.line);

    // What rivr sent on the B-channel is the prompt in the span's law.
    let menu = prompt("main_menu");
    let reference = g711_roundtrip(menu.pcm_8k(), pt);
    let heard = read_recording(&dir.join(&format!("call-{call}.{ext}")), peer.law);
    let (lag, ncc) = align(&heard, &reference);
    eprintln!(
        "recorded {} ms; main_menu starts {} ms in, NCC = {ncc:.4}",
        heard.len() / 8,
        lag / 8
    );
    assert!(
        ncc >= MIN_NCC,
        "the carrier's recording does not correlate with main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );

    let cdr = wait_pri_cdr(&rivr, Duration::from_secs(10));
    assert_eq!(cdr["direction"], "inbound", "{cdr}");
    assert_eq!(cdr["to"], "7001", "{cdr}");
    assert_eq!(cdr["from"], "5551234", "{cdr}");
    assert_eq!(cdr["trunk"], "e1", "{cdr}");
    assert_eq!(
        cdr["transport_id"],
        format!("span1/{channel}"),
        "the CDR names the span and timeslot: {cdr}"
    );
    assert_eq!(cdr["outcome"], "answered", "{cdr}");
    assert_eq!(
        cdr["results"]["keys"], "42",
        "the in-band keys reached the gather: {cdr}"
    );
    assert_eq!(cdr["end"], "local-bye", "{cdr}");
}

/// The first CDR record of a PRI leg.
fn wait_pri_cdr(rivr: &Rivr, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(c) = rivr.cdrs().into_iter().find(|c| c["transport"] == "pri") {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no PRI CDR within {timeout:?}; stderr:\n{}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `rivr call --trunk e1 NUMBER` with a config of one span; its JSON line.
fn rivr_call(
    dir: &Path,
    paths: &SpanPaths,
    label: &str,
    script: Option<&str>,
    number: &str,
) -> Value {
    let lines = pri_rivr::rivr_call(
        dir,
        label,
        &span_tables(paths),
        script,
        &[],
        number,
        Duration::from_secs(40),
    );
    lines.into_iter().last().expect("one line")
}

/// Sends a key in-band, then gathers the carrier's in-band keys.
const OUTBOUND_SCRIPT: &str = r#"
play("tone:dtmf:7");
let keys = gather(#{ max_digits: 4, timeout: 8000 });
set_result("keys", keys);
hangup();
"#;

#[test]
fn outgoing_calls_over_a_pri_trunk_end_with_the_outcome_of_libpris_cause() {
    let dir = Scratch::new("pri-calls-out");
    let paths = SpanPaths::in_dir(dir.path(), "span1");
    let peer = carrier(dir.path(), &paths);
    // (number, outcome, Q.850 cause)
    let plan: [(&str, &str, u64); 5] = [
        ("5551232", "busy", 17),
        ("5551234", "congestion", 34),
        ("5551231", "unreachable", 1),
        ("5551236", "no_answer", 19),
        ("5551235", "answered", 16),
    ];
    for (number, outcome, q850) in plan {
        let json = rivr_call(dir.path(), &paths, &format!("out-{number}"), None, number);
        eprintln!("{number}: {json}");
        assert_eq!(json["outcome"], outcome, "{number}: {json}");
        assert_eq!(json["trunk"], "e1", "{number}: {json}");
        assert_eq!(json["q850"].as_u64(), Some(q850), "{number}: {json}");
    }

    // Answered (the carrier sends its tone): the script's in-band key
    // reaches the carrier's detector, and the carrier's in-band keys reach
    // the script's gather.
    let mark = peer.mark();
    let (d, p) = (dir.path().to_path_buf(), paths.bchannels.clone());
    let dchannel = paths.dchannel.clone();
    let dialer = std::thread::spawn(move || {
        let paths = SpanPaths {
            dchannel,
            bchannels: p,
        };
        rivr_call(&d, &paths, "out-answered", Some(OUTBOUND_SCRIPT), "5551230")
    });
    let setup = peer.wait_from(mark, Duration::from_secs(15), "the SETUP", |e| {
        e.name == "setup"
    });
    let call = setup.call().expect("setup has call=");
    let dtmf = peer.wait_from(mark, Duration::from_secs(10), "a key from rivr", |e| {
        e.name == "dtmf"
    });
    assert_eq!(dtmf.get("digit"), Some("7"), "{}", dtmf.line);
    peer.send(&format!("dtmf {call} 95#"));
    let json = dialer.join().expect("rivr call ran");
    eprintln!("answered: {json}");
    assert_eq!(json["outcome"], "answered", "{json}");
    assert_eq!(
        json["results"]["keys"], "95",
        "the carrier's in-band keys reached the gather: {json}"
    );
    let end = peer.wait_end(call, Duration::from_secs(5));
    let rx = end.num("rx").unwrap_or(0);
    let tx = end.num("tx").unwrap_or(0);
    // Frames both ways for the whole talk time (50 a second), less one
    // tick at each end.
    let talk = json["talk_ms"].as_i64().unwrap_or(0);
    let want = talk / 20 - 2;
    assert!(
        want >= 20 && rx >= want && tx >= want,
        "frames rx {rx} tx {tx}, want {want} for {talk} ms: {}",
        end.line
    );
}
