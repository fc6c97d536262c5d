//! TCP connections held per source (`[limits] tcp_max_per_source`), so that
//! one address cannot take every slot of `tcp_max_connections` and lock
//! everyone else out of TCP until its connections time out. A source is
//! what the flood control calls one: an IPv4 address or an IPv6 /64.
//!
//! The table holds only sources with a connection open, so it never has
//! more entries than `tcp_max_connections`; a slot is given back when its
//! [`SourceSlot`] is dropped, whatever ended the connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::sip::flood::SourceKey;

/// Open connections per source.
#[derive(Debug, Default, Clone)]
pub(super) struct PerSource {
    open: Arc<Mutex<HashMap<SourceKey, usize>>>,
}

/// One connection's place in its source's count.
#[derive(Debug)]
pub(super) struct SourceSlot {
    open: Arc<Mutex<HashMap<SourceKey, usize>>>,
    key: SourceKey,
}

impl PerSource {
    /// A slot for a new connection from `addr`, unless the source already
    /// holds `max`.
    pub(super) fn take(&self, addr: IpAddr, max: usize) -> Option<SourceSlot> {
        let key = SourceKey::of(addr);
        // A panic elsewhere while holding the lock leaves the counts as
        // they were: keep using them.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            open: self.open.clone(),
            key,
        })
    }

    /// Connections open from `addr`'s source.
    #[cfg(test)]
    pub(super) fn held(&self, addr: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&SourceKey::of(addr)).copied().unwrap_or(0)
    }

    /// Sources with a connection open.
    #[cfg(test)]
    pub(super) fn sources(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_holds_at_most_max_and_others_are_unaffected() {
        let p = PerSource::default();
        let a: Vec<SourceSlot> = (0..3)
            .map(|_| p.take(ip("192.0.2.1"), 3).expect("under the cap"))
            .collect();
        assert!(p.take(ip("192.0.2.1"), 3).is_none(), "the fourth");
        assert!(p.take(ip("192.0.2.2"), 3).is_some(), "another source");
        assert_eq!(p.held(ip("192.0.2.1")), 3);
        drop(a);
        assert_eq!(p.held(ip("192.0.2.1")), 0);
        assert!(p.take(ip("192.0.2.1"), 3).is_some(), "room again");
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64() {
        let p = PerSource::default();
        let _a = p.take(ip("2001:db8::1"), 2).unwrap();
        let _b = p.take(ip("2001:db8::ffff:1"), 2).unwrap();
        assert!(p.take(ip("2001:db8::2"), 2).is_none(), "same /64");
        assert!(p.take(ip("2001:db8:0:1::1"), 2).is_some(), "next /64");
        // IPv4-mapped counts as the IPv4 address.
        let _c = p.take(ip("192.0.2.9"), 1).unwrap();
        assert!(p.take(ip("::ffff:192.0.2.9"), 1).is_none());
    }

    #[test]
    fn the_table_forgets_sources_with_nothing_open() {
        let p = PerSource::default();
        for i in 0..=255u8 {
            let slot = p.take(IpAddr::from([198, 51, 100, i]), 4).unwrap();
            drop(slot);
            assert!(p.take(IpAddr::from([203, 0, 113, i]), 0).is_none());
        }
        assert_eq!(p.sources(), 0);
    }
}
