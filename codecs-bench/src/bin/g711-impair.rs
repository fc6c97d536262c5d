//! `g711-impair`: a loss-only cousin of `rivr media impair` used by
//! `pesq/run.sh`: G.711 round trip with seeded 20 ms frame loss, gaps
//! concealed by rivr's PLC (`plc`, the default), by spandsp's (`spandsp`,
//! the reference) or zero-filled (`zero`).
//!
//! Usage: `g711-impair [--codec pcmu|pcma] [--loss-pct P] [--burst B]
//! [--seed S] [--conceal plc|zero|spandsp] IN.wav OUT.wav` (8 kHz mono 16-bit).

use std::path::PathBuf;

use codecs_bench::loss::{round_trip, Conceal, LossPattern};
use codecs_bench::signals::speech::read_wav;
use rivr::media::g711::Law;

struct Options {
    codec: Law,
    loss_pct: f64,
    burst: f64,
    seed: u64,
    conceal: Conceal,
    input: PathBuf,
    output: PathBuf,
}

fn parse() -> Result<Options, String> {
    let mut codec = Law::Ulaw;
    let (mut loss_pct, mut burst, mut seed, mut conceal) = (0.0, 1.0, 1, Conceal::Rivr);
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, name: &str| -> Result<f64, String> {
        v.and_then(|v| v.parse::<f64>().ok())
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or(format!("{name} needs a non-negative number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--codec" => {
                codec = match args.next().as_deref() {
                    Some("pcmu") => Law::Ulaw,
                    Some("pcma") => Law::Alaw,
                    other => return Err(format!("--codec pcmu|pcma, not {other:?}")),
                }
            }
            "--loss-pct" => loss_pct = number(args.next(), "--loss-pct")?.min(99.0),
            "--burst" => burst = number(args.next(), "--burst")?,
            "--seed" => seed = number(args.next(), "--seed")? as u64,
            "--conceal" => {
                conceal = match args.next().as_deref() {
                    Some("zero") => Conceal::Zero,
                    Some("plc") => Conceal::Rivr,
                    Some("spandsp") => Conceal::Spandsp,
                    other => return Err(format!("--conceal plc|zero|spandsp, not {other:?}")),
                }
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => files.push(PathBuf::from(a)),
        }
    }
    let [input, output]: [PathBuf; 2] = files
        .try_into()
        .map_err(|_| "need IN.wav OUT.wav".to_owned())?;
    Ok(Options {
        codec,
        loss_pct,
        burst,
        seed,
        conceal,
        input,
        output,
    })
}

fn run(o: &Options) -> Result<usize, String> {
    let (pcm, rate) = read_wav(&o.input).map_err(|e| e.to_string())?;
    if rate != 8000 {
        return Err(format!(
            "{}: {rate} Hz, want 8000 (resample with sox first)",
            o.input.display()
        ));
    }
    let mut pattern = LossPattern::new(o.loss_pct, o.burst, o.seed);
    let (out, lost) = round_trip(o.codec, &pcm, &mut pattern, o.conceal);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let fail = |e: hound::Error| format!("{}: {e}", o.output.display());
    let mut w = hound::WavWriter::create(&o.output, spec).map_err(fail)?;
    for s in out {
        w.write_sample(s).map_err(fail)?;
    }
    w.finalize().map_err(fail)?;
    Ok(lost)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("g711-impair: {e}");
            std::process::exit(2);
        }
    };
    match run(&o) {
        Ok(lost) => eprintln!("g711-impair: {lost} frames lost"),
        Err(e) => {
            eprintln!("g711-impair: {e}");
            std::process::exit(1);
        }
    }
}
