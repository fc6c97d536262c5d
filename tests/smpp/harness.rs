//! Shared helpers of the SMPP integration tests: the real `rivr` binary,
//! a simulator process on 127.0.0.1 port 0, its log, and configs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn rivr_bin() -> PathBuf {
    std::env::var_os("RIVR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rivr")))
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rivr-{name}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

/// A running `rivr smsc-sim`, killed on drop.
pub struct Sim {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Sim {
    pub fn start(dir: &Path, args: &[&str]) -> Sim {
        let log = dir.join("sim.log");
        let mut child = Command::new(rivr_bin())
            .arg("smsc-sim")
            .args(["--listen", "127.0.0.1:0", "--log"])
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rivr smsc-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Sim { child, port, log }
    }

    /// `(smsc id, idempotency key, destination, data_coding, esm_class, hex)`
    /// of every accepted message, in acceptance order.
    pub fn accepted(&self) -> Vec<Accepted> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix("accepted "))
            .map(|l| {
                let f = |k: &str| {
                    l.split(' ')
                        .find_map(|w| w.strip_prefix(&format!("{k}=")))
                        .unwrap_or("")
                        .to_string()
                };
                Accepted {
                    smsc_id: f("id"),
                    key: f("key"),
                    dest: f("dest"),
                    dc: f("dc").parse().unwrap_or(0),
                    esm: f("esm").parse().unwrap_or(0),
                    sm_hex: f("sm"),
                }
            })
            .collect()
    }

    pub fn stat(&self, name: &str) -> u64 {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .filter_map(|v| v.trim().parse().ok())
            .max()
            .unwrap_or(0)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Accepted {
    pub smsc_id: String,
    pub key: String,
    pub dest: String,
    pub dc: u8,
    pub esm: u8,
    pub sm_hex: String,
}

/// A rivr.toml for the simulator on `port`, with extra `[smpp]` lines.
pub fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("rivr.toml");
    let mut smpp = format!(
        "host = \"127.0.0.1\"\nport = {port}\nsystem_id = \"rivrsim\"\npassword = \"pw\"\n{extra}"
    );
    for (k, v) in [("reconnect_min_ms", "50"), ("reconnect_max_ms", "1000")] {
        if !extra.contains(k) {
            smpp.push_str(&format!("{k} = {v}\n"));
        }
    }
    let text = format!(
        "[store]\nurl = \"sqlite://{}/rivr.db\"\n\n[smpp]\n{smpp}\n",
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub fn load_config(path: &Path) -> rivr::config::Config {
    rivr::config::Config::load(path).unwrap()
}

/// Polls `f` until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
