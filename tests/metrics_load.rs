//! Issue 13's `/metrics` under a load: SIPp places 100 calls (RTP both
//! ways, 10 new calls a second, held 3 s each) into rivr's menu while the
//! test scrapes `/metrics` every 500 ms. Every scrape passes `promtool
//! check metrics` with no warning; the live gauge saw calls up; and at the
//! end rivr's counters agree with SIPp's own: calls offered = SIPp's
//! created, inbound legs ended answered = SIPp's successful, one media
//! close and one jitter-buffer delay sample per call, and the RTP rivr
//! received is at least what SIPp's 3 s of audio per call makes. During
//! the load, `/calls` shows each answered call's codec (PCMU), packets
//! received, jitter and loss.

mod common;
#[path = "http/client.rs"]
mod http;
#[path = "http/prom.rs"]
mod prom;

use std::time::{Duration, Instant};

use common::server::{Rivr, RivrConfig};
use common::sipp_load::{LoadSpec, SippLoad};
use http::{Client, READ};
use prom::{promtool, sample};

const CALLS: u32 = 100;

#[test]
fn metrics_scraped_during_a_load_pass_promtool_and_agree_with_sipp() {
    require_sipp!();
    let extra = format!(
        "[store]\nurl = \"sqlite://rivr.db\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\ntoken = \"{READ}\"\nrole = \"read\"\n"
    );
    let rivr = Rivr::start(
        "metrics-load",
        RivrConfig {
            rtp_ports: 200,
            extra_tables: extra,
            ..RivrConfig::default()
        },
    );
    let api = Client::new(rivr.http.expect("the HTTP API address"));
    let mut load = SippLoad::start(
        rivr.dir.path(),
        "metrics-load",
        rivr.sip_port,
        &LoadSpec {
            ip: "127.0.0.1",
            number: "1000",
            calls: CALLS,
            rate: 10,
            hold_ms: 3_000,
            transport: "u1",
        },
    );
    let mut scrapes = 0;
    let mut most_active = 0.0f64;
    let mut live_checked = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let result = loop {
        let m = api.get("/metrics", Some(READ));
        assert_eq!(m.status, 200, "{}", m.text);
        let (ok, said) = promtool(&m.text);
        assert!(
            ok && said.trim().is_empty(),
            "promtool check metrics: {said}"
        );
        scrapes += 1;
        most_active = most_active.max(sample(&m.text, "rivr_calls_active", &[]));
        // /calls shows each call's codec, jitter and loss: SIPp's callers
        // send PCMU without loss on loopback.
        if load.started.elapsed() > Duration::from_secs(4) && live_checked == 0 {
            let calls = api.get("/calls", Some(READ));
            for c in calls.body["calls"].as_array().expect("calls") {
                if c["state"] != "answered" || c["talk_ms"].as_u64().unwrap_or(0) < 1500 {
                    continue;
                }
                let media = &c["legs"][0]["media"];
                assert_eq!(media["codec"], "PCMU", "{c}");
                assert!(media["packets_received"].as_u64().unwrap_or(0) >= 25, "{c}");
                assert!(media["loss_pct"].as_f64().is_some_and(|l| l < 1.0), "{c}");
                assert!(media["jitter_ms"].as_f64().is_some_and(|j| j < 50.0), "{c}");
                live_checked += 1;
            }
            assert!(
                live_checked >= 5,
                "{} calls checked: {}",
                live_checked,
                calls.text
            );
        }
        if let Some(r) = load.try_result() {
            break r;
        }
        assert!(Instant::now() < deadline, "SIPp did not finish in 120 s");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        result.created,
        u64::from(CALLS),
        "{result:?}\n{}",
        load.errors()
    );
    assert_eq!(result.failed, 0, "{result:?}\n{}", load.errors());
    // The last legs close just after SIPp's last BYE is answered.
    let mut m = api.get("/metrics", Some(READ));
    let end = Instant::now() + Duration::from_secs(10);
    while sample(&m.text, "rivr_media_legs_closed_total", &[]) < f64::from(CALLS)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(200));
        m = api.get("/metrics", Some(READ));
    }
    let (ok, said) = promtool(&m.text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
    println!(
        "[metrics-load] {scrapes} scrapes during the load, at most {most_active} calls active, {live_checked} live calls' media checked; SIPp: {} created, {} successful",
        result.created, result.successful
    );
    assert!(live_checked > 0, "/calls was never read during the load");
    let calls = f64::from(CALLS);
    assert!(
        most_active >= 10.0,
        "the live gauge saw {most_active} calls up at most"
    );
    assert_eq!(sample(&m.text, "rivr_calls_offered_total", &[]), calls);
    assert_eq!(
        sample(
            &m.text,
            "rivr_call_legs_ended_total",
            &[("direction", "inbound"), ("outcome", "answered")]
        ),
        result.successful as f64,
        "{}",
        m.text
    );
    assert_eq!(sample(&m.text, "rivr_call_legs_ended_total", &[]), calls);
    assert_eq!(sample(&m.text, "rivr_calls_refused_total", &[]), 0.0);
    assert_eq!(sample(&m.text, "rivr_calls_active", &[]), 0.0);
    assert_eq!(sample(&m.text, "rivr_media_legs_closed_total", &[]), calls);
    assert_eq!(
        sample(&m.text, "rivr_jitter_buffer_delay_seconds_count", &[]),
        calls
    );
    assert_eq!(
        sample(
            &m.text,
            "rivr_script_ends_total",
            &[("end", "caller_hung_up")]
        ),
        calls,
        "SIPp hung up every call"
    );
    // 3 s of 20 ms packets per call, less what the call setup takes.
    let received = sample(&m.text, "rivr_rtp_packets_received_total", &[]);
    assert!(
        received >= calls * 100.0,
        "rivr received {received} RTP packets for {CALLS} calls of 3 s"
    );
    assert!(sample(&m.text, "rivr_rtp_packets_sent_total", &[]) >= calls * 100.0);
}
