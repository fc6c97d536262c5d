//! A script's memory budget: the bytes its thread holds, as counted by the
//! `alloc_meter` global allocator, against `[script] max_memory_bytes`.
//! Rhai's own limits bound one string, array or map, but not how many a
//! script keeps (and an indexed assignment `a[i] = s` is not checked until
//! the value is used whole), so the total is bounded here; the runner checks
//! it on every Rhai operation and when each verb starts. See
//! docs/security.md "Scripts" for the choice and its cost.
//!
//! The `rivr` binary installs the meter (`src/main.rs`); so do this crate's
//! unit tests. Without it the figure stays 0 and no limit is enforced (the
//! server says so once at start).

/// The meter, for this crate's own unit tests (`src/main.rs` installs it
/// in the binary). Integration tests bring their own allocator.
#[cfg(test)]
#[global_allocator]
static METER: alloc_meter::Meter = alloc_meter::Meter;

/// Whether memory limits are enforced in this process.
pub fn enforced() -> bool {
    alloc_meter::is_installed()
}

/// The bytes a running script holds, against its cap.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    base: isize,
    max: usize,
    peak: usize,
}

impl MemoryBudget {
    /// Starts counting on this thread, from what it holds now.
    pub fn start(max: usize) -> Self {
        MemoryBudget {
            base: alloc_meter::thread_held(),
            max,
            peak: 0,
        }
    }

    /// Bytes allocated (net) on this thread since `start`.
    pub fn used(&self) -> usize {
        usize::try_from(alloc_meter::thread_held().saturating_sub(self.base)).unwrap_or(0)
    }

    /// Largest `used` seen by `over`.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// True once the script holds more than its cap.
    pub fn over(&mut self) -> bool {
        let used = self.used();
        self.peak = self.peak.max(used);
        used > self.max
    }
}

/// Runs `f` without charging this thread for what it allocates: for work
/// done on behalf of the whole process, such as loading a prompt into the
/// shared cache on first use.
pub fn uncharged<T>(f: impl FnOnce() -> T) -> T {
    let saved = alloc_meter::thread_held();
    let r = f();
    alloc_meter::set_thread_held(saved);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_allocations_and_forgives_uncharged_ones() {
        assert!(enforced(), "the unit tests run with the meter installed");
        let mut b = MemoryBudget::start(1 << 20);
        let small = std::hint::black_box(vec![0u8; 100_000]);
        assert!(!b.over());
        assert!((100_000..110_000).contains(&b.used()), "{}", b.used());
        let cached = uncharged(|| std::hint::black_box(vec![0u8; 4 << 20]));
        assert!(!b.over(), "uncharged work is not the script's");
        let big = std::hint::black_box(vec![0u8; 1 << 20]);
        assert!(b.over());
        drop(big);
        assert!(!b.over());
        assert!(b.peak() > 1 << 20);
        drop((small, cached));
    }
}
