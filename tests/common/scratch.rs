//! A per-test temp dir, removed when the test passes and kept (its path
//! printed) when it fails, so rivr's stderr, the CDRs and SIPp's logs can
//! be read after the fact.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A fresh directory named after the test.
    pub fn new(label: &str) -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rivr-e2e-{}-{}-{}", label, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's temp dir");
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// An even RTP port range of `len` ports for one rivr instance, different
/// for every call in this process and spread by pid across processes, kept
/// below Linux's ephemeral range (32768+) where the tests' own sockets live.
pub fn rtp_range(len: u16) -> (u16, u16) {
    static RANGES: AtomicU32 = AtomicU32::new(0);
    let n = RANGES.fetch_add(1, Ordering::Relaxed);
    let slots = 12_000 / u32::from(len.max(2));
    let slot = (std::process::id().wrapping_mul(7919).wrapping_add(n)) % slots;
    let lo = 20_000 + slot * u32::from(len.max(2));
    let lo = (lo & !1) as u16;
    (lo, lo + len - 1)
}
