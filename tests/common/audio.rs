//! Measuring what the caller heard: G.711 decode of the received packets
//! (with rivr's table-driven decoder, itself tested bit-exact against G.191),
//! normalised cross-correlation against the prompt's 8 kHz reference with
//! a lag search, per-frame energy, and where a prompt stopped playing.

use std::time::Instant;

use rivr::media::g711::{alaw_to_linear, ulaw_to_linear};
use rivr::media::opus::{OpusDecoder, OpusSampleRate};

use super::rtp::Packet;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// The received audio, concatenated in arrival order, with where each
/// packet starts.
pub struct Heard {
    pub samples: Vec<f32>,
    /// (first sample index, arrival) per audio packet.
    pub packets: Vec<(usize, Instant)>,
}

impl Heard {
    /// Decodes the packets with payload type `pt` (0 PCMU, 8 PCMA); others
    /// (telephone-events, comfort noise) are skipped.
    pub fn decode(packets: &[Packet], pt: u8) -> Heard {
        let mut samples = Vec::with_capacity(packets.len() * FRAME);
        let mut starts = Vec::with_capacity(packets.len());
        for p in packets.iter().filter(|p| p.payload_type == pt) {
            starts.push((samples.len(), p.arrival));
            samples.extend(p.payload.iter().map(|&b| {
                f32::from(match pt {
                    8 => alaw_to_linear(b),
                    _ => ulaw_to_linear(b),
                })
            }));
        }
        Heard {
            samples,
            packets: starts,
        }
    }

    /// The packet index holding sample `i`.
    pub fn packet_at(&self, i: usize) -> Option<usize> {
        match self.packets.binary_search_by_key(&i, |(s, _)| *s) {
            Ok(k) => Some(k),
            Err(0) => None,
            Err(k) => Some(k - 1),
        }
    }
}

/// What an Opus caller heard: the packets with payload type `pt`, put in
/// sequence order and decoded by libopus to 8 kHz as a phone would,
/// concealing the ones that never arrived. Also checks what every Opus
/// receiver relies on: each is a 20 ms packet and the RTP timestamp
/// advances 960 (48 kHz clock) per packet. Returns (samples, packets
/// decoded, packets missing).
pub fn decode_opus(packets: &[Packet], pt: u8) -> (Vec<i16>, usize, usize) {
    decode_opus_ptime(packets, pt, 20)
}

/// [`decode_opus`] for packets of `ptime_ms` (10 or 20): each decodes to
/// `ptime_ms` of audio and the timestamp advances 48 per ms.
pub fn decode_opus_ptime(packets: &[Packet], pt: u8, ptime_ms: u32) -> (Vec<i16>, usize, usize) {
    let step = 48 * ptime_ms;
    let samples = 8 * ptime_ms as usize;
    let mut packets: Vec<&Packet> = packets.iter().filter(|p| p.payload_type == pt).collect();
    let Some(first_seq) = packets.first().map(|p| p.seq) else {
        return (Vec::new(), 0, 0);
    };
    packets.sort_by_key(|p| p.seq.wrapping_sub(first_seq));
    packets.dedup_by_key(|p| p.seq);
    for w in packets.windows(2) {
        let (gap, ts) = (
            w[1].seq.wrapping_sub(w[0].seq),
            w[1].ts.wrapping_sub(w[0].ts),
        );
        assert_eq!(
            ts,
            step * u32::from(gap),
            "RTP timestamps must advance {step} per {ptime_ms} ms Opus packet (seq {} -> {})",
            w[0].seq,
            w[1].seq
        );
    }
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).expect("Opus decoder");
    let mut heard = Vec::with_capacity(packets.len() * samples);
    let mut frame = [0i16; FRAME];
    let frame = &mut frame[..samples.min(FRAME)];
    let mut missing = 0;
    let mut expected = first_seq;
    for p in &packets {
        while expected != p.seq {
            let n = dec.conceal(frame).expect("Opus PLC");
            heard.extend_from_slice(&frame[..n]);
            expected = expected.wrapping_add(1);
            missing += 1;
        }
        let n = dec
            .decode(&p.payload, frame)
            .expect("the Opus packet decodes");
        assert_eq!(n, samples, "a {ptime_ms} ms Opus packet (seq {})", p.seq);
        heard.extend_from_slice(frame);
        expected = expected.wrapping_add(1);
    }
    (heard, packets.len(), missing)
}

/// A reference as f32 samples.
pub fn to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| f32::from(s)).collect()
}

/// Normalised cross-correlation of `x[lag..]` with `r` over `r`'s length
/// (zero if either side is silent or `x` is too short).
pub fn ncc_at(x: &[f32], r: &[f32], lag: usize) -> f64 {
    let Some(seg) = x.get(lag..lag + r.len()) else {
        return 0.0;
    };
    let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
    for (&a, &b) in seg.iter().zip(r) {
        let (a, b) = (f64::from(a), f64::from(b));
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx <= 0.0 || yy <= 0.0 {
        0.0
    } else {
        xy / (xx * yy).sqrt()
    }
}

/// Mean square per `FRAME` samples.
pub fn frame_energy(x: &[f32]) -> Vec<f64> {
    x.chunks(FRAME)
        .map(|c| c.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / c.len() as f64)
        .collect()
}

/// A frame counts as speech above -40 dBFS.
pub const SPEECH_MS: f64 = (32768.0 * 0.01) * (32768.0 * 0.01);

/// Where `r` best fits inside `x`: (lag in samples, NCC there). A coarse
/// search on the per-frame energy envelope finds the region, then a
/// sample-exact search ±2 frames around each of the best few candidates.
pub fn align(x: &[f32], r: &[f32]) -> (usize, f64) {
    if x.len() < r.len() || r.is_empty() {
        return (0, 0.0);
    }
    let ex: Vec<f32> = frame_energy(x).iter().map(|&e| e.sqrt() as f32).collect();
    let er: Vec<f32> = frame_energy(r).iter().map(|&e| e.sqrt() as f32).collect();
    let max_frame_lag = ex.len().saturating_sub(er.len());
    let mut coarse: Vec<(usize, f64)> = (0..=max_frame_lag)
        .map(|l| (l, ncc_at(&ex, &er, l)))
        .collect();
    coarse.sort_by(|a, b| b.1.total_cmp(&a.1));
    let max_lag = x.len() - r.len();
    let mut best = (0, f64::MIN);
    for &(frame_lag, _) in coarse.iter().take(3) {
        let centre = frame_lag * FRAME;
        let lo = centre.saturating_sub(2 * FRAME);
        let hi = (centre + 2 * FRAME).min(max_lag);
        for lag in lo..=hi {
            let c = ncc_at(x, r, lag);
            if c > best.1 {
                best = (lag, c);
            }
        }
    }
    best
}

/// Whether `x` plays the (G.711-coded) reference exactly over one frame:
/// the error is below 1% of the reference energy, or both are near silent.
pub fn frame_matches(x: &[f32], r: &[f32]) -> bool {
    let (mut err, mut energy) = (0f64, 0f64);
    for (&a, &b) in x.iter().zip(r) {
        err += f64::from(a - b) * f64::from(a - b);
        energy += f64::from(b) * f64::from(b);
    }
    let n = x.len().min(r.len()).max(1) as f64;
    err / n <= 0.01 * (energy / n) + 4.0 * 4.0
}

/// Where a prompt aligned at `lag` stopped playing: the first sample index
/// at or after `from` where a frame of `x` no longer plays the reference
/// (silence in the reference counts as still playing, so pauses in the
/// speech can only make the measured stop later, never earlier).
pub fn prompt_stop(x: &[f32], r: &[f32], lag: usize, from: usize) -> usize {
    let mut i = from.max(lag);
    while i + FRAME <= x.len() {
        let Some(rs) = r.get(i - lag..i - lag + FRAME) else {
            return i;
        };
        if !frame_matches(&x[i..i + FRAME], rs) {
            return i;
        }
        i += FRAME;
    }
    i
}

/// How much of `x`'s energy (8 kHz samples) is a tone at `hz`: the
/// Goertzel power at `hz` over the mean square, near 1 for a pure tone at
/// `hz` and near 0 without it. The window is rectangular: give it a few
/// hundred ms so the leakage of other tones stays small.
pub fn tone_fraction(x: &[f32], hz: f64) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (std::f64::consts::TAU * hz / 8000.0).cos();
    let (mut s1, mut s2, mut ms) = (0f64, 0f64, 0f64);
    for &v in x {
        let v = f64::from(v);
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
        ms += v * v;
    }
    let n = x.len() as f64;
    let power = 2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n);
    if ms <= 0.0 {
        0.0
    } else {
        power / (ms / n)
    }
}

/// G.711 round trip of a reference, so it compares sample-exact with
/// what rivr sends.
pub fn g711_roundtrip(pcm: &[i16], pt: u8) -> Vec<f32> {
    use rivr::media::g711::{linear_to_alaw, linear_to_ulaw};
    pcm.iter()
        .map(|&s| {
            f32::from(match pt {
                8 => alaw_to_linear(linear_to_alaw(s)),
                _ => ulaw_to_linear(linear_to_ulaw(s)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, seed: u32) -> Vec<f32> {
        // Speech-like: bursts of a wobbling tone separated by pauses.
        (0..n)
            .map(|i| {
                let burst = (i / 1200) % 3 != 2;
                let f = 300.0 + 200.0 * ((i as f32 / 900.0) + seed as f32).sin();
                if burst {
                    8000.0 * (i as f32 * f * std::f32::consts::TAU / 8000.0).sin()
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn align_finds_an_exact_lag_and_perfect_correlation() {
        let r = tone(8000, 1);
        let mut x = vec![0.0; 1234];
        x.extend_from_slice(&r);
        x.extend(vec![0.0; 3000]);
        let (lag, c) = align(&x, &r);
        assert_eq!(lag, 1234);
        assert!(c > 0.999, "{c}");
    }

    #[test]
    fn unrelated_audio_does_not_correlate() {
        let r = tone(8000, 1);
        let x: Vec<f32> = (0..16000u32)
            .map(|i| ((i.wrapping_mul(2654435761) >> 16) as f32 - 32768.0) / 4.0)
            .collect();
        let (_, c) = align(&x, &r);
        assert!(c < 0.2, "{c}");
    }

    #[test]
    fn tone_fraction_tells_a_tone_from_its_neighbours() {
        let x: Vec<f32> = (0..4000)
            .map(|i| 5000.0 * (i as f32 * 440.0 * std::f32::consts::TAU / 8000.0).sin())
            .collect();
        assert!(tone_fraction(&x, 440.0) > 0.99);
        assert!(tone_fraction(&x, 1000.0) < 0.01);
        assert!(tone_fraction(&x, 480.0) < 0.01);
        assert_eq!(tone_fraction(&[0.0; 100], 440.0), 0.0);
    }

    #[test]
    fn prompt_stop_finds_the_cut() {
        let r = tone(8000, 2);
        let mut x = vec![0.0; 800];
        x.extend_from_slice(&r[..3200]);
        x.extend(tone(4000, 7));
        assert_eq!(prompt_stop(&x, &r, 800, 800), 800 + 3200);
    }
}
