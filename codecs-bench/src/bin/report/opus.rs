//! Opus through `rivr::media::opus` at 8 and 48 kHz PCM, complexity 5 and
//! 10 (24 kb/s VBR with in-band FEC, the call defaults), encode and decode
//! per 20 ms frame (rivr only: spandsp has no Opus).

use std::hint::black_box;
use std::time::Duration;

use codecs_bench::throughput::{measure, Row};
use codecs_bench::workload::at_rate;
use rivr::media::opus::{OpusConfig, OpusDecoder, OpusEncoder, MAX_PACKET_BYTES};

use crate::frames::Frames;

/// Encode and decode rows for each rate and complexity.
pub fn rows(budget: Duration, speech: &[i16]) -> Result<Vec<Row>, String> {
    let wide = at_rate(speech, 48_000).map_err(|e| e.to_string())?;
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
