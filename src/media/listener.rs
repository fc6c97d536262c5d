//! What a call hears from the caller, one 20 ms frame per tick: the
//! jitter buffer, then decode or conceal (G.711 with the Appendix I-style
//! PLC, Opus with libopus FEC or PLC), then in-band DTMF detection. Delay
//! the path does not need is given back by dropping quiet decoded frames.
//! Sans-IO: packets and `now` in, keys out; the media worker owns the
//! sockets and the tick.

use std::time::Instant;

use crate::codec::Codec;
use crate::media::dtmf_detect::DtmfDetector;
use crate::media::g711::{self, Law};
use crate::media::jitter::{
    is_quiet_frame, JitterBuffer, JitterConfig, JitterStats, Playout, PushResult,
};
use crate::media::opus::{OpusDecoder, OpusSampleRate};
use crate::media::plc::Plc;

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

    fn frame(&mut self, payload: &[u8], pcm: &mut [i16; 160]) {
        match self {
            Decoder::G711 { law, plc } => {
                let n = payload.len().min(pcm.len());
                g711::decode(*law, &payload[..n], &mut pcm[..n]);
                pcm[n..].fill(0);
                plc.good_frame(pcm);
            }
            // A packet longer than 20 ms does not fit a tick: rivr's SDP
            // asks for ptime 20 (RFC 7587 §6.1), so such a packet is treated
            // as lost and concealed.
            Decoder::Opus(d) => {
                if d.decode(payload, pcm).is_err() {
                    let _ = d.conceal(pcm);
                }
            }
        }
    }

    fn conceal(&mut self, next: Option<&[u8]>, pcm: &mut [i16; 160]) {
        match self {
            Decoder::G711 { plc, .. } => plc.conceal(pcm),
            Decoder::Opus(d) => {
                let rebuilt = next
                    .filter(|p| OpusDecoder::has_fec(p))
                    .is_some_and(|p| d.decode_fec(p, pcm).is_ok());
                if !rebuilt && d.conceal(pcm).is_err() {
                    pcm.fill(0);
                }
            }
        }
    }
}

/// What a call hears from the caller: jitter buffer → decode (or conceal)
/// → in-band DTMF detection, one frame per tick.
pub struct Listener {
    jitter: JitterBuffer,
    decoder: Decoder,
    inband: DtmfDetector,
    pcm: [i16; 160],
}

impl Listener {
    /// A listener for a call in `codec`.
    pub fn new(codec: Codec) -> Self {
        let jitter = JitterConfig {
            // Delay the path does not need is given back in pauses, where
            // a dropped frame is not heard, rather than in speech.
            quiet_drops: true,
            ..match codec {
                Codec::Opus => JitterConfig::opus_20ms(),
                Codec::Pcmu | Codec::Pcma => JitterConfig::g711_20ms(),
            }
        };
        Listener {
            jitter: JitterBuffer::new(jitter),
            decoder: Decoder::new(codec),
            inband: DtmfDetector::new(),
            pcm: [0; 160],
        }
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
        self.jitter.push(now, seq, timestamp, ssrc, marker, payload)
    }

    /// A packet of the stream without audio (see
    /// [`JitterBuffer::push_not_audio`]).
    pub fn push_not_audio(&mut self, seq: u16, ssrc: u32) {
        self.jitter.push_not_audio(seq, ssrc);
    }

    /// The frame the last [`Listener::tick`] played out: decoded,
    /// concealed or silent, 8 kHz (what a leg joined to this call hears).
    pub fn frame(&self) -> &[i16; 160] {
        &self.pcm
    }

    /// The jitter buffer's counters.
    pub fn jitter_stats(&self) -> &JitterStats {
        self.jitter.stats()
    }

    /// Plays out one frame (call once per 20 ms tick); returns a key the
    /// in-band detector confirmed.
    pub fn tick(&mut self, now: Instant) -> Option<char> {
        let mut decision = self.jitter.pop(now);
        let mut dropped = false;
        let concealed = loop {
            let decoded = matches!(decision, Playout::Frame { .. });
            let concealed = matches!(decision, Playout::Conceal { .. });
            match decision {
                Playout::Frame { payload, .. } => self.decoder.frame(payload, &mut self.pcm),
                Playout::Conceal { next, .. } => self.decoder.conceal(next, &mut self.pcm),
                Playout::Silence => self.pcm.fill(0),
            }
            // At most one quiet frame per tick is dropped unheard; the one
            // after it plays in its place.
            if decoded && !dropped && self.jitter.wants_shrink() && is_quiet_frame(&self.pcm) {
                dropped = true;
                decision = self.jitter.pop_instead(now);
                continue;
            }
            break concealed;
        };
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
