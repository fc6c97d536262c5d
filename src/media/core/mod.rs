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
use crate::media::listener::Listener;
use crate::media::opus::{OpusConfig, OpusEncoder, OpusError, OpusSampleRate};
use crate::media::prompt::Prompt;
use crate::media::rfc4733;

pub use keys_out::EventPacket;
use keys_out::KeysOut;
use player::Player;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// Largest payload sent in one frame (one Opus frame, RFC 6716 §3.4).
pub const MAX_FRAME_BYTES: usize = 1275;
/// Keys remembered between two ticks for relaying (more in one tick are
/// not relayed; one tick holds one at most in practice).
pub const FRESH_KEYS: usize = 4;
/// Events waiting for the worker to pass on (it drains them every tick).
const EVENT_QUEUE: usize = 16;

/// Settings of the Opus encoder of a joined Opus leg: narrowband (the
/// joined audio is 8 kHz), the prompts' bit rate, in-band FEC for a
/// little loss, complexity 5 (libopus's default; the encoder runs every
/// tick, unlike the prompts' which runs once).
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
    /// A telephone-event packet, in place of audio.
    Event(EventPacket),
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
    silence: &'static [u8],
    /// Joined to a source: its audio this tick.
    joined: bool,
    joined_pcm: [i16; FRAME],
    /// A relayed key's tones this tick.
    tone_pcm: [i16; FRAME],
    /// Created when an Opus leg is first joined; kept for the call.
    opus: Option<Box<OpusEncoder>>,
    /// This tick's encoded frame.
    out: [u8; MAX_FRAME_BYTES],
    /// Keys reported since the last `end_tick`, for legs joined to this one.
    fresh: [(char, DigitSource); FRESH_KEYS],
    fresh_len: usize,
    events: VecDeque<MediaEvent>,
}

impl MediaCore {
    /// A leg in `codec`; `telephone_events` when RFC 4733 events may be
    /// sent to it (negotiated at the audio's clock rate).
    pub fn new(codec: Codec, telephone_events: bool) -> MediaCore {
        MediaCore {
            codec,
            telephone_events,
            listener: Listener::new(codec),
            rfc4733: rfc4733::Receiver::new(),
            merge: DigitMerge::new(),
            player: Player::default(),
            keys_out: KeysOut::new(),
            silence: silence_frame(codec),
            joined: false,
            joined_pcm: [0; FRAME],
            tone_pcm: [0; FRAME],
            opus: None,
            out: [0; MAX_FRAME_BYTES],
            fresh: [('\0', DigitSource::Simulated); FRESH_KEYS],
            fresh_len: 0,
            events: VecDeque::with_capacity(EVENT_QUEUE),
        }
    }

    /// The negotiated media changed (an answer that came late): the
    /// listener starts over in the new codec; plays, keys and joins go on.
    pub fn reconfigure(&mut self, codec: Codec, telephone_events: bool) -> Result<(), OpusError> {
        self.codec = codec;
        self.telephone_events = telephone_events;
        self.listener = Listener::new(codec);
        self.silence = silence_frame(codec);
        if self.joined {
            self.ensure_encoder()?;
        }
        Ok(())
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
        self.ensure_encoder()?;
        self.joined = true;
        self.joined_pcm.fill(0);
        Ok(())
    }

    /// Stops hearing the source.
    pub fn leave(&mut self) {
        self.joined = false;
    }

    /// Whether the leg hears a source.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    fn ensure_encoder(&mut self) -> Result<(), OpusError> {
        if self.codec == Codec::Opus && self.opus.is_none() {
            self.opus = Some(Box::new(OpusEncoder::new(LIVE_OPUS)?));
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
        if self.player.advance(&mut self.events) {
            let frame = self.player.next_frame(self.codec);
            return Outgoing::Audio(frame.unwrap_or(self.silence));
        }
        let pcm = if self.keys_out.next_tone(&mut self.tone_pcm) {
            &self.tone_pcm
        } else if self.joined {
            &self.joined_pcm
        } else {
            return Outgoing::Audio(self.silence);
        };
        let encoded = encode(self.codec, self.opus.as_deref_mut(), pcm, &mut self.out);
        Outgoing::Audio(encoded.unwrap_or(self.silence))
    }

    /// The next event for the owner.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }
}

/// One 8 kHz frame in `codec`, into `out`.
fn encode<'a>(
    codec: Codec,
    opus: Option<&mut OpusEncoder>,
    pcm: &[i16; FRAME],
    out: &'a mut [u8; MAX_FRAME_BYTES],
) -> Option<&'a [u8]> {
    match codec.g711_law() {
        Some(law) => {
            let dest = out.get_mut(..FRAME)?;
            g711::encode(law, pcm, dest);
            Some(dest)
        }
        None => {
            let n = opus?.encode(pcm, out).ok()?;
            out.get(..n)
        }
    }
}
