use std::time::{Duration, Instant};

use super::*;

pub(super) const SSRC: u32 = 0x1234_5678;

/// One arriving telephone-event packet, `t_ms` after the test's base instant.
#[derive(Clone, Copy)]
struct Pkt {
    t_ms: u64,
    ssrc: u32,
    ts: u32,
    marker: bool,
    event: u8,
    end: bool,
    duration: u16,
}

fn pkt(t_ms: u64, ts: u32, marker: bool, event: u8, end: bool, duration: u16) -> Pkt {
    Pkt {
        t_ms,
        ssrc: SSRC,
        ts,
        marker,
        event,
        end,
        duration,
    }
}

/// The packets a well-behaved sender emits for one press of `dur` units:
/// updates every 160 units (20 ms), then three end packets.
fn press(t0_ms: u64, ts: u32, event: u8, dur: u16) -> Vec<Pkt> {
    let mut v = Vec::new();
    let mut d = 160u16;
    let mut t = t0_ms;
    while d < dur {
        v.push(pkt(t, ts, v.is_empty(), event, false, d));
        d += 160;
        t += 20;
    }
    for _ in 0..3 {
        v.push(pkt(t, ts, v.is_empty(), event, true, dur));
        t += 20;
    }
    v
}

/// Feeds packets in order; returns `(arrival index, event)` for each report.
fn run(packets: &[Pkt]) -> Vec<(usize, DtmfEvent)> {
    let base = Instant::now();
    let mut rx = Receiver::new();
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let mut payload = [0u8; 4];
        EventPayload {
            event: p.event,
            end: p.end,
            volume: 10,
            duration: p.duration,
        }
        .write(&mut payload)
        .unwrap();
        let now = base + Duration::from_millis(p.t_ms);
        if let Some(ev) = rx.handle(now, p.ssrc, i as u16, p.ts, p.marker, &payload) {
            out.push((i, ev));
        }
    }
    out
}

fn ev(digit: char, ts: u32) -> DtmfEvent {
    DtmfEvent {
        digit,
        ssrc: SSRC,
        timestamp: ts,
    }
}

#[test]
fn digit_mapping_matches_rfc4733_table() {
    // RFC 4733 §3.2, Table 1.
    let table = [
        (0, '0'),
        (1, '1'),
        (9, '9'),
        (10, '*'),
        (11, '#'),
        (12, 'A'),
        (13, 'B'),
        (14, 'C'),
        (15, 'D'),
    ];
    for (code, digit) in table {
        assert_eq!(event_to_digit(code), Some(digit));
        assert_eq!(digit_to_event(digit), Some(code));
    }
    assert_eq!(digit_to_event('d'), Some(15));
    for code in 16..=255u8 {
        assert_eq!(event_to_digit(code), None, "event {code}");
    }
    for c in ['E', 'x', ' ', '+', 'é'] {
        assert_eq!(digit_to_event(c), None);
    }
}

#[test]
fn payload_layout_matches_rfc4733_figure_1() {
    // Event 5, E bit, volume 10, duration 800: 05 | 1 0 001010 | 0x0320.
    let p = EventPayload {
        event: 5,
        end: true,
        volume: 10,
        duration: 800,
    };
    let mut b = [0u8; 4];
    assert_eq!(p.write(&mut b), Some(4));
    assert_eq!(b, [0x05, 0x8A, 0x03, 0x20]);
    assert_eq!(EventPayload::parse(&b), Some(p));
    // The R bit is ignored on receipt.
    assert_eq!(
        EventPayload::parse(&[0x0B, 0x40 | 0x3F, 0xFF, 0xFF]),
        Some(EventPayload {
            event: 11,
            end: false,
            volume: 63,
            duration: 0xFFFF
        })
    );
    assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
    assert_eq!(p.write(&mut [0u8; 3]), None);
}

#[test]
fn receiver_cases() {
    let normal = press(0, 1000, 5, 800);

    let mut dup = Vec::new();
    for p in press(0, 1000, 5, 800) {
        dup.push(p);
        dup.push(p);
    }

    let lost_first: Vec<Pkt> = press(0, 1000, 7, 800).into_iter().skip(1).collect();
    let only_end: Vec<Pkt> = press(0, 1000, 11, 800).into_iter().skip(4).collect();

    let mut reordered = press(0, 1000, 3, 800);
    reordered.swap(0, 2);

    let mut twice = press(0, 1000, 1, 800);
    twice.extend(press(300, 1000 + 800 + 800, 1, 800));

    let no_end = |t0: u64, ts: u32, dur: u16| -> Vec<Pkt> {
        press(t0, ts, 2, dur)
            .into_iter()
            .filter(|p| !p.end)
            .collect()
    };
    let mut twice_no_end = no_end(0, 1000, 800);
    twice_no_end.extend(no_end(200, 1000 + 1600, 800));

    // Twice, with the second press's marker packet and the first press's end
    // packets all lost, at an autodialer's 50 ms on / 50 ms off: still two
    // presses (short presses are never segments).
    let mut twice_worst = no_end(0, 1000, 400);
    twice_worst.extend(no_end(100, 1000 + 800, 400).into_iter().skip(1));

    let mut late_retransmit = press(0, 1000, 4, 800);
    let late = *late_retransmit.last().unwrap();
    late_retransmit.extend(press(200, 3000, 6, 800));
    late_retransmit.push(Pkt { t_ms: 300, ..late });

    let mut other_ssrc = press(0, 1000, 8, 800);
    for p in press(10, 555, 9, 800) {
        other_ssrc.push(Pkt { ssrc: 77, ..p });
    }
    other_ssrc.sort_by_key(|p| p.t_ms);

    // An RFC 2833-era sender lets the duration field wrap on one timestamp.
    let wrapping_duration = vec![
        pkt(0, 1000, true, 0, false, 65_280),
        pkt(20, 1000, false, 0, false, 65_440),
        pkt(40, 1000, false, 0, false, 64),
        pkt(60, 1000, false, 0, true, 224),
    ];

    let ignored = vec![
        pkt(0, 1000, true, 16, false, 160),
        pkt(20, 1000, false, 200, true, 320),
    ];

    type Case = (&'static str, Vec<Pkt>, Vec<(usize, DtmfEvent)>);
    let cases: Vec<Case> = vec![
        (
            "normal press with end repeats",
            normal,
            vec![(0, ev('5', 1000))],
        ),
        ("every packet duplicated", dup, vec![(0, ev('5', 1000))]),
        ("first packet lost", lost_first, vec![(0, ev('7', 1000))]),
        (
            "only end packets arrive",
            only_end,
            vec![(0, ev('#', 1000))],
        ),
        ("reordered start", reordered, vec![(0, ev('3', 1000))]),
        (
            "same digit twice",
            twice,
            vec![(0, ev('1', 1000)), (7, ev('1', 2600))],
        ),
        (
            "sender never sends end, digit twice",
            twice_no_end,
            vec![(0, ev('2', 1000)), (4, ev('2', 2600))],
        ),
        (
            "marker and ends lost, digit twice",
            twice_worst,
            vec![(0, ev('2', 1000)), (2, ev('2', 1800))],
        ),
        (
            "late retransmission after next press",
            late_retransmit,
            vec![(0, ev('4', 1000)), (7, ev('6', 3000))],
        ),
        (
            "events on another ssrc",
            other_ssrc,
            vec![
                (0, ev('8', 1000)),
                (
                    1,
                    DtmfEvent {
                        digit: '9',
                        ssrc: 77,
                        timestamp: 555,
                    },
                ),
            ],
        ),
        ("events above 15 ignored", ignored, vec![]),
        (
            "duration wraps on one timestamp",
            wrapping_duration,
            vec![(0, ev('0', 1000))],
        ),
    ];
    for (name, packets, expected) in cases {
        assert_eq!(run(&packets), expected, "case: {name}");
    }
}

#[test]
fn short_payload_is_ignored_and_does_not_block_the_press() {
    let base = Instant::now();
    let mut rx = Receiver::new();
    assert_eq!(rx.handle(base, SSRC, 1, 1000, true, &[5, 0x0A, 0]), None);
    assert_eq!(rx.handle(base, SSRC, 1, 1000, true, &[]), None);
    assert_eq!(
        rx.handle(base, SSRC, 2, 1000, false, &[5, 0x0A, 0, 160]),
        Some(ev('5', 1000))
    );
}

/// A 10 s press at 8 kHz is 80 000 units: one segment of 65 440 units, then
/// a continuation segment at ts + 65 440 (RFC 4733 §2.5.1.3).
fn long_press(start_ts: u32) -> Vec<Pkt> {
    long_press_ms(start_ts, 10_000)
}

/// The packets of a press of '0' lasting `ms`, from a `Sender`.
fn long_press_ms(start_ts: u32, ms: u32) -> Vec<Pkt> {
    let mut tx = Sender::new('0', ms, 10, start_ts, 8000).unwrap();
    let mut v = Vec::new();
    let mut buf = [0u8; 4];
    let mut t = 0;
    while let Some((_, marker)) = tx.next_payload(&mut buf) {
        let p = EventPayload::parse(&buf).unwrap();
        v.push(pkt(t, tx.timestamp(), marker, p.event, p.end, p.duration));
        t += 20;
    }
    v
}

#[test]
fn long_press_segments_count_once() {
    let packets = long_press(4000);
    assert_eq!(run(&packets), vec![(0, ev('0', 4000))]);

    // Tail of the first segment lost, and the continuation's first packet too.
    let split = packets
        .iter()
        .position(|p| p.ts != 4000)
        .expect("the press has a second segment");
    let mut lossy = packets.clone();
    lossy.drain(split - 3..split + 1);
    assert_eq!(run(&lossy), vec![(0, ev('0', 4000))]);

    // A long run of the first segment's tail lost (400 ms), and the
    // continuation's first packets: the segment distance still tells.
    let mut tail_lost = packets.clone();
    tail_lost.drain(split - 20..split + 5);
    assert_eq!(run(&tail_lost), vec![(0, ev('0', 4000))]);

    // Timestamp wrap inside the press.
    let wrapping = long_press(u32::MAX - 30_000);
    assert_eq!(run(&wrapping), vec![(0, ev('0', u32::MAX - 30_000))]);
}

#[test]
fn a_new_segment_after_a_long_silence_is_a_new_press() {
    let mut packets = long_press(4000);
    let split = packets.iter().position(|p| p.ts != 4000).unwrap();
    for p in packets.iter_mut().skip(split) {
        p.t_ms += 2_000;
    }
    let got = run(&packets);
    assert_eq!(
        got.len(),
        2,
        "{:?}",
        got.iter().map(|g| g.0).collect::<Vec<_>>()
    );
}

/// The one case the receiver cannot tell apart (documented in the module):
/// a new press of the same digit starting about 0xFFFF units after the
/// previous press's last segment, with its marker packet and all the old
/// press's end packets lost. With the marker, it is a second press.
#[test]
fn re_press_at_segment_distance() {
    // First press, 15.965 s: a full segment at 4000, then a last segment at
    // 69 440 lasting 62 280 units (its end packets lost); the re-press
    // starts 200 ms (1 600 units) later: 63 880 after the last segment's
    // start, inside the segment-distance window.
    let mut packets = long_press_ms(4000, 15_965);
    assert_eq!(packets.last().unwrap().duration, 62_280);
    packets.retain(|p| !p.end);
    let last_seg = 4000 + 65_440;
    let next_ts = last_seg + 63_880;
    let t = packets.last().unwrap().t_ms + 200;
    let second = press(t, next_ts, 0, 800);
    let mut with_marker = packets.clone();
    with_marker.extend(second.iter().copied());
    assert_eq!(run(&with_marker).len(), 2);
    let mut without = packets;
    without.extend(second.iter().copied().skip(1));
    assert_eq!(run(&without), vec![(0, ev('0', 4000))]);
    // Had one end packet of the first press arrived, there is no doubt.
    let mut ended = long_press_ms(4000, 15_965);
    ended.truncate(ended.len() - 2);
    ended.extend(second.into_iter().skip(1));
    assert_eq!(run(&ended).len(), 2);
}

#[test]
fn sender_100ms_at_8khz() {
    let mut tx = Sender::new('9', 100, 10, 5000, 8000).unwrap();
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    while let Some((len, marker)) = tx.next_payload(&mut buf) {
        assert_eq!(len, 4);
        assert_eq!(tx.timestamp(), 5000);
        let p = EventPayload::parse(&buf).unwrap();
        assert_eq!((p.event, p.volume), (9, 10));
        got.push((marker, p.end, p.duration));
    }
    assert_eq!(
        got,
        vec![
            (true, false, 160),
            (false, false, 320),
            (false, false, 480),
            (false, false, 640),
            (false, true, 800),
            (false, true, 800),
            (false, true, 800),
        ]
    );
    assert!(tx.is_done());
    assert_eq!(tx.end_timestamp(), 5800);
    assert_eq!(tx.next_payload(&mut buf), None);
}

#[test]
fn sender_segments_long_press() {
    let packets = long_press(0);
    let first_seg: Vec<_> = packets.iter().filter(|p| p.ts == 0).collect();
    let second_seg: Vec<_> = packets.iter().filter(|p| p.ts == 65_440).collect();
    assert_eq!(first_seg.len() + second_seg.len(), packets.len());
    assert_eq!(first_seg.last().unwrap().duration, 65_440);
    assert!(first_seg.iter().all(|p| !p.end));
    assert_eq!(second_seg.first().unwrap().duration, 160);
    assert!(!second_seg.first().unwrap().marker);
    let ends: Vec<_> = second_seg.iter().filter(|p| p.end).collect();
    assert_eq!(ends.len(), 3);
    assert!(ends.iter().all(|p| p.duration == (80_000 - 65_440) as u16));
    assert_eq!(packets.iter().filter(|p| p.marker).count(), 1);
}

#[test]
fn sender_rejects_bad_input() {
    assert_eq!(
        Sender::new('x', 100, 10, 0, 8000).unwrap_err(),
        Rfc4733Error::UnknownDigit('x')
    );
    assert_eq!(
        Sender::new('1', 100, 10, 0, 10).unwrap_err(),
        Rfc4733Error::BadClockRate(10)
    );
    // Zero duration still sends one packet's worth; volume is clamped.
    let mut tx = Sender::new('1', 0, 200, 0, 8000).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(tx.next_payload(&mut [0u8; 3]), None);
    assert_eq!(tx.next_payload(&mut buf), Some((4, true)));
    let p = EventPayload::parse(&buf).unwrap();
    assert_eq!((p.end, p.volume, p.duration), (true, 63, 160));
}
