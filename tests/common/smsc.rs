//! The SMSC built on PyPI `smpp34` (tests/smpp/smsc_smpp34.py) as a test
//! peer: `.venv` made when missing (tests/smpp/setup-venv.sh; PyPI is
//! reachable here, and a test whose tool cannot be made fails), the SMSC
//! started on a free port, its log read, the process killed on drop.
//! `--fields` logs every submit_sm field (`accepted k=v …`); `--mo-stdin`
//! takes mobile-originated texts on stdin ([`PySmsc::mo`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `.venv`'s python with smpp34 importable, made once per test binary.
pub fn venv_python() -> PathBuf {
    let py = repo().join(".venv/bin/python");
    let ready = || {
        Command::new(&py)
            .args(["-c", "import smpp34"])
            .status()
            .is_ok_and(|s| s.success())
    };
    static SETUP: OnceLock<()> = OnceLock::new();
    SETUP.get_or_init(|| {
        if !ready() {
            let _ = Command::new("bash")
                .arg(repo().join("tests/smpp/setup-venv.sh"))
                .status();
        }
    });
    assert!(
        ready(),
        ".venv with smpp34 is missing and could not be made: run `make smpp-venv`"
    );
    py
}

/// One smsc_smpp34.py process.
pub struct PySmsc {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for PySmsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PySmsc {
    /// Starts it with its log at `dir/name.log` and `args` (`--fields`,
    /// `--mo-stdin`, its refusal and throttling options) and waits for the
    /// line that names its port.
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> PySmsc {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(venv_python())
            .arg(repo().join("tests/smpp/smsc_smpp34.py"))
            .arg(&log)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the smpp34 SMSC");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the SMSC's first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the SMSC's first line {line:?}"));
        let stdin = child.stdin.take();
        PySmsc {
            child,
            stdin,
            port,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's lines that start with `prefix`, whole.
    pub fn log_lines(&self, prefix: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Every accepted submit_sm (`--fields`), its fields by name.
    pub fn accepted(&self) -> Vec<HashMap<String, String>> {
        self.log()
            .lines()
            .filter_map(|l| l.strip_prefix("accepted "))
            .map(|l| {
                l.split(' ')
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    /// The highest value the log gives the counter `name` (`name N` lines).
    pub fn counter(&self, name: &str) -> u64 {
        let prefix = format!("{name} ");
        self.log()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|v| v.trim().parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// A mobile-originated SMS from `from` to `to` (`--mo-stdin`).
    pub fn mo(&mut self, from: &str, to: &str, text: &str) {
        let stdin = self.stdin.as_mut().expect("the SMSC's stdin");
        writeln!(stdin, "mo {from} {to} {text}").expect("write to the SMSC");
        stdin.flush().expect("flush the SMSC's stdin");
    }

    /// The texts rivr submitted to `dest`, in order (`text dest=… ` lines).
    pub fn texts_to(&self, dest: &str) -> Vec<String> {
        let prefix = format!("text dest={dest} ");
        self.log()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}
