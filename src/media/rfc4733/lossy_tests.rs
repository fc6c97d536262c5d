//! `Sender` → `Receiver` through simulated loss, duplication and
//! reordering, and arbitrary input, as property tests.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::tests::SSRC;
use super::*;

/// A tiny seeded generator so the network schedule is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

proptest! {
    /// Presses from a `Sender` through a network that loses, duplicates and
    /// reorders packets (jitter below the gap between presses): every press
    /// with at least one surviving packet is reported exactly once, in order,
    /// and on its first surviving packet.
    #[test]
    fn sender_to_receiver_through_lossy_network(
        digits in prop::collection::vec(prop::sample::select(
            vec!['0','1','2','3','4','5','6','7','8','9','*','#','A','B','C','D']), 1..12),
        seed in 1u64..u64::MAX,
        loss_pct in 0u64..60,
        dup_pct in 0u64..30,
    ) {
        let mut rng = Rng(seed);
        let mut arrivals: Vec<(u64, usize, u32, bool, [u8; 4])> = Vec::new();
        let mut surviving = Vec::new();
        let mut t_ms = 0u64;
        let mut ts = 12_345u32;
        for (i, &d) in digits.iter().enumerate() {
            let dur_ms = 40 + rng.below(200) as u32;
            let mut tx = Sender::new(d, dur_ms, 10, ts, 8000).unwrap();
            let mut buf = [0u8; 4];
            let mut any = false;
            while let Some((_, marker)) = tx.next_payload(&mut buf) {
                let copies = if rng.below(100) < loss_pct { 0 }
                    else if rng.below(100) < dup_pct { 2 } else { 1 };
                for _ in 0..copies {
                    let jitter = rng.below(60);
                    arrivals.push((t_ms + jitter, i, tx.timestamp(), marker, buf));
                    any = true;
                }
                t_ms += 20;
            }
            if any {
                surviving.push(i);
            }
            // At least 100 ms of silence between presses.
            let gap_ms = 100 + rng.below(300);
            t_ms += gap_ms;
            ts = tx.end_timestamp().wrapping_add(40 * 8 + gap_ms as u32 * 8);
        }
        arrivals.sort_by_key(|a| a.0);
        let base = Instant::now();
        let mut rx = Receiver::new();
        let mut reported = Vec::new();
        for (k, (at, press_idx, ts, marker, payload)) in arrivals.iter().enumerate() {
            let now = base + Duration::from_millis(*at);
            if let Some(ev) = rx.handle(now, SSRC, k as u16, *ts, *marker, payload) {
                prop_assert_eq!(ev.digit, digits[*press_idx]);
                let first = arrivals.iter().position(|a| a.1 == *press_idx).unwrap();
                prop_assert_eq!(first, k, "reported on its first surviving packet");
                reported.push(*press_idx);
            }
        }
        prop_assert_eq!(reported, surviving);
    }

    /// Long presses (segmented) and short ones, the same digit repeated,
    /// through heavy loss: each press with a surviving packet is reported
    /// exactly once, in order — except a press that is indistinguishable
    /// from the next segment of the previous one (same digit, its marker
    /// packet and all three of the previous press's end packets lost): that
    /// one may be taken as a continuation, never reported twice.
    #[test]
    fn long_presses_through_heavy_loss(
        presses in prop::collection::vec((0u8..3, 40u32..20_000), 1..5),
        seed in 1u64..u64::MAX,
        loss_pct in 0u64..50,
    ) {
        let mut rng = Rng(seed);
        let mut arrivals: Vec<(u64, usize, u32, bool, [u8; 4])> = Vec::new();
        let mut surviving = Vec::new();
        let mut ambiguous = vec![false; presses.len()];
        let mut prev_ends_lost = false;
        let (mut t_ms, mut ts) = (0u64, u32::MAX - 200_000);
        for (i, &(digit, dur_ms)) in presses.iter().enumerate() {
            let d = char::from(b'7' + digit);
            let mut tx = Sender::new(d, dur_ms, 10, ts, 8000).unwrap();
            let mut buf = [0u8; 4];
            let (mut any, mut ends_delivered) = (false, 0);
            while let Some((_, marker)) = tx.next_payload(&mut buf) {
                let delivered = rng.below(100) >= loss_pct;
                if delivered {
                    arrivals.push((t_ms + rng.below(30), i, tx.timestamp(), marker, buf));
                    any = true;
                }
                if marker && !delivered && i > 0 && prev_ends_lost && presses[i - 1].0 == digit {
                    ambiguous[i] = true;
                }
                if EventPayload::parse(&buf).is_some_and(|p| p.end) && delivered {
                    ends_delivered += 1;
                }
                t_ms += 20;
            }
            prev_ends_lost = ends_delivered == 0;
            if any {
                surviving.push(i);
            }
            let gap_ms = 100 + rng.below(500);
            t_ms += gap_ms;
            ts = tx.end_timestamp().wrapping_add(40 * 8 + gap_ms as u32 * 8);
        }
        arrivals.sort_by_key(|a| a.0);
        let base = Instant::now();
        let mut rx = Receiver::new();
        let mut reported = Vec::new();
        for (k, (at, press_idx, ts, marker, payload)) in arrivals.iter().enumerate() {
            let now = base + Duration::from_millis(*at);
            if let Some(ev) = rx.handle(now, SSRC, k as u16, *ts, *marker, payload) {
                prop_assert_eq!(ev.digit, char::from(b'7' + presses[*press_idx].0));
                reported.push(*press_idx);
            }
        }
        let must_report: Vec<usize> =
            surviving.iter().copied().filter(|&i| !ambiguous[i]).collect();
        let unexplained: Vec<usize> =
            reported.iter().copied().filter(|i| !surviving.contains(i)).collect();
        prop_assert!(unexplained.is_empty(), "reported a press with no packet: {:?}", unexplained);
        prop_assert!(reported.windows(2).all(|w| w[0] < w[1]), "order/duplicates: {:?}", reported);
        for i in must_report {
            prop_assert!(reported.contains(&i), "press {} missed: {:?}", i, reported);
        }
    }

    /// Arbitrary payload bytes and header fields never panic.
    #[test]
    fn receiver_never_panics(
        packets in prop::collection::vec(
            (any::<u32>(), any::<u16>(), any::<u32>(), any::<bool>(),
             prop::collection::vec(any::<u8>(), 0..8), 0u64..5000), 0..64)
    ) {
        let base = Instant::now();
        let mut rx = Receiver::new();
        for (ssrc, seq, ts, marker, payload, t) in packets {
            let got = rx.handle(base + Duration::from_millis(t), ssrc, seq, ts, marker, &payload);
            if let Some(ev) = got {
                prop_assert_eq!(digit_to_event(ev.digit), payload.first().copied());
            }
        }
    }
}
