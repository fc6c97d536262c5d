//! Refined outcomes end to end: a campaign dialed by `rivr serve` against
//! SIPp as the carrier (tests/sipp/uas_early_fail.xml), which answers
//! every INVITE with 183 and early media — a Special Information Tone and
//! an announcement, or an announcement alone, made here with sox and
//! espeak-ng and played by SIPp's rtp_stream — then fails the call (404,
//! 480); or which answers (200) and then plays them
//! (tests/sipp/uas_answer_stream.xml). The witnesses are the campaign
//! report (outcome, refined outcome, attempts), rivr's CDRs and the
//! carrier's log (INVITEs per number and when), never "some packet
//! arrived".

#[path = "amd/audio.rs"]
mod audio;
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use audio::{path, speech, tone, ulaw};
use common::campaign::{created_id, rivr_cli};
use common::carrier::Carrier;
use common::scratch::Scratch;
use common::server::{repo, Rivr, RivrConfig};
use serde_json::Value;

/// A vacant-code SIT (985.2 Hz 380 ms, 1370.6 Hz 274 ms, 1776.7 Hz 380
/// ms: Telcordia's VC) and the operator's words after it.
fn sit_vc_announcement(dir: &Path) -> PathBuf {
    let parts = [
        tone(dir, "lead", 0.0, 0.2),
        tone(dir, "sit1", 985.2, 0.380),
        tone(dir, "sit2", 1370.6, 0.274),
        tone(dir, "sit3", 1776.7, 0.380),
        tone(dir, "pause", 0.0, 0.25),
        speech(
            dir,
            "vacant",
            "en-us",
            "We're sorry, the number you have dialed is not in service. Please check the number and try again.",
        ),
    ];
    ulaw(dir, "sit-vc", &parts)
}

/// "The subscriber cannot be reached" with no tone.
fn switched_off(dir: &Path) -> PathBuf {
    let parts = [
        tone(dir, "lead", 0.0, 0.3),
        speech(
            dir,
            "off",
            "en-gb",
            "The person you are calling is not available. Please try your call again later.",
        ),
    ];
    ulaw(dir, "switched-off", &parts)
}

/// The campaigns' script (it runs only when a call is answered).
const BLAST: &str = "play(\"main_menu\");\n";

/// What the carrier did and what rivr says about it.
struct Outcome {
    /// `rivr campaign report --format json`, one row per contact.
    rows: Vec<Value>,
    /// The carrier's INVITEs per number (digits, no `+`), in order, as
    /// its clock's ms.
    invites: HashMap<String, Vec<u64>>,
    /// rivr's CDRs of the attempts.
    cdrs: Vec<Value>,
    /// `rivr campaign status --json` once done.
    status: Value,
}

/// What the carrier does with every call: `scenario` (in tests/sipp/)
/// playing `audio`; `early_ms` is its pause (uas_early_fail.xml: early
/// media before `final_status`).
struct FarEnd<'a> {
    scenario: &'a str,
    audio: &'a Path,
    early_ms: u64,
    final_status: &'a str,
}

/// The campaign: its contacts, retry spec, attempts, script and more
/// `rivr campaign create` options.
struct Plan<'a> {
    numbers: &'a [&'a str],
    retry: &'a str,
    attempts: u32,
    script: &'a str,
    extra: &'a [&'a str],
}

/// A campaign as `plan` says against a carrier that does `far`; waits
/// until the campaign is done.
fn campaign(label: &str, dir: &Scratch, far: &FarEnd, plan: &Plan) -> Outcome {
    let FarEnd {
        scenario,
        audio,
        early_ms,
        final_status,
    } = *far;
    let numbers = plan.numbers;
    let template = std::fs::read_to_string(repo().join("tests/sipp").join(scenario))
        .unwrap_or_else(|e| panic!("read {scenario}: {e}"));
    let scenario = dir.join(scenario);
    std::fs::write(
        &scenario,
        template
            .replace("AUDIO_FILE", path(audio))
            .replace("FINAL_STATUS", final_status),
    )
    .expect("write the scenario");
    let carrier = Carrier::start_with(
        dir.path(),
        label,
        path(&scenario),
        early_ms,
        &[],
        &["-m", "1000", "-timeout", "120s"],
    );
    let cfg = RivrConfig {
        extra_tables: format!(
            "[store]\nurl = \"sqlite://{db}\"\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{port}\"\ncps = 50\n\
             max_channels = 20\nring_timeout = 30\noptions_interval = 0\n",
            db = dir.join("rivr.db").display(),
            port = carrier.port,
        ),
        ..RivrConfig::default()
    };
    let mut rivr = Rivr::start(label, cfg);
    let config = rivr.dir.join("rivr.toml");
    let contacts = rivr.dir.join("contacts.csv");
    let mut csv = String::from("phone\n");
    for n in numbers {
        csv.push_str(&format!("+{n}\n"));
    }
    std::fs::write(&contacts, csv).expect("write contacts.csv");
    let script = rivr.dir.join("blast.rhai");
    std::fs::write(&script, plan.script).expect("write blast.rhai");
    let attempts = plan.attempts.to_string();
    let mut args = vec![
        "create",
        "--name",
        label,
        "--contacts",
        path(&contacts),
        "--script",
        path(&script),
        "--trunk",
        "carrier",
        "--cps",
        "10",
        "--max-channels",
        "10",
        "--attempts",
        &attempts,
        "--retry",
        plan.retry,
        "--hours",
        "00:00-24:00",
        "--tz",
        "UTC",
    ];
    args.extend(plan.extra);
    let created = rivr_cli(&config, &args);
    let id = created_id(&created, numbers.len());
    rivr_cli(&config, &["start", &id]);
    let t0 = Instant::now();
    let status = loop {
        let s: Value =
            serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"])).unwrap();
        if s["state"] == "done" {
            println!("[{label}] done in {:?}: {s}", t0.elapsed());
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "campaign not done in 90 s: {s}\n{}\ncarrier:\n{}",
            rivr.stderr(),
            carrier.log()
        );
        assert!(rivr.is_running(), "rivr exited: {}", rivr.stderr());
        std::thread::sleep(Duration::from_millis(300));
    };
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let rows = report.as_array().expect("report rows").clone();
    let mut invites: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in carrier.log().lines().filter(|l| l.starts_with("invite ")) {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_string)
        };
        let (Some(t), Some(n), Some(call)) = (field("t="), field("number="), field("call_id="))
        else {
            continue;
        };
        // A retransmitted INVITE is the same attempt.
        if seen.insert(call) {
            invites
                .entry(n)
                .or_default()
                .push(t.parse().expect("clock ms"));
        }
    }
    let cdrs = rivr
        .cdrs()
        .into_iter()
        .filter(|c| c["direction"] == "outbound")
        .collect();
    let _ = rivr.terminate(Duration::from_secs(5));
    Outcome {
        rows,
        invites,
        cdrs,
        status,
    }
}

/// SIT vacant code then 404: `unreachable:sit-vc` in the report and the
/// CDRs, and no retry although the spec retries plain `unreachable`: a
/// vacant number is never called again.
#[test]
fn a_sit_before_a_404_is_unreachable_sit_vc_and_never_retried() {
    require_sipp!();
    let dir = Scratch::new("sit-404");
    let audio = sit_vc_announcement(dir.path());
    let numbers = ["254712000101", "254712000102"];
    let o = campaign(
        "sit-404",
        &dir,
        &FarEnd {
            scenario: "uas_early_fail.xml",
            audio: &audio,
            early_ms: 3500,
            final_status: "404 Not Found",
        },
        &Plan {
            numbers: &numbers,
            retry: "unreachable=3s",
            attempts: 3,
            script: BLAST,
            extra: &[],
        },
    );
    for n in numbers {
        let row = o
            .rows
            .iter()
            .find(|r| r["phone"] == format!("+{n}"))
            .unwrap_or_else(|| panic!("no report row for {n}: {:?}", o.rows));
        assert_eq!(
            (
                row["outcome"].as_str(),
                row["refined_outcome"].as_str(),
                row["attempts"].as_u64(),
                row["sip_status"].as_u64()
            ),
            (
                Some("unreachable"),
                Some("unreachable:sit-vc"),
                Some(1),
                Some(404)
            ),
            "{row}"
        );
        let invites = o.invites.get(n).map_or(0, Vec::len);
        assert_eq!(
            invites, 1,
            "INVITEs for {n} at the carrier: {:?}",
            o.invites
        );
    }
    assert_eq!(o.status["refined"]["unreachable:sit-vc"], 2, "{}", o.status);
    assert_eq!(o.status["amd"], false, "{}", o.status);
    assert_eq!(o.cdrs.len(), 2, "{:?}", o.cdrs);
    for c in &o.cdrs {
        assert_eq!(
            (c["refined_outcome"].as_str(), c["early_media"].as_str()),
            (Some("unreachable:sit-vc"), Some("sit-vc")),
            "{c}"
        );
    }
}

/// A carrier that answers (200) and then plays its vacant-code SIT and
/// announcement: the SIT, heard within `SIT_AFTER_ANSWER` (3 s) of the
/// answer, makes the answered call `unreachable:sit-vc` in the report and
/// the CDRs, and the contact is not called again although the spec
/// retries `answered`.
#[test]
fn a_sit_after_a_200_is_unreachable_sit_vc_and_never_retried() {
    require_sipp!();
    let dir = Scratch::new("sit-200");
    let audio = sit_vc_announcement(dir.path());
    let numbers = ["254712000401", "254712000402"];
    let o = campaign(
        "sit-200",
        &dir,
        &FarEnd {
            scenario: "uas_answer_stream.xml",
            audio: &audio,
            early_ms: 0,
            final_status: "",
        },
        &Plan {
            numbers: &numbers,
            retry: "answered=3s",
            attempts: 3,
            script: BLAST,
            extra: &[],
        },
    );
    for n in numbers {
        let row = o
            .rows
            .iter()
            .find(|r| r["phone"] == format!("+{n}"))
            .unwrap_or_else(|| panic!("no report row for {n}: {:?}", o.rows));
        println!("[sit-200] {row}");
        assert_eq!(
            (
                row["outcome"].as_str(),
                row["refined_outcome"].as_str(),
                row["attempts"].as_u64(),
                row["sip_status"].as_u64()
            ),
            (
                Some("unreachable"),
                Some("unreachable:sit-vc"),
                Some(1),
                None
            ),
            "{row}"
        );
        // Answered: no failure status, and the script talked.
        let talk = row["talk_s"].as_f64().unwrap_or(0.0);
        assert!(talk >= 1.0, "talk_s {talk}: {row}");
        let invites = o.invites.get(n).map_or(0, Vec::len);
        assert_eq!(
            invites, 1,
            "INVITEs for {n} at the carrier: {:?}",
            o.invites
        );
    }
    assert_eq!(o.status["refined"]["unreachable:sit-vc"], 2, "{}", o.status);
    assert_eq!(o.cdrs.len(), 2, "{:?}", o.cdrs);
    for c in &o.cdrs {
        assert_eq!(
            (
                c["outcome"].as_str(),
                c["refined_outcome"].as_str(),
                c["early_media"].as_str()
            ),
            (Some("answered"), Some("unreachable:sit-vc"), Some("sit-vc")),
            "{c}"
        );
    }
}

/// Speech in early media then 480: `no_answer:announcement`, retried by
/// its own rule (3 s) and not by `no_answer`'s (1 h): both attempts at
/// the carrier, seconds apart.
#[test]
fn an_announcement_before_a_480_is_retried_by_its_own_rule() {
    require_sipp!();
    let dir = Scratch::new("ann-480");
    let audio = switched_off(dir.path());
    let numbers = ["254712000201", "254712000202"];
    let o = campaign(
        "ann-480",
        &dir,
        &FarEnd {
            scenario: "uas_early_fail.xml",
            audio: &audio,
            early_ms: 4000,
            final_status: "480 Temporarily Unavailable",
        },
        &Plan {
            numbers: &numbers,
            retry: "no_answer=1h,no_answer:announcement=3s",
            attempts: 2,
            script: BLAST,
            extra: &[],
        },
    );
    for n in numbers {
        let row = o
            .rows
            .iter()
            .find(|r| r["phone"] == format!("+{n}"))
            .unwrap_or_else(|| panic!("no report row for {n}: {:?}", o.rows));
        assert_eq!(
            (
                row["outcome"].as_str(),
                row["refined_outcome"].as_str(),
                row["attempts"].as_u64(),
                row["sip_status"].as_u64()
            ),
            (
                Some("no_answer"),
                Some("no_answer:announcement"),
                Some(2),
                Some(480)
            ),
            "{row}"
        );
        let times = o.invites.get(n).cloned().unwrap_or_default();
        assert_eq!(times.len(), 2, "INVITEs at the carrier: {:?}", o.invites);
        // The second attempt waits the announcement's 3 s after the
        // first ended (the first rang 4 s): not the hour of no_answer.
        let gap = times[1] - times[0];
        assert!(
            (7000..20_000).contains(&gap),
            "{gap} ms between the INVITEs to {n}"
        );
        println!("[ann-480] INVITEs to {n} {gap} ms apart");
    }
    assert_eq!(
        o.status["refined"]["no_answer:announcement"], 4,
        "{}",
        o.status
    );
    assert_eq!(o.cdrs.len(), 4, "{:?}", o.cdrs);
    for c in &o.cdrs {
        assert_eq!(
            (c["refined_outcome"].as_str(), c["early_media"].as_str()),
            (Some("no_answer:announcement"), Some("announcement")),
            "{c}"
        );
    }
}

/// The script of an `amd` campaign: it waits for the beep of a machine
/// and leaves its message; a person hears it at once.
const DROP: &str = r##"
set_result("saw", call.answered_by);
if call.answered_by == "machine" {
    let b = wait_for_beep(#{ timeout_ms: 15000 });
    set_result("beep", `${b.beep}`);
}
play("goodbye");
"##;

/// A campaign created with `--amd` against callees that answer with a
/// voicemail greeting and its beep: every answered attempt ran AMD before
/// the script (`call.answered_by` is `machine` in the script), the report
/// has `answered_by` in its own column, and the script heard the beep.
#[test]
fn an_amd_campaign_reports_who_answered() {
    require_sipp!();
    let dir = Scratch::new("amd-campaign");
    let parts = [
        tone(dir.path(), "lead", 0.0, 0.4),
        speech(
            dir.path(),
            "greeting",
            "en-us",
            "Hi, you have reached the voicemail of Sarah. I can't take your call right now. Please leave a message after the tone.",
        ),
        tone(dir.path(), "gap", 0.0, 0.3),
        tone(dir.path(), "beep", 1000.0, 0.5),
        tone(dir.path(), "after", 0.0, 8.0),
    ];
    let audio = ulaw(dir.path(), "voicemail", &parts);
    let numbers = ["254712000301", "254712000302"];
    let o = campaign(
        "amd-campaign",
        &dir,
        &FarEnd {
            scenario: "uas_answer_stream.xml",
            audio: &audio,
            early_ms: 0,
            final_status: "",
        },
        &Plan {
            numbers: &numbers,
            retry: "no_answer=3s",
            attempts: 2,
            script: DROP,
            extra: &["--amd"],
        },
    );
    assert_eq!(o.status["amd"], true, "{}", o.status);
    for n in numbers {
        let row = o
            .rows
            .iter()
            .find(|r| r["phone"] == format!("+{n}"))
            .unwrap_or_else(|| panic!("no report row for {n}: {:?}", o.rows));
        assert_eq!(
            (
                row["outcome"].as_str(),
                row["answered_by"].as_str(),
                row["attempts"].as_u64(),
                row["results"]["saw"].as_str(),
                row["results"]["beep"].as_str(),
            ),
            (
                Some("answered"),
                Some("machine"),
                Some(1),
                Some("machine"),
                Some("true")
            ),
            "{row}"
        );
        assert_eq!(
            o.invites.get(n).map_or(0, Vec::len),
            1,
            "INVITEs at the carrier: {:?}",
            o.invites
        );
    }
}

/// A script's `dial(target, #{ amd: true })`: the callee answers with a
/// voicemail greeting and beep (then hangs up); AMD runs on its audio
/// before the caller is joined, and the dial's result says `machine`.
#[test]
fn dial_with_amd_tells_the_script_a_machine_answered() {
    require_sipp!();
    let dir = Scratch::new("dial-amd");
    let parts = [
        tone(dir.path(), "lead", 0.0, 0.4),
        speech(
            dir.path(),
            "greeting",
            "en-us",
            "Hello, you have reached the office of Doctor Mwangi. Nobody can take your call right now. Please leave your name and number after the tone.",
        ),
        tone(dir.path(), "gap", 0.0, 0.3),
        tone(dir.path(), "beep", 1000.0, 0.5),
        tone(dir.path(), "after", 0.0, 4.0),
    ];
    let audio = ulaw(dir.path(), "voicemail", &parts);
    let template = std::fs::read_to_string(repo().join("tests/sipp/uas_answer_stream_bye.xml"))
        .expect("read uas_answer_stream_bye.xml");
    let scenario = dir.join("uas_answer_stream_bye.xml");
    std::fs::write(&scenario, template.replace("AUDIO_FILE", path(&audio)))
        .expect("write the scenario");
    // The callee hangs up 12 s after the answer (the greeting is ~8 s).
    let mut callee = Carrier::start(dir.path(), "dial-amd", path(&scenario), 12_000, &[]);
    let script = r##"
answer();
let r = dial("15550100", #{ trunk: "carrier", amd: true });
set_result("outcome", r.outcome);
set_result("by", `${r.answered_by}`);
"##;
    let cfg = RivrConfig {
        extra_tables: format!(
            "[[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{port}\"\ncps = 10\n\
             max_channels = 5\nring_timeout = 10\noptions_interval = 0\n",
            port = callee.port,
        ),
        ..RivrConfig::default()
    }
    .script("3000", "dial_amd.rhai", script);
    let mut rivr = Rivr::start("dial-amd", cfg);
    let mut caller = common::sipp::Sipp::start(
        rivr.dir.path(),
        "caller",
        rivr.sip_port,
        &common::sipp::CallSpec {
            scenario: "uac_wait_bye.xml",
            number: "3000",
            ..common::sipp::CallSpec::default()
        },
    );
    callee.expect_pass(Duration::from_secs(40));
    caller.expect_pass(Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    let cdr = loop {
        if let Some(c) = rivr
            .cdrs()
            .into_iter()
            .find(|c| c["direction"] == "inbound" && c["leg"] == 0)
        {
            break c;
        }
        assert!(Instant::now() < deadline, "no CDR: {}", rivr.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = rivr.terminate(Duration::from_secs(5));
    assert_eq!(
        (
            cdr["results"]["outcome"].as_str(),
            cdr["results"]["by"].as_str()
        ),
        (Some("answered"), Some("machine")),
        "{cdr}"
    );
}
