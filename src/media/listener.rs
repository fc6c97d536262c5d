//! What a call hears from the caller, one 20 ms frame per tick: the
//! jitter buffer, then decode or conceal (G.711 with the Appendix I-style
//! PLC, Opus with libopus FEC or PLC), then in-band DTMF detection. Delay
//! the path does not need is given back by dropping quiet decoded packets.
//! Sans-IO: packets and `now` in, keys out; the media worker owns the
//! sockets and the tick.
//!
//! Packets may last 10 to 60 ms (G.711: any length up to 480 bytes; Opus:
//! whatever its TOC says, up to 120 ms, code 0–3 packets alike) and a peer
//! may change its packet size mid-call. Each packet is pushed with its
//! duration; decoded or concealed audio goes into a small FIFO of 8 kHz
//! samples, refilled from the jitter buffer whenever it holds less than a
//! tick's 20 ms, so a 30 ms packet is heard whole: 160 samples this tick,
//! 80 the next. The FIFO is an array of the listener: nothing allocates.

use std::time::Instant;

use crate::codec::Codec;
use crate::media::dtmf_detect::DtmfDetector;
use crate::media::g711::{self, Law};
use crate::media::jitter::{
    is_quiet_frame, JitterBuffer, JitterConfig, JitterStats, Playout, PushResult,
};
use crate::media::opus::{self, OpusDecoder, OpusSampleRate};
use crate::media::plc::Plc;

mod marks;
use marks::SampleMarks;

/// Samples in one 20 ms tick at 8 kHz.
const TICK: usize = 160;
/// The longest G.711 packet taken: 60 ms (the most `a=maxptime` rivr
/// states); longer ones are dropped as too large and concealed.
const MAX_G711_PACKET: usize = 480;
/// The longest packet decoded, at 8 kHz: an Opus packet of 120 ms.
const MAX_PACKET: usize = 960;
/// Decoded audio waiting for its tick: less than a tick plus one packet.
const FIFO: usize = MAX_PACKET + TICK;
/// Pops per tick at most: packets of 2.5 ms need eight; more means the
/// buffer is giving nothing but empty steps.
const MAX_POPS: usize = 16;

/// The decoder side of a call's codec, with its own concealment.
enum Decoder {
    /// G.711 with the Appendix I-style PLC.
    G711 { law: Law, plc: Box<Plc> },
    /// Opus at 8 kHz: libopus resamples internally, and its PLC and FEC
    /// conceal losses.
    Opus(OpusDecoder),
}

impl Decoder {
    fn new(codec: Codec) -> Decoder {
        if let Some(law) = codec.g711_law() {
            return Decoder::G711 {
                law,
                plc: Box::new(Plc::new()),
            };
        }
        match OpusDecoder::new(OpusSampleRate::Hz8000) {
            Ok(d) => Decoder::Opus(d),
            Err(e) => {
                // libopus only refuses bad arguments; fall back to a decoder
                // that hears silence rather than failing the call.
                tracing::error!(error = %e, "cannot create an Opus decoder");
                Decoder::G711 {
                    law: Law::Ulaw,
                    plc: Box::new(Plc::new()),
                }
            }
        }
    }

    /// Decodes `payload` into all of `pcm` (as long as the jitter buffer
    /// says the packet lasts); what the packet does not fill is concealed.
    fn frame(&mut self, payload: &[u8], pcm: &mut [i16]) {
        match self {
            Decoder::G711 { law, plc } => {
                let n = payload.len().min(pcm.len());
                let (good, rest) = pcm.split_at_mut(n);
                g711::decode(*law, payload.get(..n).unwrap_or_default(), good);
                plc.good_frame(good);
                if !rest.is_empty() {
                    plc.conceal(rest);
                }
            }
            Decoder::Opus(d) => match d.decode(payload, pcm) {
                Ok(n) => {
                    if let Some(rest) = pcm.get_mut(n..) {
                        conceal_opus(d, rest);
                    }
                }
                Err(_) => conceal_opus(d, pcm),
            },
        }
    }

    fn conceal(&mut self, next: Option<&[u8]>, pcm: &mut [i16]) {
        match self {
            Decoder::G711 { plc, .. } => plc.conceal(pcm),
            Decoder::Opus(d) => {
                let rebuilt = next
                    .filter(|p| OpusDecoder::has_fec(p))
                    .and_then(|p| d.decode_fec(p, pcm).ok())
                    .unwrap_or(0);
                if let Some(rest) = pcm.get_mut(rebuilt..) {
                    conceal_opus(d, rest);
                }
            }
        }
    }
}

/// Fills `pcm` with libopus PLC (which conceals as long as the last packet
/// lasted, so it may take several calls); silence if it refuses.
fn conceal_opus(d: &mut OpusDecoder, pcm: &mut [i16]) {
    let mut done = 0;
    while let Some(rest) = pcm.get_mut(done..).filter(|r| !r.is_empty()) {
        match d.conceal(rest) {
            Ok(n) if n > 0 => done += n,
            _ => {
                rest.fill(0);
                return;
            }
        }
    }
}

/// What a call hears from the caller: jitter buffer → decode (or conceal)
/// → in-band DTMF detection, one 20 ms frame per tick.
pub struct Listener {
    codec: Codec,
    jitter: JitterBuffer,
    decoder: Decoder,
    inband: DtmfDetector,
    /// The in-band detector runs (`media::inband_policy`).
    inband_on: bool,
    pcm: [i16; TICK],
    /// Decoded or concealed audio not yet played out, oldest first.
    fifo: [i16; FIFO],
    /// Which FIFO samples were concealed (the DTMF detector is told).
    fifo_concealed: SampleMarks<FIFO>,
    fifo_len: usize,
    /// RTP timestamp units per 8 kHz sample (1 for G.711, 6 for Opus).
    ts_per_sample: u32,
}

impl Listener {
    /// A listener for a call in `codec`.
    pub fn new(codec: Codec) -> Self {
        let jitter = match codec {
            Codec::Opus => JitterConfig::opus_20ms(),
            Codec::Pcmu | Codec::Pcma => JitterConfig {
                max_payload: MAX_G711_PACKET,
                ..JitterConfig::g711_20ms()
            },
        };
        let jitter = JitterConfig {
            // Delay the path does not need is given back in pauses, where
            // a dropped frame is not heard, rather than in speech.
            quiet_drops: true,
            ..jitter
        };
        Listener {
            codec,
            ts_per_sample: (codec.clock_rate() / 8000).max(1),
            jitter: JitterBuffer::new(jitter),
            decoder: Decoder::new(codec),
            inband: DtmfDetector::new(),
            inband_on: true,
            pcm: [0; TICK],
            fifo: [0; FIFO],
            fifo_concealed: SampleMarks::new(),
            fifo_len: 0,
        }
    }

    /// Runs the in-band DTMF detector on what is heard, or not. Turned
    /// back on, it starts afresh (no half-heard key from before).
    pub fn set_inband(&mut self, on: bool) {
        if on && !self.inband_on {
            self.inband = DtmfDetector::new();
        }
        self.inband_on = on;
    }

    /// Offers one received audio packet to the jitter buffer.
    pub fn push(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushResult {
        let duration = packet_duration(self.codec, payload);
        self.jitter
            .push_lasting(now, seq, timestamp, ssrc, marker, payload, duration)
    }

    /// A packet of the stream without audio (see
    /// [`JitterBuffer::push_not_audio`]).
    pub fn push_not_audio(&mut self, seq: u16, ssrc: u32) {
        self.jitter.push_not_audio(seq, ssrc);
    }

    /// The frame the last [`Listener::tick`] played out: decoded,
    /// concealed or silent, 8 kHz (what a leg joined to this call hears).
    pub fn frame(&self) -> &[i16; TICK] {
        &self.pcm
    }

    /// The jitter buffer's counters.
    pub fn jitter_stats(&self) -> &JitterStats {
        self.jitter.stats()
    }

    /// Plays out one 20 ms frame (call once per tick); returns a key the
    /// in-band detector confirmed.
    pub fn tick(&mut self, now: Instant) -> Option<char> {
        let mut pops = 0;
        // At most one quiet packet per tick is dropped unheard; the one
        // after it plays in its place.
        let mut dropped = false;
        let mut instead = false;
        while self.fifo_len < TICK && pops < MAX_POPS {
            pops += 1;
            // The packet must be here now, when it is decoded, though it
            // is heard only after the audio still in the FIFO: the buffer
            // sees its delay that much shorter and keeps it that much
            // longer, so packets that straddle ticks are never late.
            let at = now;
            let step_before = self.jitter.frame_samples();
            let decision = if instead {
                self.jitter.pop_instead(at)
            } else {
                self.jitter.pop(at)
            };
            let start = self.fifo_len;
            let (decoded, concealed, step) = match decision {
                Playout::Frame { payload, .. } => {
                    let dur = packet_duration(self.codec, payload);
                    let dur = if dur == 0 { step_before } else { dur };
                    let n = samples(dur, self.ts_per_sample);
                    let out = fifo_span(&mut self.fifo, start, n);
                    self.decoder.frame(payload, out);
                    (true, false, out.len())
                }
                Playout::Conceal { next, .. } => {
                    let n = samples(step_before, self.ts_per_sample);
                    let out = fifo_span(&mut self.fifo, start, n);
                    self.decoder.conceal(next, out);
                    (false, true, out.len())
                }
                Playout::Silence => {
                    let n = samples(step_before, self.ts_per_sample);
                    let out = fifo_span(&mut self.fifo, start, n);
                    out.fill(0);
                    (false, false, out.len())
                }
            };
            instead = false;
            let end = start + step;
            let quiet = self.fifo.get(start..end).is_some_and(is_quiet_frame);
            if decoded && !dropped && self.jitter.wants_shrink() && quiet {
                dropped = true;
                instead = true;
                continue;
            }
            self.fifo_concealed.fill(start, end, concealed);
            self.fifo_len = end;
        }
        if self.fifo_len < TICK {
            // Only a buffer giving empty steps gets here; pad with silence.
            if let Some(r) = self.fifo.get_mut(self.fifo_len..TICK) {
                r.fill(0);
            }
            self.fifo_concealed.fill(self.fifo_len, TICK, false);
            self.fifo_len = TICK;
        }
        if let Some(head) = self.fifo.get(..TICK) {
            self.pcm.copy_from_slice(head);
        }
        let concealed = self.fifo_concealed.any_below(TICK);
        self.fifo.copy_within(TICK..self.fifo_len, 0);
        self.fifo_concealed.shift_down(TICK);
        self.fifo_len -= TICK;
        if !self.inband_on {
            return None;
        }
        let first = if concealed {
            self.inband.process_concealed(&self.pcm)
        } else {
            self.inband.process(&self.pcm)
        };
        // one 20 ms frame holds at most one onset; drain any queue anyway
        while self.inband.poll().is_some() {}
        first.map(|d| d.digit)
    }
}

/// How long `payload` lasts in RTP timestamp units; 0 (the buffer's
/// current frame) when an Opus TOC cannot tell.
fn packet_duration(codec: Codec, payload: &[u8]) -> u32 {
    match codec {
        Codec::Pcmu | Codec::Pcma => u32::try_from(payload.len()).unwrap_or(0),
        Codec::Opus => opus::packet::duration_samples(payload, codec.clock_rate())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
    }
}

/// 8 kHz samples in `ts` timestamp units, at least one and at most a
/// packet's worth.
fn samples(ts: u32, ts_per_sample: u32) -> usize {
    usize::try_from(ts / ts_per_sample.max(1))
        .unwrap_or(MAX_PACKET)
        .clamp(1, MAX_PACKET)
}

/// The `n` FIFO samples from `start`, or as many as fit.
fn fifo_span(fifo: &mut [i16; FIFO], start: usize, n: usize) -> &mut [i16] {
    let end = start.saturating_add(n).min(FIFO);
    fifo.get_mut(start.min(end)..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::tone::ToneGenerator;

    const TICK: Duration = Duration::from_millis(20);

    /// Frames of a key press go through the jitter buffer, G.711 and the
    /// in-band detector exactly as a call's inbound audio does.
    #[test]
    fn listener_hears_an_inband_key_through_the_jitter_buffer() {
        for law in Law::ALL {
            let codec = Codec::from(law);
            let t0 = Instant::now();
            let mut l = Listener::new(codec);
            let mut tone = ToneGenerator::dtmf('7', 100, 0, -10.0).unwrap();
            let mut heard = Vec::new();
            for i in 0..50u32 {
                let mut pcm = [0i16; 160];
                if i >= 10 {
                    tone.fill(&mut pcm);
                }
                let mut payload = [0u8; 160];
                g711::encode(law, &pcm, &mut payload);
                let now = t0 + TICK * i;
                let _ = l.push(now, i as u16, i * 160, 42, i == 0, &payload);
                if let Some(d) = l.tick(now) {
                    heard.push((i, d));
                }
            }
            assert_eq!(heard.len(), 1, "{codec:?}: {heard:?}");
            assert_eq!(heard[0].1, '7');
        }
    }

    /// The same over Opus: packets of a key press, one lost, through the
    /// jitter buffer, the Opus decoder (FEC or PLC) and the detector.
    #[test]
    fn listener_hears_an_inband_key_over_opus_with_a_lost_packet() {
        use crate::media::opus::{OpusConfig, OpusEncoder};
        let t0 = Instant::now();
        let mut l = Listener::new(Codec::Opus);
        let mut enc = OpusEncoder::new(OpusConfig {
            inband_fec: true,
            packet_loss_pct: 10,
            ..OpusConfig::at_rate(8000).unwrap()
        })
        .unwrap();
        let mut tone = ToneGenerator::dtmf('#', 120, 0, -10.0).unwrap();
        let mut heard = Vec::new();
        let mut buf = [0u8; 1500];
        for i in 0..60u32 {
            let mut pcm = [0i16; 160];
            if i >= 10 {
                tone.fill(&mut pcm);
            }
            let n = enc.encode(&pcm, &mut buf).unwrap();
            let now = t0 + TICK * i;
            if i != 13 {
                let _ = l.push(now, i as u16, i * 960, 42, i == 0, &buf[..n]);
            }
            if let Some(d) = l.tick(now) {
                heard.push((i, d));
            }
        }
        assert_eq!(
            heard.iter().map(|h| h.1).collect::<String>(),
            "#",
            "{heard:?}"
        );
    }

    /// A signal no two stretches of which look alike: a chirp.
    fn chirp(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 8000.0;
                let f = 300.0 + 150.0 * t;
                (8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
            })
            .collect()
    }

    /// Sends `signal` in G.711 packets of `sizes` (cycled) in real time and
    /// returns what the listener played out, tick by tick.
    fn through_listener(signal: &[i16], sizes: &[usize]) -> (Vec<i16>, JitterStats) {
        let t0 = Instant::now();
        let mut l = Listener::new(Codec::Pcmu);
        let mut packets = Vec::new();
        let (mut at, mut k) = (0, 0);
        let mut of_signal = 0;
        // A tail of silent packets keeps the last packet of the signal
        // from being followed by concealment (the stream's end).
        let tail = vec![0i16; 960];
        let signal = &[signal, &tail[..]].concat();
        while at < signal.len() {
            if at < signal.len() - tail.len() {
                of_signal += 1;
            }
            let n = sizes[k % sizes.len()].min(signal.len() - at);
            let mut payload = vec![0u8; n];
            g711::encode(Law::Ulaw, &signal[at..at + n], &mut payload);
            // sent when its last sample is captured
            packets.push(((at + n) as u64 * 125, k as u16, at as u32, payload));
            at += n;
            k += 1;
        }
        let mut heard = Vec::new();
        let mut at_end = None;
        let mut next = 0;
        let end_us = signal.len() as u64 * 125 + 300_000;
        let mut tick = 0u64;
        while tick < end_us {
            while let Some((sent, seq, ts, payload)) = packets.get(next) {
                if *sent > tick {
                    break;
                }
                let now = t0 + Duration::from_micros(*sent);
                // What the buffer refuses shows in its figures (late).
                let _ = l.push(now, *seq, *ts, 7, *seq == 0, payload);
                next += 1;
            }
            l.tick(t0 + Duration::from_micros(tick));
            heard.extend_from_slice(l.frame());
            tick += 20_000;
            // Past the last packet the buffer conceals (loss or a pause,
            // it cannot tell): the figures are taken when all has played.
            let s = l.jitter_stats();
            if at_end.is_none() && s.played + s.skipped >= of_signal {
                at_end = Some(s.clone());
            }
        }
        (heard, at_end.unwrap_or_else(|| l.jitter_stats().clone()))
    }

    /// The best normalized cross-correlation of `heard` with `signal` over
    /// lags up to 200 ms, and that lag.
    fn best_ncc(signal: &[i16], heard: &[i16]) -> (f64, usize) {
        let mut best = (0.0, 0);
        for lag in 0..1600 {
            let Some(h) = heard.get(lag..lag + signal.len()) else {
                break;
            };
            let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
            for (x, y) in signal.iter().zip(h) {
                let (x, y) = (f64::from(*x), f64::from(*y));
                xy += x * y;
                xx += x * x;
                yy += y * y;
            }
            let ncc = xy / (xx * yy).sqrt().max(1.0);
            if ncc > best.0 {
                best = (ncc, lag);
            }
        }
        best
    }

    /// A 30 ms G.711 packet is heard whole: every one of its 240 samples
    /// comes out (160 on one tick, 80 on the next), not the first 160
    /// with the rest dropped; the same for 10 ms and 60 ms (480 samples)
    /// packets and for a peer switching between them.
    #[test]
    fn g711_packets_of_any_ptime_are_heard_whole() {
        // 1.5 s: within the 2 s the buffer waits for a pause before it
        // drops a frame of speech to give back its start delay, so every
        // sample must come out.
        let signal = chirp(12_000);
        for sizes in [&[240][..], &[480], &[80]] {
            let (heard, stats) = through_listener(&signal, sizes);
            assert_eq!(
                stats.concealed + stats.lost + stats.late,
                0,
                "{sizes:?} {stats:?}"
            );
            assert_eq!(stats.skipped, 0, "{sizes:?} {stats:?}");
            let (ncc, lag) = best_ncc(&signal, &heard);
            println!("{sizes:?}: NCC {ncc:.4} at lag {lag}; {stats:?}");
            assert!(ncc > 0.99, "{sizes:?}: NCC {ncc:.4} at lag {lag}");
        }
        // A peer changing its packet size at every packet: a packet longer
        // than the one before was held longer by its sender, and the first
        // such jump beyond the delay is late (concealed) while the delay
        // grows; one packet at most, the rest heard.
        let sizes = [160, 240, 480, 80, 240];
        let (heard, stats) = through_listener(&signal, &sizes);
        let (ncc, lag) = best_ncc(&signal, &heard);
        println!("{sizes:?}: NCC {ncc:.4} at lag {lag}; {stats:?}");
        assert!(stats.late <= 1 && stats.lost <= 1, "{stats:?}");
        assert!(ncc > 0.95, "{sizes:?}: NCC {ncc:.4} at lag {lag}");
    }

    /// The same chirp cut to 160 samples per packet (what rivr did with a
    /// 30 ms packet before) does not pass: the check can fail.
    #[test]
    fn audio_cut_to_20_ms_per_30_ms_packet_would_fail_the_check() {
        let signal = chirp(8000 * 3);
        let mut cut = signal.clone();
        for chunk in cut.chunks_mut(240) {
            if let Some(tail) = chunk.get_mut(160..) {
                tail.fill(0);
            }
        }
        let (heard, _) = through_listener(&cut, &[240]);
        let (ncc, _) = best_ncc(&signal, &heard);
        assert!(ncc < 0.9, "NCC {ncc:.4}");
    }

    /// Opus packets of 10, 40 and 60 ms, and 60 ms packets of three 20 ms
    /// frames (code 3), are decoded whole through the listener.
    #[test]
    fn opus_packets_of_any_duration_are_heard_whole() {
        use audiopus::coder::Encoder;
        use audiopus::{Application, Channels, SampleRate};
        let heard_part = 8000 * 3;
        // A silent tail keeps the last packet of the chirp from being
        // followed by concealment (the stream's end).
        let signal = [chirp(heard_part), vec![0; 960]].concat();
        // (ms per packet, 20 ms frames packed per packet with code 3)
        for (ms, packed) in [(10usize, 1usize), (20, 1), (40, 1), (60, 1), (60, 3)] {
            let t0 = Instant::now();
            let mut l = Listener::new(Codec::Opus);
            let enc = Encoder::new(SampleRate::Hz8000, Channels::Mono, Application::Voip).unwrap();
            let n = ms * 8;
            let frame = n / packed;
            let mut heard = Vec::new();
            let mut tick = 0u64;
            let mut k = 0usize;
            let mut at_end = None;
            while tick < signal.len() as u64 * 125 + 300_000 {
                while (k + 1) * n <= signal.len() && ((k + 1) * n) as u64 * 125 <= tick {
                    let mut frames = vec![[0u8; 1500]; packed];
                    let mut lens = vec![0; packed];
                    for (j, f) in frames.iter_mut().enumerate() {
                        let at = k * n + j * frame;
                        lens[j] = enc.encode(&signal[at..at + frame], &mut f[..]).unwrap();
                    }
                    let mut packet = [0u8; 4000];
                    let bytes = if packed == 1 {
                        packet[..lens[0]].copy_from_slice(&frames[0][..lens[0]]);
                        lens[0]
                    } else {
                        let parts: Vec<&[u8]> =
                            frames.iter().zip(&lens).map(|(f, &n)| &f[..n]).collect();
                        let len = opus::packet::pack_code3(&parts, &mut packet).unwrap();
                        assert_eq!(packet[0] & 3, 3);
                        len
                    };
                    let now = t0 + Duration::from_micros(((k + 1) * n) as u64 * 125);
                    let ts = (k * n * 6) as u32;
                    assert_eq!(
                        l.push(now, k as u16, ts, 9, k == 0, &packet[..bytes]),
                        PushResult::Accepted
                    );
                    k += 1;
                }
                l.tick(t0 + Duration::from_micros(tick));
                heard.extend_from_slice(l.frame());
                tick += 20_000;
                let s = l.jitter_stats();
                if at_end.is_none() && s.played + s.skipped >= (heard_part / n) as u64 {
                    at_end = Some(s.clone());
                }
            }
            let stats = at_end.unwrap_or_else(|| l.jitter_stats().clone());
            assert_eq!(
                stats.concealed + stats.lost + stats.late,
                0,
                "{ms}/{packed}: {stats:?}"
            );
            assert!(
                stats.played + stats.skipped >= (heard_part / n) as u64,
                "{ms}/{packed}: {stats:?}"
            );
            assert!(stats.skipped <= 4, "{ms}/{packed}: {stats:?}");
            let (ncc, lag) = best_ncc(&signal[1600..16000], &heard[1600..]);
            println!("Opus {ms} ms / {packed} frames: NCC {ncc:.4} at lag {lag}; {stats:?}");
            assert!(ncc > 0.8, "{ms}/{packed} ms: NCC {ncc:.4} at lag {lag}");
        }
    }

    /// On a clean path the 40 ms start delay is given back by dropping
    /// quiet frames as soon as the buffer asks; in a tone the buffer waits
    /// its 2 s for a pause before it drops a frame itself.
    #[test]
    fn listener_gives_back_start_delay_in_quiet_frames_first() {
        let t0 = Instant::now();
        let run = |loud: bool| {
            let mut l = Listener::new(Codec::Pcmu);
            let mut tone = ToneGenerator::dtmf('5', 60_000, 0, -10.0).unwrap();
            let mut first_skip = None;
            for i in 0..300u32 {
                let mut pcm = [0i16; 160];
                if loud {
                    tone.fill(&mut pcm);
                }
                let mut payload = [0u8; 160];
                g711::encode(Law::Ulaw, &pcm, &mut payload);
                let now = t0 + TICK * i;
                let _ = l.push(now, i as u16, i * 160, 42, i == 0, &payload);
                l.tick(now + Duration::from_millis(5));
                if first_skip.is_none() && l.jitter_stats().skipped > 0 {
                    first_skip = Some(i);
                }
            }
            let s = l.jitter_stats().clone();
            assert!(s.current_delay < Duration::from_millis(20), "{s:?}");
            assert_eq!(s.concealed + s.late, 0, "{s:?}");
            first_skip
        };
        let quiet = run(false).unwrap();
        let loud = run(true).unwrap();
        assert!(quiet < 100, "quiet frame dropped at tick {quiet}");
        assert!(
            loud >= quiet + 95,
            "tone frame dropped at tick {loud}, quiet at {quiet}"
        );
    }
}
