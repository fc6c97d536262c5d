//! The stable in-process fuzz driver: runs a target's body over its seed
//! corpus, then over random mutations of it (bit flips, interesting values,
//! inserts, deletes, copies, splices) for a time budget, with no libFuzzer
//! and no coverage feedback. It catches a panic, writes the input to
//! `target/fuzz-crashes/` and reports it, so CI finds a regression on
//! stable Rust without a nightly toolchain. cargo-fuzz remains the tool that
//! explores; this one keeps its findings from coming back.
//!
//! `cargo test --lib fuzzing` runs every target for `RIVR_FUZZ_SECONDS`
//! (default 3) seconds; `RIVR_FUZZ_SEED` fixes the random seed (printed by
//! every run, so a failure can be replayed).

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Target;

/// What one run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub name: &'static str,
    /// Inputs run.
    pub execs: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Seed inputs it started from.
    pub seeds: usize,
    /// The random seed.
    pub rng_seed: u64,
}

/// A panicking input.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The panic message.
    pub message: String,
    /// Where the input was written (if it could be).
    pub path: Option<PathBuf>,
    /// The input.
    pub input: Vec<u8>,
}

/// The seed inputs of `target`: its files under `root`, its code seeds, and
/// the empty input.
pub fn seed_corpus(target: &Target, root: &Path) -> Vec<Vec<u8>> {
    let mut corpus = vec![Vec::new()];
    for dir in target.seed_dirs {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        corpus.extend(files.iter().filter_map(|f| std::fs::read(f).ok()));
    }
    corpus.extend((target.seeds)());
    corpus.sort();
    corpus.dedup();
    corpus
}

/// Runs one input; a panic becomes its message.
pub fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// Runs `target` over its seeds, then over mutations of them until `budget`
/// has passed.
pub fn fuzz_for(
    target: &Target,
    root: &Path,
    budget: Duration,
    rng_seed: u64,
) -> Result<Report, Crash> {
    let start = Instant::now();
    let seeds = seed_corpus(target, root);
    let crash = |input: &[u8], message: String| Crash {
        path: save_crash(root, target.name, input),
        message,
        input: input.to_vec(),
    };
    for s in &seeds {
        run_one(target, s).map_err(|m| crash(s, m))?;
    }
    let max_len = seeds.iter().map(Vec::len).max().unwrap_or(0).max(2048) * 2;
    let mut pool = seeds.clone();
    let mut rng = Rng(rng_seed | 1);
    let mut execs = seeds.len() as u64;
    let mut input = Vec::with_capacity(max_len);
    'outer: loop {
        for _ in 0..32 {
            let base = &pool[rng.below(pool.len())];
            input.clear();
            input.extend_from_slice(base);
            let other = &pool[rng.below(pool.len())];
            for _ in 0..1 + rng.below(4) {
                mutate(&mut input, other, &mut rng, max_len);
            }
            run_one(target, &input).map_err(|m| crash(&input, m))?;
            execs += 1;
            // Stacking mutations reaches further from the seeds; a bounded
            // pool keeps the seeds themselves in play.
            if rng.below(16) == 0 {
                if pool.len() < 256 {
                    pool.push(input.clone());
                } else {
                    let i = seeds.len() + rng.below(pool.len() - seeds.len());
                    pool[i].clone_from(&input);
                }
            }
        }
        if start.elapsed() >= budget {
            break 'outer;
        }
    }
    Ok(Report {
        name: target.name,
        execs,
        elapsed: start.elapsed(),
        seeds: seeds.len(),
        rng_seed,
    })
}

fn save_crash(root: &Path, name: &str, input: &[u8]) -> Option<PathBuf> {
    let dir = root.join("target/fuzz-crashes");
    std::fs::create_dir_all(&dir).ok()?;
    // FNV-1a names the file after its content.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{name}-{hash:016x}"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-enough in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

const INTERESTING: [u32; 12] = [
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
];

/// One random change to `input`, which stays at most `max_len` long.
fn mutate(input: &mut Vec<u8>, other: &[u8], rng: &mut Rng, max_len: usize) {
    let len = input.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.byte();
        }
        2 if len > 0 => {
            let i = rng.below(len);
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let bytes = v.to_be_bytes();
            let width = [1, 2, 4][rng.below(3)];
            for (k, b) in bytes[4 - width..].iter().enumerate() {
                if let Some(slot) = input.get_mut(i + k) {
                    *slot = *b;
                }
            }
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let delta = rng.below(35) as u8;
            input[i] = if rng.below(2) == 0 {
                input[i].wrapping_add(delta)
            } else {
                input[i].wrapping_sub(delta)
            };
        }
        4 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            input.splice(at..at, bytes);
        }
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            input.drain(at..at + n);
        }
        6 if len > 0 => {
            // Copy a chunk of itself elsewhere (repeats a field or an op).
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(128));
            let chunk = input[from..from + n].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, chunk);
        }
        7 if !other.is_empty() => {
            // Splice: this input's head, another's tail.
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        8 if len > 0 => {
            input.truncate(rng.below(len));
        }
        _ => {
            let at = rng.below(len + 1);
            input.insert(at, rng.byte());
        }
    }
    input.truncate(max_len);
}

/// `bytes` as hex, for a failure message.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{target, TARGETS};
    use super::*;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn smoke(name: &str) {
        let t = target(name).expect("registered target");
        let secs: f64 = std::env::var("RIVR_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0);
        let seed = std::env::var("RIVR_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        match fuzz_for(t, root(), Duration::from_secs_f64(secs), seed) {
            Ok(r) => {
                eprintln!(
                    "fuzz {}: {} execs in {:.1} s ({:.0}/s) from {} seeds, RIVR_FUZZ_SEED={}",
                    r.name,
                    r.execs,
                    r.elapsed.as_secs_f64(),
                    r.execs as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    r.seeds,
                    r.rng_seed
                );
                assert!(r.execs > r.seeds as u64, "{r:?}");
            }
            Err(c) => panic!(
                "fuzz {name} (RIVR_FUZZ_SEED={seed}): {} on input {:?} written to {:?}",
                c.message,
                hex(&c.input),
                c.path
            ),
        }
    }

    #[test]
    fn fuzz_sip_wire() {
        smoke("sip_wire");
    }
    #[test]
    fn fuzz_sdp() {
        smoke("sdp");
    }
    #[test]
    fn fuzz_smpp_pdu() {
        smoke("smpp_pdu");
    }
    #[test]
    fn fuzz_rtp() {
        smoke("rtp");
    }
    #[test]
    fn fuzz_rtcp() {
        smoke("rtcp");
    }
    #[test]
    fn fuzz_rfc4733() {
        smoke("rfc4733");
    }
    #[test]
    fn fuzz_server() {
        smoke("server");
    }
    #[test]
    fn fuzz_smpp_session() {
        smoke("smpp_session");
    }
    #[test]
    fn fuzz_q931() {
        smoke("q931");
    }
    #[test]
    fn fuzz_q921() {
        smoke("q921");
    }
    #[test]
    fn fuzz_q931_calls() {
        smoke("q931_calls");
    }

    /// Every target has seeds, and cargo-fuzz has a binary for each (and
    /// nothing else), so `make fuzz` and this harness cover the same set.
    #[test]
    fn targets_have_seeds_and_fuzz_binaries() {
        let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
        let mut bins: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|n| *n != "rivr-fuzz")
            .collect();
        bins.sort_unstable();
        let mut names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        assert_eq!(bins, names);
        for t in TARGETS {
            assert!(seed_corpus(t, root()).len() > 1, "{} has no seeds", t.name);
        }
    }

    /// A panicking body is caught, reported and its input kept.
    #[test]
    fn a_panic_is_caught_and_its_input_saved() {
        fn boom(data: &[u8]) {
            assert!(data.len() < 3, "too long");
        }
        fn seeds() -> Vec<Vec<u8>> {
            vec![vec![1, 2]]
        }
        let t = Target {
            name: "selftest",
            run: boom,
            seeds,
            seed_dirs: &[],
        };
        let c = fuzz_for(&t, root(), Duration::from_secs(5), 7).unwrap_err();
        assert_eq!(c.message, "too long");
        assert!(c.input.len() >= 3);
        let path = c.path.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), c.input);
        let _ = std::fs::remove_file(path);
    }

    /// Writes the code-built seeds of every target to `fuzz/seeds/<name>/`
    /// (run by `make fuzz-seeds`; the files are committed).
    #[test]
    #[ignore = "writes files; run by make fuzz-seeds"]
    fn write_seed_files() {
        for t in TARGETS {
            let seeds = (t.seeds)();
            if seeds.is_empty() {
                continue;
            }
            let dir = root().join("fuzz/seeds").join(t.name);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
            }
        }
    }
}
