//! The media core of one call leg: everything the leg does with its media
//! between its packet path and its owner, sans-IO — no socket, thread or
//! clock; `now` and packets in, payloads and events out.
//!
//! It owns:
//! - what the leg hears: the [`Listener`] (jitter buffer → decode or
//!   conceal → in-band DTMF), the RFC 4733 receiver, and the merge that
//!   reports one press heard several ways once ([`DigitMerge`]);
//! - what the leg is sent: the player (prompts, stopped by a key when
//!   interruptible), the keys being sent (RFC 4733 events or tones), and,
//!   when the leg is *joined* to another leg, that leg's audio, encoded in
//!   this leg's codec.
//!
//! What it does not own is how packets come and go: that is the leg's
//! packet path in the worker (`RtpPath` today: ports, RTP session,
//! reflection guard; a PRI B-channel later), which hands it
//! [`Received`] packets and sends the [`Outgoing`] it returns.
//!
//! One 20 ms tick, as the media worker runs it:
//!
//! ```text
//! path.receive(now, &mut core)               // each packet: core.receive(now, Received::…)
//! core.hear(now)                             // one frame out of the listener: heard()
//! listener.hear_joined(source.heard())       // for each join, with the source's new keys:
//! listener.relay_key(k)                      //   k in source.fresh_keys()
//! out = core.next_output()                   // event | prompt | relayed tone | joined audio | silence
//! path.send(now, out); core.end_tick()
//! while let Some(e) = core.poll_event() { sink.emit(e) }
//! ```
//!
//! A join is one-directional: the *listener* hears the *source*. Each tick
//! the source's decoded (or concealed) 8 kHz frame is encoded in the
//! listener's codec — G.711 by table, Opus by an encoder the listener
//! creates once, when it is first joined — so PCMU, PCMA and Opus legs
//! meet in any pair with no resampler. A prompt the listener plays, or a
//! key it sends, takes the place of the joined audio while it lasts. Keys
//! the source hears (RFC 4733, in-band or signalled) are re-sent to the
//! listener: as events when it has telephone-events at its audio's
//! clock, else as tones — except in-band keys, which are in the joined
//! audio already and are not sounded twice. Nothing on this path
//! allocates: the frames are buffers of the core.
//!
//! Opus to a peer that asked for 10 ms packets is made in 10 ms frames,
//! two per tick ([`Outgoing::Halves`]): prompts from their shared 10 ms
//! encoding (or, until a prompt has one, through the leg's encoder — see
//! `player`), silence from one pair encoded per process, tones and joined
//! audio by the leg's encoder, which such a leg has from the start.

mod keys_out;
mod player;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::codec::Codec;
use crate::media::dtmf_merge::DigitMerge;
use crate::media::events::{DigitSource, MediaEvent};
use crate::media::g711;
use crate::media::inband_policy::InbandDtmf;
use crate::media::listener::Listener;
use crate::media::opus::{FrameDuration, OpusConfig, OpusEncoder, OpusError, OpusSampleRate};
use crate::media::prompt::Prompt;
use crate::media::rfc4733;

pub use keys_out::EventPacket;
use keys_out::KeysOut;
use player::{Player, PromptFrame};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// Largest payload sent in one frame (one Opus frame, RFC 6716 §3.4).
pub const MAX_FRAME_BYTES: usize = 1275;
/// Keys remembered between two ticks for relaying (more in one tick are
/// not relayed; one tick holds one at most in practice).
pub const FRESH_KEYS: usize = 4;
/// Events waiting for the worker to pass on (it drains them every tick).
const EVENT_QUEUE: usize = 16;

/// Settings of the Opus encoder of a joined Opus leg (and of a leg sent
/// 10 ms frames): narrowband (the joined audio is 8 kHz), the prompts' bit
/// rate, in-band FEC for a little loss, complexity 5 (libopus's default;
/// the encoder runs every tick, unlike the prompts' which runs once).
const LIVE_OPUS: OpusConfig = OpusConfig {
    sample_rate: OpusSampleRate::Hz8000,
    complexity: 5,
    bitrate: Some(crate::media::opus::PROMPT_BITRATE),
    cbr: false,
    inband_fec: true,
    packet_loss_pct: 5,
    dtx: false,
    max_playback_hz: 8000,
};

/// A packet the path received, as the core needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// Audio in the leg's codec.
    Audio {
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &'a [u8],
    },
    /// An RFC 4733 telephone-event.
    Event {
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &'a [u8],
    },
    /// A packet of the stream that carries no audio (comfort noise rivr
    /// did not negotiate): a pause for the jitter buffer, not loss.
    NotAudio { seq: u16, ssrc: u32 },
}

/// What to send this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// 20 ms of audio in the leg's codec.
    Audio(&'a [u8]),
    /// 20 ms of Opus as two 10 ms packets, each sent on its own (a peer
    /// that asked for 10 ms packets).
    Halves([&'a [u8]; 2]),
    /// A telephone-event packet, in place of audio.
    Event(EventPacket),
}

/// The two 10 ms Opus packets of digital silence sent when nothing plays
/// to a leg sent 10 ms frames, encoded once per process.
pub fn silence_opus_10ms() -> [&'static [u8]; 2] {
    static PAIR: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let pair = PAIR.get_or_init(|| {
        crate::media::opus::encode_prompt_opus_frames(&[0; FRAME], FrameDuration::Ms10)
            .unwrap_or_default()
    });
    let half = |i: usize| pair.get(i).map(Vec::as_slice).unwrap_or_default();
    [half(0), half(1)]
}

/// The Opus frames of a leg in `codec` sent packets of `ptime_ms` (20 ms
/// for G.711, which has no frames of its own).
fn opus_frame(codec: Codec, ptime_ms: u32) -> FrameDuration {
    match codec {
        Codec::Opus => FrameDuration::for_ptime(ptime_ms),
        Codec::Pcmu | Codec::Pcma => FrameDuration::Ms20,
    }
}

/// What a leg in `codec`, sent Opus frames of `opus`, is sent when
/// nothing plays.
fn silence(codec: Codec, opus: FrameDuration) -> Outgoing<'static> {
    match (codec, opus) {
        (Codec::Opus, FrameDuration::Ms10) => Outgoing::Halves(silence_opus_10ms()),
        _ => Outgoing::Audio(silence_frame(codec)),
    }
}

/// The payload sent when nothing plays: G.711 silence codes, or one Opus
/// packet of digital silence encoded once per process.
pub fn silence_frame(codec: Codec) -> &'static [u8] {
    static ULAW: [u8; FRAME] = [0xFF; FRAME];
    static ALAW: [u8; FRAME] = [0xD5; FRAME];
    static OPUS: OnceLock<Vec<u8>> = OnceLock::new();
    match codec {
        Codec::Pcmu => &ULAW,
        Codec::Pcma => &ALAW,
        Codec::Opus => OPUS.get_or_init(|| {
            crate::media::opus::encode_prompt_opus(&[0; FRAME])
                .ok()
                .and_then(|mut p| p.pop())
                .unwrap_or_default()
        }),
    }
}

/// One leg's media; see the module doc.
pub struct MediaCore {
    codec: Codec,
    /// Telephone-events may be sent: negotiated at the audio's clock.
    telephone_events: bool,
    listener: Listener,
    rfc4733: rfc4733::Receiver,
    merge: DigitMerge,
    player: Player,
    keys_out: KeysOut,
    /// Opus frames sent: 10 ms when the peer asked for 10 ms packets.
    opus_frame: FrameDuration,
    silence: Outgoing<'static>,
    /// Joined to a source: its audio this tick.
    joined: bool,
    joined_pcm: [i16; FRAME],
    /// A relayed key's tones (or a prompt's PCM for the encoder) this tick.
    tone_pcm: [i16; FRAME],
    /// Created when an Opus leg is first joined, or with a leg sent 10 ms
    /// frames; kept for the call.
    opus: Option<Box<OpusOut>>,
    /// This tick's encoded G.711 frame (an Opus leg's are in `opus`: a
    /// G.711 call does not carry room for the largest Opus frames).
    g711_out: [u8; FRAME],
    /// Keys reported since the last `end_tick`, for legs joined to this one.
    fresh: [(char, DigitSource); FRESH_KEYS],
    fresh_len: usize,
    events: VecDeque<MediaEvent>,
    /// Whether the listener's in-band detector runs, given
    /// `telephone_events` (`Always` until told otherwise).
    inband: InbandDtmf,
}

impl MediaCore {
    /// A leg in `codec` sent packets of `ptime_ms`; `telephone_events`
    /// when RFC 4733 events may be sent to it (negotiated at the audio's
    /// clock rate). An Opus leg sent 10 ms packets gets its encoder here
    /// (if libopus refuses, what it would encode is sent as silence, and
    /// this is logged).
    pub fn new(codec: Codec, telephone_events: bool, ptime_ms: u32) -> MediaCore {
        let opus_frame = opus_frame(codec, ptime_ms);
        let mut core = MediaCore {
            codec,
            telephone_events,
            listener: Listener::new(codec),
            rfc4733: rfc4733::Receiver::new(),
            merge: DigitMerge::new(),
            player: Player::default(),
            keys_out: KeysOut::new(),
            opus_frame,
            silence: silence(codec, opus_frame),
            joined: false,
            joined_pcm: [0; FRAME],
            tone_pcm: [0; FRAME],
            opus: None,
            g711_out: [0; FRAME],
            fresh: [('\0', DigitSource::Simulated); FRESH_KEYS],
            fresh_len: 0,
            events: VecDeque::with_capacity(EVENT_QUEUE),
            inband: InbandDtmf::Always,
        };
        if let Err(e) = core.ensure_encoder() {
            tracing::error!(error = %e, "cannot create the Opus encoder of a leg sent 10 ms frames");
        }
        core
    }

    /// The negotiated media changed (an answer that came late): the
    /// listener starts over in the new codec; plays, keys and joins go on.
    pub fn reconfigure(
        &mut self,
        codec: Codec,
        telephone_events: bool,
        ptime_ms: u32,
    ) -> Result<(), OpusError> {
        self.codec = codec;
        self.telephone_events = telephone_events;
        self.listener = Listener::new(codec);
        self.listener.set_inband(self.inband.runs(telephone_events));
        self.set_ptime(ptime_ms)
    }

    /// When the in-band DTMF detector runs (`[media] inband_dtmf`); kept
    /// across `reconfigure`.
    pub fn set_inband_policy(&mut self, policy: InbandDtmf) {
        self.inband = policy;
        self.listener.set_inband(policy.runs(self.telephone_events));
    }

    /// The peer asked for another packet time (a re-INVITE): Opus goes in
    /// 10 ms frames from the next tick when it is under 20 ms, else in
    /// 20 ms frames (the packet path packs them). The encoder, if any,
    /// goes on: the stream continues.
    pub fn set_ptime(&mut self, ptime_ms: u32) -> Result<(), OpusError> {
        self.opus_frame = opus_frame(self.codec, ptime_ms);
        self.silence = silence(self.codec, self.opus_frame);
        self.ensure_encoder()
    }

    /// The Opus frames the leg is sent (20 ms for G.711).
    pub fn opus_frame(&self) -> FrameDuration {
        self.opus_frame
    }

    /// Whether the leg plays prompts in 10 ms Opus frames.
    fn wants_opus_10ms(&self) -> bool {
        self.opus_frame == FrameDuration::Ms10
    }

    /// Calls `prepare` with each prompt of the play running that the leg
    /// needs in 10 ms Opus frames and that nobody asked for yet
    /// ([`Prompt::request_opus_10ms`]): the owner has them encoded off the
    /// tick. Nothing for other legs.
    pub fn request_opus_10ms(&self, mut prepare: impl FnMut(&Arc<Prompt>)) {
        if !self.wants_opus_10ms() {
            return;
        }
        for p in self.player.prompts() {
            if p.request_opus_10ms() {
                prepare(p);
            }
        }
    }

    /// The leg's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The listener (jitter statistics).
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// A packet the path received at `now`.
    pub fn receive(&mut self, now: Instant, packet: Received<'_>) {
        match packet {
            Received::Audio {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            } => {
                let _ = self
                    .listener
                    .push(now, seq, timestamp, ssrc, marker, payload);
            }
            Received::Event {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            } => {
                // An event on the audio's SSRC takes a sequence number the
                // audio would otherwise have: a pause, not loss.
                self.listener.push_not_audio(seq, ssrc);
                if let Some(e) = self
                    .rfc4733
                    .handle(now, ssrc, seq, timestamp, marker, payload)
                {
                    self.key(now, e.digit, DigitSource::Rfc4733);
                }
            }
            Received::NotAudio { seq, ssrc } => self.listener.push_not_audio(seq, ssrc),
        }
    }

    /// A key: reported once however many ways it came, remembered for
    /// relaying, and stopping an interruptible play on this tick.
    pub fn key(&mut self, now: Instant, digit: char, source: DigitSource) {
        if !self.merge.accept(now, digit, source) {
            tracing::debug!(%digit, ?source, "key already reported by the other source");
            return;
        }
        tracing::debug!(%digit, ?source, "key");
        self.events.push_back(MediaEvent::Digit { digit, source });
        if let Some(slot) = self.fresh.get_mut(self.fresh_len) {
            *slot = (digit, source);
            self.fresh_len += 1;
        }
        self.player.key(&mut self.events);
    }

    /// Plays one frame out of the listener (once per tick): what the leg
    /// heard is [`MediaCore::heard`] until the next call.
    pub fn hear(&mut self, now: Instant) {
        if let Some(d) = self.listener.tick(now) {
            self.key(now, d, DigitSource::InBand);
        }
    }

    /// What the leg heard this tick, 8 kHz.
    pub fn heard(&self) -> &[i16; FRAME] {
        self.listener.frame()
    }

    /// Keys reported since the last [`MediaCore::end_tick`], with how each
    /// came.
    pub fn fresh_keys(&self) -> &[(char, DigitSource)] {
        self.fresh.get(..self.fresh_len).unwrap_or_default()
    }

    /// The tick is over: keys already relayed are forgotten.
    pub fn end_tick(&mut self) {
        self.fresh_len = 0;
    }

    /// Starts hearing a source (the worker keeps which): an Opus leg gets
    /// its encoder here, once.
    pub fn join(&mut self) -> Result<(), OpusError> {
        self.joined = true;
        self.joined_pcm.fill(0);
        self.ensure_encoder().inspect_err(|_| self.joined = false)
    }

    /// Stops hearing the source.
    pub fn leave(&mut self) {
        self.joined = false;
    }

    /// Whether the leg hears a source.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// An Opus leg that encodes (joined, or sent 10 ms frames) has its
    /// encoder.
    fn ensure_encoder(&mut self) -> Result<(), OpusError> {
        let needed = self.joined || self.opus_frame == FrameDuration::Ms10;
        if self.codec == Codec::Opus && needed && self.opus.is_none() {
            self.opus = Some(Box::new(OpusOut {
                encoder: OpusEncoder::new(LIVE_OPUS)?,
                frames: [[0; MAX_FRAME_BYTES]; 2],
            }));
        }
        Ok(())
    }

    /// The source's audio for this tick.
    pub fn hear_joined(&mut self, pcm: &[i16; FRAME]) {
        self.joined_pcm = *pcm;
    }

    /// A key the source heard, to re-send to this leg's peer. A key heard
    /// in-band is in the joined audio already: it is re-sent only as an
    /// event, never sounded a second time.
    pub fn relay_key(&mut self, digit: char, source: DigitSource) {
        if self.telephone_events || source != DigitSource::InBand {
            self.keys_out.relay(digit, self.telephone_events);
        }
    }

    /// Plays `prompts` in order (a play still running ends interrupted).
    pub fn play(&mut self, id: u64, prompts: Vec<Arc<Prompt>>, interruptible: bool) {
        self.player
            .play(id, prompts, interruptible, &mut self.events);
    }

    /// Stops the play `id`, if it is the one running.
    pub fn stop_play(&mut self, id: u64) {
        self.player.stop(id, &mut self.events);
    }

    /// Sends the owner's `keys` as telephone-events; answered with
    /// `DigitsSent` (`as_events: false` at once when the leg has none).
    pub fn send_digits(&mut self, id: u64, keys: &str) {
        self.keys_out
            .send(id, keys, self.telephone_events, &mut self.events);
    }

    /// What to send this tick, in order: a telephone-event packet of a key
    /// being sent, a prompt frame, a relayed key's tones, the joined
    /// source's audio, silence. The play, keys and tones advance only when
    /// this is called (a path that holds media does not call it).
    pub fn next_output(&mut self) -> Outgoing<'_> {
        if let Some(event) = self
            .keys_out
            .next_event(self.codec.clock_rate(), &mut self.events)
        {
            return Outgoing::Event(event);
        }
        let pcm = if self.player.advance(&mut self.events) {
            match self.player.next_frame(self.codec, self.opus_frame) {
                Some(PromptFrame::Whole(f)) => return Outgoing::Audio(f),
                Some(PromptFrame::Halves(h)) => return Outgoing::Halves(h),
                Some(PromptFrame::Pcm(pcm)) => {
                    let (head, tail) = self.tone_pcm.split_at_mut(pcm.len().min(FRAME));
                    head.copy_from_slice(pcm.get(..head.len()).unwrap_or_default());
                    tail.fill(0);
                    &self.tone_pcm
                }
                None => return self.silence,
            }
        } else if self.keys_out.next_tone(&mut self.tone_pcm) {
            &self.tone_pcm
        } else if self.joined {
            &self.joined_pcm
        } else {
            return self.silence;
        };
        let opus = self.opus.as_deref_mut();
        encode(self.codec, self.opus_frame, opus, pcm, &mut self.g711_out).unwrap_or(self.silence)
    }

    /// The next event for the owner.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }
}

/// An encoding Opus leg's encoder and this tick's frame (or two 10 ms ones).
struct OpusOut {
    encoder: OpusEncoder,
    frames: [[u8; MAX_FRAME_BYTES]; 2],
}

/// One 8 kHz frame in `codec` (Opus in frames of `frame`), into `g711_out`
/// or the Opus side's frames.
fn encode<'a>(
    codec: Codec,
    frame: FrameDuration,
    opus: Option<&'a mut OpusOut>,
    pcm: &[i16; FRAME],
    g711_out: &'a mut [u8; FRAME],
) -> Option<Outgoing<'a>> {
    if let Some(law) = codec.g711_law() {
        g711::encode(law, pcm, g711_out);
        return Some(Outgoing::Audio(g711_out));
    }
    let OpusOut { encoder, frames } = opus?;
    let [first, second] = frames;
    match frame {
        FrameDuration::Ms20 => {
            let n = encoder.encode(pcm, first).ok()?;
            first.get(..n).map(Outgoing::Audio)
        }
        FrameDuration::Ms10 => {
            let (a, b) = pcm.split_at(FRAME / 2);
            let n = encoder.encode_frame(a, frame, first).ok()?;
            let m = encoder.encode_frame(b, frame, second).ok()?;
            Some(Outgoing::Halves([first.get(..n)?, second.get(..m)?]))
        }
    }
}
