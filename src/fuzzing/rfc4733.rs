//! The `rfc4733` target: the telephone-event [`Receiver`] on arbitrary
//! payloads, SSRCs, sequence numbers, timestamps, markers and arrival times,
//! checked against a model of what it promises, and rivr's own [`Sender`]
//! (segmented long presses included) read back by a fresh receiver.
//!
//! The model: the receiver remembers the last 16 presses, keyed by
//! `(ssrc, timestamp)`, in arrival order. A packet of a remembered press is
//! never reported; a packet that is not a DTMF key is never reported and
//! never remembered; a new press with the marker bit is always reported,
//! with the key its payload names. Without the marker, a new timestamp may
//! be the next segment of a long press and stay silent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::input::{Input, Seed};
use crate::media::rfc4733::{self, EventPayload, Receiver, Sender};

/// A packet built from fields.
const OP_PACKET: u8 = 0;
/// A whole press from rivr's sender.
const OP_PRESS: u8 = 1;
/// Advance the clock by up to 655 s.
const OP_WAIT: u8 = 2;
const OPS: u8 = 3;

const MAX_OPS: usize = 4096;
/// Packets handled per input at most, by both receivers together (a press
/// of the longest kind, 6 s with every packet twice, takes 1,212), so that
/// an input of many long presses still runs in well under a millisecond; a
/// press that does not fit what is left is skipped.
const MAX_HANDLED: usize = 1536;
const REMEMBERED: usize = 16;
const SSRCS: [u32; 3] = [0x1111_1111, 0x2222_2222, 0xD0D0_D0D0];

/// What a run reached (for the seed tests).
#[derive(Debug, Clone, Default)]
pub struct Reached {
    /// Keys reported, in order.
    pub keys: String,
    /// Presses from the sender read back.
    pub presses: u64,
    /// Of which took more than one segment.
    pub segmented: u64,
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = exercise(data);
}

/// The receiver and its model.
struct Checked {
    rx: Receiver,
    model: VecDeque<(u32, u32)>,
}

impl Checked {
    fn new() -> Self {
        Checked {
            rx: Receiver::new(),
            model: VecDeque::with_capacity(REMEMBERED),
        }
    }

    fn handle(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<char> {
        let got = self.rx.handle(now, ssrc, seq, ts, marker, payload);
        let key = EventPayload::parse(payload).and_then(|p| rfc4733::event_to_digit(p.event));
        let Some(digit) = key else {
            assert_eq!(got, None, "not a key, yet reported");
            return None;
        };
        if self.model.contains(&(ssrc, ts)) {
            assert_eq!(got, None, "a known press reported again");
            return None;
        }
        if self.model.len() == REMEMBERED {
            self.model.pop_front();
        }
        self.model.push_back((ssrc, ts));
        if marker {
            assert!(got.is_some(), "a marked new press not reported");
        }
        let e = got?;
        assert_eq!((e.digit, e.ssrc, e.timestamp), (digit, ssrc, ts));
        Some(e.digit)
    }
}

/// Runs `data`; returns what it reached.
pub fn exercise(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let mut now = Instant::now();
    let mut main = Checked::new();
    let mut reached = Reached::default();
    let mut last_ts = 0u32;
    let mut seq = 0u16;
    let mut budget = MAX_HANDLED;
    for _ in 0..MAX_OPS {
        if input.is_empty() || budget == 0 {
            break;
        }
        match input.u8() % OPS {
            OP_PACKET => {
                now += Duration::from_millis(u64::from(input.u8()));
                let sel = input.u8();
                let ssrc = match SSRCS.get(usize::from(sel % 4)) {
                    Some(s) => *s,
                    None => input.u32(),
                };
                seq = seq.wrapping_add(input.u16());
                let mode = input.u8();
                let ts = match mode & 3 {
                    0 => last_ts,
                    1 => last_ts.wrapping_add(u32::from(input.u16())),
                    // Near a segment's length: continuation territory.
                    2 => last_ts.wrapping_add(0xFFFF - u32::from(input.u16() % 2100)),
                    _ => input.u32(),
                };
                last_ts = ts;
                let marker = mode & 0x80 != 0;
                let payload = input.bytes8();
                budget -= 1;
                if let Some(d) = main.handle(now, ssrc, seq, ts, marker, payload) {
                    reached.keys.push(d);
                }
            }
            OP_PRESS => {
                let digit = "0123456789*#ABCD"
                    .chars()
                    .nth(usize::from(input.u8() % 16))
                    .unwrap_or('0');
                let duration_ms = u32::from(input.u16() % 6000);
                let clock = input.choose(&[8000, 16000, 48000]).unwrap_or(8000);
                let start = input.u32();
                let volume = input.u8();
                let repeat = input.u8();
                let ssrc = SSRCS.get(usize::from(repeat >> 6)).copied().unwrap_or(9);
                let Ok(sender) = Sender::new(digit, duration_ms, volume, start, clock) else {
                    panic!("Sender refused {digit:?} at {clock} Hz");
                };
                let cost = press_cost(duration_ms, clock, repeat);
                if cost > budget {
                    continue;
                }
                budget -= cost;
                let keys = press(sender, &mut now, &mut seq, repeat, ssrc, &mut main);
                assert_eq!(keys.0, digit.to_string(), "press read back");
                reached.presses += 1;
                reached.segmented += u64::from(keys.1 > 1);
                reached.keys.push(digit);
                last_ts = start;
            }
            _ => now += Duration::from_millis(u64::from(input.u16()) * 10),
        }
    }
    reached
}

/// Packets both receivers handle for a press (an upper bound): one per
/// 20 ms of the press, two more end packets, each twice if duplicated, the
/// three ends again if repeated.
fn press_cost(duration_ms: u32, clock: u32, repeat: u8) -> usize {
    let frame = (clock / 50).max(1);
    let units = (duration_ms * (clock / 1000)).max(frame);
    let packets = units.div_ceil(frame) as usize + 2;
    let copies = if repeat & 1 != 0 { 2 } else { 1 };
    let ends = if repeat & 2 != 0 { 3 } else { 0 };
    (packets * copies + ends) * 2
}

/// Sends one press, one packet per 20 ms (each twice when `repeat` bit 0
/// is set, the end packets again when bit 1 is), to a fresh receiver and
/// to `main`; returns what the fresh one reported and how many segments the
/// press took.
fn press(
    mut sender: Sender,
    now: &mut Instant,
    seq: &mut u16,
    repeat: u8,
    ssrc: u32,
    main: &mut Checked,
) -> (String, usize) {
    let mut fresh = Checked::new();
    let mut heard = String::new();
    let mut segments = Vec::new();
    let mut ends = Vec::new();
    let mut payload = [0u8; 4];
    while let Some((len, marker)) = sender.next_payload(&mut payload) {
        *seq = seq.wrapping_add(1);
        *now += Duration::from_millis(20);
        let ts = sender.timestamp();
        if !segments.contains(&ts) {
            segments.push(ts);
        }
        let p = payload.get(..len).unwrap_or_default();
        let copies = if repeat & 1 != 0 { 2 } else { 1 };
        for _ in 0..copies {
            heard.extend(fresh.handle(*now, ssrc, *seq, ts, marker, p));
            let _ = main.handle(*now, ssrc, *seq, ts, marker, p);
        }
        if EventPayload::parse(p).is_some_and(|e| e.end) {
            ends.push((*seq, ts, payload));
        }
    }
    if repeat & 2 != 0 {
        for (s, ts, p) in ends {
            heard.extend(fresh.handle(*now, ssrc, s, ts, false, &p));
            let _ = main.handle(*now, ssrc, s, ts, false, &p);
        }
    }
    (heard, segments.len())
}

/// Seeds: presses of every key (short, long and segmented, at 8, 16 and
/// 48 kHz), and hand-made packets of a press with loss, duplicates and a
/// second press of the same key.
pub fn seeds() -> Vec<Vec<u8>> {
    let press = |s: &mut Seed, key: u8, ms: u16, clock: u8, repeat: u8| {
        s.u8(OP_PRESS)
            .u8(key)
            .u16(ms)
            .u8(clock)
            .u32(0x1000_0000)
            .u8(10)
            .u8(repeat);
        s.u8(OP_WAIT).u16(20);
    };
    let mut a = Seed::new();
    for key in 0..16 {
        press(&mut a, key, 100, key % 3, key & 3);
    }
    let mut b = Seed::new();
    press(&mut b, 5, 4500, 1, 0);
    press(&mut b, 5, 1500, 2, 3);
    press(&mut b, 11, 2500, 0, 1);
    let mut c = Seed::new();
    // A press by hand: start (marker), updates, a lost packet, ends, dups.
    let packet = |s: &mut Seed, dt: u8, mode: u8, step: u16, payload: [u8; 4]| {
        s.u8(OP_PACKET).u8(dt).u8(0).u16(1).u8(mode);
        if mode & 3 == 1 || mode & 3 == 2 {
            s.u16(step);
        }
        s.bytes8(&payload);
    };
    packet(&mut c, 20, 0x81, 800, [3, 10, 0, 160]);
    packet(&mut c, 20, 0, 0, [3, 10, 1, 64]);
    packet(&mut c, 40, 0, 0, [3, 0x8A, 3, 32]);
    packet(&mut c, 0, 0, 0, [3, 0x8A, 3, 32]);
    packet(&mut c, 0, 0, 0, [3, 0x8A, 3, 32]);
    packet(&mut c, 200, 0x81, 1600, [3, 10, 0, 160]);
    packet(&mut c, 20, 0x01, 65440, [3, 10, 0, 160]);
    packet(&mut c, 20, 0x02, 0, [3, 10, 1, 64]);
    vec![a.into_bytes(), b.into_bytes(), c.into_bytes()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_read_back_every_key_and_segmented_presses() {
        let s = seeds();
        let a = exercise(&s[0]);
        assert_eq!(a.keys, "0123456789*#ABCD");
        let b = exercise(&s[1]);
        assert_eq!(b.presses, 3);
        assert!(b.segmented >= 2, "{b:?}");
        let c = exercise(&s[2]);
        assert_eq!(c.keys, "33", "{c:?}");
    }
}
