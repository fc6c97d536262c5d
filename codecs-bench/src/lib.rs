//! Benchmarks of rivr's media hot paths live in `benches/`; the `report`
//! binary prints samples/s and channels per core.
