//! Cuts the 20 ms of audio the media core gives every tick into packets of
//! the ptime the peer asked for (`a=ptime`, capped by `a=maxptime`).
//!
//! Prompts are pre-encoded once and shared between calls, so other packet
//! sizes are made here, per leg, by copying those frames: G.711 frames are
//! split (10 ms) or concatenated (30, 40, 60 ms) in a fixed buffer of the
//! packetizer; Opus packets go out as they come when they are as long as
//! the ptime (a 20 ms frame at 20 ms; each of the two 10 ms frames a tick
//! brings for a 10 ms peer) and shorter ones are packed two or three to a
//! code 3 packet (RFC 6716 §3.2.5) at 40 and 60 ms. Nothing allocates per
//! packet. A 30 ms G.711 stream leaves 10 ms waiting after every other
//! tick, so packets go out on two ticks of every three.
//!
//! The ptime may change mid-call ([`Packetizer::set_ptime`], a re-INVITE):
//! what waits is kept and carried into packets of the new size, so the
//! stream goes on with no gap, no repeat and no short packet in G.711.
//!
//! Sans-IO: the caller writes each packet into RTP, advancing the RTP
//! timestamp by the samples this says the packet lasts, so timestamps
//! step by the ptime (240 at 30 ms G.711, 480 at 10 ms Opus) and stay true
//! to real time.

use crate::codec::Codec;
use crate::media::opus::packet::{duration_samples, pack_code3};

/// The longest packet sent: 60 ms.
const MAX_PTIME_MS: u32 = 60;
/// G.711 bytes of the longest packet.
const MAX_G711: usize = 480;
/// Opus frames packed at most (60 ms of 20 ms frames).
const MAX_OPUS_FRAMES: usize = 3;
/// Bytes one Opus frame may take, TOC included (RFC 6716 §3.4).
const MAX_OPUS_FRAME: usize = 1276;
/// Room for a code 3 packet of three frames: TOC, count, two lengths of up
/// to two bytes each, the frames.
const MAX_OPUS_PACKET: usize = 6 + MAX_OPUS_FRAMES * MAX_OPUS_FRAME;
/// RTP timestamp units per ms of Opus (48 kHz clock, RFC 7587 §4.1).
const OPUS_UNITS_PER_MS: u32 = 48;

/// Turns each tick's audio into packets of one ptime; see the module doc.
pub struct Packetizer {
    codec: Codec,
    ptime_ms: u32,
    /// G.711: bytes waiting for the next packet. Opus: frames waiting,
    /// each `MAX_OPUS_FRAME` apart.
    buf: Box<[u8]>,
    /// G.711: bytes in `buf`. Opus: frames in `buf`.
    len: usize,
    /// Opus: each waiting frame's length.
    frame_lens: [usize; MAX_OPUS_FRAMES],
    /// Opus: each waiting frame's RTP timestamp units.
    frame_units: [u32; MAX_OPUS_FRAMES],
    /// Opus: the packed packet.
    packed: Box<[u8]>,
}

impl Packetizer {
    /// A packetizer sending `ptime_ms` packets in `codec` (an unsupported
    /// duration is rounded as [`Codec::send_ptime`] does). Its buffers are
    /// allocated here, once per leg.
    pub fn new(codec: Codec, ptime_ms: u32) -> Packetizer {
        let (buf, packed) = match codec {
            Codec::Pcmu | Codec::Pcma => (MAX_G711, 0),
            Codec::Opus => (MAX_OPUS_FRAMES * MAX_OPUS_FRAME, MAX_OPUS_PACKET),
        };
        Packetizer {
            codec,
            ptime_ms: rounded(codec, ptime_ms),
            buf: vec![0; buf].into_boxed_slice(),
            len: 0,
            frame_lens: [0; MAX_OPUS_FRAMES],
            frame_units: [0; MAX_OPUS_FRAMES],
            packed: vec![0; packed].into_boxed_slice(),
        }
    }

    /// The packet duration sent.
    pub fn ptime_ms(&self) -> u32 {
        self.ptime_ms
    }

    /// RTP timestamp units of media waiting for a packet (not yet sent).
    pub fn pending_samples(&self) -> u32 {
        match self.codec {
            Codec::Pcmu | Codec::Pcma => u32::try_from(self.len).unwrap_or(0),
            Codec::Opus => self.frame_units.iter().take(self.len).sum(),
        }
    }

    /// Sends packets of `ptime_ms` from now on (rounded as in
    /// [`Packetizer::new`]). What waits is kept: G.711 bytes go into the
    /// next packets of the new size (any whole ones at once, through
    /// `send`), so the stream continues without a gap, a repeat or a short
    /// packet; waiting Opus frames go out now if they already make a
    /// packet of the new size. Allocates nothing.
    pub fn set_ptime(&mut self, ptime_ms: u32, mut send: impl FnMut(&[u8], u32)) {
        self.ptime_ms = rounded(self.codec, ptime_ms);
        match self.codec {
            Codec::Pcmu | Codec::Pcma => {
                let size = self.g711_size();
                let mut at = 0;
                while self.len.saturating_sub(at) >= size {
                    if let Some(p) = self.buf.get(at..at + size) {
                        send(p, u32::try_from(size).unwrap_or(0));
                    }
                    at += size;
                }
                self.buf.copy_within(at..self.len, 0);
                self.len -= at;
            }
            Codec::Opus => {
                if self.pending_samples() >= self.opus_units() {
                    self.send_opus(&mut send);
                }
            }
        }
    }

    /// Takes one tick's payload (G.711: 20 ms; Opus: one packet, 20 ms, or
    /// one of the two 10 ms packets of a tick) and calls `send(packet,
    /// samples)` for each packet now complete (none, one or two), where
    /// `samples` is how many RTP timestamp units the packet lasts.
    pub fn push(&mut self, frame: &[u8], mut send: impl FnMut(&[u8], u32)) {
        match self.codec {
            Codec::Pcmu | Codec::Pcma => self.push_g711(frame, &mut send),
            Codec::Opus => self.push_opus(frame, &mut send),
        }
    }

    /// Sends what waits as one shorter packet (before a telephone-event
    /// takes over the media clock, so no audio is lost or mistimed).
    pub fn flush(&mut self, mut send: impl FnMut(&[u8], u32)) {
        match self.codec {
            Codec::Pcmu | Codec::Pcma => {
                if let Some(p) = self.buf.get(..self.len).filter(|p| !p.is_empty()) {
                    send(p, u32::try_from(p.len()).unwrap_or(0));
                }
            }
            Codec::Opus => self.send_opus(&mut send),
        }
        self.len = 0;
    }

    /// Forgets what waits (media held back: the caller lets the RTP clock
    /// run past it, [`Packetizer::pending_samples`]).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn g711_size(&self) -> usize {
        self.ptime_ms as usize * 8
    }

    fn opus_units(&self) -> u32 {
        self.ptime_ms * OPUS_UNITS_PER_MS
    }

    fn push_g711(&mut self, frame: &[u8], send: &mut impl FnMut(&[u8], u32)) {
        let size = self.g711_size();
        let mut rest = frame;
        // Whole packets straight from the frame when nothing waits (20 ms,
        // and both halves at 10 ms): no copy at all.
        if self.len == 0 {
            while let (Some(p), Some(tail)) = (rest.get(..size), rest.get(size..)) {
                send(p, u32::try_from(size).unwrap_or(0));
                rest = tail;
            }
        }
        while !rest.is_empty() {
            let room = size.saturating_sub(self.len).min(rest.len());
            let (take, tail) = rest.split_at(room);
            if let Some(dst) = self.buf.get_mut(self.len..self.len + room) {
                dst.copy_from_slice(take);
            }
            self.len += room;
            rest = tail;
            if self.len >= size {
                if let Some(p) = self.buf.get(..size) {
                    send(p, u32::try_from(size).unwrap_or(0));
                }
                self.len = 0;
            }
            if room == 0 {
                break;
            }
        }
    }

    fn push_opus(&mut self, frame: &[u8], send: &mut impl FnMut(&[u8], u32)) {
        // Its duration from its TOC; a payload that does not say is taken
        // for the tick it stands for.
        let units = duration_samples(frame, 48_000)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(self.codec.timestamp_step_20ms());
        if self.len == 0 && units >= self.opus_units() {
            // As long as a packet (20 ms at 20, 10 ms at 10): as it is.
            send(frame, units);
            return;
        }
        if self.len >= MAX_OPUS_FRAMES {
            self.send_opus(send);
        }
        let at = self.len * MAX_OPUS_FRAME;
        let stored = frame.len() <= MAX_OPUS_FRAME
            && self
                .buf
                .get_mut(at..at + frame.len())
                .map(|dst| dst.copy_from_slice(frame))
                .is_some();
        if !stored {
            // Larger than any Opus frame: not ours to pack; send it alone.
            self.send_opus(send);
            send(frame, units);
            return;
        }
        if let (Some(l), Some(u)) = (
            self.frame_lens.get_mut(self.len),
            self.frame_units.get_mut(self.len),
        ) {
            *l = frame.len();
            *u = units;
        }
        self.len += 1;
        if self.pending_samples() >= self.opus_units() {
            self.send_opus(send);
        }
    }

    /// Sends the waiting Opus frames: packed in one code 3 packet, or one
    /// by one if they cannot share one (a frame of another configuration,
    /// or one that is not a single frame).
    fn send_opus(&mut self, send: &mut impl FnMut(&[u8], u32)) {
        let n = self.len.min(MAX_OPUS_FRAMES);
        let total = self.pending_samples();
        self.len = 0;
        if n == 0 {
            return;
        }
        let mut frames: [&[u8]; MAX_OPUS_FRAMES] = [&[]; MAX_OPUS_FRAMES];
        for (k, (slot, len)) in frames.iter_mut().zip(self.frame_lens).enumerate().take(n) {
            let at = k * MAX_OPUS_FRAME;
            *slot = self.buf.get(at..at + len).unwrap_or_default();
        }
        let frames = frames.get(..n).unwrap_or_default();
        if n > 1 {
            if let Some(len) = pack_code3(frames, &mut self.packed) {
                if let Some(p) = self.packed.get(..len) {
                    send(p, total);
                    return;
                }
            }
        }
        for (f, units) in frames.iter().zip(self.frame_units) {
            send(f, units);
        }
    }
}

/// `ptime_ms` as one of the durations rivr sends in `codec`.
fn rounded(codec: Codec, ptime_ms: u32) -> u32 {
    codec.send_ptime(Some(ptime_ms), Some(MAX_PTIME_MS))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::media::opus::packet::duration_samples;
    use crate::media::rtp_session::header;
    use crate::media::rtp_session::{RtpSession, RtpSessionConfig};

    fn session(codec: Codec) -> RtpSession {
        RtpSession::new(
            RtpSessionConfig {
                local_ssrc: 1,
                payload_type: 0,
                clock_rate: codec.clock_rate(),
                telephone_event_pt: None,
                telephone_event_rate: 8000,
                remote_rtp: "127.0.0.1:4000".parse().unwrap(),
                remote_rtcp: "127.0.0.1:4001".parse().unwrap(),
                initial_seq: 100,
                initial_timestamp: 1000,
                cname: "t".into(),
                ptime_ms: 20,
            },
            Instant::now(),
        )
    }

    /// Ticks of 20 ms G.711 frames through the packetizer and RTP: each
    /// ptime gives packets of ptime × 8 bytes whose timestamps step by as
    /// many samples, carrying the frames' bytes in order, with nothing
    /// lost; a 30 ms stream sends on two ticks of every three.
    #[test]
    fn g711_packets_at_each_ptime() {
        for ptime in [10u32, 20, 30, 40, 60] {
            let mut p = Packetizer::new(Codec::Pcmu, ptime);
            assert_eq!(p.ptime_ms(), ptime);
            let mut s = session(Codec::Pcmu);
            let now = Instant::now();
            let mut sent = Vec::new();
            let mut per_tick = Vec::new();
            for tick in 0..30u32 {
                let frame: Vec<u8> = (0..160).map(|i| ((tick * 160 + i) % 251) as u8).collect();
                let mut n = 0;
                p.push(&frame, |payload, samples| {
                    let mut out = [0u8; 1500];
                    let len = s.write_audio(now, payload, samples, &mut out).unwrap();
                    let (h, body) = header::parse(&out[..len]).unwrap();
                    sent.push((h.seq, h.timestamp, body.to_vec()));
                    n += 1;
                });
                per_tick.push(n);
            }
            let size = ptime as usize * 8;
            assert_eq!(sent.len(), 30 * 160 / size, "{ptime}");
            let mut all = Vec::new();
            for (k, (seq, ts, body)) in sent.iter().enumerate() {
                assert_eq!(body.len(), size, "{ptime}");
                assert_eq!(*seq, 100 + k as u16, "{ptime}");
                assert_eq!(*ts, 1000 + (k * size) as u32, "{ptime}");
                all.extend_from_slice(body);
            }
            let expected: Vec<u8> = (0..30 * 160u32).map(|i| (i % 251) as u8).collect();
            assert_eq!(all, expected, "{ptime}");
            if ptime == 30 {
                assert_eq!(&per_tick[..6], &[0, 1, 1, 0, 1, 1]);
            }
            if ptime == 10 {
                assert!(per_tick.iter().all(|&n| n == 2));
            }
        }
    }

    /// An odd request is rounded (25 → 20, 50 → 40); Opus has 10, 20, 40
    /// and 60 ms (30 → 20, the shorter on a tie).
    #[test]
    fn unsupported_ptimes_are_rounded() {
        assert_eq!(Packetizer::new(Codec::Pcma, 25).ptime_ms(), 20);
        assert_eq!(Packetizer::new(Codec::Pcma, 50).ptime_ms(), 40);
        assert_eq!(Packetizer::new(Codec::Pcma, 200).ptime_ms(), 60);
        assert_eq!(Packetizer::new(Codec::Opus, 10).ptime_ms(), 10);
        assert_eq!(Packetizer::new(Codec::Opus, 5).ptime_ms(), 10);
        assert_eq!(Packetizer::new(Codec::Opus, 30).ptime_ms(), 20);
        assert_eq!(Packetizer::new(Codec::Opus, 60).ptime_ms(), 60);
    }

    /// A flush before a telephone-event sends what waits as a short packet,
    /// and a cleared packetizer says how much media it let go.
    #[test]
    fn flush_and_clear() {
        let mut p = Packetizer::new(Codec::Pcmu, 60);
        let mut got = Vec::new();
        p.push(&[1; 160], |b, n| got.push((b.len(), n)));
        p.push(&[2; 160], |b, n| got.push((b.len(), n)));
        assert!(got.is_empty());
        assert_eq!(p.pending_samples(), 320);
        p.flush(|b, n| got.push((b.len(), n)));
        assert_eq!(got, vec![(320, 320)]);
        assert_eq!(p.pending_samples(), 0);
        p.push(&[3; 160], |_, _| panic!("not yet"));
        assert_eq!(p.pending_samples(), 160);
        p.clear();
        assert_eq!(p.pending_samples(), 0);
    }

    /// 20 ms Opus frames go out two or three to a code 3 packet at 40 and
    /// 60 ms, which decodes to 40 or 60 ms, timestamps stepping by 1920 or
    /// 2880.
    #[test]
    fn opus_frames_are_packed_at_40_and_60_ms() {
        let pcm: Vec<i16> = (0..16_000)
            .map(|i| (6000.0 * (f64::from(i) * 0.3).sin()) as i16)
            .collect();
        let frames = crate::media::opus::encode_prompt_opus(&pcm).unwrap();
        for (ptime, per) in [(20u32, 1usize), (40, 2), (60, 3)] {
            let mut p = Packetizer::new(Codec::Opus, ptime);
            let mut s = session(Codec::Opus);
            let now = Instant::now();
            let mut sent = Vec::new();
            for f in &frames {
                p.push(f, |payload, samples| {
                    let mut out = [0u8; 4000];
                    let len = s.write_audio(now, payload, samples, &mut out).unwrap();
                    let (h, body) = header::parse(&out[..len]).unwrap();
                    sent.push((h.timestamp, body.to_vec()));
                });
            }
            assert_eq!(sent.len(), frames.len() / per, "{ptime}");
            for (k, (ts, body)) in sent.iter().enumerate() {
                assert_eq!(*ts, 1000 + (k * 960 * per) as u32, "{ptime}");
                assert_eq!(duration_samples(body, 48_000), Some(960 * per), "{ptime}");
                let mut dec = crate::media::opus::OpusDecoder::new(
                    crate::media::opus::OpusSampleRate::Hz8000,
                )
                .unwrap();
                let mut pcm = [0i16; 960];
                assert_eq!(dec.decode(body, &mut pcm).unwrap(), 160 * per, "{ptime}");
            }
        }
    }

    /// What a packetizer sent: (RTP timestamp, payload) per packet.
    type Sent = Vec<(u32, Vec<u8>)>;

    /// Pushes `payload` through `p` into RTP on `s`, recording each packet.
    fn push_rtp(p: &mut Packetizer, s: &mut RtpSession, payload: &[u8], sent: &mut Sent) {
        let now = Instant::now();
        p.push(payload, |payload, samples| {
            let mut out = [0u8; 4000];
            let len = s.write_audio(now, payload, samples, &mut out).unwrap();
            let (h, body) = header::parse(&out[..len]).unwrap();
            sent.push((h.timestamp, body.to_vec()));
        });
    }

    fn speech(seconds: f32) -> Vec<i16> {
        crate::media::transcode::test_signal::speech_like(8000, seconds)
    }

    /// A 10 ms Opus peer: each tick's two 10 ms packets (a prompt's, as
    /// `encode_prompt_opus_frames` makes them) go out one per RTP packet,
    /// each TOC saying one 10 ms frame (code 0), timestamps stepping 480;
    /// libopus decodes them to 80 samples each at 8 kHz, exactly what the
    /// same packets give decoded unsent, and that audio is the source's.
    #[test]
    fn opus_10ms_frames_go_one_per_packet() {
        use crate::media::opus::packet::toc;
        use crate::media::opus::{encode_prompt_opus_frames, FrameDuration};
        use crate::media::opus::{OpusDecoder, OpusSampleRate};
        use crate::media::transcode::test_signal::best_correlation;

        let pcm = speech(2.0);
        let frames = encode_prompt_opus_frames(&pcm, FrameDuration::Ms10).unwrap();
        assert_eq!(frames.len(), 2 * pcm.len().div_ceil(160));
        let mut p = Packetizer::new(Codec::Opus, 10);
        assert_eq!(p.ptime_ms(), 10);
        let mut s = session(Codec::Opus);
        let mut sent = Sent::new();
        for tick in frames.chunks(2) {
            let before = sent.len();
            for half in tick {
                push_rtp(&mut p, &mut s, half, &mut sent);
            }
            assert_eq!(sent.len() - before, 2, "two packets a tick");
            assert_eq!(p.pending_samples(), 0);
        }
        assert_eq!(sent.len(), frames.len());
        let mut direct = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
        let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
        let mut heard = Vec::new();
        for (k, (ts, body)) in sent.iter().enumerate() {
            assert_eq!(*ts, 1000 + 480 * k as u32);
            let t = toc(body).unwrap();
            assert_eq!((t.frame_samples_48k, t.code), (480, 0), "packet {k}");
            // TOC configurations of 10 ms frames (RFC 6716 Table 2).
            assert!([0, 4, 8, 12, 14, 16, 20, 24, 28].contains(&(body[0] >> 3)));
            assert_eq!(body, &frames[k]);
            let (mut a, mut b) = ([0i16; 960], [0i16; 960]);
            assert_eq!(dec.decode(body, &mut a).unwrap(), 80);
            assert_eq!(direct.decode(&frames[k], &mut b).unwrap(), 80);
            assert_eq!(a[..80], b[..80]);
            heard.extend_from_slice(&a[..80]);
        }
        let (lag, r) = best_correlation(&pcm, &heard, 160);
        println!("10 ms Opus through the packetizer: r {r:.3} at lag {lag}");
        assert!(r >= 0.9, "r {r}");
    }

    /// The ptime changes mid-stream (a re-INVITE): 20 → 30 → 20 → 60 → 10
    /// → 40 ms G.711. Every packet after a change has the new size, each
    /// timestamp step is the previous packet's length (no gap, no jump),
    /// and the bytes come out once each, in order, with nothing held back
    /// but what a packet still waits for.
    #[test]
    fn g711_ptime_changes_keep_the_stream_continuous() {
        let mut p = Packetizer::new(Codec::Pcmu, 20);
        let mut s = session(Codec::Pcmu);
        let mut sent = Sent::new();
        let mut byte = 0u32;
        let mut sizes = Vec::new();
        for (ptime, ticks) in [(20u32, 5), (30, 7), (20, 4), (60, 7), (10, 3), (40, 5)] {
            let now = Instant::now();
            let from = sent.len();
            p.set_ptime(ptime, |payload, samples| {
                let mut out = [0u8; 1500];
                let len = s.write_audio(now, payload, samples, &mut out).unwrap();
                let (h, body) = header::parse(&out[..len]).unwrap();
                sent.push((h.timestamp, body.to_vec()));
            });
            for _ in 0..ticks {
                let frame: Vec<u8> = (0..160)
                    .map(|_| {
                        byte += 1;
                        (byte % 251) as u8
                    })
                    .collect();
                push_rtp(&mut p, &mut s, &frame, &mut sent);
            }
            sizes.push((
                ptime,
                sent[from..]
                    .iter()
                    .map(|(_, b)| b.len())
                    .collect::<Vec<_>>(),
            ));
        }
        for (ptime, got) in &sizes {
            assert!(
                got.iter().all(|&n| n == *ptime as usize * 8),
                "{ptime} ms: packet sizes {got:?}"
            );
        }
        let mut all = Vec::new();
        for w in sent.windows(2) {
            assert_eq!(w[1].0.wrapping_sub(w[0].0), w[0].1.len() as u32);
        }
        for (_, b) in &sent {
            all.extend_from_slice(b);
        }
        let waiting = p.pending_samples() as usize;
        let expected: Vec<u8> = (1..=byte).map(|i| (i % 251) as u8).collect();
        assert_eq!(all.len() + waiting, expected.len());
        assert_eq!(all, expected[..all.len()]);
    }

    /// Opus ptime changes: 60 → 20 ms with a frame waiting keeps it for
    /// the next packet; 20 → 10 ms takes the ticks' halves; timestamps
    /// continue by each packet's duration throughout.
    #[test]
    fn opus_ptime_changes_keep_the_clock() {
        use crate::media::opus::{encode_prompt_opus_frames, FrameDuration};
        let pcm = speech(1.0);
        let f20 = encode_prompt_opus_frames(&pcm, FrameDuration::Ms20).unwrap();
        let f10 = encode_prompt_opus_frames(&pcm, FrameDuration::Ms10).unwrap();
        let mut p = Packetizer::new(Codec::Opus, 60);
        let mut s = session(Codec::Opus);
        let mut sent = Sent::new();
        for f in &f20[..4] {
            push_rtp(&mut p, &mut s, f, &mut sent);
        }
        assert_eq!(sent.len(), 1);
        assert_eq!(p.pending_samples(), 960);
        p.set_ptime(40, |_, _| panic!("20 ms wait for 40"));
        push_rtp(&mut p, &mut s, &f20[4], &mut sent);
        assert_eq!(duration_samples(&sent[1].1, 48_000), Some(1920));
        p.set_ptime(10, |_, _| panic!("nothing waits"));
        for f in &f10[10..20] {
            push_rtp(&mut p, &mut s, f, &mut sent);
        }
        assert_eq!(sent.len(), 12);
        for w in sent.windows(2) {
            let d = duration_samples(&w[0].1, 48_000).unwrap() as u32;
            assert_eq!(w[1].0.wrapping_sub(w[0].0), d);
        }
        assert!(sent[2..]
            .iter()
            .all(|(_, b)| duration_samples(b, 48_000) == Some(480)));
    }
}
