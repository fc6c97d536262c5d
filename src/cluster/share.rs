//! A trunk's caps shared among nodes. Each node that takes part gets
//! `floor(cap / n)`, and the remainder goes one each to the lowest ids, so
//! the shares add up to the cap. Who takes part: every live node, and
//! every dead one until its share is released (its reservation, set by the
//! node that took it over, ran out: its calls can no longer be up at the
//! carrier). So a death changes nobody's share until then.
//!
//! Changes are applied so that the sum never passes the cap, even while
//! the nodes see them at different moments (each reads the table every
//! half second and reports its calls up every second):
//! - a share that shrinks applies at once;
//! - a share that grows waits [`SETTLE_MS`] after the member set changed,
//!   by when every node has applied its own shrink and reported its calls;
//! - channels: a node may use its share less what the others hold above
//!   theirs (calls started before they shrank), as last reported;
//! - a node whose cps changed starts nothing for [`WINDOW_MS`]: the
//!   pacing windows start empty with a new rate, so the second before the
//!   change must be over first.
//!
//! Time is Unix ms passed in; tested on a virtual clock.

use std::collections::BTreeMap;

use crate::campaign::pace::TrunkPace;
use crate::store::NodeRow;

/// How long a grown share waits after the member set changed: the other
/// nodes read the table within 0.5 s and report their calls within 1 s
/// more, then a 1 s pacing window must pass; with margin.
pub const SETTLE_MS: i64 = 3_000;

/// A rate window (1 s and the wire guard) with margin: no start this long
/// after a node's cps changed.
pub const WINDOW_MS: i64 = 1_100;

/// A node taking part in the sharing, as the table says at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// Its lease runs; false: dead, its share held.
    pub live: bool,
    /// Calls it had up per trunk at its last renewal.
    pub used: BTreeMap<String, u32>,
}

/// The members at `now`, by id: rows whose reservation has not run out
/// (a dead node not yet taken over is a member too).
pub fn members(rows: &[NodeRow], now: i64) -> Vec<Member> {
    let mut m: Vec<Member> = rows
        .iter()
        .filter(|r| r.reserved_until.is_none_or(|t| t > now))
        .map(|r| Member {
            id: r.id.clone(),
            live: r.reserved_until.is_none() && r.lease_until > now,
            used: r.channels.clone(),
        })
        .collect();
    m.sort_by(|a, b| a.id.cmp(&b.id));
    m
}

/// The share of `cap` of the member at `index` of `n` (ids sorted).
pub fn share(cap: u32, n: usize, index: usize) -> u32 {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let i = u32::try_from(index).unwrap_or(u32::MAX);
    cap / n + u32::from(i < cap % n)
}

/// The limits node `me` may use on each trunk now, before any settling:
/// its cps share, and its channel share less what the others hold above
/// theirs. `me` counts as a member even before its row is read.
pub fn target(full: &[TrunkPace], members: &[Member], me: &str) -> Vec<TrunkPace> {
    let mut ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    if !ids.contains(&me) {
        ids.push(me);
        ids.sort_unstable();
    }
    let n = ids.len();
    let my = ids.iter().position(|i| *i == me).unwrap_or(0);
    full.iter()
        .map(|t| {
            let cps = share(t.cps, n, my);
            let others: u32 = members
                .iter()
                .filter(|m| m.id != me)
                .map(|m| {
                    let i = ids.iter().position(|x| *x == m.id).unwrap_or(0);
                    let used = m.used.get(&t.name).copied().unwrap_or(0);
                    share(t.max_channels, n, i).max(used)
                })
                .sum();
            let channels = share(t.max_channels, n, my).min(t.max_channels.saturating_sub(others));
            TrunkPace {
                name: t.name.clone(),
                cps,
                // Without a cps share no call may start at all.
                max_channels: if cps == 0 { 0 } else { channels },
            }
        })
        .collect()
}

fn min_of(a: &[TrunkPace], b: &[TrunkPace]) -> Vec<TrunkPace> {
    a.iter()
        .zip(b)
        .map(|(x, y)| TrunkPace {
            name: x.name.clone(),
            cps: x.cps.min(y.cps),
            max_channels: x.max_channels.min(y.max_channels),
        })
        .collect()
}

/// One node's limits as the member set changes (see the module doc).
#[derive(Debug, Clone)]
pub struct Caps {
    me: String,
    full: Vec<TrunkPace>,
    /// The member ids last seen.
    seen: Option<Vec<String>>,
    /// This node's place among them (count, index), and before the last
    /// change (`None`: it was joining).
    place: (usize, usize),
    place_before: Option<(usize, usize)>,
    /// What applied when the member set last changed, and when.
    before: Vec<TrunkPace>,
    changed_at: i64,
    applied: Vec<TrunkPace>,
    hold_until: i64,
}

impl Caps {
    /// Node `me` with the trunks' caps from its config, nothing applied.
    pub fn new(me: &str, full: Vec<TrunkPace>) -> Caps {
        Caps {
            me: me.to_string(),
            applied: full.clone(),
            before: full.clone(),
            full,
            seen: None,
            place: (1, 0),
            place_before: Some((1, 0)),
            changed_at: i64::MIN,
            hold_until: i64::MIN,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &[TrunkPace] {
        &self.applied
    }

    /// No call may start before this (Unix ms): a cps change's window.
    pub fn hold_until(&self) -> i64 {
        self.hold_until
    }

    /// This node's share of a cap of its own (a campaign's cps or
    /// channels) at `now`, by the same rule and settling as the trunks'.
    pub fn share_of(&self, cap: u32, now: i64) -> u32 {
        let (n, i) = self.place;
        let s = share(cap, n, i);
        if now >= self.changed_at.saturating_add(SETTLE_MS) {
            return s;
        }
        self.place_before
            .map_or(0, |(n, i)| share(cap, n, i).min(s))
    }

    /// The node table as read at `now`: the new limits if they changed.
    pub fn update(&mut self, now: i64, rows: &[NodeRow]) -> Option<Vec<TrunkPace>> {
        let members = members(rows, now);
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        let alone = members.iter().all(|m| m.id == self.me);
        if self.seen.as_ref() != Some(&ids) {
            self.before = match self.seen {
                // Joining a cluster: nothing until the others made room.
                None if !alone => self
                    .full
                    .iter()
                    .map(|t| TrunkPace {
                        name: t.name.clone(),
                        cps: 0,
                        max_channels: 0,
                    })
                    .collect(),
                _ => self.applied.clone(),
            };
            self.place_before = match self.seen {
                None if !alone => None,
                _ => Some(self.place),
            };
            let mut with_me = ids.clone();
            if !with_me.contains(&self.me) {
                with_me.push(self.me.clone());
                with_me.sort();
            }
            self.place = (
                with_me.len(),
                with_me.iter().position(|i| *i == self.me).unwrap_or(0),
            );
            self.changed_at = now;
            self.seen = Some(ids);
        }
        let target = if alone {
            self.full.clone()
        } else {
            target(&self.full, &members, &self.me)
        };
        let next = if now < self.changed_at.saturating_add(SETTLE_MS) {
            min_of(&target, &self.before)
        } else {
            target
        };
        if next == self.applied {
            return None;
        }
        if next.iter().zip(&self.applied).any(|(a, b)| a.cps != b.cps) {
            self.hold_until = now.saturating_add(WINDOW_MS);
        }
        self.applied = next.clone();
        Some(next)
    }
}

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
