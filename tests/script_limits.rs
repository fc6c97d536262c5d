//! Scripts can't take the box (issue 9 §6), end to end against `rivr
//! serve`: a script that hoards memory and one that loops over `sleep` are
//! each stopped at their limit — `[script] max_memory_bytes` and
//! `max_duration_ms` — with a BYE and a `failed:` CDR that names the limit,
//! and rivr's own memory stays far below what the hoarder asked for. This
//! also shows that the `rivr` binary installs the allocation meter.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use common::caller::{Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

/// 10,000 strings of 65 kB, 650 MB, in an array grown by index (which
/// Rhai's own size limits do not check as it grows).
const HOARD: &str = "answer();\nlet a = [];\na.pad(10000, \"\");\n\
                     for i in 0..10000 { let s = \"x\"; s.pad(65000, \"y\"); a[i] = s + i; }\n";

/// Blocks in verbs, never computing long enough to meet the progress hook.
const SLEEPY: &str = "answer();\nloop { sleep(1000); }\n";

/// Peak resident memory of a process, from /proc.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

#[test]
fn memory_and_time_limits_end_their_own_calls() {
    require_sipp!();
    let rivr = Rivr::start(
        "script-limits",
        RivrConfig {
            script_table: "max_duration_ms = 3000\nmax_memory_bytes = 4194304\n".into(),
            ..RivrConfig::default()
        }
        .script("3100", "hoard.rhai", HOARD)
        .script("3101", "sleepy.rhai", SLEEPY),
    );
    let spec = |number| CallSpec {
        scenario: "uac_wait_bye.xml",
        number,
        ..CallSpec::default()
    };
    let mut hoard = Caller::answered(&rivr, "hoard", spec("3100"));
    let mut sleepy = Caller::answered(&rivr, "sleepy", spec("3101"));
    hoard.sipp.expect_pass(SIGNALLING);
    sleepy.sipp.expect_pass(SIGNALLING);
    let hoard_cdr = rivr.wait_cdr(&hoard.answer.call_id, SIGNALLING);
    let sleepy_cdr = rivr.wait_cdr(&sleepy.answer.call_id, SIGNALLING);
    let pid = rivr.pid().expect("rivr is running");
    let peak_mb = peak_rss_kb(pid) / 1024;
    println!(
        "[limits] hoard CDR: {hoard_cdr}\n[limits] sleepy CDR: {sleepy_cdr}\n\
         [limits] rivr's peak RSS: {peak_mb} MB"
    );
    for (cdr, file, key) in [
        (&hoard_cdr, "hoard.rhai", "max_memory_bytes"),
        (&sleepy_cdr, "sleepy.rhai", "max_duration_ms"),
    ] {
        let script = cdr["script"].as_str().unwrap_or_default();
        assert!(script.starts_with("failed:"), "{file}: {cdr}");
        assert!(
            script.contains(file) && script.contains(key),
            "{file}: {cdr}"
        );
        assert_eq!(cdr["end"], "local-bye", "{file}: {cdr}");
    }
    let ms = sleepy_cdr["duration_ms"].as_u64().unwrap_or_default();
    assert!(
        (2_500..6_000).contains(&ms),
        "the sleep loop ran {ms} ms on a 3000 ms budget: {sleepy_cdr}"
    );
    assert!(
        peak_mb < 200,
        "rivr peaked at {peak_mb} MB: the hoarder was not stopped near its 4 MiB"
    );
}
