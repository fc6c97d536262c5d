//! Script test files run against a small flow that uses generated tones
//! (no prompt files needed).

use std::path::Path;

use super::*;
use crate::config::Config;

const FLOW: &str = r#"
answer();
let k = gather(#{ prompt: "tone:beep:440:2000", max_digits: 1, timeout: 3000 });
set_result("k", k);
log(`chose ${k}`);
if k == "1" { play("tone:beep:880:500"); }
hangup();
"#;

fn dir(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rivr-cases-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("flow.rhai"), FLOW).unwrap();
    d
}

fn sim(dir: &Path) -> Simulator {
    Simulator::new(Config::parse("", "test", dir).unwrap())
}

#[test]
fn passing_cases_pass() {
    let d = dir("pass");
    let f = d.join("flow.test.toml");
    std::fs::write(
        &f,
        r#"
[[case]]
name = "key 1 plays the second tone"
digits = "1"
[case.expect]
prompts = ["tone:beep:440:2000", "tone:beep:880:500"]
results = { k = "1" }
outcome = "hung_up"
transcript = """
0.000  start flow.rhai from=sip:caller@sim.invalid to=
0.000  answer
0.000  play tone:beep:440:2000 (2.000 s) [barge-in]
2.000  heard tone:beep:440:2000 (2.000 s)
3.000  key 1
3.000  set_result k = "1"
3.000  play tone:beep:880:500 (0.500 s)
3.500  heard tone:beep:880:500 (0.500 s)
3.500  hangup
3.500  end hung_up
"""

[[case]]
name = "timed key barges in; silence times out"
digits = "0.5:2"
[case.expect]
prompts = ["tone:beep:440:2000"]
results = { k = "2" }

[[case]]
name = "no key"
[case.expect]
results = { k = "" }
outcome = "hung_up"
"#,
    )
    .unwrap();
    let mut out = Vec::new();
    let t = run_file(&sim(&d), &f, &mut out);
    assert_eq!((t.passed, t.failed), (3, 0), "{}", out.join("\n"));
}

#[test]
fn a_broken_expectation_fails_with_a_diff() {
    let d = dir("fail");
    let f = d.join("flow.test.toml");
    std::fs::write(
        &f,
        r#"
[[case]]
name = "wrong branch"
digits = "2"
[case.expect]
prompts = ["tone:beep:440:2000", "tone:beep:880:500"]
results = { k = "1" }
outcome = "completed"
"#,
    )
    .unwrap();
    let mut out = Vec::new();
    let t = run_file(&sim(&d), &f, &mut out);
    assert_eq!((t.passed, t.failed), (0, 1));
    let text = out.join("\n");
    for want in [
        "FAIL  wrong branch",
        "prompts heard (- expected, + got):",
        "    tone:beep:440:2000",
        "  - tone:beep:880:500",
        "  - k = \"1\"",
        "  + k = \"2\"",
        "outcome: expected completed, got hung_up",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
}

#[test]
fn bad_files_and_options_fail_with_where() {
    let d = dir("bad");
    let f = d.join("flow.test.toml");
    std::fs::write(&f, "[[case]]\nname = \"x\"\ndigitz = \"1\"\n").unwrap();
    let mut out = Vec::new();
    assert_eq!(run_file(&sim(&d), &f, &mut out).failed, 1);
    let text = out.join("\n");
    assert!(text.contains("digitz") && text.contains("line 3"), "{text}");

    std::fs::write(&f, "[[case]]\nname = \"x\"\ndial = \"maybe\"\n").unwrap();
    let mut out = Vec::new();
    assert_eq!(run_file(&sim(&d), &f, &mut out).failed, 1);
    assert!(out.join("\n").contains("dial = \"maybe\": expected one of"));

    // A script that fails fails its case even with no expectation on it.
    std::fs::write(d.join("broken.rhai"), "answer();\nlet x = ;\n").unwrap();
    let f = d.join("broken.test.toml");
    std::fs::write(&f, "[[case]]\nname = \"compiles\"\n").unwrap();
    let mut out = Vec::new();
    assert_eq!(run_file(&sim(&d), &f, &mut out).failed, 1);
    let text = out.join("\n");
    assert!(text.contains("broken.rhai:2:9"), "{text}");
    assert_eq!(find(&d).unwrap().len(), 2);
}
