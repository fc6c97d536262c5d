//! Two-way SMS end to end over SMPP, with peers rivr did not write: an
//! SMSC built on PyPI `smpp34` (tests/smpp/smsc_smpp34.py --mo-stdin)
//! sends mobile-originated texts to a running `rivr serve`; rivr's SMS
//! survey (scripts/sms_survey.rhai) answers question by question, and the
//! SMSC's log of what rivr submitted is the witness of each reply. The
//! answers are read back with `rivr sms results`. Then "ARRÊT" (UCS-2,
//! accented) opts a number out, and a small campaign dialing it and
//! another number through SIPp as the carrier never sends its INVITE.
//! A call's script writes the same list with `opt_out(number)`.
//!
//! The same survey over Vonage's SMS API (tests/sms_http/provider_mock.py
//! over HTTPS): the texts arrive signed on rivr's inbound webhook, the
//! replies leave through the provider's send API and its request log is
//! the witness; a text posted twice is answered once; STOP opts out.

mod common;
#[path = "smpp/harness.rs"]
mod harness;
#[path = "http/client.rs"]
mod http;
#[path = "sms_http/harness.rs"]
mod sms;

use std::time::{Duration, Instant};

use common::caller::{Caller, SIGNALLING};
use common::campaign::{self, rivr_cli};
use common::carrier::Carrier;
use common::server::{repo, Rivr, RivrConfig};
use common::sipp::CallSpec;
use common::smsc::PySmsc;
use serde_json::Value;

/// The sender who answers the survey, then opts out.
const ANA: &str = "254712000011";
/// A contact of the campaign who never texted.
const BEN: &str = "254712000021";

/// Waiting for what rivr sends an SMSC.
trait WaitTexts {
    fn wait_texts(&self, dest: &str, n: usize, rivr: &Rivr) -> Vec<String>;
}

impl WaitTexts for PySmsc {
    /// Waits until rivr has submitted `n` texts to `dest`; they all.
    fn wait_texts(&self, dest: &str, n: usize, rivr: &Rivr) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.texts_to(dest);
            if t.len() >= n {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{n} texts to {dest} expected, got {t:?}\nSMSC log:\n{}\nrivr:\n{}",
                self.log(),
                rivr.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The survey of scripts/sms_survey.rhai as a person answers it: each
/// text, and the start of the reply it gets.
const SURVEY: [(&str, &str); 5] = [
    ("Survey", "1/3 How was your visit"),
    ("seven", "Please answer with a number from 1 to 5."),
    ("4", "2/3 Was the waiting time acceptable?"),
    ("Oui.", "3/3 Would you recommend us to a friend?"),
    ("no", "Thank you! Your answers help us improve."),
];

/// `rivr sms results` holds `from`'s three answers to [`SURVEY`].
fn assert_survey_answers(rivr: &Rivr, from: &str) {
    let results: Vec<Value> = rivr
        .cli(&["sms", "results", "--json", "--route", "survey"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let got: Vec<(&str, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                r["value"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (from, "visit", "4"),
            (from, "wait_ok", "yes"),
            (from, "recommend", "no")
        ]
    );
}

#[test]
fn an_sms_survey_over_smpp_then_an_opt_out_that_a_campaign_honours() {
    require_sipp!();
    let dir = harness::temp_dir("sms-flows");
    let mut smsc = PySmsc::start(&dir, "pysmsc", &["--mo-stdin"]);
    let carrier = Carrier::start_with(
        &dir,
        "sms-flows",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100", "-timeout", "120s"],
    );
    let survey = repo().join("scripts/sms_survey.rhai");
    let cfg = RivrConfig {
        extra_tables: format!(
            "{}[sms]\nopt_out_reply = \"STOP received: you will get no more messages.\"\n\
             [[sms_route]]\nname = \"survey\"\nkeyword = \"SURVEY\"\nscript = {:?}\n",
            campaign::tables(&dir.join("rivr.db"), smsc.port, carrier.port),
            survey.display().to_string(),
        ),
        ..RivrConfig::default()
    };
    let rivr = Rivr::start("sms-flows", cfg);
    let config = rivr.dir.join("rivr.toml");
    assert!(
        harness::wait_until(Duration::from_secs(20), || smsc.log().contains("binds 1")),
        "rivr never bound: {}",
        rivr.stderr()
    );

    // The survey, question by question; each answer waits for the reply
    // to the one before, as a person would.
    let t0 = Instant::now();
    let steps = SURVEY;
    for (i, (text, want)) in steps.iter().enumerate() {
        smsc.mo(ANA, "2001", text);
        let got = smsc.wait_texts(ANA, i + 1, &rivr);
        assert!(
            got[i].starts_with(want),
            "after {text:?}: {:?}, want {want:?}",
            got[i]
        );
    }
    println!(
        "[sms-flows] {} texts answered in {:?}",
        steps.len(),
        t0.elapsed()
    );
    assert_survey_answers(&rivr, ANA);
    let log = smsc.log();
    let mo_ok = log
        .lines()
        .filter(|l| l.starts_with("mo ") && l.ends_with("status=0"))
        .count();
    assert_eq!(
        mo_ok,
        steps.len(),
        "every MO acknowledged with ESME_ROK:\n{log}"
    );

    // Opt-out in French, accented, sent as UCS-2.
    smsc.mo(ANA, "2001", "ARRÊT");
    let got = smsc.wait_texts(ANA, steps.len() + 1, &rivr);
    assert_eq!(
        got.last().map(String::as_str),
        Some("STOP received: you will get no more messages.")
    );
    let dnc = rivr.cli(&["dnc", "list"]);
    assert!(
        dnc.lines().any(|l| l == format!("+{ANA} sms:ARRET")),
        "rivr dnc list:\n{dnc}"
    );

    // A campaign to both numbers: the opted-out one is never dialed.
    let id = campaign::create(
        &rivr,
        &campaign::Blast {
            contacts: 2,
            cps: 5,
            channels: 2,
            attempts: 1,
        },
        |i| format!("+{}", [ANA, BEN][i]),
    );
    rivr_cli(&config, &["start", &id]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value =
            serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
        if s["state"] == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "campaign not done: {s}\n{}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let invites: Vec<String> = carrier
        .log()
        .lines()
        .filter(|l| l.starts_with("invite "))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("number="))
                .map(str::to_string)
        })
        .collect();
    assert!(
        !invites.iter().any(|n| n == ANA),
        "the opted-out number got an INVITE: {invites:?}"
    );
    assert!(
        invites.iter().any(|n| n == BEN),
        "the other contact was dialed: {invites:?}"
    );
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let outcome = |phone: &str| {
        report
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["phone"] == phone)
            .map(|r| r["outcome"].clone())
    };
    assert_eq!(outcome(&format!("+{ANA}")), Some(Value::from("dnc")));
    assert_eq!(outcome(&format!("+{BEN}")), Some(Value::from("answered")));
}

#[test]
fn a_call_script_puts_a_number_on_the_do_not_contact_list() {
    require_sipp!();
    let rivr = Rivr::start(
        "opt-out-call",
        RivrConfig::default().script(
            "3100",
            "opt_out.rhai",
            "answer();\n\
             set_result(\"first\", opt_out(\"+254712000077\"));\n\
             set_result(\"again\", opt_out(\"254712000077\"));\n\
             hangup();\n",
        ),
    );
    let mut caller = Caller::answered(
        &rivr,
        "opt-out-call",
        CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3100",
            codecs: "8",
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let cdr = rivr.wait_cdr(&caller.answer.call_id, SIGNALLING);
    assert_eq!(cdr["results"]["first"], "true", "{cdr}");
    assert_eq!(cdr["results"]["again"], "false", "the same number: {cdr}");
    let list = rivr.cli(&["dnc", "list"]);
    assert_eq!(list.trim(), "+254712000077 script", "{list}");
}

/// The sender of the survey over Vonage, as Vonage writes numbers
/// (international, no `+`). A valid number: an opt-out from one that is
/// not (the UK drama range 07700 900xxx) is ignored.
const VONAGE_SENDER: &str = "254712000031";
/// The Vonage virtual number the survey texts are sent to.
const VONAGE_NUMBER: &str = "447700900000";
const SIGNATURE_SECRET: &str = "sig-secret-flows";

/// A signed inbound-SMS webhook as Vonage sends it by default (GET, query
/// parameters, md5hash `sig`), `n` giving its messageId.
fn vonage_inbound(api: &http::Client, n: usize, text: &str) {
    let ts = sms::now_secs().to_string();
    let mid = format!("0B{n:014X}");
    let keyword = text.split_whitespace().next().unwrap_or("").to_uppercase();
    let nonce = format!("nonce-{n}");
    let mut p = vec![
        ("msisdn", VONAGE_SENDER),
        ("to", VONAGE_NUMBER),
        ("messageId", mid.as_str()),
        ("text", text),
        ("type", "text"),
        ("keyword", keyword.as_str()),
        ("api-key", sms::KEY),
        ("message-timestamp", "2026-12-05 05:40:00"),
        ("timestamp", ts.as_str()),
        ("nonce", nonce.as_str()),
    ];
    let sig = sms::md5_sig(&p, SIGNATURE_SECRET);
    p.push(("sig", sig.as_str()));
    let query: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{k}={}", sms::enc(v)))
        .collect();
    let a = api.get(&format!("/webhooks/sms/vonage?{}", query.join("&")), None);
    assert_eq!(a.status, 200, "inbound {text:?}: {}", a.text);
}

/// The send requests (form fields) rivr made to the provider for `to`.
fn vonage_sends_to(mock: &sms::Mock, to: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    mock.requests()
        .iter()
        .filter(|r| r["path"] == "/sms/json")
        .map(|r| sms::form(r["body"].as_str().unwrap_or_default()))
        .filter(|f| f.get("to").map(String::as_str) == Some(to))
        .collect()
}

#[test]
fn an_sms_survey_over_vonage_webhooks_then_a_stop() {
    let dir = sms::scratch("sms-flows-vonage");
    let mock = sms::Mock::start(&dir);
    let hook = "https://rivr.example.org/webhooks/sms/vonage";
    let survey = repo().join("scripts/sms_survey.rhai");
    // The flow's tables follow [sms_http]'s keys in the config.
    let (rivr, api) = sms::start(
        "sms-flows-vonage",
        format!(
            "provider = \"vonage\"\nbase_url = \"https://127.0.0.1:{}\"\n\
             api_key = \"{}\"\napi_secret = \"{}\"\nfrom = \"CLINIC\"\nca_file = {:?}\n\
             webhook_url = \"{hook}\"\nsignature_secret = \"{SIGNATURE_SECRET}\"\n\
             [sms]\nopt_out_reply = \"STOP received: you will get no more messages.\"\n\
             [[sms_route]]\nname = \"survey\"\nkeyword = \"SURVEY\"\nscript = {:?}\n",
            mock.port,
            sms::KEY,
            sms::SECRET,
            dir.join("ca.pem").display().to_string(),
            survey.display().to_string(),
        ),
    );
    let wait_replies = |n: usize| {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let sends = vonage_sends_to(&mock, VONAGE_SENDER);
            if sends.len() >= n {
                return sends;
            }
            assert!(
                Instant::now() < end,
                "{n} replies to {VONAGE_SENDER} expected, got {sends:#?}\nrivr:\n{}",
                rivr.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    let t0 = Instant::now();
    for (i, (text, want)) in SURVEY.iter().enumerate() {
        vonage_inbound(&api, i, text);
        if i == 2 {
            // Vonage posts again when its webhook call timed out: the
            // same messageId is stored, and answered, once.
            vonage_inbound(&api, i, text);
        }
        let sends = wait_replies(i + 1);
        let f = &sends[i];
        assert!(
            f["text"].starts_with(want),
            "after {text:?}: {f:?}, want {want:?}"
        );
        assert_eq!(f["to"], VONAGE_SENDER);
        assert_eq!(f["from"], "CLINIC");
        assert_eq!(f["api_key"], sms::KEY);
        assert_eq!(f["api_secret"], sms::SECRET);
        assert_eq!(f["type"], "text");
        assert_eq!(f["callback"], hook);
        // The reply is a message of rivr's own: client-ref is its id.
        let id = &f["client-ref"];
        let v = sms::wait_state(&api, id, "submitted");
        assert_eq!(sms::part_states(&v), ["submitted"], "{v}");
    }
    println!(
        "[sms-flows-vonage] {} texts answered in {:?}",
        SURVEY.len(),
        t0.elapsed()
    );
    assert_survey_answers(&rivr, VONAGE_SENDER);

    vonage_inbound(&api, 99, "STOP");
    let sends = wait_replies(SURVEY.len() + 1);
    assert_eq!(
        sends.last().map(|f| f["text"].as_str()),
        Some("STOP received: you will get no more messages.")
    );
    let dnc = rivr.cli(&["dnc", "list"]);
    assert!(
        dnc.lines()
            .any(|l| l == format!("+{VONAGE_SENDER} sms:STOP")),
        "rivr dnc list:\n{dnc}"
    );
    let inbound = api.get("/sms/inbound", Some(http::ADMIN)).body;
    assert_eq!(
        inbound["messages"].as_array().map(Vec::len),
        Some(SURVEY.len() + 1),
        "each text stored once: {inbound}"
    );
    assert_eq!(
        vonage_sends_to(&mock, VONAGE_SENDER).len(),
        SURVEY.len() + 1,
        "one reply per text, none for the repeat"
    );
}
