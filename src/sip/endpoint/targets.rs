//! A trunk's addresses in the order DNS gave them (RFC 3263 §4: SRV
//! priority and weight, then each target's A/AAAA records), and which of
//! them failed lately. An INVITE that gets a 503 before any ringing, no
//! answer at all, or no TCP connection moves on to the next address
//! (§4.3: the same request, a new branch); the address that failed is held
//! back, so the calls that follow start at one that works, until the hold
//! runs out (a 503's `Retry-After`, else [`HOLD`]). The OPTIONS keepalive
//! and REGISTER of the trunk's link move the same way; the trunk is down
//! only when every address is held. Sans-IO: instants are passed in; the
//! server re-resolves the name when its TTL runs out and hands the new
//! list in with [`super::Endpoint::set_trunk_targets`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an address that failed is passed over.
pub const HOLD: Duration = Duration::from_secs(60);
/// The longest hold a `Retry-After` can ask for.
pub const HOLD_MAX: Duration = Duration::from_secs(3600);
/// An INVITE that has had no response at all for this long, while other
/// addresses are left, is given up on that address (8 × T1: after its
/// third retransmission, where timer B would wait 32 s).
pub const NO_RESPONSE: Duration = Duration::from_secs(4);

#[derive(Debug, Default, Clone)]
pub struct TargetSet {
    addrs: Vec<SocketAddr>,
    held_until: HashMap<SocketAddr, Instant>,
}

impl TargetSet {
    pub fn new(addrs: Vec<SocketAddr>) -> TargetSet {
        TargetSet {
            addrs,
            held_until: HashMap::new(),
        }
    }

    /// A new list from DNS; holds of addresses still in it are kept.
    pub fn replace(&mut self, addrs: Vec<SocketAddr>) {
        self.held_until.retain(|a, _| addrs.contains(a));
        self.addrs = addrs;
    }

    /// The addresses to try, in order: those not held (in DNS order),
    /// then the held ones (soonest free first) — a trunk whose every
    /// address failed is still tried rather than not at all.
    pub fn order(&self, now: Instant) -> Vec<SocketAddr> {
        let held = |a: &SocketAddr| self.held_until.get(a).is_some_and(|t| *t > now);
        let mut out: Vec<SocketAddr> = self.addrs.iter().filter(|a| !held(a)).copied().collect();
        let mut rest: Vec<SocketAddr> = self.addrs.iter().filter(|a| held(a)).copied().collect();
        rest.sort_by_key(|a| self.held_until.get(a).copied());
        out.extend(rest);
        out
    }

    /// The first address not held, if any.
    pub fn first_free(&self, now: Instant) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|a| self.held_until.get(a).is_none_or(|t| *t <= now))
            .copied()
    }

    /// Passes over `addr` until `until`.
    pub fn hold(&mut self, addr: SocketAddr, until: Instant) {
        if self.addrs.contains(&addr) {
            let t = self.held_until.entry(addr).or_insert(until);
            *t = (*t).max(until);
        }
    }
}

/// The hold a 503 asks for: its `Retry-After` seconds (RFC 3261 §21.5.4),
/// capped at [`HOLD_MAX`], else [`HOLD`].
pub fn hold_for_503(headers: &[(String, String)]) -> Duration {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Retry-After"))
        .and_then(|(_, v)| {
            v.split(|c: char| c == ';' || c == '(' || c.is_whitespace())
                .find(|s| !s.is_empty())
                .and_then(|s| s.parse::<u64>().ok())
        })
        .map(|s| Duration::from_secs(s.max(1)).min(HOLD_MAX))
        .unwrap_or(HOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn held_addresses_go_last_until_their_hold_ends() {
        let t0 = Instant::now();
        let mut set = TargetSet::new(vec![a(1), a(2), a(3)]);
        assert_eq!(set.order(t0), vec![a(1), a(2), a(3)]);
        set.hold(a(1), t0 + HOLD);
        assert_eq!(set.order(t0), vec![a(2), a(3), a(1)]);
        assert_eq!(set.first_free(t0), Some(a(2)));
        set.hold(a(2), t0 + Duration::from_secs(10));
        // Both held: the one free sooner comes first among them.
        assert_eq!(set.order(t0), vec![a(3), a(2), a(1)]);
        set.hold(a(3), t0 + Duration::from_secs(5));
        assert_eq!(set.first_free(t0), None);
        assert_eq!(set.order(t0), vec![a(3), a(2), a(1)]);
        assert_eq!(set.order(t0 + HOLD), vec![a(1), a(2), a(3)]);
    }

    #[test]
    fn a_new_list_keeps_the_holds_of_addresses_still_in_it() {
        let t0 = Instant::now();
        let mut set = TargetSet::new(vec![a(1), a(2)]);
        set.hold(a(1), t0 + HOLD);
        set.hold(a(2), t0 + HOLD);
        set.replace(vec![a(2), a(4), a(1)]);
        assert_eq!(set.order(t0), vec![a(4), a(2), a(1)]);
        set.replace(vec![a(5)]);
        assert_eq!(set.order(t0), vec![a(5)]);
        // An address not in the list cannot be held.
        set.hold(a(9), t0 + HOLD);
        assert_eq!(set.order(t0), vec![a(5)]);
    }

    #[test]
    fn retry_after_sets_the_hold_within_bounds() {
        let h = |v: &str| hold_for_503(&[("Retry-After".to_string(), v.to_string())]);
        assert_eq!(h("120"), Duration::from_secs(120));
        assert_eq!(h("18000;duration=3600"), HOLD_MAX);
        assert_eq!(h("5 (maintenance)"), Duration::from_secs(5));
        assert_eq!(h("0"), Duration::from_secs(1));
        assert_eq!(h("soon"), HOLD);
        assert_eq!(hold_for_503(&[]), HOLD);
    }
}
