//! Per-call operations at 8 kHz, rivr beside spandsp where spandsp has the
//! same one: G.711 encode and decode, DTMF detection, packet loss
//! concealment, and the jitter buffer (rivr only).

use std::hint::black_box;
use std::time::Duration;

use codecs_bench::spandsp::{self, Law};
use codecs_bench::throughput::{measure, Row};
use codecs_bench::workload::JitterFeed;
use rivr::media::dtmf_detect::DtmfDetector;
use rivr::media::g711;
use rivr::media::jitter::{JitterBuffer, JitterConfig};
use rivr::media::plc::Plc;

use crate::frames::Frames;

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;

/// Encode and decode rows for µ-law and A-law.
pub fn g711_rows(budget: Duration, pcm: &[i16]) -> Vec<Row> {
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

/// Speech with a key run mixed in, so the detector does its full work.
pub fn speech_with_keys(speech: &[i16]) -> Vec<i16> {
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

/// Both DTMF receivers on `pcm` (speech with keys).
pub fn dtmf_row(budget: Duration, pcm: &[i16]) -> Row {
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
pub fn plc_row(budget: Duration, pcm: &[i16]) -> Row {
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
pub fn jitter_rows(budget: Duration) -> Vec<Row> {
    [("in order", false), ("every 8th pair swapped", true)]
        .into_iter()
        .map(|(name, reorder)| {
            let mut jb = JitterBuffer::new(JitterConfig::g711_20ms());
            let mut feed = JitterFeed::new(reorder);
            let rivr = measure(budget, FRAME, || feed.step(&mut jb));
            Row {
                operation: format!("jitter buffer push + pop, 20 ms packets, {name}"),
                rate_hz: 8000,
                rivr,
                spandsp: None,
            }
        })
        .collect()
}
