//! Media workers: a few OS threads, each serving many calls on one fixed
//! 20 ms tick — drain every call's sockets, run the RTP session and the
//! DTMF receiver, then send each call its next frame (a slice of a
//! pre-encoded prompt, or silence). One wake-up serves hundreds of calls;
//! nothing on this path allocates or takes a lock per packet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::call::control::{CallEvent, DigitSource};
use crate::media::codec::Codec;
use crate::media::dtmf_merge::DigitMerge;
use crate::media::listener::Listener;
use crate::media::ports::{PortAllocator, PortPair};
use crate::media::prompt::Prompt;
use crate::media::rfc4733;
use crate::media::rtp_session::{Inbound, RtpSession, RtpSessionConfig};
use crate::sip::endpoint::CallRef;

/// One frame period.
pub const TICK: Duration = Duration::from_millis(20);
/// How far behind the worker may fall before it drops the backlog.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);
/// Largest payload sent in one frame (one Opus frame, RFC 6716 §3.4).
const MAX_FRAME_BYTES: usize = 1275;

/// Everything a worker needs to take a call.
pub struct MediaCallSetup {
    pub call: CallRef,
    pub ports: PortPair,
    pub session: RtpSessionConfig,
    pub codec: Codec,
    /// False until the remote address is known (see `Configure`).
    pub configured: bool,
    pub events: Sender<CallEvent>,
    pub allocator: Arc<PortAllocator>,
}

pub enum MediaCommand {
    Add(Box<MediaCallSetup>),
    /// Start sending RTP (answer or early media).
    Start {
        call: CallRef,
    },
    /// The negotiated media, when it was not known at `Add` (an INVITE
    /// without SDP gets its answer in the ACK).
    Configure {
        call: CallRef,
        session: RtpSessionConfig,
        codec: Codec,
    },
    /// Send keys as RFC 4733 telephone-events (answered with
    /// `CallEvent::DigitsSent`).
    SendDigits {
        call: CallRef,
        id: u64,
        keys: String,
    },
    /// A key press that came by signalling (SIP INFO).
    Digit {
        call: CallRef,
        digit: char,
        source: DigitSource,
    },
    /// A new remote address from SDP (answer in the ACK, re-INVITE).
    SetRemote {
        call: CallRef,
        rtp: SocketAddr,
        rtcp: SocketAddr,
    },
    Play {
        call: CallRef,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    },
    StopPlay {
        call: CallRef,
        id: u64,
    },
    /// The call ended: send RTCP BYE, close the sockets, free the ports.
    Remove {
        call: CallRef,
    },
    /// Ends the worker thread.
    Shutdown,
}

struct Playback {
    id: u64,
    prompts: Vec<Arc<Prompt>>,
    prompt: usize,
    frame: usize,
    interruptible: bool,
}

/// The payload sent when nothing plays: G.711 silence codes, or one Opus
/// packet of digital silence encoded once per process.
fn silence_frame(codec: Codec) -> &'static [u8] {
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

struct MediaCall {
    ports: PortPair,
    session: RtpSession,
    dtmf: rfc4733::Receiver,
    listener: Listener,
    merge: DigitMerge,
    codec: Codec,
    events: Sender<CallEvent>,
    allocator: Arc<PortAllocator>,
    sending: bool,
    configured: bool,
    playback: Option<Playback>,
    silence: &'static [u8],
    digits_out: Option<DigitsOut>,
}

/// Length of each key sent as telephone-events, and the audio between two.
const SENT_KEY_MS: u32 = 100;
const SENT_KEY_GAP_TICKS: u8 = 4;
/// Volume of sent events, −dBm0.
const SENT_KEY_VOLUME: u8 = 10;

/// Keys being sent as RFC 4733 events: one 20 ms event packet per tick in
/// place of audio while a key is down, audio in the gaps.
struct DigitsOut {
    id: u64,
    keys: std::collections::VecDeque<char>,
    current: Option<rfc4733::Sender>,
    gap_ticks: u8,
}

impl Drop for MediaCall {
    fn drop(&mut self) {
        self.allocator.release(self.ports.port);
    }
}

impl MediaCall {
    fn on_digit(&mut self, now: Instant, digit: char, source: DigitSource) {
        if !self.merge.accept(now, digit, source) {
            tracing::debug!(%digit, ?source, "key already reported by the other source");
            return;
        }
        tracing::debug!(%digit, ?source, "key");
        let _ = self.events.send(CallEvent::Digit { digit, source });
        if self.playback.as_ref().is_some_and(|p| p.interruptible) {
            if let Some(p) = self.playback.take() {
                let _ = self.events.send(CallEvent::PlayDone {
                    id: p.id,
                    interrupted: true,
                });
            }
        }
    }

    /// Drains both sockets.
    fn receive(&mut self, now: Instant, buf: &mut [u8]) {
        while let Ok((n, from)) = self.ports.rtp.recv_from(buf) {
            let Some(datagram) = buf.get(..n) else { break };
            // The time the packet is read. Sockets are drained once per
            // tick, so a packet is seen up to one tick after it arrived; a
            // path whose packets land near a tick boundary shows up to
            // 20 ms of extra jitter, which the buffer's target then covers.
            let now = Instant::now();
            let codec_pt = self.session.config().payload_type;
            let digit = match self.session.handle_rtp(now, from, datagram) {
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
            let _ = self.events.send(CallEvent::PlayDone {
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
                let _ = self.events.send(CallEvent::DigitsSent {
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

    fn send(&mut self, now: Instant, out: &mut [u8]) {
        if self.sending && self.configured {
            if let Some(n) = self.next_event_packet(now, out) {
                if let Some(pkt) = out.get(..n) {
                    let _ = self.ports.rtp.send_to(pkt, self.session.remote_rtp());
                }
                return self.send_rtcp(now, out);
            }
            let step = self.codec.timestamp_step_20ms();
            let mut payload = [0u8; MAX_FRAME_BYTES];
            let frame = self.next_frame();
            let len = frame.len().min(payload.len());
            payload[..len].copy_from_slice(&frame[..len]);
            if let Some(n) = self.session.write_audio(now, &payload[..len], step, out) {
                if let Some(pkt) = out.get(..n) {
                    let _ = self.ports.rtp.send_to(pkt, self.session.remote_rtp());
                }
            }
        }
        self.send_rtcp(now, out);
    }

    fn send_rtcp(&mut self, now: Instant, out: &mut [u8]) {
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            if let Some(n) = self.session.poll_rtcp(now, out) {
                if let Some(pkt) = out.get(..n) {
                    let _ = self.ports.rtcp.send_to(pkt, self.session.remote_rtcp());
                }
            }
        }
    }

    fn close(&mut self, out: &mut [u8]) {
        if let Some(n) = self.session.write_bye(out) {
            if let Some(pkt) = out.get(..n) {
                let _ = self.ports.rtcp.send_to(pkt, self.session.remote_rtcp());
            }
        }
    }
}

struct Worker {
    rx: Receiver<MediaCommand>,
    calls: HashMap<CallRef, MediaCall>,
    recv_buf: Vec<u8>,
    send_buf: Vec<u8>,
}

impl Worker {
    fn apply(&mut self, cmd: MediaCommand, now: Instant) -> bool {
        match cmd {
            MediaCommand::Add(setup) => {
                let s = *setup;
                let silence = silence_frame(s.codec);
                let mut session = RtpSession::new(s.session, now);
                session.set_wallclock(now, ntp_now());
                self.calls.insert(
                    s.call,
                    MediaCall {
                        ports: s.ports,
                        session,
                        dtmf: rfc4733::Receiver::new(),
                        listener: Listener::new(s.codec),
                        merge: DigitMerge::new(),
                        codec: s.codec,
                        events: s.events,
                        allocator: s.allocator,
                        sending: false,
                        configured: s.configured,
                        playback: None,
                        silence,
                        digits_out: None,
                    },
                );
            }
            MediaCommand::Start { call } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.sending = true;
                }
            }
            MediaCommand::Configure {
                call,
                session,
                codec,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.session = RtpSession::new(session, now);
                    c.session.set_wallclock(now, ntp_now());
                    c.listener = Listener::new(codec);
                    c.codec = codec;
                    c.silence = silence_frame(codec);
                    c.configured = true;
                }
            }
            MediaCommand::SendDigits { call, id, keys } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if let Some(old) = c.digits_out.take() {
                        let _ = c.events.send(CallEvent::DigitsSent {
                            id: old.id,
                            as_events: true,
                        });
                    }
                    // Events share the audio's SSRC and timestamps, so they
                    // are sent only at the audio's clock; otherwise in-band.
                    let cfg = c.session.config();
                    if cfg.telephone_event_pt.is_some()
                        && cfg.telephone_event_rate == cfg.clock_rate
                    {
                        c.digits_out = Some(DigitsOut {
                            id,
                            keys: keys.chars().collect(),
                            current: None,
                            gap_ticks: 0,
                        });
                    } else {
                        let _ = c.events.send(CallEvent::DigitsSent {
                            id,
                            as_events: false,
                        });
                    }
                }
            }
            MediaCommand::Digit {
                call,
                digit,
                source,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.on_digit(now, digit, source);
                }
            }
            MediaCommand::SetRemote { call, rtp, rtcp } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.session.set_remote(rtp, rtcp);
                }
            }
            MediaCommand::Play {
                call,
                id,
                prompts,
                interruptible,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if let Some(old) = c.playback.take() {
                        let _ = c.events.send(CallEvent::PlayDone {
                            id: old.id,
                            interrupted: true,
                        });
                    }
                    c.playback = Some(Playback {
                        id,
                        prompts,
                        prompt: 0,
                        frame: 0,
                        interruptible,
                    });
                }
            }
            MediaCommand::StopPlay { call, id } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.playback.as_ref().is_some_and(|p| p.id == id) {
                        c.playback = None;
                        let _ = c.events.send(CallEvent::PlayDone {
                            id,
                            interrupted: true,
                        });
                    }
                }
            }
            MediaCommand::Remove { call } => {
                if let Some(mut c) = self.calls.remove(&call) {
                    tracing::debug!(call, rtp = ?c.session.stats(), jitter = ?c.listener.jitter_stats(), "media closed");
                    c.close(&mut self.send_buf);
                }
            }
            MediaCommand::Shutdown => return false,
        }
        true
    }

    fn run(mut self) {
        let mut next_tick = Instant::now();
        loop {
            let now = Instant::now();
            loop {
                match self.rx.try_recv() {
                    Ok(cmd) => {
                        if !self.apply(cmd, now) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            for call in self.calls.values_mut() {
                call.receive(now, &mut self.recv_buf);
                call.send(now, &mut self.send_buf);
            }
            next_tick += TICK;
            let after = Instant::now();
            if after >= next_tick + MAX_CATCH_UP {
                // Descheduled for long: resume the cadence from now rather
                // than bursting the backlog at the callers.
                next_tick = after + TICK;
            }
            // Otherwise a late tick is caught up at once (the wait below is
            // zero), so each call still gets 50 frames a second under load.
            // Commands are applied as they arrive, so a play starts or stops
            // without waiting for the tick; the tick schedule is kept.
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    break;
                }
                match self.rx.recv_timeout(wait) {
                    Ok(cmd) => {
                        if !self.apply(cmd, Instant::now()) {
                            return;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

/// The wall clock as a 64-bit NTP timestamp, for RTCP sender reports. Read
/// once per call, at the edge (the RTP session keeps it from there).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The pool of media workers; calls are spread round-robin.
pub struct MediaPool {
    workers: Vec<Sender<MediaCommand>>,
    next: AtomicUsize,
    handles: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl MediaPool {
    /// Starts `n` workers (0: one per core).
    pub fn start(n: usize) -> std::io::Result<MediaPool> {
        let n = if n == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            n
        };
        let mut workers = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = crossbeam_channel::unbounded();
            let w = Worker {
                rx,
                calls: HashMap::new(),
                recv_buf: vec![0; 2048],
                send_buf: vec![0; 2048],
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("media-{i}"))
                    .spawn(move || w.run())?,
            );
            workers.push(tx);
        }
        Ok(MediaPool {
            workers,
            next: AtomicUsize::new(0),
            handles: std::sync::Mutex::new(handles),
        })
    }

    /// Hands a call to a worker; returns that worker's command channel.
    pub fn add(&self, setup: MediaCallSetup) -> Option<Sender<MediaCommand>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1);
        let tx = self.workers.get(i)?.clone();
        tx.send(MediaCommand::Add(Box::new(setup))).ok()?;
        Some(tx)
    }

    pub fn shutdown(&self) {
        for w in &self.workers {
            let _ = w.send(MediaCommand::Shutdown);
        }
        if let Ok(mut h) = self.handles.lock() {
            for h in h.drain(..) {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::{OpusDecoder, OpusSampleRate};

    #[test]
    fn opus_silence_is_one_small_packet() {
        let s = silence_frame(Codec::Opus);
        assert!(!s.is_empty() && s.len() < 20, "{} bytes", s.len());
        let mut d = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
        let mut pcm = [1i16; 160];
        assert_eq!(d.decode(s, &mut pcm).unwrap(), 160);
        assert!(pcm.iter().all(|&x| x.abs() < 8));
    }
}
