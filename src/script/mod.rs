//! Call flows in Rhai: one shared `Engine` with limits (`engine`), the verbs
//! registered on it (`api`), their waiting logic over the call's control
//! channel (`verbs`), and the per-call runner that gives each running script
//! its own OS thread (`runner`). A script error or limit ends only its own
//! call.

pub mod api;
pub mod engine;
pub mod runner;
pub mod verbs;

pub use engine::{ScriptCache, ScriptError};
