//! The Rhai engine, the call-flow API, and the per-call runner.
