//! Per-source INVITE flood control, after Kamailio's `pike`: each source
//! address has a token bucket of INVITEs; an INVITE over the rate is
//! refused (503 + Retry-After), and a source that keeps drawing refusals is
//! answered with silence until it slows down. Sans-IO: time is passed in.
//!
//! What is a source: an IPv4 address, or the /64 an IPv6 address is in
//! (one IPv6 host usually holds a whole /64, so keying on full addresses
//! would give it 2^64 buckets). An IPv4-mapped IPv6 address counts as the
//! IPv4 address.
//!
//! Escalation (pike's "red" node): a source that draws `refusals` 503s
//! within `window` gets no answer at all from then on, to anything it
//! sends, and stays silenced until it has sent no INVITE over its rate
//! for `silence` — a flood that goes on keeps itself silenced, a caller
//! that slows down is heard again.
//!
//! Memory is bounded: the table holds at most `capacity` sources in a
//! fixed slab (never reallocated after it is full); a new source takes
//! the slot of an old one chosen by a CLOCK sweep that prefers sources
//! with nothing to remember, then sources not seen lately, and keeps
//! silenced ones as long as it can. A flood of spoofed addresses costs
//! at most `capacity` slots (see [`FloodControl::memory_bytes`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::rate::Rate;
use crate::sip::acl::canonical;

/// Per-source limits (`[limits] per_source_*`, `flood_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodConfig {
    /// INVITEs per second a source may send.
    pub rate: u32,
    /// INVITEs a source may send at once after a quiet spell.
    pub burst: u32,
    /// 503s a source may draw within `window` before it gets silence.
    pub refusals: u32,
    pub window: Duration,
    /// How long a silenced source must stay under its rate to be heard.
    pub silence: Duration,
    /// Sources remembered at once.
    pub capacity: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            rate: 20,
            burst: 20,
            refusals: 10,
            window: Duration::from_secs(10),
            silence: Duration::from_secs(60),
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Sources the table remembers by default: about 7 MB (see
/// [`FloodControl::memory_bytes`] and the test that floods it with a
/// million sources).
pub const DEFAULT_CAPACITY: usize = 50_000;

/// Slots the CLOCK hand looks at before it takes whatever it points at.
const MAX_SWEEP: usize = 64;

/// What to do with one INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse statelessly: 503 with `Retry-After`.
    Reject503 {
        retry_after: Duration,
    },
    /// Send nothing.
    Silence,
}

/// The key of a source: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKey {
    V4(u32),
    V6Prefix(u64),
}

impl SourceKey {
    pub fn of(addr: IpAddr) -> SourceKey {
        match canonical(addr) {
            IpAddr::V4(a) => SourceKey::V4(u32::from(a)),
            IpAddr::V6(a) => SourceKey::V6Prefix((u128::from(a) >> 64) as u64),
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    key: SourceKey,
    /// The source's token bucket (`Rate` state).
    tat: Option<Instant>,
    /// 503s drawn since `window_start`.
    refusals: u32,
    window_start: Instant,
    /// Silenced until then (extended by each INVITE over the rate).
    silent_until: Option<Instant>,
    /// CLOCK's second-chance bit: set on each use, cleared by the hand.
    recently_used: bool,
}

impl Slot {
    fn silenced(&self, now: Instant) -> bool {
        self.silent_until.is_some_and(|t| now < t)
    }

    /// Nothing here a fresh slot would not also say.
    fn forgettable(&self, now: Instant, window: Duration) -> bool {
        !self.silenced(now)
            && Rate::is_full(self.tat, now)
            && (self.refusals == 0 || now.saturating_duration_since(self.window_start) >= window)
    }
}

/// Counters for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FloodStats {
    pub allowed: u64,
    pub refused: u64,
    /// INVITEs not answered because their source was silenced.
    pub silenced: u64,
    /// Sources that went silent.
    pub sources_silenced: u64,
    /// Sources forgotten to make room for new ones.
    pub evictions: u64,
}

pub struct FloodControl {
    cfg: FloodConfig,
    rate: Rate,
    index: HashMap<SourceKey, usize>,
    slots: Vec<Slot>,
    hand: usize,
    stats: FloodStats,
}

impl FloodControl {
    pub fn new(cfg: FloodConfig) -> Self {
        let cfg = FloodConfig {
            capacity: cfg.capacity.max(1),
            ..cfg
        };
        FloodControl {
            rate: Rate::new(cfg.rate, cfg.burst),
            // Twice the entries: with deletions, hashbrown grows a table
            // that is more than half full instead of rehashing it in place.
            index: HashMap::with_capacity(cfg.capacity.saturating_mul(2)),
            slots: Vec::with_capacity(cfg.capacity),
            hand: 0,
            stats: FloodStats::default(),
            cfg,
        }
    }

    pub fn stats(&self) -> &FloodStats {
        &self.stats
    }

    /// Sources remembered now (never more than the capacity).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// An upper bound of the table's heap memory when full.
    pub fn memory_bytes(&self) -> usize {
        let slots = self.slots.capacity() * std::mem::size_of::<Slot>();
        // hashbrown: one control byte per bucket plus the entry; buckets
        // are a power of two at most 8/7 of the entries.
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        let index = buckets * (std::mem::size_of::<(SourceKey, usize)>() + 1);
        slots + index
    }

    /// True when everything from `addr` is to be ignored now.
    pub fn is_silenced(&self, now: Instant, addr: IpAddr) -> bool {
        self.index
            .get(&SourceKey::of(addr))
            .and_then(|&i| self.slots.get(i))
            .is_some_and(|s| s.silenced(now))
    }

    /// The verdict on one INVITE from `addr`.
    pub fn on_invite(&mut self, now: Instant, addr: IpAddr) -> Verdict {
        let cfg = self.cfg;
        let i = self.slot_for(now, SourceKey::of(addr));
        let Some(slot) = self.slots.get_mut(i) else {
            return Verdict::Allow;
        };
        slot.recently_used = true;
        let taken = self.rate.try_take(&mut slot.tat, now);
        if slot.silenced(now) {
            if taken.is_err() {
                slot.silent_until = Some(now + cfg.silence);
            }
            self.stats.silenced += 1;
            return Verdict::Silence;
        }
        if slot.silent_until.is_some() {
            // Heard again: a clean slate.
            slot.silent_until = None;
            slot.refusals = 0;
        }
        let wait = match taken {
            Ok(()) => {
                self.stats.allowed += 1;
                return Verdict::Allow;
            }
            Err(wait) => wait,
        };
        if now.saturating_duration_since(slot.window_start) >= cfg.window {
            slot.window_start = now;
            slot.refusals = 0;
        }
        if slot.refusals >= cfg.refusals {
            slot.silent_until = Some(now + cfg.silence);
            self.stats.silenced += 1;
            self.stats.sources_silenced += 1;
            return Verdict::Silence;
        }
        slot.refusals += 1;
        self.stats.refused += 1;
        Verdict::Reject503 { retry_after: wait }
    }

    /// The slot of `key`, taking one (fresh) if it has none.
    fn slot_for(&mut self, now: Instant, key: SourceKey) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let fresh = Slot {
            key,
            tat: None,
            refusals: 0,
            window_start: now,
            silent_until: None,
            recently_used: true,
        };
        let i = if self.slots.len() < self.cfg.capacity {
            self.slots.push(fresh);
            self.slots.len() - 1
        } else {
            let i = self.victim(now);
            if let Some(old) = self.slots.get_mut(i) {
                self.index.remove(&old.key);
                *old = fresh;
            }
            self.stats.evictions += 1;
            i
        };
        self.index.insert(key, i);
        i
    }

    /// CLOCK with a second chance, bounded to `MAX_SWEEP` slots: the first
    /// forgettable slot, else the first one not used since the hand last
    /// passed that is not silenced, else the first not silenced, else
    /// whatever the hand ends on.
    fn victim(&mut self, now: Instant) -> usize {
        let n = self.slots.len();
        let mut fallback = None;
        for _ in 0..MAX_SWEEP.min(n) {
            let i = self.hand;
            self.hand = (self.hand + 1) % n;
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            if slot.forgettable(now, self.cfg.window) {
                return i;
            }
            if slot.silenced(now) {
                continue;
            }
            if !slot.recently_used {
                return i;
            }
            slot.recently_used = false;
            fallback.get_or_insert(i);
        }
        fallback.unwrap_or(self.hand)
    }
}

#[cfg(test)]
mod tests;
