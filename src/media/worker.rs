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
use crate::media::dtmf_detect::DtmfDetector;
use crate::media::dtmf_merge::DigitMerge;
use crate::media::g711::{self, Law};
use crate::media::jitter::{is_quiet_frame, JitterBuffer, JitterConfig, Playout};
use crate::media::opus::{OpusDecoder, OpusSampleRate};
use crate::media::plc::Plc;
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
struct Listener {
    jitter: JitterBuffer,
    decoder: Decoder,
    inband: DtmfDetector,
    pcm: [i16; 160],
}

impl Listener {
    fn new(codec: Codec) -> Self {
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

    /// Plays out one frame; returns a key the in-band detector confirmed.
    fn tick(&mut self, now: Instant) -> Option<char> {
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
                    self.listener.jitter.push_not_audio(seq, ssrc);
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
                        .jitter
                        .push(now, seq, timestamp, ssrc, marker, payload);
                    None
                }
                Inbound::OtherPayload { seq, ssrc, .. } => {
                    self.listener.jitter.push_not_audio(seq, ssrc);
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
                    tracing::debug!(call, rtp = ?c.session.stats(), jitter = ?c.listener.jitter.stats(), "media closed");
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
    use crate::media::tone::ToneGenerator;

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
                let _ = l.jitter.push(now, i as u16, i * 160, 42, i == 0, &payload);
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
                let _ = l.jitter.push(now, i as u16, i * 960, 42, i == 0, &buf[..n]);
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
                let _ = l.jitter.push(now, i as u16, i * 160, 42, i == 0, &payload);
                l.tick(now + Duration::from_millis(5));
                if first_skip.is_none() && l.jitter.stats().skipped > 0 {
                    first_skip = Some(i);
                }
            }
            let s = l.jitter.stats().clone();
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
