//! Tests of Q.931 call control: a user side and a network side back to
//! back on a virtual clock ([`harness`]), by theme — establishing calls,
//! clearing them (with each timer), errors and odd messages, recovery
//! (link loss, RESTART, glare, a full span) — and property tests feeding
//! random input.

mod clearing;
mod errors;
mod establish;
mod harness;
mod prop;
mod recovery;
