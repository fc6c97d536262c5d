//! Reception statistics for the remote source: extended sequence numbers and
//! loss (RFC 3550 A.1 and A.3) and interarrival jitter (A.8). A change of SSRC
//! starts a fresh sequence space; the old source's loss is kept but the
//! jump between the two sequence spaces is never counted as loss.

/// A jump larger than this (forwards) is a restart or garbage, not loss.
const MAX_DROPOUT: u16 = 3000;
/// A jump backwards up to this is reordering/duplication.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// What one packet did to the sequence state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// In range (new, late or duplicate): count it.
    Valid,
    /// A large jump not (yet) confirmed by the next packet (A.1: the next
    /// packet following it resynchronises).
    Jump,
}

/// Per-source reception state (plain data: copying it allocates nothing).
#[derive(Debug, Clone, Copy)]
pub struct Reception {
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    /// The sequence number that would confirm a large jump (A.1 `bad_seq`).
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Loss accumulated on earlier SSRCs of this peer.
    lost_before: i64,
    /// Last relative transit time (A.8), in timestamp units.
    transit: Option<u32>,
    /// A.8 jitter estimate, in timestamp units.
    jitter: f64,
}

impl Default for Reception {
    fn default() -> Self {
        Self::new()
    }
}

impl Reception {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self {
            ssrc: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            lost_before: 0,
            transit: None,
            jitter: 0.0,
        }
    }

    /// The current remote SSRC.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Accounts one media packet; `arrival` is the arrival time in timestamp
    /// units (any fixed origin). Returns whether the packet is in sequence
    /// range and whether its SSRC is new.
    pub fn update(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        arrival: u32,
    ) -> (SeqOutcome, bool) {
        self.account(ssrc, seq, Some((timestamp, arrival)))
    }

    /// Accounts a packet whose timestamp is not a sampling instant (an RFC
    /// 4733 event carries its start time in every packet): it counts for
    /// sequence and loss but would only corrupt the jitter estimate.
    pub fn update_untimed(&mut self, ssrc: u32, seq: u16) -> (SeqOutcome, bool) {
        self.account(ssrc, seq, None)
    }

    fn account(&mut self, ssrc: u32, seq: u16, timing: Option<(u32, u32)>) -> (SeqOutcome, bool) {
        let new_source = self.ssrc != Some(ssrc);
        if new_source {
            if self.ssrc.is_some() {
                self.lost_before = self.lost_before.saturating_add(self.lost_current());
            }
            self.ssrc = Some(ssrc);
            self.init_seq(seq);
            self.transit = None;
            self.received = 1;
            self.update_jitter(timing);
            return (SeqOutcome::Valid, true);
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if self.bad_seq == Some(seq) {
                // Two sequential packets after a jump: the source restarted.
                self.lost_before = self.lost_before.saturating_add(self.lost_current());
                self.init_seq(seq);
                self.transit = None;
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return (SeqOutcome::Jump, false);
            }
        }
        self.received += 1;
        self.update_jitter(timing);
        (SeqOutcome::Valid, false)
    }

    /// RFC 3550 A.8: J += (|D(i-1,i)| - J) / 16.
    fn update_jitter(&mut self, timing: Option<(u32, u32)>) {
        let Some((timestamp, arrival)) = timing else {
            return;
        };
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = f64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Extended highest sequence number received (A.1).
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u64 {
        let ext = u64::from(self.cycles) + u64::from(self.max_seq);
        (ext + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Loss on the current SSRC alone (what a report block on it carries).
    pub fn lost_current(&self) -> i64 {
        if self.ssrc.is_none() {
            return 0;
        }
        self.expected() as i64 - self.received as i64
    }

    /// Cumulative loss over this peer's sources (A.3; negative with
    /// duplicates).
    pub fn lost(&self) -> i64 {
        self.lost_before.saturating_add(self.lost_current())
    }

    /// Jitter estimate in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The fraction lost since the previous call, in 1/256 (A.3), for the
    /// next reception report.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_sequence_across_wrap() {
        let mut r = Reception::new();
        let mut seq = 65530u16;
        for i in 0..20u32 {
            assert_eq!(
                r.update(1, seq, i * 160, i * 160),
                (SeqOutcome::Valid, i == 0)
            );
            seq = seq.wrapping_add(1);
        }
        assert_eq!(r.extended_max(), 65536 + 13);
        assert_eq!(r.lost(), 0);
    }

    #[test]
    fn loss_reorder_and_duplicates() {
        let mut r = Reception::new();
        for seq in [10u16, 11, 13, 12, 12, 16] {
            r.update(1, seq, 0, 0);
        }
        // Expected 10..=16 = 7, received 6 (one duplicate): lost 1 (14, 15
        // lost, the duplicate offsets one of them, as A.3 specifies).
        assert_eq!(r.lost(), 1);
        assert_eq!(r.extended_max(), 16);
    }

    #[test]
    fn ssrc_change_is_not_loss() {
        let mut r = Reception::new();
        for seq in 100u16..110 {
            r.update(1, seq, 0, 0);
        }
        r.update(1, 112, 0, 0); // one lost (110, 111 → 2 lost)
        assert_eq!(r.lost(), 2);
        assert_eq!(r.update(2, 40_000, 0, 0), (SeqOutcome::Valid, true));
        for seq in 40_001u16..40_010 {
            r.update(2, seq, 0, 0);
        }
        assert_eq!(r.lost(), 2);
        assert_eq!(r.ssrc(), Some(2));
    }

    #[test]
    fn large_jump_needs_confirmation() {
        let mut r = Reception::new();
        for seq in 0u16..10 {
            r.update(1, seq, 0, 0);
        }
        assert_eq!(r.update(1, 30_000, 0, 0).0, SeqOutcome::Jump);
        assert_eq!(r.update(1, 30_001, 0, 0).0, SeqOutcome::Valid);
        assert_eq!(r.update(1, 30_002, 0, 0).0, SeqOutcome::Valid);
        assert_eq!(r.lost(), 0);
        assert_eq!(r.extended_max(), 30_002);
    }

    #[test]
    fn fraction_lost_per_interval() {
        let mut r = Reception::new();
        for seq in 0u16..100 {
            if seq % 4 != 3 {
                r.update(1, seq, 0, 0);
            }
        }
        // 100 expected (0..=99 → max 98 seen, so 99 expected), 75 received.
        let f = r.take_fraction_lost();
        assert_eq!(f, ((24u64 << 8) / 99) as u8);
        assert_eq!(r.take_fraction_lost(), 0);
    }

    proptest::proptest! {
        /// Random loss (no reordering) from any starting sequence number,
        /// across any number of wraps: the A.3 loss equals the packets lost
        /// between the first and the last received, and the extended highest
        /// sequence number counts the wraps.
        #[test]
        fn loss_is_exact_across_wraps(
            start in proptest::prelude::any::<u16>(),
            lost_mask in proptest::collection::vec(proptest::prelude::any::<bool>(), 1..3000),
            gaps in proptest::collection::vec(0u16..40, 1..3000),
        ) {
            let mut r = Reception::new();
            let mut seq = start;
            let mut sent = 0u64;
            let mut received_last = None;
            let mut lost_between = 0i64;
            let mut pending_lost = 0i64;
            for (i, (&lose, &gap)) in lost_mask.iter().zip(gaps.iter().cycle()).enumerate() {
                // Occasionally a burst of `gap` losses, below MAX_DROPOUT.
                let burst = if i % 97 == 50 { gap } else { 0 };
                seq = seq.wrapping_add(burst);
                pending_lost += i64::from(burst);
                sent += 1 + u64::from(burst);
                if lose && i > 0 {
                    pending_lost += 1;
                } else {
                    r.update(9, seq, 0, 0);
                    if received_last.is_some() {
                        lost_between += pending_lost;
                    }
                    pending_lost = 0;
                    received_last = Some(sent);
                }
                seq = seq.wrapping_add(1);
            }
            proptest::prop_assert_eq!(r.lost(), lost_between);
            let span = received_last.unwrap() - 1;
            proptest::prop_assert_eq!(u64::from(r.extended_max()), u64::from(start) + span);
        }
    }
}
