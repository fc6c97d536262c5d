//! Issue 13's HTTP API against a running `rivr serve` (127.0.0.1, port 0),
//! with a real HTTP client (ureq), SIPp as the caller and the carrier, and
//! `rivr smsc-sim` as the SMSC: every route, auth failures (401, 403),
//! bad JSON, an oversized body, unknown routes and ids; live calls listed
//! and one hung up (SIPp sees rivr's BYE); an outbound call placed by
//! `POST /calls` reaches the carrier; `/metrics` passes `promtool check
//! metrics` and its call counts agree with SIPp's and the CDRs; `POST
//! /drain` turns `/ready` to 503 and ends rivr once its calls are done.

mod common;
#[path = "smpp/harness.rs"]
mod harness;
#[path = "http/client.rs"]
mod http;
#[path = "http/prom.rs"]
mod prom;

use std::time::{Duration, Instant};

use common::carrier::Carrier;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};
use http::{Answer, Client, ADMIN, READ};
use prom::{promtool, sample};
use serde_json::{json, Value};

/// Fails unless the answer is a JSON error with a message.
fn assert_json_error(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    assert!(
        a.body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no JSON error message in {}",
        a.text
    );
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn every_route_with_auth_errors_live_calls_and_metrics() {
    require_sipp!();
    let sim_dir = harness::temp_dir("api-smsc");
    let sim = harness::Sim::start(&sim_dir, &["--receipt-delay-ms", "100"]);
    // The carrier for the outbound call: answers, holds 1 s, hangs up.
    let carrier_dir = harness::temp_dir("api-carrier");
    let carrier = Carrier::start(
        &carrier_dir,
        "api",
        "uas_answer_bye.xml",
        1000,
        &[("rtp_port", "9".into()), ("codec", "0".into())],
    );
    let extra = format!(
        "[store]\nurl = \"sqlite://rivr.db\"\n\
         [smpp]\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"rivrsim\"\npassword = \"pw\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 4096\n\
         [[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [[http.token]]\ntoken = \"{READ}\"\nrole = \"read\"\n\
         [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{}\"\nmax_channels = 4\ncps = 5\noptions_interval = 0\n",
        sim.port, carrier.port
    );
    let hold = "answer();\nsleep(30000);\nhangup();\n";
    let rivr = Rivr::start(
        "api",
        RivrConfig {
            extra_tables: extra,
            ..RivrConfig::default()
        }
        .script("3000", "hold.rhai", hold),
    );
    let http = rivr.http.expect("rivr printed its HTTP API address");
    let api = Client::new(http);

    // Open probes.
    let h = api.get("/health", None);
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.body["status"], "ok");
    let r = api.get("/ready", None);
    assert_eq!(r.status, 200, "{}", r.text);

    // Auth: none, wrong, read-only on a write.
    for path in ["/calls", "/trunks", "/metrics", "/sms/inbound"] {
        let a = api.get(path, None);
        assert_json_error(&a, 401, path);
        assert!(
            a.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v.starts_with("Bearer")),
            "{path}: no WWW-Authenticate: Bearer"
        );
        assert_json_error(&api.get(path, Some("not-a-token-at-all-xxxx")), 401, path);
        assert_eq!(
            api.get(path, Some(READ)).status,
            200,
            "{path} with the read token"
        );
    }
    let a = api.post_json("/calls", Some(READ), r#"{"number":"1"}"#);
    assert_json_error(&a, 403, "POST /calls with the read token");
    let a = api.delete("/calls/x", Some(READ));
    assert_json_error(&a, 403, "DELETE with the read token");
    assert_json_error(&api.get("/nope", Some(READ)), 404, "an unknown route");

    // Bad requests name what is wrong.
    let a = api.post_json("/calls", Some(ADMIN), "{not json");
    assert_json_error(&a, 400, "bad JSON");
    let a = api.post_json("/calls", Some(ADMIN), r#"{"number":"1","colour":"red"}"#);
    assert!(
        a.status == 422 && a.text.contains("colour"),
        "unknown field: {} {}",
        a.status,
        a.text
    );
    let a = api.post_json("/calls", Some(ADMIN), r#"{"number":"1","trunk":"nope"}"#);
    assert_json_error(&a, 400, "unknown trunk");
    assert_eq!(a.body["field"], "trunk", "{}", a.text);
    let a = api.post_json("/calls", Some(ADMIN), r#"{"number":"  "}"#);
    assert_eq!(a.body["field"], "number", "{}", a.text);
    let big = json!({ "to": "15550001", "text": "x".repeat(8000) }).to_string();
    assert_json_error(
        &api.post_json("/sms", Some(ADMIN), &big),
        413,
        "a body over max_body_bytes",
    );
    let a = api.post_json("/sms", Some(ADMIN), r#"{"to":"12ab","text":"x"}"#);
    assert_json_error(&a, 400, "a bad SMS number");
    assert_eq!(a.body["field"], "to");

    // Live calls: one inbound call held by its script, listed, hung up.
    let mut caller = Sipp::start(
        rivr.dir.path(),
        "api-held",
        rivr.sip_port,
        &CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            ..CallSpec::default()
        },
    );
    caller.wait_answer(Duration::from_secs(20));
    let mut listed = Value::Null;
    assert!(
        wait_for(Duration::from_secs(5), || {
            listed = api.get("/calls", Some(READ)).body;
            listed["count"] == 1 && listed["calls"][0]["state"] == "answered"
        }),
        "the held call is not listed as answered: {listed}"
    );
    let call = &listed["calls"][0];
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["to"], "3000");
    assert_eq!(call["legs"][0]["transport"], "sip");
    assert!(call["script"]
        .as_str()
        .is_some_and(|s| s.ends_with("hold.rhai")));
    let id = call["id"].as_str().expect("a call id").to_string();
    let a = api.delete(&format!("/calls/{id}"), Some(ADMIN));
    assert_eq!(a.status, 204, "{}", a.text);
    // SIPp's scenario passes only if rivr sent the BYE.
    caller.expect_pass(Duration::from_secs(20));
    let cdr = rivr.wait_cdr_of(&id, Duration::from_secs(10));
    assert_eq!(cdr["end"], "operator-hangup", "{cdr}");
    assert!(wait_for(Duration::from_secs(5), || api
        .get("/calls", Some(READ))
        .body["count"]
        == 0));
    assert_json_error(
        &api.delete(&format!("/calls/{id}"), Some(ADMIN)),
        404,
        "a call already gone",
    );

    // An outbound call through the carrier trunk.
    let a = api.post_json(
        "/calls",
        Some(ADMIN),
        r#"{"number":"15550100","trunk":"carrier"}"#,
    );
    assert_eq!(a.status, 202, "{}", a.text);
    let out_id = a.body["id"].as_str().expect("an id").to_string();
    let out = rivr.wait_cdr_of(&out_id, Duration::from_secs(20));
    assert_eq!(out["outcome"], "answered", "{out}");
    assert_eq!(out["direction"], "outbound");
    assert_eq!(out["trunk"], "carrier");

    // CDRs from the store, paged, filtered, bad parameters named.
    let mut ids = Vec::new();
    let mut after = String::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            api.get("/cdrs", Some(READ)).body["count"] == 2
        }),
        "two CDR rows in the store"
    );
    for _ in 0..3 {
        let q = if after.is_empty() {
            "/cdrs?limit=1".to_string()
        } else {
            format!("/cdrs?limit=1&after={after}")
        };
        let page = api.get(&q, Some(READ));
        assert_eq!(page.status, 200, "{}", page.text);
        for row in page.body["cdrs"].as_array().expect("rows") {
            ids.push(row["call_id"].as_str().unwrap_or("").to_string());
        }
        match page.body["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    assert_eq!(
        ids,
        [id.clone(), out_id.clone()],
        "pages in order, no duplicate"
    );
    let answered = api.get("/cdrs?outcome=answered&number=15550100", Some(READ));
    assert_eq!(answered.body["count"], 1, "{}", answered.text);
    assert_eq!(answered.body["cdrs"][0]["trunk"], "carrier");
    let bad = api.get("/cdrs?outcome=maybe", Some(READ));
    assert_json_error(&bad, 400, "a bad outcome");
    assert_eq!(bad.body["field"], "outcome");
    assert_json_error(
        &api.get("/cdrs?since=yesterday", Some(READ)),
        400,
        "a bad time",
    );

    // Trunks.
    let t = api.get("/trunks", Some(READ));
    assert_eq!(t.status, 200);
    let trunk = &t.body["trunks"][0];
    assert_eq!(trunk["name"], "carrier", "{}", t.text);
    assert_eq!(trunk["kind"], "sip");
    assert_eq!(trunk["max_channels"], 4);
    assert_eq!(trunk["channels_in_use"], 0);

    // SMS: sent, delivered (the simulator's receipt), unknown ids.
    let a = api.post_json(
        "/sms",
        Some(ADMIN),
        r#"{"to":"+15550001","text":"hello from the API"}"#,
    );
    assert_eq!(a.status, 202, "{}", a.text);
    let sms_id = a.body["id"].as_str().expect("an SMS id").to_string();
    let mut st = Value::Null;
    assert!(
        wait_for(Duration::from_secs(20), || {
            st = api.get(&format!("/sms/{sms_id}"), Some(READ)).body;
            st["state"] == "delivered"
        }),
        "SMS state: {st}"
    );
    assert_eq!(st["parts"][0]["state"], "delivered");
    assert_eq!(sim.accepted().len(), 1, "the SMSC got one text");
    assert_json_error(&api.get("/sms/sms-none", Some(READ)), 404, "an unknown SMS");
    let link = api.get("/sms/link", Some(READ));
    assert_eq!(link.status, 200, "{}", link.text);
    assert_eq!(link.body["transport"], "smpp");
    assert_eq!(link.body["bound"], true, "{}", link.text);
    assert_eq!(link.body["accepted"], 1, "{}", link.text);
    assert_eq!(link.body["receipts"], 1, "{}", link.text);
    assert_eq!(link.body["outstanding"], 0);
    let inbound = api.get("/sms/inbound?since_ms=0", Some(READ));
    assert_eq!(inbound.status, 200, "{}", inbound.text);
    let results = api.get("/sms/results?route=survey", Some(READ));
    assert_eq!(results.status, 200, "{}", results.text);
    assert_eq!(results.body["count"], 0, "{}", results.text);
    assert_json_error(
        &api.get("/sms/results?rout=survey", Some(READ)),
        400,
        "an unknown parameter",
    );
    assert_json_error(
        &api.get("/sms/inbound?since_ms=soon", Some(READ)),
        400,
        "a bad query",
    );

    // Metrics: promtool's rules, and the counts against SIPp's and the CDRs.
    // Media counters grow when a leg's media closes, just after its CDR.
    let mut m = api.get("/metrics", Some(READ));
    assert!(
        wait_for(Duration::from_secs(5), || {
            m = api.get("/metrics", Some(READ));
            sample(&m.text, "rivr_media_legs_closed_total", &[]) == 2.0
        }),
        "two legs' media closed: {}",
        m.text
    );
    assert_eq!(m.status, 200);
    let (ok, said) = promtool(&m.text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics: {said}\n{}",
        m.text
    );
    let cdrs = rivr.cdrs();
    let inbound_legs = cdrs.iter().filter(|c| c["direction"] == "inbound").count();
    let outbound_legs = cdrs.iter().filter(|c| c["direction"] == "outbound").count();
    assert_eq!((inbound_legs, outbound_legs), (1, 1), "CDRs: {cdrs:?}");
    assert_eq!(
        sample(
            &m.text,
            "rivr_call_legs_ended_total",
            &[("direction", "inbound")]
        ),
        1.0,
        "{}",
        m.text
    );
    assert_eq!(
        sample(
            &m.text,
            "rivr_call_legs_ended_total",
            &[
                ("direction", "outbound"),
                ("trunk", "carrier"),
                ("outcome", "answered")
            ]
        ),
        1.0
    );
    // SIPp placed one call at rivr and took one from it.
    assert_eq!(sample(&m.text, "rivr_calls_offered_total", &[]), 1.0);
    assert_eq!(sample(&m.text, "rivr_calls_active", &[]), 0.0);
    assert_eq!(
        sample(&m.text, "rivr_trunk_channels_max", &[("trunk", "carrier")]),
        4.0
    );
    // Each closed leg gave one jitter-buffer delay sample (taken by the
    // scrapes above and this one together).
    assert_eq!(
        sample(&m.text, "rivr_jitter_buffer_delay_seconds_count", &[]),
        2.0,
        "{}",
        m.text
    );
    // The SMSC's side: one submit accepted, one receipt, bound.
    assert_eq!(sample(&m.text, "rivr_smpp_bound", &[]), 1.0, "{}", m.text);
    assert_eq!(
        sample(
            &m.text,
            "rivr_smpp_responses_total",
            &[("result", "accepted")]
        ),
        sim.accepted().len() as f64
    );
    assert_eq!(sample(&m.text, "rivr_smpp_receipts_total", &[]), 1.0);
    // The held call's script was ended by the operator's hang-up.
    assert_eq!(
        sample(
            &m.text,
            "rivr_script_ends_total",
            &[("end", "caller_hung_up")]
        ),
        1.0,
        "{}",
        m.text
    );
    assert_eq!(sample(&m.text, "rivr_script_limits_hit_total", &[]), 0.0);
    assert_eq!(
        sample(&m.text, "rivr_dtmf_digits_total", &[]),
        0.0,
        "no key was pressed"
    );
    assert!(
        m.text.contains("rivr_store_query_seconds_bucket"),
        "{}",
        m.text
    );
    drop(carrier);
    // POST /drain: admin only; with no call up rivr exits 0.
    assert_json_error(
        &api.post_json("/drain", Some(READ), ""),
        403,
        "drain with the read token",
    );
    let d = api.post_json("/drain", Some(ADMIN), "");
    assert_eq!(d.status, 202, "{}", d.text);
    let mut rivr = rivr;
    let status = rivr.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "rivr did not exit 0 after POST /drain: {status:?}\n{}",
        rivr.stderr()
    );
}

#[test]
fn ready_is_503_while_draining_and_a_second_drain_is_200() {
    require_sipp!();
    let extra = format!(
        "[store]\nurl = \"sqlite://rivr.db\"\n\
         [server]\ndrain_timeout_s = 30\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n"
    );
    let rivr = Rivr::start(
        "api-drain",
        RivrConfig {
            extra_tables: extra,
            ..RivrConfig::default()
        }
        .script("3000", "hold.rhai", "answer();\nsleep(30000);\nhangup();\n"),
    );
    let api = Client::new(rivr.http.expect("the HTTP API address"));
    // A call held up keeps the drain going while /ready is read.
    let mut caller = Sipp::start(
        rivr.dir.path(),
        "api-drain-held",
        rivr.sip_port,
        &CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            ..CallSpec::default()
        },
    );
    caller.wait_answer(Duration::from_secs(20));
    assert_eq!(api.get("/ready", None).status, 200);
    assert_eq!(api.post_json("/drain", Some(ADMIN), "").status, 202);
    let r = api.get("/ready", None);
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("draining"), "{}", r.text);
    assert_eq!(api.post_json("/drain", Some(ADMIN), "").status, 200);
    // The held call is still up: the drain did not cut it.
    assert_eq!(api.get("/calls", Some(ADMIN)).body["count"], 1);
    let mut rivr = rivr;
    rivr.signal("TERM");
    caller.expect_pass(Duration::from_secs(20));
    assert!(rivr
        .wait_exit(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
}
