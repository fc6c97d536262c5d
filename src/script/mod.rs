//! Call flows in Rhai: one shared `Engine` with limits (`engine`), the verbs
//! registered on it (`api`), their waiting logic over the call's control
//! channel (`verbs`), and the per-call runner that gives each running script
//! its own OS thread (`runner`) under a cap (`threads`) and a memory budget
//! (`memory`); the call's language picks its prompts (`lang`). A script error, limit or panic ends only its own call.

pub mod api;
pub mod ends;
pub mod engine;
pub mod lang;
pub mod memory;
pub mod runner;
pub mod say;
mod say_words;
pub mod threads;
pub mod verbs;

pub use engine::{ScriptCache, ScriptError};
pub use threads::{ScriptThreads, SpawnError};
