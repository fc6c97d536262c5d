//! `send_sms` from a call flow: the script gets rivr's message id at once,
//! the message reaches an SMSC (rivr's simulator, over real SMPP on
//! 127.0.0.1) and its receipt makes it `delivered` for `rivr sms status`.

mod common;
#[path = "smpp/harness.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

const THANKS: &str = "answer();\nlet id = send_sms(\"15550009\", \"Thanks for calling rivr.\");\nset_result(\"sms\", id);\nhangup();\n";

#[test]
fn a_script_sends_an_sms_through_smpp_and_it_is_delivered() {
    require_sipp!();
    let simdir = harness::temp_dir("script-sms-sim");
    let sim = harness::Sim::start(&simdir, &["--receipt-delay-ms", "50"]);
    let db = simdir.join("rivr.db");
    let tables = format!(
        "[store]\nurl = \"sqlite://{}\"\n[smpp]\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"rivrsim\"\npassword = \"pw\"\n",
        db.display(),
        sim.port
    );
    let mut cfg = RivrConfig::default().script("4000", "thanks.rhai", THANKS);
    cfg.extra_tables = tables;
    let rivr = Rivr::start("script-sms", cfg);
    let mut caller = Caller::answered(
        &rivr,
        "script-sms",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "4000",
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    let id = cdr["results"]["sms"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!("[send_sms] CDR: {cdr}");
    assert!(!id.is_empty(), "send_sms returned no id: {cdr}");
    assert_eq!(cdr["script"], "hangup", "{cdr}");
    // the state, read from the store by the CLI, reaches delivered
    let config = rivr.dir.join("rivr.toml");
    let delivered = harness::wait_until(Duration::from_secs(30), || {
        let out = Command::new(harness::rivr_bin())
            .args(["sms", "status", "--config"])
            .arg(&config)
            .arg(&id)
            .output()
            .expect("run rivr sms status");
        String::from_utf8_lossy(&out.stdout).contains("delivered")
    });
    assert!(delivered, "message {id} never reached delivered");
    let accepted = sim.accepted();
    assert_eq!(accepted.len(), 1, "the SMSC accepted it exactly once");
}
