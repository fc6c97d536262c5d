//! The end-to-end harness shared by the `tests/inbound_*.rs` files: start
//! `rivr serve` on a temp config ([`server`]), place calls with SIPp
//! ([`sipp`]), own the caller's RTP socket ([`rtp`]) and measure what was
//! heard ([`audio`]). Each test gets its own temp dir ([`scratch`]) and its
//! own RTP port range, so tests run in parallel.
//!
//! Every test binary compiles this module whole but uses only part of it.
#![allow(dead_code)]

pub mod audio;
pub mod caller;
pub mod rtp;
pub mod scratch;
pub mod server;
pub mod sip_raw;
pub mod sipp;

/// Skips the calling test, loudly, when SIPp is not installed (the Makefile
/// installs it; CI has it).
#[macro_export]
macro_rules! require_sipp {
    () => {
        if !$crate::common::sipp::available() {
            eprintln!(
                "\n*** SKIPPED {}: `sipp` is not installed (Debian package sip-tester; `make deps`) ***\n",
                module_path!()
            );
            return;
        }
    };
}
