//! Adaptive jitter buffer (sans-IO): takes RTP packets as they arrive and
//! hands the media worker exactly one playout decision per frame tick, in the
//! sender's media-clock order.
//!
//! It owns reordering, duplicate and late-packet rejection, the choice
//! between "frame", "conceal" and "silence" for every tick, and the playout
//! delay. It does not decode or conceal audio itself (see `media::plc` and the
//! Opus decoder) and does not validate RTP sources (the RTP session latches
//! the peer; here a new SSRC simply restarts the stream).
//!
//! # Playout model
//! A cursor walks the sender's timestamps one frame per `pop`. The packet
//! whose timestamp is under the cursor is played; a packet whose time has
//! passed is too late. A frame is as long as the packet: each packet
//! carries its duration ([`JitterBuffer::push_lasting`]: 10 to 60 ms, a
//! peer may change it mid-call), the cursor moves past the packet it plays,
//! and concealment and silence step by the last packet's duration
//! ([`JitterBuffer::frame_samples`]). So a caller with a fixed tick pops
//! whenever its decoded audio runs short, not once per tick. A timestamp gap is classified by sequence numbers: as
//! many frames as packets are missing are concealed, the rest of the gap is
//! silence (DTX, comfort noise, a talk-spurt pause), so DTX is never loss.
//! Packets of the stream that carry no audio (comfort noise, RFC 4733
//! events sent on the audio's SSRC and sequence numbers) are told with
//! [`JitterBuffer::push_not_audio`]: their sequence numbers are a pause too.
//! An empty buffer in the middle of a talk spurt is reported as `Conceal`:
//! nobody can tell loss from the start of DTX yet, and both G.711 PLC (fading
//! to silence after 60 ms) and Opus (whose decoder expects PLC calls during
//! DTX) do the right thing with it.
//!
//! # Delay adaptation (no time-stretching)
//! The current delay is the playout offset minus the base transit (the
//! fastest packet of the last 2 s), i.e. how long the buffer holds a packet
//! that took the fastest path. A packet is on time exactly when its transit
//! above that base is within the current delay, so the target is a high
//! percentile (99.5 %) of the transit above the base over the last 500
//! in-order packets (10 s), in a fixed histogram; packets overtaken by later
//! ones are reordering, not path jitter, and are left out (as NetEq does),
//! so a rare packet held back for long is concealed rather than delaying
//! all the others. The target rises at once with that percentile and falls
//! with a time constant of about 10 s, within the configured bounds. Until
//! the path has been measured it starts at `start_delay_ms` (40 ms), which
//! fades out over the first 100 packets. The RFC 3550 jitter is still
//! computed, for statistics and RTCP; it no longer sets the target.
//! - Too little delay: hold the cursor for one tick, emitting `Silence` in a
//!   pause and `Conceal` in speech (the PLC extends the sound, as NetEq's
//!   "expand" does). Growth is immediate because a late packet costs more
//!   than one stretched frame.
//! - Too much delay (a frame and half the jitter above the target): in a
//!   pause, skip a frame of silence at once (free); in speech, drop one
//!   frame only after the excess has lasted 60 ms and at most once a second
//!   (as FreeSWITCH's stfu drops frames to shrink its queue). Dropping whole
//!   frames is audible only as a tiny glitch, needs no DSP, and keeps this
//!   core codec-agnostic. A caller that can tell a quiet frame after
//!   decoding it (`JitterConfig::quiet_drops`) drops that one instead
//!   ([`JitterBuffer::wants_shrink`], [`JitterBuffer::pop_instead`]); the
//!   buffer then waits up to 2 s for such a frame before dropping speech.
//!
//! Because the base follows the sender's clock, a drifting sender (±0.5 %)
//! is absorbed by one hold or one drop every few seconds: a fast one makes
//! every packet a new base, a slow one puts its drift over the 2 s window
//! into the transit above the base, which the target then covers.

mod base;
mod delay;
mod ring;
mod window;

use std::time::{Duration, Instant};

use delay::DelayEstimator;
use ring::{Ring, Slot};

/// Sequence jumps beyond this are a restarted stream (RFC 3550 A.1).
const MAX_DROPOUT: i64 = 3000;
/// A transit jump this much beyond `max_delay` is a timestamp jump.
const TRANSIT_JUMP_US: i64 = 1_000_000;
/// Shrinking in speech needs the excess to last this long...
const SHRINK_SUSTAIN_US: i64 = 60_000;
/// ...or this long when the caller drops quiet frames itself
/// (`JitterConfig::quiet_drops`): a pause usually comes sooner, and a frame
/// dropped there is not heard.
const SHRINK_WAIT_FOR_QUIET_US: i64 = 2_000_000;
/// ...and happens at most this often.
const SHRINK_INTERVAL_US: i64 = 1_000_000;
/// The default start target: covers about ±20 ms of jitter from the first
/// packet; a calmer path gives it back over the first seconds.
const START_DELAY_MS: u32 = 40;

/// Parameters of one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Samples per `pop` (160 for 20 ms at 8 kHz).
    pub frame_samples: u32,
    /// Lower bound of the target delay.
    pub min_delay_ms: u32,
    /// Upper bound of the target delay.
    pub max_delay_ms: u32,
    /// The target delay before the path has been measured (clamped to the
    /// bounds): it only shrinks as the measured delays allow, so the first
    /// seconds of a call do not pay for the estimator's lack of history.
    pub start_delay_ms: u32,
    /// The caller drops quiet frames while [`JitterBuffer::wants_shrink`]
    /// says so; the buffer then waits up to 2 s of excess delay for one
    /// before it drops a frame of speech itself (otherwise 60 ms).
    pub quiet_drops: bool,
    /// Largest payload accepted; storage grows to `capacity * max_payload`
    /// bytes only if packets that large arrive (`ring`).
    pub max_payload: usize,
    /// Most packet slots: the sequence numbers buffered at once (the ring
    /// starts with fewer and grows to what the path needs).
    pub capacity: usize,
}

impl JitterConfig {
    /// 20 ms G.711 at 8 kHz, delay 0–400 ms starting at 40 ms, up to 64 slots
    /// (1.28 s).
    pub fn g711_20ms() -> Self {
        Self {
            clock_rate: 8000,
            frame_samples: 160,
            min_delay_ms: 0,
            max_delay_ms: 400,
            start_delay_ms: START_DELAY_MS,
            quiet_drops: false,
            max_payload: 160,
            capacity: 64,
        }
    }

    /// 20 ms Opus (48 kHz RTP clock), delay 0–400 ms starting at 40 ms, 64
    /// slots; payloads up
    /// to 1275 bytes, the most one Opus frame may take (RFC 6716 §3.4).
    pub fn opus_20ms() -> Self {
        Self {
            clock_rate: 48_000,
            frame_samples: 960,
            max_payload: 1275,
            ..Self::g711_20ms()
        }
    }
}

/// What `push` did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    /// Buffered.
    Accepted,
    /// Buffered as the first packet of a new stream (SSRC change, sequence
    /// or timestamp jump); what was buffered before is dropped.
    Resynced,
    /// A copy of a packet already buffered or played; dropped.
    Duplicate,
    /// Its playout time has passed; dropped.
    TooLate,
    /// Too far ahead of the playout cursor to fit the slots; dropped.
    Overflow,
    /// Larger than `max_payload`; dropped.
    TooLarge,
}

/// The decision for one frame tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode this packet.
    Frame {
        /// The RTP payload.
        payload: &'a [u8],
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its RTP sequence number.
        seq: u16,
    },
    /// A frame is missing (lost, late, or the buffer is stretching): conceal.
    Conceal {
        /// The RTP timestamp the concealed frame stands for.
        timestamp: u32,
        /// The buffered packet that directly follows the missing frame, whose
        /// in-band FEC (Opus LBRR) can rebuild it.
        next: Option<&'a [u8]>,
    },
    /// Nothing to play and nothing lost: not started, DTX or a pause.
    Silence,
}

/// Counters and delay figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
    /// The delay the buffer aims for.
    pub target_delay: Duration,
    /// The delay at the last `pop` (playout offset over the base transit).
    pub current_delay: Duration,
    /// Packets buffered.
    pub accepted: u64,
    /// `Frame` decisions.
    pub played: u64,
    /// `Conceal` decisions (loss, lateness, or stretching).
    pub concealed: u64,
    /// `Silence` decisions.
    pub silence: u64,
    /// Sequence numbers never played because they never came in time.
    pub lost: u64,
    /// Packets dropped because their time had passed.
    pub late: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// Packets dropped for lack of a slot.
    pub overflow: u64,
    /// Packets dropped for exceeding `max_payload`.
    pub oversize: u64,
    /// Stream restarts (SSRC change, sequence or timestamp jump).
    pub resyncs: u64,
    /// Ticks the cursor was held to grow the delay in speech (a `Conceal`).
    pub stretched: u64,
    /// Frames dropped to shrink the delay in speech.
    pub skipped: u64,
    /// Ticks of silence added or removed to adapt the delay in a pause.
    pub silence_adjusted: u64,
    /// Sequence numbers of the stream that carried no audio (comfort
    /// noise, telephone-events on the audio SSRC): not counted as loss.
    pub not_audio: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No packet yet.
    Idle,
    /// Packets buffered, waiting for the target delay before the first frame.
    Buffering,
    Playing,
}

enum Action {
    Play(Slot),
    Conceal { ts: i64, next: Option<Slot> },
    Silence,
}

/// The adaptive jitter buffer; `push` and `pop` never allocate.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    ring: Ring,
    est: DelayEstimator,
    stats: JitterStats,
    /// Origin of the µs time axis.
    epoch: Option<Instant>,
    phase: Phase,
    ssrc: u32,
    /// Raw sequence and timestamp of the stream's first packet; everything
    /// inside is kept relative to them and extended to i64.
    seq_base: u16,
    ts_base: u32,
    /// The lowest sequence number that may still be played.
    next_seq: i64,
    highest_seq: i64,
    /// The media time the next `pop` plays.
    play_ts: i64,
    /// Bit i: sequence `next_seq - 1 - i` was played (duplicate detection).
    played_mask: u64,
    /// Bit i: sequence `next_seq + i` carried no audio (see
    /// [`JitterBuffer::push_not_audio`]), so its gap is not loss.
    not_audio_mask: u64,
    /// `Conceal` ticks spent in the current gap.
    gap_conceals: i64,
    /// The last decision in `Playing` was silence (we are in a pause).
    in_silence: bool,
    /// The cursor passed a packet without audio since the last frame: an
    /// empty buffer is the sender's pause.
    paused: bool,
    excess_since_us: Option<i64>,
    last_skip_us: Option<i64>,
    /// The cursor's step: how long the last packet played (or, before
    /// one, the first buffered) lasts. Concealment and silence advance by
    /// it, so a peer sending 30 ms packets is concealed 30 ms at a time.
    frame: i64,
}

impl JitterBuffer {
    /// A buffer with all its storage allocated.
    pub fn new(cfg: JitterConfig) -> Self {
        let cfg = JitterConfig {
            clock_rate: cfg.clock_rate.max(1),
            frame_samples: cfg.frame_samples.max(1),
            capacity: cfg.capacity.max(2),
            ..cfg
        };
        let frame = i64::from(cfg.frame_samples);
        Self {
            ring: Ring::new(cfg.capacity, cfg.max_payload),
            est: DelayEstimator::new(cfg.min_delay_ms, cfg.max_delay_ms, cfg.start_delay_ms),
            cfg,
            stats: JitterStats::default(),
            epoch: None,
            phase: Phase::Idle,
            ssrc: 0,
            seq_base: 0,
            ts_base: 0,
            next_seq: 0,
            highest_seq: 0,
            play_ts: 0,
            played_mask: 0,
            not_audio_mask: 0,
            gap_conceals: 0,
            in_silence: false,
            paused: false,
            excess_since_us: None,
            last_skip_us: None,
            frame,
        }
    }

    /// The buffer holds a frame or more beyond its target delay: a caller
    /// that has just decoded a quiet frame (silence or background noise)
    /// may drop it with [`JitterBuffer::pop_instead`], unheard.
    pub fn wants_shrink(&self) -> bool {
        self.phase == Phase::Playing && self.excess_since_us.is_some()
    }

    /// Drops the frame the last `pop` gave (the caller decoded it and found
    /// it quiet) and gives the decision for the same tick one frame on,
    /// which shortens the delay by a frame. Counted as `skipped`.
    pub fn pop_instead(&mut self, now: Instant) -> Playout<'_> {
        self.stats.skipped += 1;
        self.last_skip_us = Some(self.now_us(now));
        self.pop(now)
    }

    /// Counters and delay figures so far.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Packets currently buffered.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// No packet is buffered.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The media time, in timestamp units, the last `pop` stood for: the
    /// packet it gave, or the frame it concealed or left silent.
    pub fn frame_samples(&self) -> u32 {
        u32::try_from(self.frame).unwrap_or(self.cfg.frame_samples)
    }

    /// Offers one received RTP packet of the configured frame duration
    /// (`marker` is accepted for completeness: gaps are classified by
    /// sequence numbers, which survive a lost marker).
    pub fn push(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushResult {
        let dur = self.cfg.frame_samples;
        self.push_lasting(now, seq, timestamp, ssrc, marker, payload, dur)
    }

    /// Offers one received RTP packet that lasts `duration` timestamp
    /// units (its caller knows the codec: G.711 bytes, an Opus TOC), so
    /// packets of any ptime, and a peer changing its ptime mid-call, play
    /// whole. A zero duration is taken as the configured frame.
    #[allow(clippy::too_many_arguments)]
    pub fn push_lasting(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        _marker: bool,
        payload: &[u8],
        duration: u32,
    ) -> PushResult {
        let dur = i64::from(if duration == 0 {
            self.cfg.frame_samples
        } else {
            duration
        });
        if payload.len() > self.cfg.max_payload {
            self.stats.oversize += 1;
            return PushResult::TooLarge;
        }
        let now_us = self.now_us(now);
        if self.phase == Phase::Idle {
            self.anchor(now_us, seq, timestamp, ssrc, payload, dur);
            return PushResult::Accepted;
        }
        if ssrc != self.ssrc {
            return self.resync(now_us, seq, timestamp, ssrc, payload, dur);
        }
        let s = self.ext_seq(seq);
        let t = self.ext_ts(timestamp);
        let transit = now_us.saturating_sub(self.media_us(t));
        let jump_us = i64::from(self.cfg.max_delay_ms) * 1000 + TRANSIT_JUMP_US;
        let transit_jumped = self
            .est
            .base()
            .is_some_and(|base| transit.saturating_sub(base).saturating_abs() > jump_us);
        if (s - self.next_seq).abs() > MAX_DROPOUT || transit_jumped {
            return self.resync(now_us, seq, timestamp, ssrc, payload, dur);
        }

        if s < self.next_seq {
            let fits = self.highest_seq - s < self.ring.capacity() as i64;
            if self.phase == Phase::Buffering && fits {
                // Reordered start: the stream begins earlier than we thought.
                self.next_seq = s;
                self.play_ts = self.play_ts.min(t);
            } else {
                return self.reject_behind(now_us, s, transit);
            }
        }
        if self.phase == Phase::Playing && t < self.play_ts - self.half_frame() {
            self.stats.late += 1;
            self.est.on_arrival(now_us, transit, s > self.highest_seq);
            self.highest_seq = self.highest_seq.max(s);
            return PushResult::TooLate;
        }
        if s - self.next_seq >= self.ring.capacity() as i64 {
            if !self.ring.is_empty() {
                self.stats.overflow += 1;
                return PushResult::Overflow;
            }
            // A long outage: nothing buffered, so slide the window.
            self.stats.lost += (s - self.next_seq) as u64;
            self.advance_seq_to(s, false);
        }
        // Every buffered packet lies in next_seq..=highest_seq.
        self.ring.fit_span(self.next_seq, self.highest_seq.max(s));
        if self.ring.get(s).is_some() {
            self.stats.duplicates += 1;
            return PushResult::Duplicate;
        }
        if !self.ring.insert(s, t, dur, payload) {
            self.stats.overflow += 1;
            return PushResult::Overflow;
        }
        if s < self.highest_seq {
            self.stats.reordered += 1;
        }
        self.est.on_arrival(now_us, transit, s > self.highest_seq);
        self.highest_seq = self.highest_seq.max(s);
        self.stats.accepted += 1;
        PushResult::Accepted
    }

    /// Notes a packet of the stream that carries nothing for the decoder
    /// (comfort noise, an RFC 4733 event sharing the audio's sequence
    /// numbers): its sequence number is a pause, not a lost frame. Its
    /// timestamp is not media time (an event's is its start), so it takes
    /// no part in timing.
    pub fn push_not_audio(&mut self, seq: u16, ssrc: u32) {
        if self.phase == Phase::Idle || ssrc != self.ssrc {
            return;
        }
        let ahead = self.ext_seq(seq) - self.next_seq;
        if (0..64).contains(&ahead) && self.not_audio_mask & (1u64 << ahead) == 0 {
            self.not_audio_mask |= 1u64 << ahead;
            self.stats.not_audio += 1;
        }
    }

    /// The decision for the frame tick at `now`; call once per frame period.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        let now_us = self.now_us(now);
        let action = self.decide(now_us);
        self.stats.jitter = micros(self.est.jitter_us());
        self.stats.target_delay = micros(self.est.target_us());
        match action {
            Action::Play(slot) => Playout::Frame {
                payload: self.ring.payload(slot.seq, slot.len),
                timestamp: self.ts_base.wrapping_add(slot.ts as u32),
                seq: self.seq_base.wrapping_add(slot.seq as u16),
            },
            Action::Conceal { ts, next } => Playout::Conceal {
                timestamp: self.ts_base.wrapping_add(ts as u32),
                next: next.map(|n| self.ring.payload(n.seq, n.len)),
            },
            Action::Silence => Playout::Silence,
        }
    }

    fn decide(&mut self, now_us: i64) -> Action {
        let target = self.est.target_us();
        if self.phase == Phase::Idle {
            return self.silence();
        }
        if self.phase == Phase::Buffering {
            if self.delay_us(now_us) < target {
                return self.silence();
            }
            self.phase = Phase::Playing;
        }
        self.drop_stale();
        self.pass_not_audio();
        let delay = self.delay_us(now_us);
        self.stats.current_delay = micros(delay);
        let frame = self.frame;
        let frame_us = self.media_us(frame);
        // Grow as soon as the delay is below the target (each tick short of
        // it risks a late packet), shrink only once it is a frame and some
        // slack above, or the noise of the base transit makes holds and
        // drops alternate.
        let slack = self.est.jitter_us() / 2;
        let too_short = delay < target;
        let too_long = delay >= target + frame_us + slack;
        if too_long {
            self.excess_since_us.get_or_insert(now_us);
        } else {
            self.excess_since_us = None;
        }

        let Some(head) = self.ring.first_from(self.next_seq) else {
            if self.in_silence || self.paused {
                self.play_ts += frame;
                return self.silence();
            }
            return self.conceal(too_short, None);
        };

        if head.ts <= self.play_ts + self.half_frame() {
            if too_short {
                if self.in_silence {
                    self.stats.silence_adjusted += 1;
                    return self.silence();
                }
                return self.conceal(true, None);
            }
            if too_long && self.may_skip(now_us) {
                let follower = self
                    .ring
                    .get(head.seq + 1)
                    .filter(|n| n.ts == head.ts + head.dur);
                if let Some(follower) = follower {
                    self.ring.remove(head.seq);
                    self.advance_seq_to(head.seq + 1, false);
                    self.stats.skipped += 1;
                    self.last_skip_us = Some(now_us);
                    return self.play(follower);
                }
            }
            return self.play(head);
        }

        // A timestamp gap before `head`: part loss, part pause.
        let missing = self.missing_before(head.seq);
        let gap_frames = (head.ts - self.play_ts + frame - 1) / frame;
        let owed = missing - self.gap_conceals;
        let conceal_now = owed > 0 && (!self.in_silence || gap_frames <= owed);
        if conceal_now {
            let next = (head.ts == self.play_ts + frame).then_some(head);
            return self.conceal(too_short, next);
        }
        if too_short {
            self.stats.silence_adjusted += 1;
        } else if too_long && self.play_ts + 2 * frame <= head.ts {
            self.stats.silence_adjusted += 1;
            self.play_ts += 2 * frame;
        } else {
            self.play_ts += frame;
        }
        self.in_silence = true;
        self.silence()
    }

    fn play(&mut self, slot: Slot) -> Action {
        self.ring.remove(slot.seq);
        self.stats.lost += self.missing_before(slot.seq).max(0) as u64;
        self.advance_seq_to(slot.seq + 1, true);
        self.frame = slot.dur;
        self.play_ts = slot.ts + slot.dur;
        self.gap_conceals = 0;
        self.in_silence = false;
        self.paused = false;
        self.stats.played += 1;
        Action::Play(slot)
    }

    /// A `Conceal` tick: `hold` keeps the cursor (stretching the delay),
    /// otherwise the cursor passes over a missing frame.
    fn conceal(&mut self, hold: bool, next: Option<Slot>) -> Action {
        let ts = self.play_ts;
        self.stats.concealed += 1;
        if hold {
            self.stats.stretched += 1;
        } else {
            self.play_ts += self.frame;
            self.gap_conceals += 1;
        }
        Action::Conceal { ts, next }
    }

    fn silence(&mut self) -> Action {
        self.stats.silence += 1;
        if self.phase == Phase::Playing {
            self.in_silence = true;
        }
        Action::Silence
    }

    fn may_skip(&self, now_us: i64) -> bool {
        let sustain = if self.cfg.quiet_drops {
            SHRINK_WAIT_FOR_QUIET_US
        } else {
            SHRINK_SUSTAIN_US
        };
        let sustained = self
            .excess_since_us
            .is_some_and(|since| now_us - since >= sustain);
        let rested = self
            .last_skip_us
            .is_none_or(|last| now_us - last >= SHRINK_INTERVAL_US);
        sustained && rested
    }

    /// Drops buffered packets whose playout time has passed (the cursor
    /// skipped past them while adapting or concealing).
    fn drop_stale(&mut self) {
        let limit = self.play_ts - self.half_frame();
        while let Some(head) = self.ring.first_from(self.next_seq) {
            if head.ts >= limit {
                break;
            }
            self.ring.remove(head.seq);
            self.stats.late += 1;
        }
    }

    /// Sequence numbers before `seq` still to come that are audio: the
    /// frames lost if `seq` plays next.
    fn missing_before(&self, seq: i64) -> i64 {
        let gap = seq - self.next_seq;
        if gap <= 0 {
            return 0;
        }
        let below = if gap >= 64 {
            u64::MAX
        } else {
            (1u64 << gap) - 1
        };
        gap - i64::from((self.not_audio_mask & below).count_ones())
    }

    /// Moves the cursor over sequence numbers that carried no audio: the
    /// sender paused, so an empty buffer now means silence, not loss.
    fn pass_not_audio(&mut self) {
        let run = self.not_audio_mask.trailing_ones();
        if run > 0 {
            self.advance_seq_to(self.next_seq + i64::from(run), false);
            self.paused = true;
        }
    }

    fn reject_behind(&mut self, now_us: i64, s: i64, transit: i64) -> PushResult {
        let age = self.next_seq - 1 - s;
        if (0..64).contains(&age) && self.played_mask & (1u64 << age) != 0 {
            self.stats.duplicates += 1;
            return PushResult::Duplicate;
        }
        self.stats.late += 1;
        self.est.on_arrival(now_us, transit, false);
        PushResult::TooLate
    }

    fn advance_seq_to(&mut self, new_next: i64, played: bool) {
        let shift = new_next - self.next_seq;
        if shift <= 0 {
            return;
        }
        self.played_mask = if shift >= 64 {
            0
        } else {
            self.played_mask << shift
        };
        self.not_audio_mask = if shift >= 64 {
            0
        } else {
            self.not_audio_mask >> shift
        };
        if played {
            self.played_mask |= 1;
        }
        self.next_seq = new_next;
    }

    fn anchor(&mut self, now_us: i64, seq: u16, ts: u32, ssrc: u32, payload: &[u8], dur: i64) {
        self.ring.clear();
        self.ssrc = ssrc;
        self.seq_base = seq;
        self.ts_base = ts;
        self.next_seq = 0;
        self.highest_seq = 0;
        self.play_ts = 0;
        self.played_mask = 0;
        self.not_audio_mask = 0;
        self.gap_conceals = 0;
        self.in_silence = false;
        self.paused = false;
        self.excess_since_us = None;
        self.phase = Phase::Buffering;
        self.frame = dur;
        if self.ring.insert(0, 0, dur, payload) {
            self.stats.accepted += 1;
        }
        self.est.on_arrival(now_us, now_us, true);
    }

    fn resync(
        &mut self,
        now_us: i64,
        seq: u16,
        ts: u32,
        ssrc: u32,
        payload: &[u8],
        dur: i64,
    ) -> PushResult {
        self.stats.resyncs += 1;
        self.est.reset_base();
        self.anchor(now_us, seq, ts, ssrc, payload, dur);
        PushResult::Resynced
    }

    /// Playout offset minus base transit: how long a fastest-path packet
    /// waits before it plays.
    fn delay_us(&self, now_us: i64) -> i64 {
        let offset = now_us.saturating_sub(self.media_us(self.play_ts));
        let base = self.est.base().unwrap_or(offset);
        offset.saturating_sub(base)
    }

    fn now_us(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX)
    }

    fn media_us(&self, ts: i64) -> i64 {
        ts.saturating_mul(1_000_000) / i64::from(self.cfg.clock_rate)
    }

    fn half_frame(&self) -> i64 {
        self.frame / 2
    }

    /// The extended sequence closest to the playout cursor.
    fn ext_seq(&self, seq: u16) -> i64 {
        let reference = self.seq_base.wrapping_add(self.next_seq as u16);
        self.next_seq + i64::from(seq.wrapping_sub(reference) as i16)
    }

    /// The extended timestamp closest to the playout cursor.
    fn ext_ts(&self, ts: u32) -> i64 {
        let reference = self.ts_base.wrapping_add(self.play_ts as u32);
        self.play_ts + i64::from(ts.wrapping_sub(reference) as i32)
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// Below about -50 dBFS RMS a decoded frame is silence or background
/// noise: a caller with `JitterConfig::quiet_drops` may drop it unheard.
pub fn is_quiet_frame(pcm: &[i16]) -> bool {
    const QUIET_RMS: f64 = 100.0;
    let energy: f64 = pcm.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    energy < QUIET_RMS * QUIET_RMS * pcm.len() as f64
}

#[cfg(test)]
mod tests;
