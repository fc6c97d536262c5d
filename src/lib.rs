//! rivr — an IVR and SIP media server.
//!
//! One process answers inbound SIP calls, runs call flows written as Rhai
//! scripts, and does its own media (RTP, G.711, prompts, DTMF).
//!
//! The code is split into sans-IO cores (SIP transactions and dialogs, the RTP
//! session, the jitter buffer, the DTMF detectors, the SMPP session) that take
//! input and `now` and return output, and a thin I/O layer (tokio for
//! signalling, media worker threads on a 20 ms tick) that moves bytes and
//! instants. See `docs/architecture.md`.
#![forbid(unsafe_code)]

pub mod api;
pub mod call;
pub mod campaign;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod demo;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod media;
pub mod pri;
pub mod rate;
pub mod script;
pub mod server;
pub mod sim;
pub mod sip;
pub mod sms;
pub mod store;
pub mod supervision;
