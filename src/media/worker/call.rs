//! One call as a media worker serves it: its sockets, RTP session, DTMF
//! receiver and listener, what it is playing, and the reflection guard
//! ([`SendGate`]) that decides whether anything may be sent to the peer.
//! The worker calls [`MediaCall::receive`] and [`MediaCall::send`] once
//! per tick; neither allocates nor locks.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::codec::Codec;
use crate::media::dtmf_merge::DigitMerge;
use crate::media::events::{DigitSource, MediaEvent, MediaEventSink};
use crate::media::listener::Listener;
use crate::media::ports::{PortAllocator, PortPair};
use crate::media::prompt::Prompt;
use crate::media::rfc4733;
use crate::media::rtp_session::{Inbound, RtpSession};
use crate::media::send_gate::{Flow, SendGate};

/// Largest payload sent in one frame (one Opus frame, RFC 6716 §3.4).
const MAX_FRAME_BYTES: usize = 1275;

/// Length of each key sent as telephone-events, and the audio between two.
const SENT_KEY_MS: u32 = 100;
const SENT_KEY_GAP_TICKS: u8 = 4;
/// Volume of sent events, −dBm0.
const SENT_KEY_VOLUME: u8 = 10;

pub(super) struct Playback {
    pub id: u64,
    pub prompts: Vec<Arc<Prompt>>,
    pub prompt: usize,
    pub frame: usize,
    pub interruptible: bool,
}

/// Keys being sent as RFC 4733 events: one 20 ms event packet per tick in
/// place of audio while a key is down, audio in the gaps.
pub(super) struct DigitsOut {
    pub id: u64,
    pub keys: std::collections::VecDeque<char>,
    pub current: Option<rfc4733::Sender>,
    pub gap_ticks: u8,
}

/// The payload sent when nothing plays: G.711 silence codes, or one Opus
/// packet of digital silence encoded once per process.
pub(super) fn silence_frame(codec: Codec) -> &'static [u8] {
    static ULAW: [u8; 160] = [0xFF; 160];
    static ALAW: [u8; 160] = [0xD5; 160];
    static OPUS: OnceLock<Vec<u8>> = OnceLock::new();
    match codec {
        Codec::Pcmu => &ULAW,
        Codec::Pcma => &ALAW,
        Codec::Opus => OPUS.get_or_init(|| {
            crate::media::opus::encode_prompt_opus(&[0; 160])
                .ok()
                .and_then(|mut p| p.pop())
                .unwrap_or_default()
        }),
    }
}

pub(super) struct MediaCall {
    pub ports: PortPair,
    pub session: RtpSession,
    pub dtmf: rfc4733::Receiver,
    pub listener: Listener,
    pub merge: DigitMerge,
    pub codec: Codec,
    pub events: Box<dyn MediaEventSink>,
    pub allocator: Arc<PortAllocator>,
    pub sending: bool,
    /// The peer holds the call (sendonly/inactive): nothing is sent, the
    /// media clock runs on.
    pub held: bool,
    pub configured: bool,
    pub gate: SendGate,
    pub playback: Option<Playback>,
    pub silence: &'static [u8],
    pub digits_out: Option<DigitsOut>,
    /// Test hook: panic on the next tick.
    #[cfg(test)]
    pub panic_on_tick: bool,
}

impl Drop for MediaCall {
    fn drop(&mut self) {
        self.allocator.release(self.ports.port);
    }
}

impl MediaCall {
    pub fn on_digit(&mut self, now: Instant, digit: char, source: DigitSource) {
        if !self.merge.accept(now, digit, source) {
            tracing::debug!(%digit, ?source, "key already reported by the other source");
            return;
        }
        tracing::debug!(%digit, ?source, "key");
        self.events.emit(MediaEvent::Digit { digit, source });
        if self.playback.as_ref().is_some_and(|p| p.interruptible) {
            if let Some(p) = self.playback.take() {
                self.events.emit(MediaEvent::PlayDone {
                    id: p.id,
                    interrupted: true,
                });
            }
        }
    }

    /// Drains both sockets.
    pub fn receive(&mut self, now: Instant, buf: &mut [u8]) {
        #[cfg(test)]
        if std::mem::take(&mut self.panic_on_tick) {
            panic!("injected panic while serving a call");
        }
        while let Ok((n, from)) = self.ports.rtp.recv_from(buf) {
            let Some(datagram) = buf.get(..n) else { break };
            // The time the packet is read. Sockets are drained once per
            // tick, so a packet is seen up to one tick after it arrived; a
            // path whose packets land near a tick boundary shows up to
            // 20 ms of extra jitter, which the buffer's target then covers.
            let now = Instant::now();
            let codec_pt = self.session.config().payload_type;
            let inbound = self.session.handle_rtp(now, from, datagram);
            if !matches!(inbound, Inbound::Dropped(_)) {
                // Latching accepted it: it came from where media is sent.
                self.gate.peer_heard(now);
            }
            let digit = match inbound {
                Inbound::TelephoneEvent {
                    seq,
                    timestamp,
                    ssrc,
                    marker,
                    payload,
                } => {
                    // An event on the audio's SSRC takes a sequence number
                    // the audio would otherwise have: a pause, not loss.
                    self.listener.push_not_audio(seq, ssrc);
                    self.dtmf
                        .handle(now, ssrc, seq, timestamp, marker, payload)
                        .map(|e| e.digit)
                }
                Inbound::Audio {
                    payload_type,
                    seq,
                    timestamp,
                    ssrc,
                    marker,
                    payload,
                } if payload_type == codec_pt => {
                    let _ = self
                        .listener
                        .push(now, seq, timestamp, ssrc, marker, payload);
                    None
                }
                Inbound::OtherPayload { seq, ssrc, .. } => {
                    self.listener.push_not_audio(seq, ssrc);
                    None
                }
                Inbound::Audio { .. } | Inbound::Dropped(_) => None,
            };
            if let Some(d) = digit {
                self.on_digit(now, d, DigitSource::Rfc4733);
            }
        }
        while let Ok((n, from)) = self.ports.rtcp.recv_from(buf) {
            if let Some(d) = buf.get(..n) {
                self.session.handle_rtcp(now, from, d);
            }
        }
        if let Some(d) = self.listener.tick(now) {
            self.on_digit(now, d, DigitSource::InBand);
        }
    }

    /// The next 20 ms of audio to send.
    fn next_frame(&mut self) -> &[u8] {
        let mut finished = None;
        if let Some(p) = self.playback.as_mut() {
            loop {
                let Some(prompt) = p.prompts.get(p.prompt) else {
                    finished = Some(p.id);
                    break;
                };
                if p.frame < prompt.frame_count() {
                    break;
                }
                p.prompt += 1;
                p.frame = 0;
            }
        }
        if let Some(id) = finished {
            self.playback = None;
            self.events.emit(MediaEvent::PlayDone {
                id,
                interrupted: false,
            });
        }
        match self.playback.as_mut() {
            Some(p) => {
                let frame = p
                    .prompts
                    .get(p.prompt)
                    .and_then(|pr| pr.frame(self.codec, p.frame));
                p.frame += 1;
                frame.unwrap_or(self.silence)
            }
            None => self.silence,
        }
    }

    /// The next telephone-event packet of the keys being sent, written to
    /// `out` in place of this tick's audio; `None` to send audio.
    fn next_event_packet(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let d = self.digits_out.as_mut()?;
        loop {
            if let Some(sender) = d.current.as_mut() {
                let mut payload = [0u8; 4];
                if let Some((len, marker)) = sender.next_payload(&mut payload) {
                    let ts = sender.timestamp();
                    return self
                        .session
                        .write_event(now, payload.get(..len)?, ts, marker, out);
                }
                d.current = None;
                d.gap_ticks = SENT_KEY_GAP_TICKS;
            }
            if d.gap_ticks > 0 {
                d.gap_ticks -= 1;
                return None;
            }
            let Some(key) = d.keys.pop_front() else {
                self.events.emit(MediaEvent::DigitsSent {
                    id: d.id,
                    as_events: true,
                });
                self.digits_out = None;
                return None;
            };
            let clock = self.session.config().clock_rate;
            let start = self.session.next_timestamp();
            d.current = rfc4733::Sender::new(key, SENT_KEY_MS, SENT_KEY_VOLUME, start, clock).ok();
        }
    }

    /// This tick's frame and any RTCP due, as the reflection guard allows
    /// ([`Flow`]): sent; held (nothing advances — the prompt waits for the
    /// peer); or muted (the media clock runs — prompts advance, keys go by —
    /// and nothing leaves the socket).
    pub fn send(&mut self, now: Instant, out: &mut [u8]) {
        let flow = self.gate.flow(now);
        let open = flow == Flow::Send && !self.held;
        if self.sending && self.configured && flow == Flow::Hold {
            // RTP time still follows real time, so the peer's jitter buffer
            // sees a pause, not late packets, when media resumes.
            self.session.skip_audio(self.codec.timestamp_step_20ms());
        } else if self.sending && self.configured {
            if let Some(n) = self.next_event_packet(now, out) {
                if let Some(pkt) = out.get(..n).filter(|_| open) {
                    let _ = self.ports.rtp.send_to(pkt, self.session.remote_rtp());
                }
                return self.send_rtcp(now, out, open);
            }
            let step = self.codec.timestamp_step_20ms();
            let mut payload = [0u8; MAX_FRAME_BYTES];
            let frame = self.next_frame();
            let len = frame.len().min(payload.len());
            payload[..len].copy_from_slice(&frame[..len]);
            if !open {
                self.session.skip_audio(step);
            } else if let Some(n) = self.session.write_audio(now, &payload[..len], step, out) {
                if let Some(pkt) = out.get(..n) {
                    let _ = self.ports.rtp.send_to(pkt, self.session.remote_rtp());
                }
            }
        }
        self.send_rtcp(now, out, open);
    }

    fn send_rtcp(&mut self, now: Instant, out: &mut [u8], open: bool) {
        // A report due while the gate is shut waits for it to open.
        if open && self.session.poll_timeout().is_some_and(|t| t <= now) {
            if let Some(n) = self.session.poll_rtcp(now, out) {
                if let Some(pkt) = out.get(..n) {
                    let _ = self.ports.rtcp.send_to(pkt, self.session.remote_rtcp());
                }
            }
        }
    }

    /// The call ended: RTCP BYE, if the peer may be sent to at all.
    pub fn close(&mut self, now: Instant, out: &mut [u8]) {
        if !self.gate.may_send(now) {
            return;
        }
        if let Some(n) = self.session.write_bye(out) {
            if let Some(pkt) = out.get(..n) {
                let _ = self.ports.rtcp.send_to(pkt, self.session.remote_rtcp());
            }
        }
    }
}
