//! The running script threads: how many may run at once (the server sets
//! the cap from its call cap), their names, and how many panicked. A slot
//! is taken before a script's thread starts and given back when the thread
//! ends, after its `done` callback, whatever happened inside.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Cap used by `ScriptCache::new` until the server passes its own.
pub const DEFAULT_MAX_SCRIPTS: usize = 1024;

/// Why a script could not start; the server answers that call 503.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{max} scripts are already running (the cap); not starting another")]
    Full { max: usize },
    #[error("cannot start a script thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Counters shared by every script thread of one `ScriptCache`.
#[derive(Debug)]
pub struct ScriptThreads {
    max: usize,
    running: AtomicUsize,
    panics: AtomicU64,
    ends: super::ends::ScriptEnds,
}

impl ScriptThreads {
    /// `max` scripts may run at once (at least one).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ScriptThreads {
            max: max.max(1),
            running: AtomicUsize::new(0),
            panics: AtomicU64::new(0),
            ends: super::ends::ScriptEnds::default(),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Scripts running now (their threads have not ended yet).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Panics caught in script threads since start (each failed one call).
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// How scripts ended, and the limits that stopped them.
    pub fn ends(&self) -> &super::ends::ScriptEnds {
        &self.ends
    }

    pub(crate) fn count_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// A slot for one more script, or `Full` at the cap.
    pub fn try_acquire(self: &Arc<Self>) -> Result<ScriptSlot, SpawnError> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map_err(|_| SpawnError::Full { max: self.max })?;
        Ok(ScriptSlot {
            threads: self.clone(),
        })
    }
}

/// One running script's place under the cap; given back on drop.
#[derive(Debug)]
pub struct ScriptSlot {
    threads: Arc<ScriptThreads>,
}

impl ScriptSlot {
    pub fn threads(&self) -> &Arc<ScriptThreads> {
        &self.threads
    }
}

impl Drop for ScriptSlot {
    fn drop(&mut self) {
        self.threads.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A name for the next script thread: `script-1`, `script-2`, … (never
/// derived from the call: a Call-ID is network input).
pub fn next_thread_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("script-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_refuses_one_more_and_a_slot_comes_back_on_drop() {
        let t = ScriptThreads::new(2);
        let a = t.try_acquire().unwrap();
        let _b = t.try_acquire().unwrap();
        assert_eq!(t.running(), 2);
        let e = t.try_acquire().unwrap_err();
        assert!(matches!(e, SpawnError::Full { max: 2 }), "{e:?}");
        assert!(
            e.to_string().contains("2 scripts are already running"),
            "{e}"
        );
        drop(a);
        assert_eq!(t.running(), 1);
        let _c = t.try_acquire().unwrap();
        assert_eq!(t.running(), 2);
    }

    #[test]
    fn thread_names_are_numbered() {
        let a = next_thread_name();
        let b = next_thread_name();
        let n = |s: &str| s.strip_prefix("script-").unwrap().parse::<u64>().unwrap();
        assert!(n(&b) > n(&a), "{a} {b}");
    }
}
