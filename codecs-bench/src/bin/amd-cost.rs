//! `amd-cost`: what the call classifiers cost beside the DTMF receiver,
//! on the same signal as `dtmf-cost` (five seconds of speech-like
//! multitone, 20 ms frames). Each classifier restarts whenever it decides,
//! so every frame is analysed. Prints user-visible time per frame and per
//! analysed call (AMD listens at most 5 s: 250 frames), and runs under
//! `valgrind --tool=callgrind` for an instruction count
//! (docs/performance.md).
//!
//! Usage: `amd-cost amd|beep|early|dtmf|none FRAMES`.

use std::hint::black_box;
use std::time::Instant;

use codecs_bench::signals::music;
use rivr::media::amd::{Amd, AmdConfig, BeepWait};
use rivr::media::dtmf_detect::DtmfDetector;
use rivr::media::sit::EarlyMediaClassifier;

const FRAME: usize = 160;
/// Frames AMD analyses at most per call (`total_analysis_ms` 5000).
const FRAMES_PER_CALL: f64 = 250.0;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let frames: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let pcm = music::multitone(5.0, 1);
    let count = pcm.len() / FRAME;
    if count == 0 || frames == 0 {
        eprintln!("usage: amd-cost amd|beep|early|dtmf|none FRAMES");
        std::process::exit(2);
    }
    let frame = |i: usize| {
        let at = (i % count) * FRAME;
        pcm.get(at..at + FRAME).unwrap_or(&[])
    };
    let mut found = 0usize;
    let start = Instant::now();
    match which.as_str() {
        "amd" => {
            let mut a = Amd::new(AmdConfig::rivr());
            for i in 0..frames {
                if a.push(black_box(frame(i))).is_some() {
                    found += 1;
                    a = Amd::new(AmdConfig::rivr());
                }
            }
        }
        "beep" => {
            let mut w = BeepWait::new(1500);
            for i in 0..frames {
                if w.push(black_box(frame(i))).is_some() {
                    found += 1;
                    w = BeepWait::new(1500);
                }
            }
        }
        "early" => {
            let mut c = EarlyMediaClassifier::new();
            for i in 0..frames {
                found += usize::from(c.push(black_box(frame(i))).is_some());
            }
        }
        "dtmf" => {
            let mut d = DtmfDetector::new();
            for i in 0..frames {
                found += usize::from(d.process(black_box(frame(i))).is_some());
            }
        }
        "none" => {
            for i in 0..frames {
                found += usize::from(black_box(frame(i)).first() == Some(&i16::MAX));
            }
        }
        other => {
            eprintln!("amd-cost: unknown classifier {other:?}");
            std::process::exit(2);
        }
    }
    let per_frame = start.elapsed().as_secs_f64() / frames as f64;
    println!(
        "{which}: {frames} frames, {found} findings; {:.2} µs per 20 ms frame, {:.0} µs per 5 s analysed call, {:.3} % of a core per call while it listens",
        per_frame * 1e6,
        per_frame * FRAMES_PER_CALL * 1e6,
        per_frame / 0.020 * 100.0
    );
}
