//! `http_get`/`http_post` from a call flow, end to end: a SIPp caller
//! calls a flow that looks up a JSON balance and posts survey answers to a
//! web service this test runs on 127.0.0.1; a slow service times out at the
//! requested timeout and the flow catches it and goes on; a host not in
//! `[script] http_allow` is refused without a connection (a decoy server on
//! it sees none); a closed port is refused. Results come from the CDR.
//! A flow's `on_hangup` posts after the caller hung up.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

/// What the web service got: one entry per request.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    /// Header lines, names in lower case.
    headers: Vec<(String, String)>,
    body: String,
    /// For /slow: how long after the request the client closed.
    closed_after: Option<Duration>,
}

type Log = Arc<Mutex<Vec<Got>>>;

/// The web service: `/balance` answers JSON, `/survey` takes a POST,
/// `/slow` never answers (it waits for the client to give up).
fn service() -> (u16, Log) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the web service");
    let port = l.local_addr().expect("its port").port();
    let log: Log = Arc::default();
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let log = log2.clone();
            std::thread::spawn(move || handle(s, &log));
        }
    });
    (port, log)
}

fn handle(mut s: TcpStream, log: &Log) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((head, body)) = read_request(&mut s) else {
        return;
    };
    let at = Instant::now();
    let mut lines = head.lines();
    let first: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut got = Got {
        method: first.first().copied().unwrap_or_default().to_string(),
        path: first.get(1).copied().unwrap_or_default().to_string(),
        headers,
        body,
        closed_after: None,
    };
    let reply = |status: &str, json: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        )
    };
    if got.path.starts_with("/balance") {
        let _ = s.write_all(reply("200 OK", r#"{"balance": 1234, "currency": "EUR"}"#).as_bytes());
    } else if got.path == "/survey" || got.path == "/after-hangup" {
        let _ = s.write_all(reply("201 Created", r#"{"stored": true}"#).as_bytes());
    } else if got.path == "/slow" {
        // No answer: wait until the client closes (read gives 0 or fails).
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        got.closed_after = Some(at.elapsed());
    } else {
        let _ = s.write_all(reply("404 Not Found", "{}").as_bytes());
    }
    log.lock().expect("log").push(got);
}

/// Reads the head and a Content-Length body.
fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return Some((head.to_string(), body.to_string()));
            }
        }
    }
}

/// The flow. `{web}` is the service, `{decoy}` a server not in the list,
/// `{closed}` a port in the list with nothing listening.
const FLOW: &str = r#"
answer();
let r = http_get("http://127.0.0.1:{web}/balance?acct=" + call.to,
                 #{ headers: #{ "x-api-key": "k1" } });
set_result("balance_status", r.status);
set_result("balance", r.json.balance);
set_result("currency", r.json.currency);

let p = http_post("http://127.0.0.1:{web}/survey", #{ q1: 4, q2: "yes", caller: call.to });
set_result("survey_status", p.status);
set_result("survey_stored", p.json.stored);

let t0 = timestamp();
try {
    http_get("http://127.0.0.1:{web}/slow", #{ timeout: 1000 });
    set_result("slow", "no error");
} catch (e) {
    set_result("slow", e);
}
set_result("slow_ms", (t0.elapsed * 1000.0).to_int());

try {
    http_get("http://127.0.0.1:{decoy}/steal");
    set_result("decoy", "no error");
} catch (e) {
    set_result("decoy", e);
}
try {
    http_post("http://127.0.0.1:{closed}/x", "text");
    set_result("closed", "no error");
} catch (e) {
    set_result("closed", e);
}
set_result("went_on", true);
hangup();
"#;

#[test]
fn a_flow_reads_json_posts_answers_and_catches_timeouts_and_refusals() {
    require_sipp!();
    let (web, log) = service();
    let decoy = TcpListener::bind("127.0.0.1:0").expect("bind the decoy");
    decoy.set_nonblocking(true).expect("nonblocking decoy");
    let decoy_port = decoy.local_addr().expect("decoy port").port();
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind a port to close")
        .local_addr()
        .expect("its port")
        .port();
    let flow = FLOW
        .replace("{web}", &web.to_string())
        .replace("{decoy}", &decoy_port.to_string())
        .replace("{closed}", &closed.to_string());
    let mut cfg = RivrConfig::default().script("5000", "web.rhai", &flow);
    cfg.script_table = format!(
        "http_allow = [\"127.0.0.1:{web}\", \"127.0.0.1:{closed}\"]\nhttp_timeout_ms = 5000\n"
    );
    let rivr = Rivr::start("script-http", cfg);
    let mut caller = Caller::answered(
        &rivr,
        "script-http",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "5000",
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    let results = &cdr["results"];
    println!("[script_http] CDR results: {results}");
    assert_eq!(cdr["script"], "hangup", "the flow ran to its hangup: {cdr}");
    assert_eq!(results["went_on"], "true", "{cdr}");

    // The JSON balance.
    assert_eq!(results["balance_status"], "200", "{cdr}");
    assert_eq!(results["balance"], "1234", "{cdr}");
    assert_eq!(results["currency"], "EUR", "{cdr}");

    // The survey answers, as the service received them.
    assert_eq!(results["survey_status"], "201", "{cdr}");
    assert_eq!(results["survey_stored"], "true", "{cdr}");
    let got = log.lock().expect("log").clone();
    let balance = got
        .iter()
        .find(|g| g.path.starts_with("/balance"))
        .expect("the service got the balance lookup");
    assert_eq!(balance.method, "GET");
    assert_eq!(balance.path, "/balance?acct=5000");
    assert!(
        balance.headers.contains(&("x-api-key".into(), "k1".into())),
        "{balance:?}"
    );
    let survey = got
        .iter()
        .find(|g| g.path == "/survey")
        .expect("the service got the survey");
    assert_eq!(survey.method, "POST");
    assert!(
        survey
            .headers
            .contains(&("content-type".into(), "application/json".into())),
        "{survey:?}"
    );
    let answers: serde_json::Value =
        serde_json::from_str(&survey.body).expect("the survey body is JSON");
    assert_eq!(
        answers,
        serde_json::json!({"q1": 4, "q2": "yes", "caller": "5000"}),
        "{survey:?}"
    );

    // The slow service: the verb gave up at its 1000 ms timeout.
    let slow_ms: i64 = results["slow_ms"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("slow_ms");
    let slow = got
        .iter()
        .find(|g| g.path == "/slow")
        .expect("the service got the slow request");
    let closed_ms = slow
        .closed_after
        .expect("the client closed the slow request")
        .as_millis() as i64;
    println!(
        "[script_http] slow: the script saw {slow_ms} ms; the service saw the client close after {closed_ms} ms (timeout 1000 ms)"
    );
    assert_eq!(
        results["slow"],
        format!("http_get 127.0.0.1:{web}: timed out after 1000 ms"),
        "{cdr}"
    );
    assert!((800..=1200).contains(&slow_ms), "script: {slow_ms} ms");
    assert!((800..=1200).contains(&closed_ms), "service: {closed_ms} ms");

    // A host not in http_allow: refused before any connection.
    assert_eq!(
        results["decoy"],
        format!("http_get 127.0.0.1:{decoy_port}: the host is not in [script] http_allow"),
        "{cdr}"
    );
    match decoy.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the decoy was connected to: {other:?}"),
    }

    // A port in the list with nothing on it: connection refused.
    assert_eq!(
        results["closed"],
        format!("http_post 127.0.0.1:{closed}: connection refused"),
        "{cdr}"
    );
    assert_eq!(
        got.len(),
        3,
        "balance, survey, slow and nothing else: {got:?}"
    );
}

/// The caller hangs up during a long `sleep`; the flow's `on_hangup`
/// posts to the service, which gets it.
#[test]
fn on_hangup_posts_after_the_caller_hung_up() {
    require_sipp!();
    let (web, log) = service();
    let flow = format!(
        "answer();\nsleep(20000);\n\
         fn on_hangup() {{\n\
             let r = http_post(\"http://127.0.0.1:{web}/after-hangup\", #{{ ended: \"caller\" }});\n\
             log(\"posted: \" + r.status);\n\
         }}\n"
    );
    let mut cfg = RivrConfig::default().script("5001", "bye.rhai", &flow);
    cfg.script_table = format!("http_allow = [\"127.0.0.1:{web}\"]\n");
    let rivr = Rivr::start("script-http-bye", cfg);
    let mut caller = Caller::answered(
        &rivr,
        "script-http-bye",
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "5001",
            hold_ms: 500,
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let hung_up = Instant::now();
    let posted = loop {
        let got = log.lock().expect("log").clone();
        if let Some(g) = got.into_iter().find(|g| g.path == "/after-hangup") {
            break g;
        }
        assert!(
            hung_up.elapsed() < SIGNALLING,
            "on_hangup's post never reached the service"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "[script_http] on_hangup's post was in {} ms after SIPp ended: {}",
        hung_up.elapsed().as_millis(),
        posted.body
    );
    assert_eq!(posted.method, "POST");
    assert_eq!(posted.body, r#"{"ended":"caller"}"#);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["script"], "caller-hung-up", "{cdr}");
}
