//! The authors' guide stays true (issue 14 §9): every `rhai` example in
//! docs/scripts.md compiles (`rivr check`), and every one followed by a
//! `toml` block of `[[case]]`s passes those cases under `rivr test`, run
//! from the repository with its `rivr.toml` and prompts.

mod common;

use std::path::Path;
use std::process::Command;

use common::server::{binary, repo};

/// A fenced block: its info string (`rhai`, `toml`, …) and its text,
/// without the indentation of a list item.
struct Block {
    lang: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, Vec<String>)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((info.trim().to_owned(), indent, Vec::new()));
                }
            }
            Some((lang, ind, lines)) => {
                if trimmed.starts_with("```") {
                    out.push(Block {
                        lang,
                        text: lines.join("\n") + "\n",
                    });
                } else {
                    let mut lines = lines;
                    lines.push(line.get(ind.min(indent)..).unwrap_or("").to_owned());
                    open = Some((lang, ind, lines));
                }
            }
        }
    }
    out
}

fn run(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run rivr");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_example_compiles_and_every_tested_one_passes_its_cases() {
    let guide = std::fs::read_to_string(repo().join("docs/scripts.md")).expect("docs/scripts.md");
    let all = blocks(&guide);
    let dir = tempdir("rivr-guide");
    let mut flows = Vec::new();
    let mut tested = 0;
    let mut cases = 0;
    for (i, b) in all.iter().enumerate() {
        if b.lang != "rhai" {
            continue;
        }
        let flow = dir.join(format!("example_{i:02}.rhai"));
        std::fs::write(&flow, &b.text).expect("write an example");
        flows.push(flow.display().to_string());
        if let Some(next) = all
            .get(i + 1)
            .filter(|n| n.lang == "toml" && n.text.contains("[[case]]"))
        {
            std::fs::write(dir.join(format!("example_{i:02}.test.toml")), &next.text)
                .expect("write its cases");
            tested += 1;
            cases += next.text.matches("[[case]]").count();
        }
    }
    println!(
        "[guide] {} rhai examples, {tested} with {cases} cases",
        flows.len()
    );
    assert!(
        flows.len() >= 15,
        "the guide lost its examples: {}",
        flows.len()
    );
    assert!(tested >= 5, "the guide lost its tested examples: {tested}");

    let mut check = vec!["check"];
    check.extend(flows.iter().map(String::as_str));
    let (ok, out) = run(&check, repo());
    assert!(ok, "an example in docs/scripts.md does not compile:\n{out}");

    let config = repo().join("rivr.toml").display().to_string();
    let test_dir = dir.display().to_string();
    let (ok, out) = run(&["test", &test_dir, "--config", &config], repo());
    println!("{out}");
    assert!(ok, "an example in docs/scripts.md fails its cases:\n{out}");
    assert!(
        out.contains(&format!("{cases} passed, 0 failed")),
        "expected {cases} cases to pass:\n{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn tempdir(label: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
