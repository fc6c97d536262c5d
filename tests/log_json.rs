//! `rivr --log-format json serve` (issue 13 §7): a call from SIPp, then
//! every line rivr wrote to stderr must parse as one JSON object with a
//! timestamp, a level and a message, and the call's lines must carry its
//! id — the same id its CDR has: `id` on the signalling line that starts
//! it, `span.id` on every line its script logs.

mod common;

use std::time::Duration;

use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;
use serde_json::Value;

#[test]
fn every_stderr_line_is_json_and_the_calls_lines_carry_its_id() {
    require_sipp!();
    let cfg = RivrConfig {
        serve_args: vec!["--log-format".into(), "json".into()],
        ..RivrConfig::default()
    }
    .script(
        "4000",
        "logs.rhai",
        "answer();\nlog(\"hello from the script\");\nsleep(5000);\nhangup();\n",
    );
    let mut rivr = Rivr::start("log-json", cfg);
    let mut caller = Caller::answered(
        &rivr,
        "log-json",
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "4000",
            hold_ms: 1000,
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    let id = cdr["call_id"]
        .as_str()
        .expect("the CDR's call_id")
        .to_string();
    rivr.wait_log(SIGNALLING, |l| l.contains("script ended"))
        .unwrap_or_else(|| panic!("the script did not end:\n{}", rivr.stderr()));
    let status = rivr.terminate(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    let stderr = rivr.stderr();
    let mut lines = Vec::new();
    for (n, line) in stderr.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line {} is not JSON ({e}): {line}", n + 1));
        for key in ["timestamp", "level", "message"] {
            assert!(v[key].is_string(), "line {} has no {key}: {line}", n + 1);
        }
        lines.push(v);
    }
    let message = |v: &Value| v["message"].as_str().unwrap_or_default().to_string();
    // `number` is the dialed number as it came off the wire, so rivr logs
    // it escaped and quoted (Debug): a control character cannot forge a line.
    let started: Vec<&Value> = lines
        .iter()
        .filter(|v| message(v) == "call started" && v["number"] == "\"4000\"")
        .collect();
    assert_eq!(started.len(), 1, "{stderr}");
    assert_eq!(started[0]["id"], id.as_str(), "{}", started[0]);
    // The call's lines: the signalling ones name it as `id` (or `call` for
    // the script's own log), the script's carry its span.
    let of_call: Vec<&Value> = lines
        .iter()
        .filter(|v| {
            v["id"] == id.as_str() || v["call"] == id.as_str() || v["span"]["id"] == id.as_str()
        })
        .collect();
    let said: Vec<String> = of_call.iter().map(|v| message(v)).collect();
    println!(
        "[log-json] {} lines, all JSON; call {id}: {} lines carry its id: {said:?}",
        lines.len(),
        of_call.len()
    );
    for (what, found) in [
        ("call started", said.iter().any(|m| m == "call started")),
        (
            "call ended",
            said.iter().any(|m| m.starts_with("call ended")),
        ),
        ("script ended", said.iter().any(|m| m == "script ended")),
        (
            "the script's log()",
            of_call.iter().any(|v| {
                v["script_log"]
                    .as_str()
                    .is_some_and(|s| s.contains("hello from the script"))
                    && v["span"]["name"] == "call"
            }),
        ),
    ] {
        assert!(found, "no `{what}` line with the call's id: {of_call:#?}");
    }
    // No line of the script's runs outside a call span: a line that names
    // the script's log or its end names the call.
    let outside: Vec<&Value> = lines
        .iter()
        .filter(|v| v["script_log"].is_string() || message(v) == "script ended")
        .filter(|v| v["span"]["id"].is_null())
        .collect();
    assert!(
        outside.is_empty(),
        "script lines without a call id: {outside:#?}"
    );
}
