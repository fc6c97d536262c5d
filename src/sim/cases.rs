//! Script tests (`rivr test [DIR]`): `NAME.test.toml` beside `NAME.rhai`
//! lists cases — what the caller does (keys and their timing, from/to,
//! vars, when it hangs up, how a `dial()` ends) and what must come of it
//! (prompts heard in order, results, the outcome, the transcript). Each
//! case is a simulated call (`sim::run`); a failed expectation is shown as
//! a diff, expected against got.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::sim::diff;
use crate::sim::keys::KeyPlan;
use crate::sim::run::{SimOptions, SimReport, Simulator, DEFAULT_FROM, DIAL_OUTCOMES};

/// The suffix of a test file.
pub const SUFFIX: &str = ".test.toml";
const OUTCOMES: [&str; 4] = ["completed", "hung_up", "caller_hung_up", "failed"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// The flow, relative to the test file (default: `NAME.rhai`).
    script: Option<String>,
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    digits: String,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    /// Seconds.
    hangup_after: Option<f64>,
    /// `call.lang`; default: the `lang` of the route `to` reaches.
    lang: Option<String>,
    dial: Option<String>,
    #[serde(default)]
    expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    prompts: Option<Vec<String>>,
    results: Option<BTreeMap<String, String>>,
    outcome: Option<String>,
    /// Part of the error message of a failed script.
    error: Option<String>,
    /// The whole transcript, as `rivr sim` prints it (leading spaces and
    /// blank lines do not count).
    transcript: Option<String>,
}

/// How one file went.
#[derive(Debug, Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
}

/// Every `*.test.toml` under `dir` (or `dir` itself if it is one), sorted.
pub fn find(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() && depth < 8 {
            walk(&path, depth + 1, out)?;
        } else if name.ends_with(SUFFIX) {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs every case of one file, printing a line per case (and the diffs of
/// those that fail) to `out`.
pub fn run_file(sim: &Simulator, file: &Path, out: &mut Vec<String>) -> Tally {
    let mut tally = Tally::default();
    out.push(file.display().to_string());
    let parsed = std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str::<CaseFile>(&t).map_err(|e| e.to_string()));
    let cf = match parsed {
        Ok(cf) => cf,
        Err(e) => {
            out.push(format!("  FAIL  {}: {}", file.display(), e.trim()));
            tally.failed += 1;
            return tally;
        }
    };
    let script = script_for(file, cf.script.as_deref());
    if cf.cases.is_empty() {
        out.push("  FAIL  no [[case]] in the file".into());
        tally.failed += 1;
    }
    for case in &cf.cases {
        let problems = match options(&script, case) {
            Ok(opts) => check(&case.expect, &sim.run(&opts)),
            Err(e) => vec![e],
        };
        if problems.is_empty() {
            out.push(format!("  ok    {}", case.name));
            tally.passed += 1;
        } else {
            out.push(format!("  FAIL  {}", case.name));
            for p in problems {
                out.extend(p.lines().map(|l| format!("        {l}")));
            }
            tally.failed += 1;
        }
    }
    tally
}

/// The flow's path, and its name as the test file gives it (what the
/// transcript's `start` line says, wherever `rivr test` runs from).
fn script_for(file: &Path, named: Option<&str>) -> (PathBuf, String) {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = match named {
        Some(s) => s.to_string(),
        None => {
            let name = file.file_name().map(|n| n.to_string_lossy().to_string());
            let stem = name
                .as_deref()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .unwrap_or("flow");
            format!("{stem}.rhai")
        }
    };
    (dir.join(&name), name)
}

fn options((script, label): &(PathBuf, String), case: &Case) -> Result<SimOptions, String> {
    let mut o = SimOptions::new(script);
    o.label = Some(label.clone());
    o.keys = KeyPlan::parse(&case.digits)?;
    o.from = case.from.clone().unwrap_or_else(|| DEFAULT_FROM.into());
    o.to = case.to.clone().unwrap_or_default();
    o.vars = case
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(s) = case.hangup_after {
        if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) {
            return Err(format!("hangup_after = {s}: expected 0 to 86400 seconds"));
        }
        o.hangup_after = Some(Duration::from_millis((s * 1000.0).round() as u64));
    }
    if let Some(l) = &case.lang {
        crate::script::lang::check_tag(l).map_err(|e| format!("lang: {e}"))?;
        o.lang = l.clone();
    }
    if let Some(d) = &case.dial {
        if !DIAL_OUTCOMES.contains(&d.as_str()) {
            return Err(format!(
                "dial = {d:?}: expected one of {}",
                DIAL_OUTCOMES.join(", ")
            ));
        }
        o.dial_outcome = d.clone();
    }
    if let Some(out) = &case.expect.outcome {
        if !OUTCOMES.contains(&out.as_str()) {
            return Err(format!(
                "expect.outcome = {out:?}: expected one of {}",
                OUTCOMES.join(", ")
            ));
        }
    }
    Ok(o)
}

/// Each expectation the call did not meet, as a readable diff.
fn check(expect: &Expect, got: &SimReport) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(want) = &expect.prompts {
        let heard = got.prompts_heard();
        if *want != heard {
            problems.push(format!(
                "prompts heard (- expected, + got):\n{}",
                diff::lines(want, &heard).join("\n")
            ));
        }
    }
    if let Some(want) = &expect.results {
        let have = got.results_map();
        if *want != have {
            let show = |m: &BTreeMap<String, String>| -> Vec<String> {
                m.iter().map(|(k, v)| format!("{k} = {v:?}")).collect()
            };
            problems.push(format!(
                "results (- expected, + got):\n{}",
                diff::lines(&show(want), &show(&have)).join("\n")
            ));
        }
    }
    if let Some(want) = &expect.outcome {
        let have = got.outcome_name();
        if want != have {
            let why = match &got.outcome {
                crate::script::runner::Outcome::Failed(m) => format!(" ({m})"),
                _ => String::new(),
            };
            problems.push(format!("outcome: expected {want}, got {have}{why}"));
        }
    }
    if let Some(want) = &expect.error {
        let have = match &got.outcome {
            crate::script::runner::Outcome::Failed(m) => m.as_str(),
            _ => "",
        };
        if !have.contains(want.as_str()) {
            problems.push(format!(
                "error: expected one containing {want:?}, got {have:?}"
            ));
        }
    }
    if let Some(want) = &expect.transcript {
        let want: Vec<String> = want
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let have: Vec<String> = got.text().iter().map(|l| l.trim().to_string()).collect();
        if want != have {
            problems.push(format!(
                "transcript (- expected, + got):\n{}",
                diff::lines(&want, &have).join("\n")
            ));
        }
    }
    if problems.is_empty() && got.failed() && expect.outcome.as_deref() != Some("failed") {
        problems.push(format!(
            "the script failed: {}",
            got.lines
                .last()
                .map(|l| l.text())
                .unwrap_or_default()
                .trim()
        ));
    }
    problems
}

#[cfg(test)]
mod tests;
