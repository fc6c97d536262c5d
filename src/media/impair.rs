//! `rivr media impair`: a recording through encode → a simulated network →
//! the jitter buffer → decode with concealment (or zero-fill) → WAV, on a
//! virtual clock. The measuring tool behind the quality table
//! (docs/quality.md) and a way for users to hear what loss and jitter do.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::media::codec::Codec;
use crate::media::g711;
use crate::media::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::media::netem::{GilbertElliott, Netem, NetemProfile};
use crate::media::plc::Plc;
use crate::media::prompt::decode_file;
use crate::media::resample::resample;

/// How missing frames are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conceal {
    /// G.711 Appendix I-style PLC.
    Plc,
    /// Silence in place of each missing frame.
    Zero,
}

#[derive(Debug, Clone)]
pub struct ImpairOptions {
    pub codec: Codec,
    /// Mean variable delay; the delay varies by ± `jitter_spread_ms`.
    pub jitter_ms: f64,
    pub jitter_spread_ms: f64,
    pub loss_pct: f64,
    /// Mean length of a loss burst in packets (1: independent losses).
    pub burst: f64,
    pub reorder_pct: f64,
    pub dup_pct: f64,
    pub drift_ppm: i32,
    pub seed: u64,
    pub conceal: Conceal,
}

/// What happened on the way.
#[derive(Debug, Clone, Default)]
pub struct ImpairReport {
    pub frames: u64,
    pub lost_in_network: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub late: u64,
    pub concealed: u64,
    pub played: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImpairError {
    #[error("{0}")]
    Input(String),
    #[error("{path}: cannot write: {reason}")]
    Output { path: String, reason: String },
    #[error("{0}")]
    Options(String),
}

const FRAME: usize = 160;
const TICK: Duration = Duration::from_millis(20);

/// Runs IN through the chain and writes OUT at IN's sample rate.
pub fn impair_file(
    input: &Path,
    output: &Path,
    o: &ImpairOptions,
) -> Result<ImpairReport, ImpairError> {
    for (name, v) in [
        ("loss-pct", o.loss_pct),
        ("reorder-pct", o.reorder_pct),
        ("dup-pct", o.dup_pct),
    ] {
        if !(0.0..=100.0).contains(&v) {
            return Err(ImpairError::Options(format!(
                "--{name}: {v} is not a percentage"
            )));
        }
    }
    if o.burst < 1.0
        || o.jitter_ms < 0.0
        || o.jitter_spread_ms < 0.0
        || o.jitter_spread_ms > o.jitter_ms.max(0.0) + 1e-9 && o.jitter_ms > 0.0
    {
        return Err(ImpairError::Options(
            "--burst must be at least 1, jitter values non-negative, and the spread no larger than the mean".into(),
        ));
    }
    let (samples, rate) = decode_file(input).map_err(|e| ImpairError::Input(e.to_string()))?;
    let at8k = resample(&samples, rate, 8000)
        .map_err(|e| ImpairError::Input(format!("{}: {e}", input.display())))?;
    let pcm: Vec<i16> = at8k
        .iter()
        .map(|s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let (out8k, report) = impair_pcm(&pcm, o);
    let outf: Vec<f32> = out8k.iter().map(|s| f32::from(*s) / 32768.0).collect();
    let back = resample(&outf, 8000, rate).map_err(|e| ImpairError::Input(e.to_string()))?;
    write_wav(output, rate, &back).map_err(|e| ImpairError::Output {
        path: output.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(report)
}

fn write_wav(path: &Path, rate: u32, samples: &[f32]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in samples {
        w.write_sample((s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)?;
    }
    w.finalize()
}

fn profile(o: &ImpairOptions) -> NetemProfile {
    let loss = o.loss_pct / 100.0;
    NetemProfile {
        latency: Duration::from_millis(20),
        jitter_mean: Duration::from_secs_f64(o.jitter_ms / 1000.0),
        jitter_spread: Duration::from_secs_f64(o.jitter_spread_ms / 1000.0),
        loss: if loss <= 0.0 {
            GilbertElliott::NONE
        } else if o.burst <= 1.0 {
            GilbertElliott::random(loss)
        } else {
            GilbertElliott::bursty(loss, o.burst)
        },
        reorder: o.reorder_pct / 100.0,
        reorder_delay: Duration::from_millis(40),
        duplicate: o.dup_pct / 100.0,
        drift_ppm: o.drift_ppm,
    }
}

/// The chain on 8 kHz PCM; returns what the listener hears, starting at the
/// first frame played out.
pub fn impair_pcm(pcm: &[i16], o: &ImpairOptions) -> (Vec<i16>, ImpairReport) {
    // Opus goes through its own decoder and PLC (not wired here yet).
    let law = o.codec.g711_law().unwrap_or(g711::Law::Ulaw);
    let frames: Vec<[u8; FRAME]> = pcm
        .chunks(FRAME)
        .map(|chunk| {
            let mut f = [0i16; FRAME];
            f[..chunk.len()].copy_from_slice(chunk);
            let mut p = [0u8; FRAME];
            g711::encode(law, &f, &mut p);
            p
        })
        .collect();
    let mut net = Netem::new(profile(o), o.seed);
    let mut jb = JitterBuffer::new(JitterConfig::g711_20ms());
    let mut plc = Plc::new();
    let epoch = Instant::now();
    let mut next_send = 0usize;
    let mut next_tick = epoch + TICK;
    let mut out: Vec<i16> = Vec::with_capacity(pcm.len() + 8000);
    let mut started = false;
    let mut report = ImpairReport {
        frames: frames.len() as u64,
        ..ImpairReport::default()
    };
    let mut buf = [0i16; FRAME];
    let mut idle_ticks = 0u32;
    loop {
        let send_at =
            (next_send < frames.len()).then(|| net.sender_instant(epoch, TICK * next_send as u32));
        let deliver_at = net.poll_timeout();
        let t = [send_at, deliver_at, Some(next_tick)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_tick);
        if send_at == Some(t) {
            let _ = net.send(t, next_send as u64);
            next_send += 1;
            continue;
        }
        if deliver_at == Some(t) {
            while let Some(id) = net.poll(t) {
                let i = id as usize;
                if let Some(p) = frames.get(i) {
                    let r = jb.push(
                        t,
                        i as u16,
                        (i as u32).wrapping_mul(FRAME as u32),
                        0x5eed,
                        i == 0,
                        p,
                    );
                    if r == crate::media::jitter::PushResult::TooLate {
                        report.late += 1;
                    }
                }
            }
            continue;
        }
        // a playout tick
        next_tick += TICK;
        match jb.pop(t) {
            Playout::Frame { payload, .. } => {
                started = true;
                let n = payload.len().min(FRAME);
                g711::decode(law, &payload[..n], &mut buf[..n]);
                buf[n..].fill(0);
                if o.conceal == Conceal::Plc {
                    plc.good_frame(&mut buf);
                }
                report.played += 1;
                idle_ticks = 0;
            }
            Playout::Conceal { .. } if started => {
                match o.conceal {
                    Conceal::Plc => plc.conceal(&mut buf),
                    Conceal::Zero => buf.fill(0),
                }
                // the tail after the last frame is not a concealed frame
                if out.len() < pcm.len() {
                    report.concealed += 1;
                }
                idle_ticks += 1;
            }
            _ => {
                buf.fill(0);
                idle_ticks += 1;
            }
        }
        if started {
            out.extend_from_slice(&buf);
        }
        let all_sent = next_send >= frames.len() && net.in_flight() == 0;
        if all_sent && (jb.is_empty() && idle_ticks > 25) {
            break;
        }
        if out.len() > pcm.len() * 2 + 80_000 {
            break;
        }
    }
    // The PLC delays its output a few samples (Appendix I's overlap-add);
    // take that back so the output lines up with the input.
    if o.conceal == Conceal::Plc {
        let d = Plc::delay_samples().min(out.len());
        out.drain(..d);
    }
    // what played after the last input frame is only the concealment tail
    out.truncate(pcm.len().max(FRAME));
    let s = net.stats();
    report.lost_in_network = s.lost;
    report.duplicated = s.duplicated;
    report.reordered = s.reordered;
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No jitter: the buffer never stretches, so output stays aligned with
    /// the input and sample-wise comparison is fair.
    fn opts(loss: f64, conceal: Conceal) -> ImpairOptions {
        ImpairOptions {
            codec: Codec::Pcmu,
            jitter_ms: 0.0,
            jitter_spread_ms: 0.0,
            loss_pct: loss,
            burst: 1.0,
            reorder_pct: 0.0,
            dup_pct: 0.0,
            drift_ppm: 0,
            seed: 1,
            conceal,
        }
    }

    /// A vowel-like signal: harmonics of 140 Hz.
    fn voice(secs: usize) -> Vec<i16> {
        (0..8000 * secs)
            .map(|n| {
                let t = n as f64 / 8000.0;
                let s: f64 = (1..8)
                    .map(|k| (2.0 * std::f64::consts::PI * 140.0 * k as f64 * t).sin() / k as f64)
                    .sum();
                (s * 6000.0) as i16
            })
            .collect()
    }

    fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
        let n = reference.len().min(test.len());
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        for i in 0..n {
            let r = f64::from(reference[i]);
            sig += r * r;
            let e = r - f64::from(test[i]);
            err += e * e;
        }
        10.0 * (sig / err.max(1.0)).log10()
    }

    #[test]
    fn clean_network_is_a_plain_g711_round_trip() {
        let pcm = voice(3);
        let (out, r) = impair_pcm(&pcm, &opts(0.0, Conceal::Plc));
        assert_eq!(r.concealed, 0);
        assert_eq!(r.played, r.frames);
        assert!(snr_db(&pcm, &out) > 30.0, "{}", snr_db(&pcm, &out));
    }

    #[test]
    fn concealment_beats_zero_fill_on_loss() {
        let pcm = voice(10);
        let (plc, rp) = impair_pcm(&pcm, &opts(5.0, Conceal::Plc));
        let (zero, rz) = impair_pcm(&pcm, &opts(5.0, Conceal::Zero));
        assert_eq!(
            rp.lost_in_network, rz.lost_in_network,
            "same seed, same losses"
        );
        assert!(rp.concealed > 0);
        // PLC delays its output by a few samples (Appendix I); align first
        let (sp, sz) = (snr_db(&pcm, &plc), snr_db(&pcm, &zero));
        assert!(sp > sz + 3.0, "plc {sp:.1} dB vs zero-fill {sz:.1} dB");
    }
}
