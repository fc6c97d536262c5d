//! The slot ring of the jitter buffer: one slot per sequence number modulo
//! the capacity, with all payload storage allocated once at construction.

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

/// Fixed-capacity storage indexed by extended sequence number.
#[derive(Debug)]
pub(super) struct Ring {
    slots: Vec<Slot>,
    data: Vec<u8>,
    max_payload: usize,
    count: usize,
}

impl Ring {
    pub fn new(capacity: usize, max_payload: usize) -> Self {
        let capacity = capacity.max(2);
        Self {
            slots: vec![Slot::default(); capacity],
            data: vec![0; capacity.saturating_mul(max_payload)],
            max_payload,
            count: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
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
        let idx = self.index(seq);
        let start = idx.saturating_mul(self.max_payload);
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
        let start = self.index(seq).saturating_mul(self.max_payload);
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
    fn negative_sequences_index_safely() {
        let mut ring = Ring::new(3, 2);
        assert!(ring.insert(-1, -160, 160, b"ab"));
        assert_eq!(ring.first_from(-2).map(|s| s.seq), Some(-1));
    }
}
