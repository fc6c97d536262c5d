//! `report`: throughput of rivr's media operations beside spandsp's on the
//! same signals, then DTMF accuracy of both receivers on the Q.24 cases and
//! the talk-off corpus. Prints Markdown, ready for `docs/quality.md`.
//!
//! Usage: `report [--seconds S] [--doc FILE] [--no-accuracy] [--no-talkoff]`
//! (S = measuring time per operation, default 1; with `--doc` the output
//! also replaces the `report:begin`/`report:end` section of FILE).

use std::hint::black_box;
use std::time::{Duration, Instant};

use codecs_bench::dtmf::{self, Score};
use codecs_bench::signals::{music, speech};
use codecs_bench::spandsp::{self, Law};
use codecs_bench::throughput::{measure, Row, HEADER};
use rivr::media::dtmf_detect::DtmfDetector;
use rivr::media::jitter::{JitterBuffer, JitterConfig};
use rivr::media::plc::Plc;
use rivr::media::{g711, resample};

const FRAME: usize = 160;
/// Rate pairs measured: 8 ↔ 16 ↔ 48 kHz.
const PAIRS: [(u32, u32); 6] = [
    (8000, 16_000),
    (16_000, 8000),
    (8000, 48_000),
    (48_000, 8000),
    (16_000, 48_000),
    (48_000, 16_000),
];

/// Prints a line and keeps it for `--doc`.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        $out.push_str(&line);
        $out.push('\n');
    }};
}

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

/// Cycles through a signal one frame at a time.
struct Frames<'a, T> {
    signal: &'a [T],
    at: usize,
    len: usize,
}

impl<'a, T> Frames<'a, T> {
    fn new(signal: &'a [T], len: usize) -> Self {
        Self { signal, at: 0, len }
    }

    fn next_frame(&mut self) -> &'a [T] {
        if self.at + self.len > self.signal.len() {
            self.at = 0;
        }
        let frame = self.signal.get(self.at..self.at + self.len).unwrap_or(&[]);
        self.at += self.len;
        frame
    }
}

fn g711_rows(budget: Duration, pcm: &[i16]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (codec, law, name) in [
        (g711::Law::Ulaw, Law::Ulaw, "µ-law"),
        (g711::Law::Alaw, Law::Alaw, "A-law"),
    ] {
        let mut bytes = vec![0u8; pcm.len()];
        g711::encode(codec, pcm, &mut bytes);
        let mut sp = spandsp::G711::new(law);

        let mut out = [0u8; FRAME];
        let mut frames = Frames::new(pcm, FRAME);
        let rivr = measure(budget, FRAME, || {
            g711::encode(codec, black_box(frames.next_frame()), &mut out);
            black_box(&out);
        });
        let spandsp = sp.as_mut().map(|sp| {
            measure(budget, FRAME, || {
                sp.encode(black_box(frames.next_frame()), &mut out);
                black_box(&out);
            })
        });
        rows.push(Row {
            operation: format!("G.711 {name} encode, 20 ms frames"),
            rate_hz: 8000,
            rivr,
            spandsp,
        });

        let mut out = [0i16; FRAME];
        let mut frames = Frames::new(&bytes, FRAME);
        let rivr = measure(budget, FRAME, || {
            g711::decode(codec, black_box(frames.next_frame()), &mut out);
            black_box(&out);
        });
        let spandsp = sp.as_mut().map(|sp| {
            measure(budget, FRAME, || {
                sp.decode(black_box(frames.next_frame()), &mut out);
                black_box(&out);
            })
        });
        rows.push(Row {
            operation: format!("G.711 {name} decode, 20 ms frames"),
            rate_hz: 8000,
            rivr,
            spandsp,
        });
    }
    rows
}

fn dtmf_row(budget: Duration, pcm: &[i16]) -> Row {
    let mut frames = Frames::new(pcm, FRAME);
    let mut detector = DtmfDetector::new();
    let rivr = measure(budget, FRAME, || {
        if let Some(d) = detector.process(black_box(frames.next_frame())) {
            black_box(d);
        }
        while let Some(d) = detector.poll() {
            black_box(d);
        }
    });
    let spandsp = spandsp::DtmfRx::new().map(|mut rx| {
        measure(budget, FRAME, || {
            black_box(rx.process(black_box(frames.next_frame())));
        })
    });
    Row {
        operation: "DTMF detection, 20 ms frames of speech + keys".into(),
        rate_hz: 8000,
        rivr,
        spandsp,
    }
}

/// G.711 concealment with one frame in five lost: the good frames' cost
/// (history, and the blend after a gap) counts as much as the synthesis.
fn plc_row(budget: Duration, pcm: &[i16]) -> Row {
    let mut frames = Frames::new(pcm, FRAME);
    let mut buf = [0i16; FRAME];
    let mut k = 0u32;
    let mut plc = Plc::new();
    let rivr = measure(budget, FRAME, || {
        k = k.wrapping_add(1);
        if k.is_multiple_of(5) {
            plc.conceal(&mut buf);
        } else {
            buf.copy_from_slice(frames.next_frame());
            plc.good_frame(&mut buf);
        }
        black_box(&buf);
    });
    let spandsp = spandsp::Plc::new().map(|mut plc| {
        measure(budget, FRAME, || {
            k = k.wrapping_add(1);
            if k.is_multiple_of(5) {
                plc.conceal(&mut buf);
            } else {
                buf.copy_from_slice(frames.next_frame());
                plc.received(&mut buf);
            }
            black_box(&buf);
        })
    });
    Row {
        operation: "G.711 PLC, 20 ms frames, 1 in 5 lost".into(),
        rate_hz: 8000,
        rivr,
        spandsp,
    }
}

/// One packet pushed and one frame popped per 20 ms tick of a virtual clock.
fn jitter_rows(budget: Duration) -> Vec<Row> {
    let payload = [0xFFu8; FRAME];
    let base = Instant::now();
    [("in order", false), ("every 8th pair swapped", true)]
        .into_iter()
        .map(|(name, reorder)| {
            let mut jb = JitterBuffer::new(JitterConfig::g711_20ms());
            let mut tick: u64 = 0;
            let rivr = measure(budget, FRAME, || {
                let i = match (reorder, tick % 8) {
                    (true, 0) => tick + 1,
                    (true, 1) => tick - 1,
                    _ => tick,
                };
                let now = base + Duration::from_millis(20 * tick);
                black_box(jb.push(
                    now,
                    i as u16,
                    (i * FRAME as u64) as u32,
                    0x5eed,
                    false,
                    &payload,
                ));
                black_box(jb.pop(now));
                tick += 1;
            });
            Row {
                operation: format!("jitter buffer push + pop, 20 ms packets, {name}"),
                rate_hz: 8000,
                rivr,
                spandsp: None,
            }
        })
        .collect()
}

fn resample_rows(budget: Duration, pcm: &[i16]) -> Result<Vec<Row>, resample::ResampleError> {
    // One second of the speech at each rate; the whole-buffer resampler is
    // for prompts, so it is measured on whole one-second buffers.
    let narrow: Vec<f32> = pcm
        .iter()
        .take(8000)
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let at = |hz: u32| resample::resample(&narrow, 8000, hz);
    let signals = [
        (8000, narrow.clone()),
        (16_000, at(16_000)?),
        (48_000, at(48_000)?),
    ];
    let mut rows = Vec::new();
    for (from, to) in PAIRS {
        let Some((_, input)) = signals.iter().find(|(hz, _)| *hz == from) else {
            continue;
        };
        let mut failed = None;
        let rivr = measure(budget, input.len(), || {
            if let Err(e) = resample::resample(black_box(input), from, to).map(black_box) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        rows.push(Row {
            operation: format!(
                "resample {} → {} kHz, 1 s buffers (prompt path)",
                from / 1000,
                to / 1000
            ),
            rate_hz: from,
            rivr,
            spandsp: None,
        });
    }
    Ok(rows)
}

/// Opus through `rivr::media::opus` at 8 and 48 kHz PCM, complexity 5 and
/// 10 (24 kb/s VBR with in-band FEC, the call defaults).
fn opus_rows(budget: Duration, speech: &[i16]) -> Result<Vec<Row>, String> {
    use rivr::media::opus::{OpusConfig, OpusDecoder, OpusEncoder, MAX_PACKET_BYTES};
    let narrow: Vec<f32> = speech.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let wide: Vec<i16> = resample::resample(&narrow, 8000, 48_000)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let mut rows = Vec::new();
    for (hz, pcm) in [(8000u32, speech), (48_000, &wide[..])] {
        for complexity in [5u8, 10] {
            let config = OpusConfig {
                complexity,
                ..OpusConfig::at_rate(hz).map_err(|e| e.to_string())?
            };
            let n = config.sample_rate.frame_samples();
            let mut packet = vec![0u8; MAX_PACKET_BYTES];
            let mut encoder = OpusEncoder::new(config).map_err(|e| e.to_string())?;
            let packets = pcm
                .chunks_exact(n)
                .map(|f| {
                    encoder
                        .encode(f, &mut packet)
                        .map(|len| packet[..len].to_vec())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let mut frames = Frames::new(pcm, n);
            let encode = measure(budget, n, || {
                black_box(
                    encoder
                        .encode(black_box(frames.next_frame()), &mut packet)
                        .ok(),
                );
            });
            let mut decoder = OpusDecoder::new(config.sample_rate).map_err(|e| e.to_string())?;
            let mut out = vec![0i16; decoder.max_packet_samples()];
            let mut k = 0;
            let decode = measure(budget, n, || {
                k = (k + 1) % packets.len().max(1);
                if let Some(p) = packets.get(k) {
                    black_box(decoder.decode(black_box(p), &mut out).ok());
                }
            });
            for (what, rate) in [("encode", encode), ("decode", decode)] {
                rows.push(Row {
                    operation: format!("Opus {what}, complexity {complexity}, 20 ms frames"),
                    rate_hz: hz,
                    rivr: rate,
                    spandsp: None,
                });
            }
        }
    }
    Ok(rows)
}

/// The streaming resampler of the call path (Opus at 48 kHz against G.711
/// at 8 kHz), per 20 ms frame.
fn stream_resample_rows(budget: Duration, speech: &[i16]) -> Result<Vec<Row>, String> {
    use rivr::media::stream_resample::StreamResampler;
    let narrow: Vec<f32> = speech.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let mut rows = Vec::new();
    for (from, to) in PAIRS {
        let input: Vec<i16> = resample::resample(&narrow, 8000, from)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect();
        let mut r = StreamResampler::new(from, to).map_err(|e| e.to_string())?;
        let n = from as usize / 50;
        let mut out = vec![0i16; r.max_output_for(n)];
        let mut frames = Frames::new(&input, n);
        let rivr = measure(budget, n, || {
            black_box(r.process(black_box(frames.next_frame()), &mut out).ok());
        });
        rows.push(Row {
            operation: format!(
                "stream resample {} → {} kHz, 20 ms frames (call path)",
                from / 1000,
                to / 1000
            ),
            rate_hz: from,
            rivr,
            spandsp: None,
        });
    }
    Ok(rows)
}

/// Speech with a key run mixed in, so the detector does its full work.
fn speech_with_keys(speech: &[i16]) -> Vec<i16> {
    let mut pcm = speech.to_vec();
    let mut at = 8000;
    for key in "1593#".chars().cycle().take(pcm.len() / 16_000) {
        if let Some(mut tone) = rivr::media::tone::ToneGenerator::dtmf(key, 60, 60, -12.0) {
            let mut buf = [0i16; 960];
            let n = tone.fill(&mut buf);
            for (s, t) in pcm.iter_mut().skip(at).zip(&buf[..n]) {
                *s = s.saturating_add(*t);
            }
        }
        at += 16_000;
    }
    pcm
}

fn print_score_header(out: &mut String) {
    outln!(out, "| case group | cases | rivr correct | rivr missed keys | rivr false keys | spandsp correct | spandsp missed keys | spandsp false keys |");
    outln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
}

fn print_scores(out: &mut String, name: &str, s: &[Score; 2]) {
    outln!(
        out,
        "| {name} | {} | {} | {} | {} | {} | {} | {} |",
        s[0].cases,
        s[0].correct,
        s[0].missed,
        s[0].false_keys,
        s[1].correct,
        s[1].missed,
        s[1].false_keys
    );
}

fn talkoff_section(out: &mut String) {
    let mut material: Vec<(String, Vec<i16>)> = music::talkoff_corpus()
        .into_iter()
        .map(|(name, pcm)| (name.to_owned(), pcm))
        .collect();
    match speech::talkoff_corpus() {
        Ok(voices) => {
            let count = voices.len();
            let pcm: Vec<i16> = voices.into_iter().flat_map(|v| v.pcm).collect();
            material.insert(
                0,
                (
                    format!("espeak-ng speech, {count} voices, 10 languages"),
                    pcm,
                ),
            );
        }
        Err(e) => eprintln!("*** speech talk-off skipped: {e}"),
    }
    outln!(
        out,
        "\n### DTMF talk-off (no key should be reported; scanned as is and 20 dB down)\n"
    );
    outln!(
        out,
        "| material | minutes | rivr false keys | spandsp false keys |"
    );
    outln!(out, "|---|---:|---:|---:|");
    let mut total = (0.0, [0usize; 2]);
    for (name, pcm) in &material {
        let minutes = pcm.len() as f64 / 8000.0 / 60.0;
        let found = dtmf::talkoff(pcm);
        outln!(
            out,
            "| {name} | {minutes:.1} | {} | {} |",
            found[0],
            found[1]
        );
        total.0 += minutes;
        total.1[0] += found[0];
        total.1[1] += found[1];
    }
    outln!(
        out,
        "| **total** | {:.1} | {} | {} |",
        total.0,
        total.1[0],
        total.1[1]
    );
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("report: {e}\nusage: report [--seconds S] [--doc FILE] [--no-accuracy] [--no-talkoff]");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut out = String::new();
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
        o.budget.as_secs_f64()
    );
    outln!(out, "{HEADER}");
    let mut rows = g711_rows(o.budget, &speech);
    rows.push(dtmf_row(o.budget, &speech_with_keys(&speech)));
    rows.push(plc_row(o.budget, &speech));
    rows.extend(jitter_rows(o.budget));
    match resample_rows(o.budget, &speech) {
        Ok(r) => rows.extend(r),
        Err(e) => eprintln!("*** resampling failed: {e}"),
    }
    match opus_rows(o.budget, &speech) {
        Ok(r) => rows.extend(r),
        Err(e) => eprintln!("*** Opus failed: {e}"),
    }
    match stream_resample_rows(o.budget, &speech) {
        Ok(r) => rows.extend(r),
        Err(e) => eprintln!("*** streaming resampler failed: {e}"),
    }
    for row in &rows {
        outln!(out, "{}", row.markdown());
    }

    if o.accuracy {
        outln!(out, "\n### DTMF accuracy on the ITU-T Q.24 cases (linear, µ-law and A-law channels, all 16 keys)\n");
        print_score_header(&mut out);
        let mut total = [Score::default(); 2];
        for (name, s) in dtmf::run_q24() {
            print_scores(&mut out, name, &s);
            for (t, x) in total.iter_mut().zip(s) {
                t.cases += x.cases;
                t.correct += x.correct;
                t.missed += x.missed;
                t.false_keys += x.false_keys;
            }
        }
        print_scores(&mut out, "**total**", &total);
    }
    if o.talkoff {
        talkoff_section(&mut out);
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
