//! RFC 4733 telephone-events (DTMF carried in RTP): the payload format, a
//! [`Receiver`] that turns the stream of event packets into one
//! [`DtmfEvent`] per key press, and a [`Sender`] that produces the packet
//! payloads for one key press. Sans-IO: no socket, no clock; the RTP header is
//! the session's business (`media::rtp_session`).
//!
//! Payload (RFC 4733 §2.3): `event(8) | E(1) R(1) volume(6) | duration(16)`.
//!
//! How the receiver decides "new key press" versus "another packet of a press
//! already reported":
//! - a press is identified by `(ssrc, event timestamp)` (§2.5.1.2: every packet
//!   of one event carries the event's start timestamp). The first packet seen
//!   of a press reports it — whatever kind it is (start, update, end,
//!   retransmission), so a lost first packet delays the report by one packet
//!   at most, and a press whose end packets never come is still reported;
//! - a small ring remembers recent presses, so end-packet repeats,
//!   retransmissions, duplicates and packets reordered behind a newer press are
//!   recognised and stay silent;
//! - a long press whose duration field would overflow is sent as segments
//!   (§2.5.1.3): same event code, a new timestamp equal to the old timestamp
//!   plus the old duration, no E bit on the old segment and no marker on the
//!   new one. Such a packet (within a second of the old segment, at the
//!   distance of a full segment, about 0xFFFF units) continues the press
//!   instead of starting one. A
//!   marker bit always means a new press: a second press of the same digit has
//!   a new timestamp and its first packet carries the marker.
//!
//! One case is undecidable from the packets: a new press of the same digit
//! that starts about 0xFFFF units after the previous press's last segment,
//! when its marker packet and all three of the old press's end packets were
//! lost, looks exactly like a continuation and is not reported.
//!
//! Events 0–15 (the DTMF keys) are handled; other event codes are ignored.

use std::time::{Duration, Instant};

use thiserror::Error;

/// Size of one telephone-event payload (RFC 4733 §2.3).
pub const PAYLOAD_LEN: usize = 4;

/// Largest duration field value (§2.5.1.3).
const MAX_DURATION: u32 = 0xFFFF;

/// How many recent presses the receiver remembers: enough that a late
/// retransmission of an old press is still recognised after several quick
/// presses.
const RECENT_PRESSES: usize = 16;

/// A continuation segment follows the previous segment's last packet within
/// a packet interval (plus whatever tail of it was lost); after this long the
/// old segment is considered over.
const CONTINUATION_MAX_GAP: Duration = Duration::from_secs(1);

/// Senders split a press only when the 16-bit duration field is about to
/// overflow, so the next segment starts between `0xFFFF - SEGMENT_SLACK` and
/// `0xFFFF` units after the previous one (the slack covers a last whole
/// packet that did not fit: 960 units at 48 kHz, 20 ms). A new timestamp any
/// other distance away is a new press, even when its marker packet and the
/// old press's end packets were all lost; and however much of the old
/// segment's tail was lost, the distance still identifies a continuation.
const SEGMENT_SLACK: u32 = 2000;

/// Map an RFC 4733 event code (§3.2) to its DTMF key.
pub fn event_to_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12 => 'A',
        13 => 'B',
        14 => 'C',
        15 => 'D',
        _ => return None,
    })
}

/// Map a DTMF key (`0-9 * # A-D`, letters in either case) to its event code.
pub fn digit_to_event(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => (c as u8) - b'0',
        '*' => 10,
        '#' => 11,
        'A' | 'a' => 12,
        'B' | 'b' => 13,
        'C' | 'c' => 14,
        'D' | 'd' => 15,
        _ => return None,
    })
}

/// One decoded telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code (0–255; 0–15 are DTMF keys).
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Parse the first four bytes of `payload`; `None` if shorter.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let [event, flags, d0, d1] = *payload.first_chunk::<PAYLOAD_LEN>()?;
        Some(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Write the payload into `out`; `None` if `out` is shorter than 4 bytes.
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let dst = out.first_chunk_mut::<PAYLOAD_LEN>()?;
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3F);
        let [d0, d1] = self.duration.to_be_bytes();
        *dst = [self.event, flags, d0, d1];
        Some(PAYLOAD_LEN)
    }
}

/// A key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0-9 * # A-D`.
    pub digit: char,
    /// The RTP SSRC the events arrived on.
    pub ssrc: u32,
    /// The event's RTP timestamp (its start).
    pub timestamp: u32,
}

/// What the receiver remembers about one press (or one segment of a long one).
#[derive(Debug, Clone, Copy)]
struct Press {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    ended: bool,
    max_duration: u16,
    last_seen: Instant,
}

/// Turns telephone-event packets into key presses, each reported exactly once.
#[derive(Debug, Clone)]
pub struct Receiver {
    recent: [Option<Press>; RECENT_PRESSES],
    next_slot: usize,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self {
            recent: [None; RECENT_PRESSES],
            next_slot: 0,
        }
    }

    /// Returns the digit the first time a key press is seen; None for every later packet of the same press.
    #[must_use]
    pub fn handle(
        &mut self,
        now: Instant,
        ssrc: u32,
        _seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<DtmfEvent> {
        let p = EventPayload::parse(payload)?;
        let digit = event_to_digit(p.event)?;

        if let Some(known) = self
            .recent
            .iter_mut()
            .flatten()
            .find(|k| k.ssrc == ssrc && k.timestamp == timestamp)
        {
            known.ended |= p.end;
            known.max_duration = known.max_duration.max(p.duration);
            if now > known.last_seen {
                known.last_seen = now;
            }
            return None;
        }

        let continues = !marker && self.continues_latest(now, ssrc, timestamp, p.event);
        self.remember(Press {
            ssrc,
            timestamp,
            event: p.event,
            ended: p.end,
            max_duration: p.duration,
            last_seen: now,
        });
        if continues {
            return None;
        }
        Some(DtmfEvent {
            digit,
            ssrc,
            timestamp,
        })
    }

    /// Is a packet with a new timestamp the next segment of the latest press
    /// on this SSRC (RFC 4733 §2.5.1.3)?
    fn continues_latest(&self, now: Instant, ssrc: u32, timestamp: u32, event: u8) -> bool {
        let Some(latest) = self
            .recent
            .iter()
            .flatten()
            .filter(|k| k.ssrc == ssrc)
            .max_by_key(|k| k.last_seen)
        else {
            return false;
        };
        if latest.event != event || latest.ended {
            return false;
        }
        if now.saturating_duration_since(latest.last_seen) > CONTINUATION_MAX_GAP {
            return false;
        }
        let offset = timestamp.wrapping_sub(latest.timestamp);
        (MAX_DURATION - SEGMENT_SLACK..=MAX_DURATION).contains(&offset)
            && offset >= u32::from(latest.max_duration)
    }

    fn remember(&mut self, press: Press) {
        if let Some(slot) = self.recent.get_mut(self.next_slot) {
            *slot = Some(press);
        }
        self.next_slot = (self.next_slot + 1) % RECENT_PRESSES;
    }
}

/// Errors building a [`Sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rfc4733Error {
    /// The character is not a DTMF key.
    #[error("{0:?} is not a DTMF key (0-9 * # A-D)")]
    UnknownDigit(char),
    /// A clock rate too low to send 20 ms packets.
    #[error("clock rate {0} Hz is too low for telephone-events")]
    BadClockRate(u32),
}

/// Produces the telephone-event payloads of one key press: one packet every
/// 20 ms (marker on the first), the duration growing by 20 ms each time, then
/// the final duration three times with the E bit (RFC 4733 §2.5.1.4). Presses
/// longer than the 16-bit duration field are split into segments
/// (§2.5.1.3); read [`Sender::timestamp`] after each packet for the RTP
/// timestamp to put in its header.
#[derive(Debug, Clone)]
pub struct Sender {
    event: u8,
    volume: u8,
    /// Timestamp units per 20 ms packet.
    frame: u32,
    /// Whole press length, in timestamp units.
    total: u32,
    /// Longest segment: the largest whole number of frames that fits 0xFFFF.
    segment_max: u32,
    /// Start of the current segment, relative to the press start.
    segment_start: u32,
    start_ts: u32,
    /// Duration (relative to the press start) reached by the last packet.
    elapsed: u32,
    end_packets_sent: u8,
    started: bool,
}

impl Sender {
    /// A press of `digit` lasting `duration_ms` (at least one 20 ms packet),
    /// at `volume` −dBm0 (clamped to 63), starting at RTP `start_ts`.
    pub fn new(
        digit: char,
        duration_ms: u32,
        volume: u8,
        start_ts: u32,
        clock_rate: u32,
    ) -> Result<Self, Rfc4733Error> {
        let event = digit_to_event(digit).ok_or(Rfc4733Error::UnknownDigit(digit))?;
        let frame = clock_rate / 50;
        if frame == 0 || frame > MAX_DURATION {
            return Err(Rfc4733Error::BadClockRate(clock_rate));
        }
        let units = u64::from(duration_ms) * u64::from(clock_rate) / 1000;
        let total = u32::try_from(units).unwrap_or(u32::MAX).max(frame);
        Ok(Self {
            event,
            volume: volume.min(63),
            frame,
            total,
            segment_max: MAX_DURATION / frame * frame,
            segment_start: 0,
            start_ts,
            elapsed: 0,
            end_packets_sent: 0,
            started: false,
        })
    }

    /// Writes the next payload into `out`; returns its length and whether the
    /// RTP marker bit must be set. `None` once the three end packets are out
    /// (or if `out` is shorter than 4 bytes).
    #[must_use]
    pub fn next_payload(&mut self, out: &mut [u8]) -> Option<(usize, bool)> {
        if self.end_packets_sent >= 3 || out.len() < PAYLOAD_LEN {
            return None;
        }
        let marker = !self.started;
        let end = if self.elapsed < self.total {
            let next = self.elapsed.saturating_add(self.frame).min(self.total);
            if next - self.segment_start > self.segment_max {
                self.segment_start = self.segment_start.saturating_add(self.segment_max);
            }
            self.elapsed = next;
            self.elapsed >= self.total
        } else {
            true
        };
        let duration = u16::try_from(self.elapsed - self.segment_start).unwrap_or(u16::MAX);
        let payload = EventPayload {
            event: self.event,
            end,
            volume: self.volume,
            duration,
        };
        let len = payload.write(out)?;
        if end {
            self.end_packets_sent += 1;
        }
        self.started = true;
        Some((len, marker))
    }

    /// The RTP timestamp of the packet last produced (the current segment's
    /// start).
    pub fn timestamp(&self) -> u32 {
        self.start_ts.wrapping_add(self.segment_start)
    }

    /// True once every packet, end repeats included, has been produced.
    pub fn is_done(&self) -> bool {
        self.end_packets_sent >= 3
    }

    /// The timestamp just past the end of the press: where audio resumes.
    pub fn end_timestamp(&self) -> u32 {
        self.start_ts.wrapping_add(self.total)
    }
}

#[cfg(test)]
mod lossy_tests;
#[cfg(test)]
mod tests;
