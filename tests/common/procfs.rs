//! What a process costs, read from /proc while a test loads it: resident
//! memory (`VmRSS`, `VmHWM`), threads and open descriptors, sampled on a
//! thread of its own so the test can keep driving the load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One reading.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    pub rss_kb: u64,
    pub threads: u64,
    pub fds: u64,
}

/// A `kB` or count field of /proc/PID/status (`VmRSS`, `VmHWM`, `Threads`).
pub fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Open file descriptors of `pid`.
pub fn fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// One reading now, if the process is there.
pub fn sample(pid: u32) -> Option<Sample> {
    Some(Sample {
        at: Instant::now(),
        rss_kb: status_field(pid, "VmRSS")?,
        threads: status_field(pid, "Threads")?,
        fds: fd_count(pid).unwrap_or(0),
    })
}

/// Samples `pid` every `every` until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let (Some(s), Ok(mut v)) = (sample(pid), samples.lock()) {
                        v.push(s);
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// The readings so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops sampling and returns every reading.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The largest RSS (kB), thread count and descriptor count among `samples`.
pub fn peaks(samples: &[Sample]) -> (u64, u64, u64) {
    samples.iter().fold((0, 0, 0), |(r, t, f), s| {
        (r.max(s.rss_kb), t.max(s.threads), f.max(s.fds))
    })
}

/// The readings taken between `from` and `to`.
pub fn between(samples: &[Sample], from: Instant, to: Instant) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to)
        .copied()
        .collect()
}
