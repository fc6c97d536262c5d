//! `rivr sim` and `rivr test`: a call flow run against a simulated caller
//! on a virtual clock, with no network. The script goes through the same
//! runner, engine, verbs, prompts and limits as a real call (`run`); only
//! the call underneath is simulated (`call::SimCall`, a `CallControl` over
//! `caller::SimCore`):
//! keys at given times or as the flow asks (`keys`), prompts lasting their
//! real length, `send_sms` recorded and not sent, `dial()` meeting a
//! simulated far party. Out come a transcript (`transcript`), the audio the
//! caller heard (`wav`), and for script tests the cases' verdicts with
//! diffs (`cases`, `diff`).

pub mod call;
pub mod caller;
pub mod cases;
pub mod diff;
pub mod keys;
pub mod log;
pub mod run;
pub mod transcript;
pub mod wav;

pub use keys::KeyPlan;
pub use run::{load_config, SimOptions, SimReport, Simulator};
