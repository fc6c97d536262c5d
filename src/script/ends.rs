//! How scripts ended, counted for `/metrics`: completed, hung up, the
//! caller gone, failed; and which limit stopped the ones a limit stopped.
//! One atomic add per script's end.

use std::sync::atomic::{AtomicU64, Ordering};

/// A limit that stopped a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `[script] max_operations` (Rhai's operation count).
    Operations,
    /// `max_operations_between_verbs`: a busy loop.
    Stuck,
    /// `max_duration_ms`.
    Time,
    /// `max_memory_bytes`.
    Memory,
    /// Rhai's call depth.
    CallDepth,
    /// A string, array or map over its size limit.
    DataSize,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::Operations,
        Limit::Stuck,
        Limit::Time,
        Limit::Memory,
        Limit::CallDepth,
        Limit::DataSize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Operations => "operations",
            Limit::Stuck => "operations_between_verbs",
            Limit::Time => "duration",
            Limit::Memory => "memory",
            Limit::CallDepth => "call_depth",
            Limit::DataSize => "data_size",
        }
    }
}

/// Script ends by kind, and limits hit.
#[derive(Debug, Default)]
pub struct ScriptEnds {
    completed: AtomicU64,
    hung_up: AtomicU64,
    caller_hung_up: AtomicU64,
    failed: AtomicU64,
    limits: [AtomicU64; 6],
}

/// The counts at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptEndCounts {
    pub completed: u64,
    pub hung_up: u64,
    pub caller_hung_up: u64,
    /// Errors, limits and panics alike.
    pub failed: u64,
    /// By [`Limit::ALL`].
    pub limits: [u64; 6],
}

impl ScriptEnds {
    pub fn count(&self, outcome: &super::runner::Outcome) {
        use super::runner::Outcome;
        let slot = match outcome {
            Outcome::Completed => &self.completed,
            Outcome::HungUp => &self.hung_up,
            Outcome::CallerHungUp => &self.caller_hung_up,
            Outcome::Failed(_) => &self.failed,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_limit(&self, limit: Limit) {
        let i = Limit::ALL.iter().position(|l| *l == limit).unwrap_or(0);
        if let Some(slot) = self.limits.get(i) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> ScriptEndCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ScriptEndCounts {
            completed: get(&self.completed),
            hung_up: get(&self.hung_up),
            caller_hung_up: get(&self.caller_hung_up),
            failed: get(&self.failed),
            limits: [
                get(&self.limits[0]),
                get(&self.limits[1]),
                get(&self.limits[2]),
                get(&self.limits[3]),
                get(&self.limits[4]),
                get(&self.limits[5]),
            ],
        }
    }
}
