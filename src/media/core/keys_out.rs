//! Keys a leg sends to its peer: the owner's (`send_digits`, answered by
//! `DigitsSent`) and keys relayed from a leg it is joined to. As RFC 4733
//! telephone-events when the leg has them at its audio's clock — one 20 ms
//! event packet per tick in place of audio while a key is down, audio in
//! the gaps — and otherwise, for relayed keys, as DTMF tones in the audio
//! (the owner's keys without events are answered `as_events: false`, and
//! the owner plays `tone:dtmf:…` instead, so a script sees the same thing
//! as before). Queues are allocated once, with the leg.

use std::collections::VecDeque;

use crate::media::events::MediaEvent;
use crate::media::rfc4733;
use crate::media::tone::{dtmf_frequencies, ToneGenerator};

/// Length of each key sent as telephone-events, and the audio between two.
const SENT_KEY_MS: u32 = 100;
const SENT_KEY_GAP_TICKS: u8 = 4;
/// Volume of sent events, −dBm0.
const SENT_KEY_VOLUME: u8 = 10;
/// A relayed key as tones: as `tone:dtmf:` plays them (100 ms on, 100 ms
/// off, 2 dB twist).
const TONE_ON_MS: u32 = 100;
const TONE_OFF_MS: u32 = 100;
const TONE_LOW_DBM0: f32 = -9.0;
const TONE_HIGH_DBM0: f32 = -7.0;
/// Relayed keys waiting to be sent; more are dropped (a peer cannot press
/// keys faster than they are sent, ~5 a second).
const RELAY_QUEUE: usize = 16;

/// One telephone-event packet's payload and where it sits in the press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub payload: [u8; 4],
    pub len: usize,
    /// The first packet of a press (the RTP marker bit): the path takes
    /// its media clock here as the press's start timestamp.
    pub first: bool,
    /// The packet's timestamp relative to the press's start (non-zero for
    /// the later segments of a press longer than the 16-bit duration).
    pub offset: u32,
}

impl EventPacket {
    /// The payload bytes.
    pub fn bytes(&self) -> &[u8] {
        self.payload.get(..self.len).unwrap_or_default()
    }
}

struct Job {
    id: u64,
    keys: VecDeque<char>,
}

pub(super) struct KeysOut {
    /// The owner's keys being sent as events.
    job: Option<Job>,
    /// Relayed keys to send as events.
    relayed: VecDeque<char>,
    current: Option<rfc4733::Sender>,
    gap_ticks: u8,
    /// Relayed keys to send as tones, and the one sounding.
    tones: VecDeque<char>,
    tone: Option<ToneGenerator>,
}

impl KeysOut {
    pub fn new() -> KeysOut {
        KeysOut {
            job: None,
            relayed: VecDeque::with_capacity(RELAY_QUEUE),
            current: None,
            gap_ticks: 0,
            tones: VecDeque::with_capacity(RELAY_QUEUE),
            tone: None,
        }
    }

    /// The owner's keys. A job still running is answered as sent (its
    /// key sounding finishes; the rest are dropped).
    pub fn send(
        &mut self,
        id: u64,
        keys: &str,
        telephone_events: bool,
        events: &mut VecDeque<MediaEvent>,
    ) {
        if let Some(old) = self.job.take() {
            events.push_back(MediaEvent::DigitsSent {
                id: old.id,
                as_events: true,
            });
        }
        // Events share the audio's SSRC and timestamps, so they are sent
        // only at the audio's clock; otherwise the owner sends tones.
        if telephone_events {
            self.job = Some(Job {
                id,
                keys: keys.chars().collect(),
            });
        } else {
            events.push_back(MediaEvent::DigitsSent {
                id,
                as_events: false,
            });
        }
    }

    /// A key relayed from a joined leg.
    pub fn relay(&mut self, key: char, telephone_events: bool) {
        let queue = if telephone_events {
            &mut self.relayed
        } else {
            &mut self.tones
        };
        if queue.len() < RELAY_QUEUE {
            queue.push_back(key);
        } else {
            tracing::debug!(%key, "relayed key dropped: too many waiting");
        }
    }

    /// The next telephone-event packet, in place of this tick's audio;
    /// `None` to send audio.
    pub fn next_event(
        &mut self,
        clock_rate: u32,
        events: &mut VecDeque<MediaEvent>,
    ) -> Option<EventPacket> {
        loop {
            if let Some(sender) = self.current.as_mut() {
                let mut payload = [0u8; 4];
                if let Some((len, first)) = sender.next_payload(&mut payload) {
                    return Some(EventPacket {
                        payload,
                        len,
                        first,
                        offset: sender.timestamp(),
                    });
                }
                self.current = None;
                self.gap_ticks = SENT_KEY_GAP_TICKS;
            }
            if self.gap_ticks > 0 {
                self.gap_ticks -= 1;
                return None;
            }
            let key = match self.job.as_mut() {
                Some(job) => match job.keys.pop_front() {
                    Some(key) => key,
                    None => {
                        events.push_back(MediaEvent::DigitsSent {
                            id: job.id,
                            as_events: true,
                        });
                        self.job = None;
                        continue;
                    }
                },
                None => self.relayed.pop_front()?,
            };
            // Start 0: the path adds its media clock at the first packet.
            self.current =
                rfc4733::Sender::new(key, SENT_KEY_MS, SENT_KEY_VOLUME, 0, clock_rate).ok();
        }
    }

    /// This tick's 20 ms of a relayed key's tones, into `pcm`; false when
    /// none is sounding.
    pub fn next_tone(&mut self, pcm: &mut [i16; 160]) -> bool {
        if self.tone.is_none() {
            let Some((low, high)) = self
                .tones
                .pop_front()
                .and_then(|k| dtmf_frequencies(k.to_ascii_uppercase()))
            else {
                return false;
            };
            self.tone = Some(ToneGenerator::dual(
                low,
                high,
                TONE_LOW_DBM0,
                TONE_HIGH_DBM0,
                TONE_ON_MS,
                TONE_OFF_MS,
            ));
        }
        let Some(tone) = self.tone.as_mut() else {
            return false;
        };
        let n = tone.fill(pcm).min(pcm.len());
        pcm[n..].fill(0);
        if tone.is_finished() {
            self.tone = None;
        }
        true
    }
}
