//! Headless Chromium (Debian `chromium`) driven by `tests/dashboard/drive.js`
//! (Node with puppeteer-core): one JSON command a line, one JSON answer a
//! line. A missing browser, Node or puppeteer-core fails the test: `make
//! test` installs all three (`make dashboard-deps`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::server::repo;

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

impl Browser {
    /// Starts Node and, through it, Chromium at 1280×800.
    pub fn start() -> Browser {
        let browser = chromium();
        assert!(
            browser.exists(),
            "{} is missing: install the Debian package chromium (`make deps` does)",
            browser.display()
        );
        let dir = repo().join("tests/dashboard");
        assert!(
            dir.join("node_modules/puppeteer-core").is_dir(),
            "tests/dashboard/node_modules/puppeteer-core is missing: run `make dashboard-deps`"
        );
        let mut child = Command::new("node")
            .arg(dir.join("drive.js"))
            .env("CHROMIUM", &browser)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start node (Debian nodejs; `make deps`): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            answers,
        }
    }

    /// Sends `cmd` and waits for its answer; an `error` answer fails.
    pub fn cmd(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("write to the driver");
        let line = self
            .answers
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no answer from the browser driver to {cmd}: {e}"));
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("driver answered {line:?} to {cmd}: {e}"));
        assert!(v.get("error").is_none(), "driver, {cmd}: {}", v["error"]);
        v
    }

    pub fn read(&mut self) -> Value {
        self.cmd(json!({"cmd": "read"}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
