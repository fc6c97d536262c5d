//! Hot reload, versioned (issue 14): a script edited while a call runs it
//! reaches new calls only — the call in progress finishes on the version
//! it started with — and an edit that does not compile leaves the last
//! good version serving, with the error logged as file:line:col.

mod common;

use std::time::Duration;

use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

/// Version 1 marks its call, waits, then marks it again: a call still on
/// version 1 after the edit sets both.
const V1: &str = "answer();\nset_result(\"version\", \"1\");\nsleep(3000);\nset_result(\"after_edit\", \"1\");\nhangup();\n";
const V2: &str = "answer();\nset_result(\"version\", \"2\");\nsleep(300);\nhangup();\n";
/// Line 2, column 9: the `;` where an expression should be.
const BROKEN: &str = "answer();\nlet x = ;\nset_result(\"version\", \"3\");\nhangup();\n";

fn call(rivr: &Rivr, label: &str) -> Caller {
    Caller::answered(
        rivr,
        label,
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            ..CallSpec::default()
        },
    )
}

#[test]
fn an_edit_reaches_new_calls_only_and_a_broken_edit_is_not_served() {
    require_sipp!();
    let rivr = Rivr::start(
        "reload",
        RivrConfig::default().script("3000", "reload.rhai", V1),
    );
    let script = rivr.dir.join("reload.rhai");

    let mut first = call(&rivr, "reload-v1");
    // The first call is answered, so it runs version 1; now edit.
    std::fs::write(&script, V2).expect("edit the script");
    let mut second = call(&rivr, "reload-v2");
    second.sipp.expect_pass(SIGNALLING);
    first.sipp.expect_pass(SIGNALLING);
    let cdr1 = rivr.wait_cdr(&first.answer.call_id, SIGNALLING);
    let cdr2 = rivr.wait_cdr(&second.answer.call_id, SIGNALLING);
    println!(
        "[reload] first: {}\n[reload] second: {}",
        cdr1["results"], cdr2["results"]
    );
    assert_eq!(cdr1["results"]["version"], "1", "{cdr1}");
    assert_eq!(
        cdr1["results"]["after_edit"], "1",
        "the call in progress went on with version 1 after the edit: {cdr1}"
    );
    assert_eq!(
        cdr2["results"]["version"], "2",
        "a new call runs the edit: {cdr2}"
    );
    assert_eq!(cdr2["script"], "hangup", "{cdr2}");

    std::fs::write(&script, BROKEN).expect("break the script");
    let mut third = call(&rivr, "reload-broken");
    third.sipp.expect_pass(SIGNALLING);
    let cdr3 = rivr.wait_cdr(&third.answer.call_id, SIGNALLING);
    assert_eq!(
        cdr3["results"]["version"], "2",
        "the last good version serves while the file is broken: {cdr3}"
    );
    let where_ = format!("{}:2:9:", script.display());
    let logged = rivr
        .wait_log(Duration::from_secs(5), |l| l.contains(&where_))
        .unwrap_or_else(|| panic!("no error naming {where_}:\n{}", rivr.stderr()));
    println!("[reload] logged: {}", logged.trim());
    assert!(logged.contains("goes on serving"), "{logged}");
}
