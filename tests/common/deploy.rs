//! deploy/ as the tests run it: a systemd unit's `ExecStart=` read the way
//! systemd reads it (continuation lines, quotes, `${VAR}` from the unit's
//! `Environment=` and the caller's values, `%i`), the example values of a
//! deploy file replaced by the test's own (each one must be there), and
//! `systemd-analyze verify` on the units.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::scratch::Scratch;
use super::server::repo;

/// A file under deploy/.
pub fn file(rel: &str) -> PathBuf {
    repo().join("deploy").join(rel)
}

/// deploy/`rel` with each `from` replaced by its `to`. A `from` that is not
/// in the file fails the test: the file and the test went out of step.
pub fn replaced(rel: &str, pairs: &[(&str, String)]) -> String {
    let path = file(rel);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in pairs {
        assert!(
            text.contains(from),
            "{} no longer has the example value {from:?} the test replaces",
            path.display()
        );
        text = text.replace(from, to);
    }
    text
}

/// What a unit runs: its `ExecStart=` as words, and the environment it
/// sets.
#[derive(Debug)]
pub struct Unit {
    pub exec_start: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Unit {
    /// The command line with each `from` (a whole word or a part of one)
    /// replaced by its `to`; a `from` found nowhere fails the test.
    pub fn command(&self, pairs: &[(&str, String)]) -> Vec<String> {
        let mut words = self.exec_start.clone();
        for (from, to) in pairs {
            assert!(
                words.iter().any(|w| w.contains(from)),
                "ExecStart {:?} has no {from:?} to replace",
                self.exec_start
            );
            for w in &mut words {
                *w = w.replace(from, to);
            }
        }
        words
    }
}

/// The `[Service]` section's `ExecStart=` and `Environment=` of
/// deploy/systemd/`name`, as systemd would run them for `instance` (`%i`;
/// `None` for a unit that is not a template), with `vars` set over the
/// unit's `Environment=` (as its `EnvironmentFile=` would). A `$VAR` the
/// unit leaves unset fails the test.
pub fn unit(name: &str, instance: Option<&str>, vars: &[(&str, String)]) -> Unit {
    let path = file(&format!("systemd/{name}"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let specifiers = |s: &str| -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('i') => out.push_str(
                    instance.unwrap_or_else(|| panic!("{name}: %i in a unit that is no template")),
                ),
                other => panic!("{name}: specifier %{other:?} not known to the test"),
            }
        }
        out
    };
    let mut section = String::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut exec = None;
    for line in logical_lines(&text) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section != "[Service]" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            panic!("{name}: not a key=value line: {line:?}");
        };
        match key.trim() {
            "Environment" => {
                for word in words(value) {
                    let (k, v) = word
                        .split_once('=')
                        .unwrap_or_else(|| panic!("{name}: Environment={word:?}"));
                    env.retain(|(old, _)| old != k);
                    env.push((k.to_string(), specifiers(v)));
                }
            }
            "ExecStart" => exec = Some(value.trim().to_string()),
            _ => {}
        }
    }
    for (k, v) in vars {
        env.retain(|(old, _)| old != k);
        env.push((k.to_string(), v.clone()));
    }
    let exec = exec.unwrap_or_else(|| panic!("{name} has no ExecStart="));
    let exec = exec.trim_start_matches(['-', '@', ':', '+', '!']);
    let lookup = |var: &str| -> String {
        env.iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name}: ExecStart uses ${var}, which it does not set"))
    };
    let mut argv = Vec::new();
    for word in words(exec) {
        // `$VAR` alone is split into words, `${VAR}` is one word.
        if let Some(var) = word.strip_prefix('$').filter(|v| !v.starts_with('{')) {
            argv.extend(words(&lookup(var)));
            continue;
        }
        let mut out = String::new();
        let mut rest = word.as_str();
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let end = rest[at..]
                .find('}')
                .unwrap_or_else(|| panic!("{name}: unclosed ${{ in {word:?}"));
            out.push_str(&lookup(&rest[at + 2..at + end]));
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
        argv.push(specifiers(&out));
    }
    Unit {
        exec_start: argv,
        env,
    }
}

/// The unit's lines with systemd's continuations (a line ending in `\`)
/// joined by a space.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        // A comment inside a continued line is skipped (systemd.syntax).
        if cur.is_some() && line.trim_start().starts_with('#') {
            continue;
        }
        let (body, more) = match line.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        match cur.as_mut() {
            Some(c) => {
                c.push(' ');
                c.push_str(body.trim());
            }
            None => cur = Some(body.to_string()),
        }
        if !more {
            out.extend(cur.take());
        }
    }
    out.extend(cur);
    out
}

/// Splits a value into words as systemd does: blanks separate words,
/// single or double quotes keep one word together (and are removed), a
/// backslash escapes the next character.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in {s:?}");
    if in_word {
        out.push(cur);
    }
    out
}

/// `systemd-analyze verify` on deploy/systemd/`units` (instances named for
/// templates, e.g. `rivr@rivr-1.service`), offline: in a root dir holding
/// the system's own units (/usr/lib/systemd/system: the targets the units
/// name), the deploy units in its /etc/systemd/system, and an executable at
/// each path their `ExecStart=` names (a stub where the host has none:
/// `/usr/local/bin/rivr` is where deploy/README.md installs it). Its
/// complaints (an unknown key or a bad value is only a warning there, with
/// status 0), or `Ok`.
pub fn systemd_verify(units: &[(&str, &str)]) -> Result<(), String> {
    let tool = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        tool.as_ref().is_ok_and(|o| o.status.success()),
        "systemd-analyze is needed (Debian package `systemd`, in the Makefile's APT_PKGS): {tool:?}"
    );
    let root = Scratch::new("systemd-verify");
    let system = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("the system's units (/usr/lib/systemd/system/sysinit.target)");
    let lib = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&lib).expect("mkdir usr/lib/systemd");
    let copied = Command::new("cp").arg("-a").arg(system).arg(&lib).status();
    assert!(
        copied.is_ok_and(|s| s.success()),
        "copy {} into the root",
        system.display()
    );
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).expect("mkdir etc/systemd/system");
    let mut names = Vec::new();
    for (file_name, run_as) in units {
        let src = file(&format!("systemd/{file_name}"));
        std::fs::copy(&src, etc.join(file_name))
            .unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        let instance = run_as
            .split_once('@')
            .and_then(|(_, i)| i.strip_suffix(".service"));
        let program = PathBuf::from(&unit(file_name, instance, &[]).exec_start[0]);
        let inside = root
            .path()
            .join(program.strip_prefix("/").unwrap_or(&program));
        std::fs::create_dir_all(inside.parent().expect("a folder")).expect("mkdir for the program");
        if program.exists() {
            std::fs::copy(&program, &inside).expect("copy the program");
        } else {
            std::fs::write(&inside, "#!/bin/sh\nexit 0\n").expect("write a stub");
            let chmod = Command::new("chmod").arg("755").arg(&inside).status();
            assert!(chmod.is_ok_and(|s| s.success()), "chmod the stub");
        }
        names.push(run_as.to_string());
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .args(&names)
        .output()
        .expect("run systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze verify {names:?}: {}\n{said}",
            out.status
        ))
    }
}

#[test]
fn exec_start_words_follow_systemd() {
    assert_eq!(
        words(r#"/bin/k -A 'X="/a b"' -B "c d" e\ f"#),
        ["/bin/k", "-A", "X=\"/a b\"", "-B", "c d", "e f"]
    );
    assert_eq!(
        logical_lines("A=1 \\\n# note\n    2\nB=3\n"),
        ["A=1  2", "B=3"]
    );
}
