//! The span's B-channels as call control sees them: which are in
//! service, which call holds each, which wait for a RESTART ACKNOWLEDGE,
//! and the hunt for a free one. A channel is held by at most one call —
//! the map makes a double booking unrepresentable, and
//! [`Channels::claim`] refuses a channel that is not free.

use std::collections::{BTreeMap, BTreeSet};

use super::events::CallId;

/// The order in which this side picks a free B-channel for a call it
/// originates or for a peer's SETUP that leaves the choice to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hunt {
    /// Lowest free channel first.
    Ascending,
    /// Highest free channel first.
    Descending,
    /// The next free channel after the last one picked.
    RoundRobin,
}

impl Hunt {
    /// The usual default of a side: the network hunts up from the bottom
    /// and the user down from the top, so their picks collide only when
    /// the span is nearly full (fewer glares).
    pub fn default_for(side: super::calls::Side) -> Hunt {
        match side {
            super::calls::Side::Network => Hunt::Ascending,
            super::calls::Side::User => Hunt::Descending,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Channels {
    in_service: BTreeSet<u8>,
    held: BTreeMap<u8, CallId>,
    /// Out of service until a RESTART ACKNOWLEDGE (ours in flight).
    restarting: BTreeSet<u8>,
    hunt: Hunt,
    last: Option<u8>,
}

impl Channels {
    pub(crate) fn new(in_service: impl IntoIterator<Item = u8>, hunt: Hunt) -> Channels {
        Channels {
            in_service: in_service.into_iter().collect(),
            held: BTreeMap::new(),
            restarting: BTreeSet::new(),
            hunt,
            last: None,
        }
    }

    /// Whether `ch` is one of the span's in-service channels.
    pub(crate) fn exists(&self, ch: u8) -> bool {
        self.in_service.contains(&ch)
    }

    pub(crate) fn is_free(&self, ch: u8) -> bool {
        self.exists(ch) && !self.held.contains_key(&ch) && !self.restarting.contains(&ch)
    }

    pub(crate) fn holder(&self, ch: u8) -> Option<CallId> {
        self.held.get(&ch).copied()
    }

    /// A free channel in hunting order (not claimed yet).
    pub(crate) fn hunt(&self) -> Option<u8> {
        let mut free = self.in_service.iter().copied().filter(|c| self.is_free(*c));
        match self.hunt {
            Hunt::Ascending => free.next(),
            Hunt::Descending => free.next_back(),
            Hunt::RoundRobin => {
                let after = self.last.unwrap_or(0);
                let all: Vec<u8> = free.collect();
                all.iter()
                    .copied()
                    .find(|c| *c > after)
                    .or_else(|| all.first().copied())
            }
        }
    }

    /// Books `ch` for `call`; false (and nothing changes) unless free.
    pub(crate) fn claim(&mut self, ch: u8, call: CallId) -> bool {
        if !self.is_free(ch) {
            return false;
        }
        self.held.insert(ch, call);
        self.last = Some(ch);
        true
    }

    /// Frees `ch` if `call` holds it.
    pub(crate) fn release(&mut self, ch: u8, call: CallId) {
        if self.held.get(&ch) == Some(&call) {
            self.held.remove(&ch);
        }
    }

    pub(crate) fn set_restarting(&mut self, ch: u8) {
        if self.exists(ch) {
            self.restarting.insert(ch);
        }
    }

    pub(crate) fn clear_restarting(&mut self, ch: u8) {
        self.restarting.remove(&ch);
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn is_restarting(&self, ch: u8) -> bool {
        self.restarting.contains(&ch)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = u8> + '_ {
        self.in_service.iter().copied()
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn held(&self) -> impl Iterator<Item = (u8, CallId)> + '_ {
        self.held.iter().map(|(c, id)| (*c, *id))
    }

    pub(crate) fn free_count(&self) -> usize {
        self.all().filter(|c| self.is_free(*c)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunting_orders_and_claims() {
        let mut up = Channels::new([1, 2, 3], Hunt::Ascending);
        assert_eq!(up.hunt(), Some(1));
        assert!(up.claim(1, CallId(1)));
        assert!(!up.claim(1, CallId(2)));
        assert_eq!(up.hunt(), Some(2));
        let down = Channels::new([1, 2, 3], Hunt::Descending);
        assert_eq!(down.hunt(), Some(3));
        let mut rr = Channels::new([1, 2, 3], Hunt::RoundRobin);
        assert!(rr.claim(2, CallId(1)));
        assert_eq!(rr.hunt(), Some(3));
        rr.release(2, CallId(9));
        assert_eq!(rr.holder(2), Some(CallId(1)));
        rr.release(2, CallId(1));
        assert!(rr.claim(3, CallId(2)));
        // Wraps around past the top.
        assert_eq!(rr.hunt(), Some(1));
        rr.set_restarting(1);
        assert_eq!(rr.hunt(), Some(2));
        assert!(!rr.claim(1, CallId(3)));
        rr.clear_restarting(1);
        assert_eq!(rr.free_count(), 2);
        assert!(!rr.claim(7, CallId(3)), "not a channel of the span");
    }
}
