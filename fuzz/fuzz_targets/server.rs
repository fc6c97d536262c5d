//! cargo-fuzz target `server`: the whole signalling path on a virtual
//! clock (`rivr::server::sim_drive`). The body lives in the library, shared
//! with the stable harness (`cargo test --lib fuzzing`); see README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rivr::server::sim_drive::run(data));
