//! A map of transactions that knows when the next of them is due.
//!
//! At 1,200 calls a second a server holds tens of thousands of finished
//! transactions for their 32 s of absorbing retransmissions (Timers J and
//! L). Scanning all of them on every `poll_timeout` and `handle_timeout`
//! made each SIP event cost O(transactions). `TimedMap` keeps each entry's
//! next deadline in a min-heap beside the map, re-read whenever the entry
//! may have changed (every mutable access goes through
//! [`TimedMap::modify`], so none can be missed), so the earliest deadline
//! is a peek and the due entries a few pops.
//!
//! The heap is lazy: an entry whose deadline moved leaves its old heap
//! item behind, recognised as stale by its sequence number when popped.
//! A stale item can only make the endpoint wake early, never late; the
//! heap is rebuilt when stale items outnumber live ones.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// An entry that may have a timer running.
pub(super) trait Deadline {
    fn deadline(&self) -> Option<Instant>;
}

struct Item<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Item<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<K> Eq for Item<K> {}
impl<K> PartialOrd for Item<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Item<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Slot<V> {
    value: V,
    /// The heap item that is this entry's live timer, if any.
    armed: Option<(Instant, u64)>,
}

pub(super) struct TimedMap<K, V> {
    map: HashMap<K, Slot<V>>,
    heap: BinaryHeap<Reverse<Item<K>>>,
    seq: u64,
}

impl<K: Clone + Eq + Hash, V: Deadline> TimedMap<K, V> {
    pub fn new() -> Self {
        TimedMap {
            map: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub fn insert(&mut self, key: K, value: V) {
        self.map.insert(key.clone(), Slot { value, armed: None });
        self.rearm(&key);
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|s| &s.value)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Changes an entry and re-reads its deadline.
    pub fn modify<R>(&mut self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let slot = self.map.get_mut(key)?;
        let r = f(&mut slot.value);
        self.rearm(key);
        Some(r)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        // Its heap item, if any, is now stale.
        self.map.remove(key).map(|s| s.value)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, s)| (k, &s.value))
    }

    /// The earliest deadline; possibly one that has since moved later
    /// (the endpoint then wakes early and finds nothing due).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(i)| i.at)
    }

    /// The keys whose deadline is at or before `now`, each once. Their
    /// timers are disarmed: the caller handles each with [`Self::modify`],
    /// which arms the next one.
    pub fn due(&mut self, now: Instant) -> Vec<K> {
        let mut keys = Vec::new();
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.at > now {
                break;
            }
            let Some(Reverse(item)) = self.heap.pop() else {
                break;
            };
            if let Some(slot) = self.map.get_mut(&item.key) {
                if slot.armed == Some((item.at, item.seq)) {
                    slot.armed = None;
                    keys.push(item.key);
                }
            }
        }
        keys
    }

    fn rearm(&mut self, key: &K) {
        let Some(slot) = self.map.get_mut(key) else {
            return;
        };
        let at = slot.value.deadline();
        if at == slot.armed.map(|(t, _)| t) {
            return;
        }
        match at {
            None => slot.armed = None,
            Some(at) => {
                self.seq += 1;
                slot.armed = Some((at, self.seq));
                self.heap.push(Reverse(Item {
                    at,
                    seq: self.seq,
                    key: key.clone(),
                }));
            }
        }
        if self.heap.len() > 2 * self.map.len() + 64 {
            self.compact();
        }
    }

    /// Drops the stale heap items.
    fn compact(&mut self) {
        let live: Vec<Reverse<Item<K>>> = self
            .map
            .iter()
            .filter_map(|(k, s)| {
                s.armed.map(|(at, seq)| {
                    Reverse(Item {
                        at,
                        seq,
                        key: k.clone(),
                    })
                })
            })
            .collect();
        self.heap = BinaryHeap::from(live);
    }

    /// Every entry with a timer running has it armed no later than it is
    /// due (debug builds check this on every poll).
    #[cfg(debug_assertions)]
    pub fn check(&self) {
        for s in self.map.values() {
            if let Some(at) = s.value.deadline() {
                let armed = s.armed.map(|(t, _)| t);
                assert!(
                    armed.is_some_and(|t| t <= at),
                    "a transaction's timer at {at:?} is armed at {armed:?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct T(Option<Instant>);
    impl Deadline for T {
        fn deadline(&self) -> Option<Instant> {
            self.0
        }
    }

    #[test]
    fn due_entries_come_out_once_in_deadline_order_and_moved_ones_at_their_new_time() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut m = TimedMap::new();
        m.insert("a", T(Some(s(3))));
        m.insert("b", T(Some(s(1))));
        m.insert("c", T(None));
        m.insert("d", T(Some(s(2))));
        assert_eq!(m.next_deadline(), Some(s(1)));
        // "d" moves later: its old item is stale.
        m.modify(&"d", |t| t.0 = Some(s(5)));
        assert_eq!(m.due(s(2)), vec!["b"]);
        // "b" was disarmed by `due` and stays so until modified.
        assert_eq!(m.due(s(2)), Vec::<&str>::new());
        m.modify(&"b", |t| t.0 = Some(s(4)));
        m.remove(&"a");
        assert_eq!(m.due(s(4)), vec!["b"]);
        m.modify(&"b", |t| t.0 = None);
        m.modify(&"c", |t| t.0 = Some(s(6)));
        assert_eq!(m.due(s(10)), vec!["d", "c"]);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn the_heap_stays_bounded_when_deadlines_keep_moving() {
        let t0 = Instant::now();
        let mut m = TimedMap::new();
        for k in 0..10u32 {
            m.insert(k, T(Some(t0)));
        }
        for n in 1..10_000u64 {
            let k = (n % 10) as u32;
            m.modify(&k, |t| t.0 = Some(t0 + Duration::from_millis(n)));
        }
        assert!(m.heap.len() <= 2 * 10 + 64 + 1, "{}", m.heap.len());
        m.check();
        assert_eq!(m.due(t0 + Duration::from_secs(100)).len(), 10);
    }
}
