//! Measurements of rivr's media hot paths against references.
//!
//! - `benches/media.rs`: criterion benchmarks, per 20 ms frame.
//! - `src/bin/report/`: samples/s and real-time channels per core for each
//!   operation, rivr beside spandsp (through the C shim in `shim/`) on the
//!   same signals, then DTMF accuracy of both receivers on the ITU-T Q.24
//!   cases and a talk-off corpus.
//!   The work both time is defined once in [`workload`].
//! - `src/bin/g711-impair.rs` and `pesq/run.sh`: voice quality (PESQ).
//! - `tests/dtmf_q24.rs`, `tests/dtmf_talkoff.rs`: rivr's DTMF conformance
//!   and talk-off tests, on the same signals ([`dtmf::q24`], [`signals`])
//!   the report scores both receivers on; they run in `make test`.
//!
//! `unsafe` is confined to [`spandsp`], the FFI wrapper; rivr itself stays
//! `forbid(unsafe_code)`.
#![deny(unsafe_code)]

pub mod doc;
pub mod dtmf;
pub mod loss;
pub mod signals;
pub mod spandsp;
pub mod throughput;
pub mod workload;
