//! The slot ring of the jitter buffer: one slot per sequence number modulo
//! the capacity, each slot's payload at a fixed stride in one allocation.
//! The stride starts at a 20 ms G.711 packet and grows (every slot at once,
//! at least doubling) the first time a larger packet arrives, up to the
//! largest payload accepted: a call at 20 ms never holds storage for
//! 60 ms packets or the largest Opus frame (it was 30 kB per G.711 call
//! and 80 kB per Opus call, the largest share of a held call's memory).
//! The slots grow the same way: a ring starts with [`FIRST_SLOTS`] and
//! doubles, up to its capacity, the first time the packets it must hold at
//! once span more (a steady 20 ms call on a quiet path holds a few; 64
//! slots of 160 bytes and their metadata were 12.8 kB of every call).

/// Metadata of one buffered packet; its payload lives in [`Ring::data`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    pub occupied: bool,
    /// Extended sequence number, relative to the stream's first packet.
    pub seq: i64,
    /// Extended timestamp, relative to the stream's first packet.
    pub ts: i64,
    /// Media time the packet lasts, in timestamp units.
    pub dur: i64,
    pub len: usize,
}

/// The first stride: a 20 ms G.711 packet.
const FIRST_STRIDE: usize = 160;

/// The first slot count: 320 ms of 20 ms packets, more than a quiet path
/// ever holds at once.
const FIRST_SLOTS: usize = 16;

/// Storage indexed by extended sequence number, up to `capacity` packets
/// spanning at most `capacity` sequence numbers.
#[derive(Debug)]
pub(super) struct Ring {
    /// One per sequence number modulo their count (at most `max_slots`).
    slots: Vec<Slot>,
    data: Vec<u8>,
    /// Bytes reserved per slot now (at most `max_payload`).
    stride: usize,
    max_payload: usize,
    max_slots: usize,
    count: usize,
}

impl Ring {
    pub fn new(capacity: usize, max_payload: usize) -> Self {
        let max_slots = capacity.max(2);
        let slots = FIRST_SLOTS.min(max_slots);
        let stride = FIRST_STRIDE.min(max_payload).max(1);
        Self {
            slots: vec![Slot::default(); slots],
            data: vec![0; slots.saturating_mul(stride)],
            stride,
            max_payload,
            max_slots,
            count: 0,
        }
    }

    /// Room for the sequence numbers `lo..=hi` at once, which must hold
    /// every buffered packet and the one about to be inserted: the slots
    /// grow (at least doubling, up to the capacity) and every buffered
    /// packet moves to its new slot. Called before an insert, so a slot
    /// just removed needs not stay readable.
    pub fn fit_span(&mut self, lo: i64, hi: i64) {
        let need = usize::try_from(hi.saturating_sub(lo).saturating_add(1)).unwrap_or(0);
        let have = self.slots.len();
        if need <= have || have >= self.max_slots {
            return;
        }
        let n = need.max(have.saturating_mul(2)).min(self.max_slots);
        let mut slots = vec![Slot::default(); n];
        let mut data = vec![0; n.saturating_mul(self.stride)];
        let mut count = 0;
        for (old, bytes) in self.slots.iter().zip(self.data.chunks_exact(self.stride)) {
            if !old.occupied {
                continue;
            }
            // Distinct modulo the old count and within `n` of each other,
            // so distinct modulo `n`; a stray one that is not is dropped.
            let idx = old.seq.rem_euclid(n as i64) as usize;
            let start = idx.saturating_mul(self.stride);
            let (Some(slot), Some(dst)) = (
                slots.get_mut(idx),
                data.get_mut(start..start.saturating_add(self.stride)),
            ) else {
                continue;
            };
            if slot.occupied {
                continue;
            }
            *slot = *old;
            dst.copy_from_slice(bytes);
            count += 1;
        }
        self.slots = slots;
        self.data = data;
        self.count = count;
    }

    /// Room for `need` bytes per slot: one allocation, every slot's bytes
    /// kept (a slot just removed stays readable until the next insert).
    fn grow(&mut self, need: usize) {
        let stride = need
            .max(self.stride.saturating_mul(2))
            .min(self.max_payload.max(need));
        let mut data = vec![0; self.slots.len().saturating_mul(stride)];
        for (new, old) in data
            .chunks_exact_mut(stride)
            .zip(self.data.chunks_exact(self.stride))
        {
            if let Some(dst) = new.get_mut(..old.len()) {
                dst.copy_from_slice(old);
            }
        }
        self.data = data;
        self.stride = stride;
    }

    /// The most packets (and sequence numbers) the ring may span.
    pub fn capacity(&self) -> usize {
        self.max_slots
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn index(&self, seq: i64) -> usize {
        // rem_euclid of a positive modulus is in [0, len), so it fits usize.
        seq.rem_euclid(self.slots.len() as i64) as usize
    }

    /// The buffered packet with extended sequence `seq`, if any.
    pub fn get(&self, seq: i64) -> Option<Slot> {
        let slot = self.slots.get(self.index(seq))?;
        (slot.occupied && slot.seq == seq).then_some(*slot)
    }

    /// Stores a packet; the caller has checked `payload.len() <= max_payload`
    /// and that the slot is free.
    pub fn insert(&mut self, seq: i64, ts: i64, dur: i64, payload: &[u8]) -> bool {
        if payload.len() > self.stride {
            if payload.len() > self.max_payload {
                return false;
            }
            self.grow(payload.len());
        }
        let idx = self.index(seq);
        let start = idx.saturating_mul(self.stride);
        let Some(dst) = self
            .data
            .get_mut(start..start.saturating_add(payload.len()))
        else {
            return false;
        };
        let Some(slot) = self.slots.get_mut(idx) else {
            return false;
        };
        if slot.occupied {
            return false;
        }
        dst.copy_from_slice(payload);
        *slot = Slot {
            occupied: true,
            seq,
            ts,
            dur,
            len: payload.len(),
        };
        self.count += 1;
        true
    }

    /// Frees the slot of `seq`; its bytes stay readable until the next insert.
    pub fn remove(&mut self, seq: i64) {
        let idx = self.index(seq);
        if let Some(slot) = self.slots.get_mut(idx) {
            if slot.occupied && slot.seq == seq {
                slot.occupied = false;
                self.count = self.count.saturating_sub(1);
            }
        }
    }

    /// The payload bytes of the slot `seq` maps to (valid right after
    /// `get` or `remove` of that packet).
    pub fn payload(&self, seq: i64, len: usize) -> &[u8] {
        let start = self.index(seq).saturating_mul(self.stride);
        self.data
            .get(start..start.saturating_add(len))
            .unwrap_or_default()
    }

    /// The lowest buffered sequence number at or after `from`.
    pub fn first_from(&self, from: i64) -> Option<Slot> {
        if self.count == 0 {
            return None;
        }
        (0..self.slots.len() as i64).find_map(|k| self.get(from.saturating_add(k)))
    }

    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.occupied = false;
        }
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_finds_by_sequence() {
        let mut ring = Ring::new(4, 8);
        assert!(ring.insert(5, 800, 160, b"five"));
        assert!(ring.insert(7, 1120, 160, b"seven"));
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.first_from(4).map(|s| s.seq), Some(5));
        assert_eq!(ring.first_from(6).map(|s| s.seq), Some(7));
        let s = ring.get(7).unwrap();
        assert_eq!(ring.payload(7, s.len), b"seven");
        // 9 maps onto 5's slot: a collision, not a hit.
        assert!(ring.get(9).is_none());
        assert!(!ring.insert(9, 0, 160, b"x"));
        ring.remove(5);
        assert!(ring.get(5).is_none());
        assert_eq!(ring.len(), 1);
        ring.clear();
        assert!(ring.is_empty());
        assert!(ring.first_from(0).is_none());
    }

    #[test]
    fn storage_grows_for_a_larger_packet_and_keeps_what_it_holds() {
        let mut ring = Ring::new(4, 480);
        assert_eq!(ring.data.len(), 4 * 160);
        assert!(ring.insert(0, 0, 160, &[1; 160]));
        assert!(ring.insert(1, 160, 160, &[2; 160]));
        ring.remove(1);
        // A 60 ms packet: every slot grows at once, to the packet.
        assert!(ring.insert(2, 320, 480, &[3; 480]));
        assert_eq!(ring.data.len(), 4 * 480);
        assert_eq!(ring.payload(0, 160), &[1; 160]);
        // Removed, but readable until the next insert (as before growing).
        assert_eq!(ring.payload(1, 160), &[2; 160]);
        assert_eq!(ring.payload(2, 480), &[3; 480]);
        // Past the largest payload accepted: refused, nothing grows.
        assert!(!ring.insert(3, 800, 481, &[4; 481]));
        assert_eq!(ring.data.len(), 4 * 480);
        // A 30 ms packet first doubles the stride (no growth per size).
        let mut ring = Ring::new(4, 1275);
        assert!(ring.insert(0, 0, 240, &[5; 240]));
        assert_eq!(ring.data.len(), 4 * 320);
    }

    #[test]
    fn slots_grow_to_the_span_and_keep_every_packet() {
        let mut ring = Ring::new(64, 160);
        assert_eq!((ring.slots.len(), ring.capacity()), (FIRST_SLOTS, 64));
        for seq in [3, 5, 17] {
            ring.fit_span(3, seq);
            assert!(ring.insert(seq, seq * 160, 160, &[seq as u8; 160]));
        }
        // 3..=17 is 15 sequence numbers: still the first 16 slots.
        assert_eq!(ring.slots.len(), FIRST_SLOTS);
        // 3..=40 needs 38: the slots grow to that (more than doubling).
        ring.fit_span(3, 40);
        assert_eq!(ring.slots.len(), 38);
        assert!(ring.insert(40, 6400, 160, &[40; 160]));
        for seq in [3, 5, 17, 40] {
            let s = ring.get(seq).unwrap();
            assert_eq!(ring.payload(seq, s.len), &[seq as u8; 160]);
        }
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.first_from(4).map(|s| s.seq), Some(5));
        assert_eq!(ring.first_from(18).map(|s| s.seq), Some(40));
        // Never past the capacity.
        ring.fit_span(3, 1_000);
        assert_eq!(ring.slots.len(), 64);
        assert_eq!(ring.len(), 4);
        ring.fit_span(3, 10_000);
        assert_eq!(ring.slots.len(), 64);
    }

    #[test]
    fn negative_sequences_index_safely() {
        let mut ring = Ring::new(3, 2);
        assert!(ring.insert(-1, -160, 160, b"ab"));
        assert_eq!(ring.first_from(-2).map(|s| s.seq), Some(-1));
    }
}
