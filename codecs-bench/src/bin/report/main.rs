//! `report`: throughput of rivr's media operations beside spandsp's on the
//! same signals, then DTMF accuracy of both receivers on the Q.24 cases and
//! the talk-off corpus. Prints Markdown, ready for `docs/quality.md`.
//!
//! Usage: `report [--seconds S] [--doc FILE] [--no-accuracy] [--no-talkoff]`
//! (S = measuring time per operation, default 1; with `--doc` the output
//! also replaces the `report:begin`/`report:end` section of FILE).
//!
//! Modules: `call_path` (per-call 8 kHz operations: G.711, DTMF, PLC,
//! jitter buffer), `resampling` (whole-buffer and streaming), `opus`,
//! `accuracy` (the DTMF tables), `frames` (feeding a signal frame by frame).

use std::time::{Duration, Instant};

use codecs_bench::signals::{music, speech};
use codecs_bench::throughput::HEADER;

/// Prints a line and keeps it for `--doc`.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        $out.push_str(&line);
        $out.push('\n');
    }};
}

mod accuracy;
mod call_path;
mod frames;
mod opus;
mod resampling;

const USAGE: &str = "usage: report [--seconds S] [--doc FILE] [--no-accuracy] [--no-talkoff]";

struct Options {
    budget: Duration,
    doc: Option<std::path::PathBuf>,
    accuracy: bool,
    talkoff: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        budget: Duration::from_secs(1),
        doc: None,
        accuracy: true,
        talkoff: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                let s: f64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|s: &f64| *s > 0.0 && *s < 600.0)
                    .ok_or("--seconds needs a number of seconds")?;
                o.budget = Duration::from_secs_f64(s);
            }
            "--doc" => o.doc = Some(args.next().ok_or("--doc needs a file")?.into()),
            "--no-accuracy" => o.accuracy = false,
            "--no-talkoff" => o.talkoff = false,
            "--bench" => {} // passed by `cargo bench`-style runners
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// The throughput table: every operation on the same 20 s of speech.
fn throughput_section(out: &mut String, budget: Duration) {
    let (speech, source) = match speech::bench_speech(20.0) {
        Ok(pcm) => (pcm, "20 s of espeak-ng speech (en-us, en-gb)"),
        Err(e) => {
            eprintln!("*** espeak-ng speech unavailable ({e}); using a generated multi-tone");
            (
                music::multitone(20.0, 1),
                "20 s of generated speech-like multi-tone",
            )
        }
    };
    outln!(
        out,
        "### Throughput\n\nOne core, {} s per operation, signal: {source}.\n",
        budget.as_secs_f64()
    );
    outln!(out, "{HEADER}");
    let mut rows = call_path::g711_rows(budget, &speech);
    rows.push(call_path::dtmf_row(
        budget,
        &call_path::speech_with_keys(&speech),
    ));
    rows.push(call_path::plc_row(budget, &speech));
    rows.extend(call_path::jitter_rows(budget));
    match resampling::whole_buffer_rows(budget, &speech) {
        Ok(r) => rows.extend(r),
        Err(e) => eprintln!("*** resampling failed: {e}"),
    }
    match opus::rows(budget, &speech) {
        Ok(r) => rows.extend(r),
        Err(e) => eprintln!("*** Opus failed: {e}"),
    }
    match resampling::stream_rows(budget, &speech) {
        Ok(r) => rows.extend(r),
        Err(e) => eprintln!("*** streaming resampler failed: {e}"),
    }
    for row in &rows {
        outln!(out, "{}", row.markdown());
    }
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("report: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut out = String::new();
    throughput_section(&mut out, o.budget);
    if o.accuracy {
        accuracy::q24_section(&mut out);
    }
    if o.talkoff {
        accuracy::talkoff_section(&mut out);
    }
    eprintln!("report took {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &o.doc {
        if let Err(e) = codecs_bench::doc::replace_file_section(path, "report", &out) {
            eprintln!("report: {}: {e}", path.display());
            std::process::exit(1);
        }
        eprintln!("(written into {})", path.display());
    }
}
