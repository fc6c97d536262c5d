//! Criterion benchmarks of rivr's media hot paths, per 20 ms frame (160
//! samples at 8 kHz, 960 at 48 kHz), with spandsp beside rivr where it has
//! the same operation. Throughput is in samples.
//!
//! Run sparingly on a shared machine:
//! `cargo bench -p codecs-bench -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use codecs_bench::signals::music;
use codecs_bench::spandsp::{self, Law};
use codecs_bench::workload::{self, JitterFeed, RATE_PAIRS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivr::media::dtmf_detect::DtmfDetector;
use rivr::media::jitter::{JitterBuffer, JitterConfig};
use rivr::media::plc::Plc;
use rivr::media::{g711, resample};

const FRAME: usize = 160;

/// Five seconds of speech-like signal, generated so the benchmark does not
/// depend on espeak-ng (the `report` binary uses real speech).
fn signal() -> Vec<i16> {
    music::multitone(5.0, 1)
}

/// Frame `i` of `x`, wrapping around.
fn frame<T>(x: &[T], i: usize) -> &[T] {
    let frames = x.len() / FRAME;
    let at = (i % frames.max(1)) * FRAME;
    x.get(at..at + FRAME).unwrap_or(&[])
}

fn g711(c: &mut Criterion) {
    let pcm = signal();
    for (codec, law, name) in [
        (g711::Law::Ulaw, Law::Ulaw, "ulaw"),
        (g711::Law::Alaw, Law::Alaw, "alaw"),
    ] {
        let mut bytes = vec![0u8; pcm.len()];
        g711::encode(codec, &pcm, &mut bytes);
        let mut sp = spandsp::G711::new(law).expect("spandsp g711 state");

        let mut group = c.benchmark_group(format!("g711_{name}_encode"));
        group.throughput(Throughput::Elements(FRAME as u64));
        let mut out = [0u8; FRAME];
        let mut i = 0;
        group.bench_function("rivr", |b| {
            b.iter(|| {
                i += 1;
                g711::encode(codec, black_box(frame(&pcm, i)), &mut out);
                black_box(&out);
            })
        });
        group.bench_function("spandsp", |b| {
            b.iter(|| {
                i += 1;
                sp.encode(black_box(frame(&pcm, i)), &mut out);
                black_box(&out);
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("g711_{name}_decode"));
        group.throughput(Throughput::Elements(FRAME as u64));
        let mut out = [0i16; FRAME];
        group.bench_function("rivr", |b| {
            b.iter(|| {
                i += 1;
                g711::decode(codec, black_box(frame(&bytes, i)), &mut out);
                black_box(&out);
            })
        });
        group.bench_function("spandsp", |b| {
            b.iter(|| {
                i += 1;
                sp.decode(black_box(frame(&bytes, i)), &mut out);
                black_box(&out);
            })
        });
        group.finish();
    }
}

fn dtmf(c: &mut Criterion) {
    let pcm = signal();
    let mut group = c.benchmark_group("dtmf_detect");
    group.throughput(Throughput::Elements(FRAME as u64));
    let mut detector = DtmfDetector::new();
    let mut i = 0;
    group.bench_function("rivr", |b| {
        b.iter(|| {
            i += 1;
            black_box(detector.process(black_box(frame(&pcm, i))));
            while let Some(d) = detector.poll() {
                black_box(d);
            }
        })
    });
    let mut rx = spandsp::DtmfRx::new().expect("spandsp dtmf state");
    group.bench_function("spandsp", |b| {
        b.iter(|| {
            i += 1;
            black_box(rx.process(black_box(frame(&pcm, i))));
        })
    });
    group.finish();
}

/// The whole-buffer prompt resampler on one-second buffers: it builds its
/// sinc tables per call, so a per-frame figure would measure only setup.
fn resampling(c: &mut Criterion) {
    let narrow: Vec<f32> = signal()
        .iter()
        .take(8000)
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let mut group = c.benchmark_group("resample_1s");
    for (from, to) in RATE_PAIRS {
        let input = if from == 8000 {
            narrow.clone()
        } else {
            resample::resample(&narrow, 8000, from).expect("resample")
        };
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("rivr", format!("{from}->{to}")),
            &input,
            |b, input| b.iter(|| black_box(resample::resample(black_box(input), from, to))),
        );
    }
    group.finish();
}

/// Concealing one lost 20 ms frame right after speech (the costly first
/// frame of a gap: pitch search and overlap-add), then one good frame.
fn plc(c: &mut Criterion) {
    let pcm = signal();
    let mut group = c.benchmark_group("plc_loss_then_good");
    group.throughput(Throughput::Elements(2 * FRAME as u64));
    let mut buf = [0i16; FRAME];
    let mut i = 0;
    let mut rivr_plc = Plc::new();
    group.bench_function("rivr", |b| {
        b.iter(|| {
            i += 1;
            rivr_plc.conceal(&mut buf);
            buf.copy_from_slice(frame(&pcm, i));
            rivr_plc.good_frame(&mut buf);
            black_box(&buf);
        })
    });
    let mut sp = spandsp::Plc::new().expect("spandsp plc state");
    group.bench_function("spandsp", |b| {
        b.iter(|| {
            i += 1;
            sp.conceal(&mut buf);
            buf.copy_from_slice(frame(&pcm, i));
            sp.received(&mut buf);
            black_box(&buf);
        })
    });
    group.finish();
}

/// One packet pushed and one frame popped per 20 ms tick of a virtual
/// clock, in order and with every 8th pair of packets swapped.
fn jitter(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter_push_pop");
    group.throughput(Throughput::Elements(FRAME as u64));
    for (name, reorder) in [("in_order", false), ("reordered", true)] {
        let mut jb = JitterBuffer::new(JitterConfig::g711_20ms());
        let mut feed = JitterFeed::new(reorder);
        group.bench_function(name, |b| b.iter(|| feed.step(&mut jb)));
    }
    group.finish();
}

/// `pcm` (8 kHz) at `hz`, as 16-bit samples.
fn at_rate(pcm: &[i16], hz: u32) -> Vec<i16> {
    workload::at_rate(pcm, hz).expect("resample")
}

/// Opus at 8 and 48 kHz PCM, complexity 5 and 10, one 20 ms frame per
/// iteration (160 or 960 samples).
fn opus(c: &mut Criterion) {
    use rivr::media::opus::{OpusConfig, OpusDecoder, OpusEncoder, MAX_PACKET_BYTES};
    let narrow = signal();
    for hz in [8000u32, 48_000] {
        let pcm = if hz == 8000 {
            narrow.clone()
        } else {
            at_rate(&narrow, hz)
        };
        let mut enc_group = c.benchmark_group(format!("opus_encode_{}k", hz / 1000));
        let mut packets_by_complexity = Vec::new();
        for complexity in [5u8, 10] {
            let config = OpusConfig {
                complexity,
                ..OpusConfig::at_rate(hz).expect("opus rate")
            };
            let n = config.sample_rate.frame_samples();
            enc_group.throughput(Throughput::Elements(n as u64));
            let mut encoder = OpusEncoder::new(config).expect("opus encoder");
            let mut packet = vec![0u8; MAX_PACKET_BYTES];
            let packets: Vec<Vec<u8>> = pcm
                .chunks_exact(n)
                .map(|f| {
                    let len = encoder.encode(f, &mut packet).expect("encode");
                    packet[..len].to_vec()
                })
                .collect();
            let frames: Vec<&[i16]> = pcm.chunks_exact(n).collect();
            let mut i = 0;
            enc_group.bench_function(format!("complexity_{complexity}"), |b| {
                b.iter(|| {
                    i = (i + 1) % frames.len();
                    black_box(encoder.encode(black_box(frames[i]), &mut packet).ok());
                })
            });
            packets_by_complexity.push((complexity, n, packets));
        }
        enc_group.finish();
        let mut dec_group = c.benchmark_group(format!("opus_decode_{}k", hz / 1000));
        for (complexity, n, packets) in &packets_by_complexity {
            dec_group.throughput(Throughput::Elements(*n as u64));
            let rate = rivr::media::opus::OpusSampleRate::from_hz(hz).expect("rate");
            let mut decoder = OpusDecoder::new(rate).expect("opus decoder");
            let mut out = vec![0i16; decoder.max_packet_samples()];
            let mut i = 0;
            dec_group.bench_function(format!("from_complexity_{complexity}"), |b| {
                b.iter(|| {
                    i = (i + 1) % packets.len();
                    black_box(decoder.decode(black_box(&packets[i]), &mut out).ok());
                })
            });
        }
        dec_group.finish();
    }
}

/// The call path's streaming resampler, one 20 ms frame per iteration.
fn stream_resampling(c: &mut Criterion) {
    use rivr::media::stream_resample::StreamResampler;
    let narrow = signal();
    let mut group = c.benchmark_group("stream_resample_20ms");
    for (from, to) in RATE_PAIRS {
        let input = if from == 8000 {
            narrow.clone()
        } else {
            at_rate(&narrow, from)
        };
        let n = from as usize / 50;
        let frames: Vec<&[i16]> = input.chunks_exact(n).collect();
        let mut r = StreamResampler::new(from, to).expect("stream resampler");
        let mut out = vec![0i16; r.max_output_for(n)];
        let mut i = 0;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("rivr", format!("{from}->{to}")), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(r.process(black_box(frames[i]), &mut out).ok());
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    g711,
    dtmf,
    plc,
    jitter,
    opus,
    stream_resampling,
    resampling
);
criterion_main!(benches);
