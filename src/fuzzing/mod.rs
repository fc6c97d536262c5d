//! The bodies of rivr's fuzz targets, one function per target taking the
//! raw input bytes. The cargo-fuzz crate in `fuzz/` calls them (with the
//! `fuzzing` feature, on nightly with libFuzzer's coverage guidance), and
//! [`harness`] runs them on stable Rust inside `cargo test` over their seed
//! corpora plus random mutations for a bounded time: one body, two drivers.
//!
//! Every stateful target drives a sans-IO core on a virtual clock that the
//! input advances. A target panics only on a bug: malformed input must be
//! dropped or answered, and the asserts check what the core promises.
//!
//! Adding a target: a module with `pub fn run(data: &[u8])` (and seeds, in
//! code or as files), an entry in [`TARGETS`], a `[[bin]]` in
//! `fuzz/Cargo.toml` calling it, and a line in `harness`'s tests.

pub mod harness;
pub mod input;
pub mod parsers;
pub mod q921;
pub mod q931;
pub mod q931_calls;
pub mod rfc4733;
pub mod rtcp;
pub mod rtp;
mod rtp_seeds;
pub mod smpp_session;

/// One fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// Its name: the cargo-fuzz binary and the seed directory.
    pub name: &'static str,
    /// The body.
    pub run: fn(&[u8]),
    /// Seed inputs built in code (structured targets), besides the files.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Directories of seed files, relative to the repository root.
    pub seed_dirs: &'static [&'static str],
}

fn no_seeds() -> Vec<Vec<u8>> {
    Vec::new()
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "sip_wire",
        run: parsers::sip_wire,
        seeds: no_seeds,
        seed_dirs: &["tests/conformance/rfc4475", "fuzz/seeds/sip_wire"],
    },
    Target {
        name: "sdp",
        run: parsers::sdp,
        seeds: parsers::sdp_seeds,
        seed_dirs: &["fuzz/seeds/sdp"],
    },
    Target {
        name: "smpp_pdu",
        run: parsers::smpp_pdu,
        seeds: parsers::smpp_pdu_seeds,
        seed_dirs: &["fuzz/seeds/smpp_pdu"],
    },
    Target {
        name: "rtp",
        run: rtp::run,
        seeds: rtp::seeds,
        seed_dirs: &["fuzz/seeds/rtp"],
    },
    Target {
        name: "rtcp",
        run: rtcp::run,
        seeds: rtcp::seeds,
        seed_dirs: &["fuzz/seeds/rtcp"],
    },
    Target {
        name: "rfc4733",
        run: rfc4733::run,
        seeds: rfc4733::seeds,
        seed_dirs: &["fuzz/seeds/rfc4733"],
    },
    Target {
        name: "smpp_session",
        run: smpp_session::run,
        seeds: smpp_session::seeds,
        seed_dirs: &["fuzz/seeds/smpp_session"],
    },
    Target {
        name: "q921",
        run: q921::run,
        seeds: q921::seeds,
        seed_dirs: &["fuzz/seeds/q921"],
    },
    Target {
        name: "server",
        run: crate::server::sim_drive::run,
        seeds: crate::server::sim_drive::seeds,
        seed_dirs: &["fuzz/seeds/server"],
    },
    Target {
        name: "q931",
        run: q931::run,
        seeds: q931::seeds,
        seed_dirs: &["fuzz/seeds/q931"],
    },
    Target {
        name: "q931_calls",
        run: q931_calls::run,
        seeds: q931_calls::seeds,
        seed_dirs: &["fuzz/seeds/q931_calls"],
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
