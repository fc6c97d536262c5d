//! `dtmf-cost`: runs one DTMF receiver over the criterion bench's signal
//! (five seconds of speech-like multitone, 20 ms frames) for a fixed
//! number of frames, so `valgrind --tool=callgrind` can count its
//! instructions: a figure that does not move with whatever else the
//! machine runs, unlike the criterion timings (docs/performance.md).
//!
//! Usage: `dtmf-cost rivr|spandsp|none FRAMES`. `none` only generates the
//! signal: subtract its count to get the receiver's own.

use std::hint::black_box;

use codecs_bench::signals::music;
use codecs_bench::spandsp;
use rivr::media::dtmf_detect::DtmfDetector;

const FRAME: usize = 160;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let frames: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let pcm = music::multitone(5.0, 1);
    let count = pcm.len() / FRAME;
    if count == 0 || frames == 0 {
        eprintln!("usage: dtmf-cost rivr|spandsp|none FRAMES");
        std::process::exit(2);
    }
    let frame = |i: usize| {
        let at = (i % count) * FRAME;
        pcm.get(at..at + FRAME).unwrap_or(&[])
    };
    let mut keys = 0usize;
    match which.as_str() {
        "rivr" => {
            let mut d = DtmfDetector::new();
            for i in 0..frames {
                keys += usize::from(d.process(black_box(frame(i))).is_some());
                while d.poll().is_some() {
                    keys += 1;
                }
            }
        }
        "spandsp" => {
            let Some(mut rx) = spandsp::DtmfRx::new() else {
                eprintln!("spandsp: no receiver state");
                std::process::exit(1);
            };
            for i in 0..frames {
                keys += rx.process(black_box(frame(i))).len();
            }
        }
        "none" => {
            for i in 0..frames {
                keys += usize::from(black_box(frame(i)).first() == Some(&i16::MAX));
            }
        }
        other => {
            eprintln!("dtmf-cost: unknown receiver {other:?}");
            std::process::exit(2);
        }
    }
    println!("{which}: {frames} frames, {keys} keys");
}
