//! Resampling between 8, 16 and 48 kHz: the whole-buffer resampler of the
//! prompt path and the streaming resampler of the call path (rivr only).

use std::hint::black_box;
use std::time::Duration;

use codecs_bench::throughput::{measure, Row};
use codecs_bench::workload::{at_rate, RATE_PAIRS};
use rivr::media::resample;
use rivr::media::stream_resample::StreamResampler;

use crate::frames::Frames;

/// A rivr-only row named like "resample 8 → 16 kHz, 1 s buffers".
fn row(what: &str, from: u32, to: u32, how: &str, rivr: f64) -> Row {
    Row {
        operation: format!("{what} {} → {} kHz, {how}", from / 1000, to / 1000),
        rate_hz: from,
        rivr,
        spandsp: None,
    }
}

/// The whole-buffer resampler is for prompts, so it is measured on whole
/// one-second buffers (the first second of the speech at each rate).
pub fn whole_buffer_rows(
    budget: Duration,
    pcm: &[i16],
) -> Result<Vec<Row>, resample::ResampleError> {
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
    for (from, to) in RATE_PAIRS {
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
        rows.push(row("resample", from, to, "1 s buffers (prompt path)", rivr));
    }
    Ok(rows)
}

/// The streaming resampler of the call path (Opus at 48 kHz against G.711
/// at 8 kHz), per 20 ms frame.
pub fn stream_rows(budget: Duration, speech: &[i16]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (from, to) in RATE_PAIRS {
        let input = at_rate(speech, from).map_err(|e| e.to_string())?;
        let mut r = StreamResampler::new(from, to).map_err(|e| e.to_string())?;
        let n = from as usize / 50;
        let mut out = vec![0i16; r.max_output_for(n)];
        let mut frames = Frames::new(&input, n);
        let rivr = measure(budget, n, || {
            black_box(r.process(black_box(frames.next_frame()), &mut out).ok());
        });
        rows.push(row(
            "stream resample",
            from,
            to,
            "20 ms frames (call path)",
            rivr,
        ));
    }
    Ok(rows)
}
