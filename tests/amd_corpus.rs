//! Answering-machine, beep and early-media classifiers over the labelled
//! corpus built by tests/amd/make-corpus.sh (espeak-ng + sox; cached under
//! CARGO_TARGET_TMPDIR keyed by the script's hash). Prints the accuracy
//! table of docs/quality.md ("Answering-machine detection") and asserts the
//! targets: ≥ 95 % correct, ≤ 2 % of humans called machines, every human
//! decided within 3.5 s; beeps found and timed; SIT codes, cadences and
//! announcements named. `RIVR_WRITE_DOC=1` rewrites the table in the doc.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rivr::call::registry::SIT_AFTER_ANSWER;
use rivr::media::amd::{Amd, AmdConfig, AnsweredBy, BeepWait, BeepWaitOutcome};
use rivr::media::sit::{EarlyMedia, EarlyMediaClassifier, SitCode};

fn corpus() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/amd/make-corpus.sh");
    let text = std::fs::read(&script).expect("read make-corpus.sh");
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("amd-corpus-{hash:016x}"));
    if dir.join(".done").exists() {
        return dir;
    }
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    let status = Command::new("bash")
        .arg(&script)
        .arg(&tmp)
        .status()
        .expect("run make-corpus.sh");
    assert!(
        status.success(),
        "make-corpus.sh failed (espeak-ng and sox are in the Makefile's APT_PKGS)"
    );
    std::fs::write(tmp.join(".done"), b"").expect("mark corpus");
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process built it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dir
}

fn read(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(r.spec().sample_rate, 8000, "{}", path.display());
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .map(|p| {
            (
                p.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                p,
            )
        })
        .collect();
    v.sort();
    v
}

/// Class and expected verdict from a file name.
fn amd_label(name: &str) -> (&'static str, AnsweredBy) {
    match name.split('-').next() {
        Some("human") => ("human", AnsweredBy::Human),
        Some("machine") if name.contains("-nobeep-") => ("machine, no beep", AnsweredBy::Machine),
        Some("machine") => ("machine + beep", AnsweredBy::Machine),
        Some("music") => ("music on hold", AnsweredBy::Machine),
        Some("silence") => ("dead air", AnsweredBy::Unsure),
        _ => panic!("unlabelled corpus file {name}"),
    }
}

/// `end1234` in a machine file's name: when its greeting (and beep) ends.
fn end_ms(name: &str) -> Option<u64> {
    name.split('-')
        .find_map(|p| p.strip_prefix("end")?.parse().ok())
}

#[derive(Default)]
struct Row {
    files: u32,
    correct: u32,
    human: u32,
    machine: u32,
    unsure: u32,
    times: Vec<u64>,
}

fn table(title: &str, rows: &BTreeMap<&'static str, Row>) -> String {
    let mut s = format!(
        "#### {title}\n\n| class | files | correct | → human | → machine | → unsure | median decision | slowest |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (class, r) in rows {
        let mut t = r.times.clone();
        t.sort_unstable();
        let median = t.get(t.len() / 2).copied().unwrap_or(0);
        let max = t.last().copied().unwrap_or(0);
        s += &format!(
            "| {class} | {} | {} | {} | {} | {} | {:.2} s | {:.2} s |\n",
            r.files,
            r.correct,
            r.human,
            r.machine,
            r.unsure,
            median as f64 / 1000.0,
            max as f64 / 1000.0
        );
    }
    let sum = |f: fn(&Row) -> u32| rows.values().map(f).sum::<u32>();
    let (files, correct) = (sum(|r| r.files), sum(|r| r.correct));
    let humans = rows.get("human").map_or(0, |r| r.files);
    let false_machine = rows.get("human").map_or(0, |r| r.machine);
    let machines: u32 = rows
        .iter()
        .filter(|(k, _)| k.starts_with("machine"))
        .map(|(_, r)| r.files)
        .sum();
    let false_human: u32 = rows
        .iter()
        .filter(|(k, _)| !k.starts_with("human"))
        .map(|(_, r)| r.human)
        .sum();
    s += &format!(
        "\n{correct} of {files} correct ({:.1} %); humans called machines: {false_machine} of {humans} ({:.1} %); machines, music and dead air called human: {false_human} of {} ({:.1} %).\n",
        100.0 * f64::from(correct) / f64::from(files.max(1)),
        100.0 * f64::from(false_machine) / f64::from(humans.max(1)),
        files - humans,
        100.0 * f64::from(false_human) / f64::from((files - humans).max(1)),
    );
    let _ = machines;
    s
}

struct AmdScore {
    rows: BTreeMap<&'static str, Row>,
    correct: u32,
    files: u32,
    humans_as_machine: u32,
    humans: u32,
    slowest_human_ms: u64,
}

fn score_amd(corpus: &[(String, Vec<i16>)], cfg: AmdConfig) -> AmdScore {
    let mut rows: BTreeMap<&'static str, Row> = BTreeMap::new();
    for (name, pcm) in corpus {
        let (class, want) = amd_label(name);
        let mut amd = Amd::new(cfg);
        let v = pcm
            .chunks(160)
            .find_map(|f| amd.push(f))
            .or_else(|| amd.push(&vec![0; 8 * 6000]));
        let v = v.unwrap_or_else(|| panic!("{name}: no verdict"));
        let r = rows.entry(class).or_default();
        r.files += 1;
        r.correct += u32::from(v.answered_by == want);
        match v.answered_by {
            AnsweredBy::Human => r.human += 1,
            AnsweredBy::Machine => r.machine += 1,
            AnsweredBy::Unsure => r.unsure += 1,
        }
        r.times.push(v.at_ms);
        if std::env::var_os("AMD_VERBOSE").is_some() && v.answered_by != want {
            eprintln!("{:?} {name}: {v:?} (words {})", cfg.method, amd.words());
        }
    }
    let human = rows.get("human");
    AmdScore {
        correct: rows.values().map(|r| r.correct).sum(),
        files: rows.values().map(|r| r.files).sum(),
        humans_as_machine: human.map_or(0, |r| r.machine),
        humans: human.map_or(0, |r| r.files),
        slowest_human_ms: human
            .and_then(|r| r.times.iter().max().copied())
            .unwrap_or(0),
        rows,
    }
}

/// wait_for_beep started when the AMD said `machine`, as a script would.
fn score_beeps(corpus: &[(String, Vec<i16>)]) -> (String, u32, u32) {
    let (mut files, mut ok, mut errors) = (0u32, 0u32, Vec::new());
    let mut lines = String::new();
    for (name, pcm) in corpus.iter().filter(|(n, _)| n.starts_with("machine-")) {
        let end = end_ms(name).unwrap_or_else(|| panic!("{name}: no end time"));
        let mut amd = Amd::new(AmdConfig::rivr());
        let start = pcm
            .chunks(160)
            .find_map(|f| amd.push(f))
            .map_or(0, |v| v.at_ms);
        let mut wait = BeepWait::new(1500);
        let rest = pcm
            .get((start as usize * 8).min(pcm.len())..)
            .unwrap_or_default();
        let out = rest.chunks(160).find_map(|f| wait.push(f));
        files += 1;
        let good = match (out, name.contains("-nobeep-")) {
            (Some(BeepWaitOutcome::Beep { at_ms, .. }), false) => {
                let err = (start + at_ms) as i64 - end as i64;
                errors.push(err);
                err.abs() <= 60
            }
            (Some(BeepWaitOutcome::Silence { at_ms }), true) => {
                let t = start + at_ms;
                t >= end && t <= end + 1600
            }
            _ => false,
        };
        ok += u32::from(good);
        if !good {
            lines += &format!("- {name}: {out:?} (waiting from {start} ms)\n");
        }
    }
    let mean = errors.iter().map(|e| e.abs()).sum::<i64>() as f64 / errors.len().max(1) as f64;
    let worst = errors.iter().map(|e| e.abs()).max().unwrap_or(0);
    let s = format!(
        "`wait_for_beep` from the AMD's decision: {ok} of {files} greetings ended correctly (beep end within ±60 ms, or 1.5 s of silence after a greeting without one); beep end error mean {mean:.0} ms, worst {worst} ms.\n{lines}"
    );
    (s, ok, files)
}

fn early_label(name: &str) -> EarlyMedia {
    let code = |c: &str| match c {
        "ic" => SitCode::Ic,
        "vc" => SitCode::Vc,
        "ro" => SitCode::Ro,
        "nc" => SitCode::Nc,
        "io" => SitCode::Io,
        _ => panic!("{name}: unknown SIT code"),
    };
    let mut parts = name.split('-');
    match parts.next() {
        Some("sit") => EarlyMedia::Sit(code(parts.next().unwrap_or_default())),
        Some("announce") => EarlyMedia::Announcement,
        Some("ringback") => EarlyMedia::Ringback,
        Some("busy") => EarlyMedia::Busy,
        _ => panic!("unlabelled early-media file {name}"),
    }
}

fn score_early(corpus: &[(String, Vec<i16>)]) -> (String, u32, u32) {
    let mut rows: BTreeMap<String, (u32, u32, Vec<u64>)> = BTreeMap::new();
    let mut wrong = String::new();
    for (name, pcm) in corpus {
        let want = early_label(name);
        let mut c = EarlyMediaClassifier::new();
        for f in pcm.chunks(160) {
            c.push(f);
        }
        let got = c.verdict();
        let at = c
            .heard()
            .iter()
            .find(|h| Some(h.0) == got)
            .map_or(0, |h| h.1);
        let class = match want {
            EarlyMedia::Sit(_) => "SIT (code named)".to_string(),
            other => other.as_str(),
        };
        let r = rows.entry(class).or_default();
        r.0 += 1;
        if got == Some(want) {
            r.1 += 1;
            r.2.push(at);
        } else {
            wrong += &format!("- {name}: heard {:?}\n", c.heard());
        }
    }
    let mut s = "| early media | files | named correctly | median time | slowest |\n|---|---:|---:|---:|---:|\n".to_string();
    let (mut files, mut ok) = (0, 0);
    for (class, (n, c, mut t)) in rows {
        t.sort_unstable();
        s += &format!(
            "| {class} | {n} | {c} | {:.2} s | {:.2} s |\n",
            t.get(t.len() / 2).copied().unwrap_or(0) as f64 / 1000.0,
            t.last().copied().unwrap_or(0) as f64 / 1000.0
        );
        files += n;
        ok += c;
    }
    s += &wrong;
    (s, ok, files)
}

/// The answers (people, greetings, music, dead air) in which the
/// early-media classifier hears a SIT within the window it listens after
/// an answer ([`SIT_AFTER_ANSWER`], 3 s): each would turn an answered
/// call into `unreachable:sit-…`.
fn sits_in_answers(corpus: &[(String, Vec<i16>)]) -> Vec<String> {
    corpus
        .iter()
        .filter(|(_, pcm)| {
            let mut c = EarlyMediaClassifier::new();
            let frames = SIT_AFTER_ANSWER.as_millis() as usize / 20;
            for f in pcm.chunks(160).take(frames) {
                c.push(f);
            }
            c.heard().iter().any(|h| matches!(h.0, EarlyMedia::Sit(_)))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn classifiers_meet_their_targets_on_the_corpus() {
    let dir = corpus();
    let load = |sub: &str| -> Vec<(String, Vec<i16>)> {
        files(&dir.join(sub))
            .into_iter()
            .map(|(n, p)| (n, read(&p)))
            .collect()
    };
    let amd = load("amd");
    let early = load("early");
    assert!(amd.len() >= 100 && early.len() >= 40, "corpus too small");

    let rivr = score_amd(&amd, AmdConfig::rivr());
    let asterisk = score_amd(&amd, AmdConfig::asterisk());
    let (beeps, beeps_ok, beeps_n) = score_beeps(&amd);
    let (early_table, early_ok, early_n) = score_early(&early);
    let report = format!(
        "{}\n{}\n{beeps}\n{early_table}",
        table("rivr (`AmdConfig::rivr()`)", &rivr.rows),
        table(
            "Asterisk AMD() as documented, default amd.conf",
            &asterisk.rows
        ),
    );
    println!("{report}");
    if std::env::var_os("RIVR_WRITE_DOC").is_some() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/quality.md");
        let text = std::fs::read_to_string(&doc).expect("read docs/quality.md");
        let (a, b) = ("<!-- amd:begin -->\n", "<!-- amd:end -->");
        let (Some(i), Some(j)) = (text.find(a), text.find(b)) else {
            panic!("docs/quality.md has no amd markers");
        };
        let new = format!("{}{a}{report}{}", &text[..i], &text[j..]);
        std::fs::write(&doc, new).expect("write docs/quality.md");
    }

    let pct = |a: u32, b: u32| 100.0 * f64::from(a) / f64::from(b.max(1));
    assert!(
        pct(rivr.correct, rivr.files) >= 95.0,
        "AMD accuracy {} of {}",
        rivr.correct,
        rivr.files
    );
    assert!(
        pct(rivr.humans_as_machine, rivr.humans) <= 2.0,
        "{} of {} humans called machines",
        rivr.humans_as_machine,
        rivr.humans
    );
    assert!(
        rivr.slowest_human_ms <= 3500,
        "a human took {} ms",
        rivr.slowest_human_ms
    );
    assert!(
        rivr.correct > asterisk.correct,
        "rivr must beat the baseline it extends"
    );
    assert!(
        pct(beeps_ok, beeps_n) >= 95.0,
        "beep waits {beeps_ok} of {beeps_n}"
    );
    assert!(
        pct(early_ok, early_n) >= 95.0,
        "early media {early_ok} of {early_n}"
    );
    let false_sits = sits_in_answers(&amd);
    println!(
        "SIT heard in the first {:?} of {} of {} answers: {false_sits:?}",
        SIT_AFTER_ANSWER,
        false_sits.len(),
        amd.len()
    );
    assert!(
        false_sits.is_empty(),
        "answers taken for a SIT: {false_sits:?}"
    );
}
