//! The end-to-end harness shared by the `tests/inbound_*.rs` files: start
//! `rivr serve` on a temp config ([`server`]), place calls with SIPp
//! ([`sipp`]), own the caller's RTP socket ([`rtp`]) and measure what was
//! heard ([`audio`]). Each test gets its own temp dir ([`scratch`]) and its
//! own RTP port range, so tests run in parallel. For outbound calls
//! (`tests/outbound_*.rs`), [`carrier`] runs SIPp as the carrier's UAS and
//! [`dialer`] runs `rivr call` against it. [`raw_sip`] is a raw UDP
//! SIP peer for messages no SIP stack would send; [`procfs`] samples what
//! the rivr process costs (RSS, threads, descriptors) under a load.
//! For ISDN PRI, [`libpri`] runs libpri (tests/pri/libpri_peer.c) as the
//! carrier on a socket span, [`pri_span`] runs rivr's span stack in the
//! test and [`pri_rivr`] configures rivr processes for PRI.
//!
//! Every test binary compiles this module whole but uses only part of it.
#![allow(dead_code)]

pub mod audio;
pub mod caller;
pub mod campaign;
pub mod carrier;
pub mod deploy;
pub mod dialer;
pub mod failure;
pub mod libpri;
pub mod pg;
pub mod phone;
pub mod pri_rivr;
pub mod pri_span;
pub mod procfs;
pub mod raw_sip;
pub mod rtp;
pub mod scratch;
pub mod server;
pub mod sip_raw;
pub mod sipp;
pub mod sipp_load;
pub mod smsc;
pub mod wire;

/// Fails the calling test when SIPp is not installed (the Makefile installs
/// it; CI has it). Only an explicit `RIVR_SKIP_SIPP=1` turns the failure into
/// a loud skip, so a run that exercised no SIPp test can never look green by
/// accident.
#[macro_export]
macro_rules! require_sipp {
    () => {
        if !$crate::common::sipp::available() {
            if std::env::var_os("RIVR_SKIP_SIPP").is_some_and(|v| v == "1") {
                eprintln!(
                    "\n*** SKIPPED {} (RIVR_SKIP_SIPP=1): `sipp` is not installed ***\n",
                    module_path!()
                );
                return;
            }
            panic!(
                "`sipp` is not installed (Debian package sip-tester; `make deps` installs it); \
                 set RIVR_SKIP_SIPP=1 to skip the SIPp tests on purpose"
            );
        }
    };
}
