//! cargo-fuzz target `q931_calls`. The body lives in `rivr::fuzzing`,
//! shared with the stable harness (`cargo test --lib fuzzing`); see README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rivr::fuzzing::q931_calls::run(data));
