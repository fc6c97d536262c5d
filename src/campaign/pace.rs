//! The pacer: which running campaign starts its next call, on which trunk,
//! and when, across every campaign in the process. Sans-IO: the driver
//! asks [`Pacer::next_start`] with `now` and sleeps until the answer's
//! time; it tells the pacer when calls end. It owns rates and channel
//! counts only: which contact is called is the store's, whether the
//! contact is inside its calling hours is `super::hours`', and placing
//! the call is `crate::call`'s (whose `Trunks` has the last word on a
//! trunk's limits: the pacer mirrors them to share the trunk fairly).
//!
//! Rules (docs/campaigns.md, Pacing):
//! - A campaign never starts more than its `cps` in any 1 s window, and
//!   its starts are spread out (each at least 90 % of 1/cps after the one
//!   before: a paced bucket that keeps its schedule when the driver wakes
//!   a little late, so the long-run rate is `cps`). The same for every
//!   trunk, counting the starts of all campaigns on it.
//! - Channels: a campaign never has more than its `max_channels` calls up,
//!   a trunk never more than its own, counting calls a crashed process
//!   left at the carrier ([`Pacer::occupy_until`]).
//! - Among campaigns that could start a call at the same time, higher
//!   priority first; equal priorities take turns (the one served longest
//!   ago first), so two equal campaigns on a 10 cps trunk get 5 each.
//!   A lower priority does not take a trunk's slot when that would make a
//!   higher one, due soon on the same trunk, lose its schedule: the higher
//!   one keeps its whole rate, even if the trunk then idles a moment (a
//!   4 cps campaign over a 10 cps one on a 10 cps trunk: 4 + 4).
//! - A campaign tries its trunks in its order and takes the first that
//!   is up and may start a call now.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::call::trunks::TrunkLimits;
use crate::rate::{SlidingWindow, TokenBucket};

/// A campaign, as the store numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId(pub i64);

impl std::fmt::Display for CampaignId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A campaign's share of the dialer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignPace {
    pub id: CampaignId,
    /// Higher goes first.
    pub priority: i32,
    /// New calls per second, 1 to 10,000.
    pub cps: u32,
    /// Calls up at once, at least 1.
    pub max_channels: u32,
    /// Trunk names, in order of preference; at least one.
    pub trunks: Vec<String>,
}

/// A trunk's limits, as the pacer needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkPace {
    pub name: String,
    pub cps: u32,
    pub max_channels: u32,
}

impl From<&TrunkLimits> for TrunkPace {
    fn from(l: &TrunkLimits) -> Self {
        TrunkPace {
            name: l.name.clone(),
            cps: l.cps,
            max_channels: l.max_channels,
        }
    }
}

/// Why a campaign was not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    #[error("campaign {0} is already registered")]
    Duplicate(CampaignId),
    #[error("campaign {0} is not registered")]
    NoSuchCampaign(CampaignId),
    #[error("campaign {campaign}: no trunk named {trunk:?}")]
    NoSuchTrunk { campaign: CampaignId, trunk: String },
    #[error("campaign {0}: no trunks")]
    NoTrunks(CampaignId),
    #[error("campaign {0}: cps and max_channels must be at least 1")]
    Zero(CampaignId),
    #[error("campaign {id}: cps must be at most {max}, not {cps}", max = SlidingWindow::MAX_EVENTS)]
    TooFast { id: CampaignId, cps: u32 },
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Start {
    /// Start one call for `campaign` through `trunk` now. Its channel and
    /// pacing slots are taken; call [`Pacer::ended`] when it ends (or if
    /// it could not be placed).
    Go { campaign: CampaignId, trunk: String },
    /// Nothing may start before this instant: ask again then.
    WaitUntil(Instant),
    /// Nothing can start until something changes: a call ends, a trunk
    /// comes up, a campaign is resumed or added, or contacts become ready (the driver knows
    /// when: retry times, calling hours). Ask again then.
    Idle,
}

/// One rate: a paced bucket for the spacing, a 1 s window for the cap.
#[derive(Debug, Clone)]
struct Pace {
    bucket: TokenBucket,
    window: SlidingWindow,
}

impl Pace {
    fn new(cps: u32) -> Self {
        Pace {
            bucket: TokenBucket::paced(cps.max(1)),
            window: SlidingWindow::per_second(cps),
        }
    }

    /// The earliest instant, `now` or later, both allow a start.
    fn allowed_at(&self, now: Instant) -> Instant {
        let by_window = self.window.check(now).err().unwrap_or(now);
        let mut b = self.bucket;
        let by_bucket = b.try_take(now).err().map_or(now, |w| now + w);
        by_window.max(by_bucket)
    }

    /// When the bucket would next allow a start at or after `later`, had
    /// a start been taken at `now` (the window is not asked: it binds
    /// only on a full second, which the bucket's spacing rarely makes).
    fn bucket_after_take(&self, now: Instant, later: Instant) -> Instant {
        let mut b = self.bucket;
        let _ = b.try_take(now);
        b.try_take(later).err().map_or(later, |w| later + w)
    }

    /// Takes a start at `now` (allowed: `allowed_at(now) <= now`).
    fn take(&mut self, now: Instant) {
        // Allowed, so the bucket has the token; a start that happened is
        // counted by the window whatever the bucket said.
        let _ = self.bucket.try_take(now);
        self.window.record(now);
    }
}

#[derive(Debug)]
struct Campaign {
    spec: CampaignPace,
    /// Indices into `Pacer::trunks`, in the campaign's order.
    trunks: Vec<usize>,
    running: bool,
    pace: Pace,
    /// When it last started a call, as a sequence number (round robin).
    served: u64,
}

#[derive(Debug)]
struct Trunk {
    limits: TrunkPace,
    pace: Pace,
    /// Its transport says it can carry calls (`call::trunks::Trunks::is_up`).
    up: bool,
}

fn interval(cps: u32) -> Duration {
    Duration::from_nanos(1_000_000_000_u64.div_ceil(u64::from(cps.max(1))))
}

/// A call a dead process left up at the carrier: it holds a channel on
/// the trunk (and its campaign's, if still registered) until `until`.
#[derive(Debug, Clone, Copy)]
struct Ghost {
    trunk: usize,
    campaign: CampaignId,
    until: Instant,
}

/// The dialing scheduler for all running campaigns (see the module doc).
#[derive(Debug, Default)]
pub struct Pacer {
    campaigns: Vec<Campaign>,
    trunks: Vec<Trunk>,
    /// Calls up per (campaign, trunk index). Kept after a campaign is
    /// removed, until its calls end: they still hold the trunk's channels.
    live: BTreeMap<(CampaignId, usize), u32>,
    ghosts: Vec<Ghost>,
    seq: u64,
}

impl Pacer {
    pub fn new(trunks: impl IntoIterator<Item = TrunkPace>) -> Self {
        let mut p = Pacer::default();
        for t in trunks {
            p.set_trunk(t);
        }
        p
    }

    /// Adds a trunk or changes its limits (a config reload). A new cps
    /// starts a new pacing schedule; channels in use are kept.
    pub fn set_trunk(&mut self, limits: TrunkPace) {
        match self.trunk_index(&limits.name) {
            Some(i) => {
                if let Some(t) = self.trunks.get_mut(i) {
                    if t.limits.cps != limits.cps {
                        t.pace = Pace::new(limits.cps);
                    }
                    t.limits = limits;
                }
            }
            None => self.trunks.push(Trunk {
                pace: Pace::new(limits.cps),
                limits,
                up: true,
            }),
        }
    }

    /// The trunk's transport went down or came back: a campaign skips a
    /// trunk that is down (to its next, or waits), rather than spend an
    /// attempt on a call that cannot be placed. False if unknown.
    pub fn set_trunk_up(&mut self, name: &str, up: bool) -> bool {
        self.trunk_index(name)
            .and_then(|i| self.trunks.get_mut(i))
            .map(|t| t.up = up)
            .is_some()
    }

    /// Registers a campaign, running or paused.
    pub fn add(&mut self, spec: CampaignPace, running: bool) -> Result<(), PaceError> {
        if self.campaign(spec.id).is_some() {
            return Err(PaceError::Duplicate(spec.id));
        }
        let trunks = self.check(&spec)?;
        self.campaigns.push(Campaign {
            pace: Pace::new(spec.cps),
            spec,
            trunks,
            running,
            served: 0,
        });
        Ok(())
    }

    /// Changes a registered campaign's priority, rates or trunks. A new
    /// cps starts a new pacing schedule.
    pub fn update(&mut self, spec: CampaignPace) -> Result<(), PaceError> {
        let trunks = self.check(&spec)?;
        let c = self
            .campaigns
            .iter_mut()
            .find(|c| c.spec.id == spec.id)
            .ok_or(PaceError::NoSuchCampaign(spec.id))?;
        if c.spec.cps != spec.cps {
            c.pace = Pace::new(spec.cps);
        }
        c.spec = spec;
        c.trunks = trunks;
        Ok(())
    }

    fn check(&self, spec: &CampaignPace) -> Result<Vec<usize>, PaceError> {
        if spec.cps == 0 || spec.max_channels == 0 {
            return Err(PaceError::Zero(spec.id));
        }
        if spec.cps > SlidingWindow::MAX_EVENTS {
            return Err(PaceError::TooFast {
                id: spec.id,
                cps: spec.cps,
            });
        }
        if spec.trunks.is_empty() {
            return Err(PaceError::NoTrunks(spec.id));
        }
        spec.trunks
            .iter()
            .map(|name| {
                self.trunk_index(name)
                    .ok_or_else(|| PaceError::NoSuchTrunk {
                        campaign: spec.id,
                        trunk: name.clone(),
                    })
            })
            .collect()
    }

    /// Stops starting calls for a campaign (its calls up carry on).
    pub fn pause(&mut self, id: CampaignId) -> bool {
        self.set_running(id, false)
    }

    pub fn resume(&mut self, id: CampaignId) -> bool {
        self.set_running(id, true)
    }

    fn set_running(&mut self, id: CampaignId, running: bool) -> bool {
        self.campaigns
            .iter_mut()
            .find(|c| c.spec.id == id)
            .map(|c| c.running = running)
            .is_some()
    }

    /// Forgets a campaign. Its calls still up keep their trunk channels
    /// until [`Pacer::ended`] is called for them.
    pub fn remove(&mut self, id: CampaignId) -> bool {
        let before = self.campaigns.len();
        self.campaigns.retain(|c| c.spec.id != id);
        self.campaigns.len() != before
    }

    /// A call of `campaign` through `trunk` ended (or was never placed):
    /// its channel is free. False if no such call was counted.
    pub fn ended(&mut self, campaign: CampaignId, trunk: &str) -> bool {
        let Some(t) = self.trunk_index(trunk) else {
            return false;
        };
        match self.live.get_mut(&(campaign, t)) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.live.remove(&(campaign, t));
                true
            }
            None => false,
        }
    }

    /// Sets how many calls of `campaign` are up through `trunk` (a driver
    /// that recounts, or adopts calls it knows are up). False if the
    /// trunk is unknown.
    pub fn set_in_use(&mut self, campaign: CampaignId, trunk: &str, n: u32) -> bool {
        let Some(t) = self.trunk_index(trunk) else {
            return false;
        };
        if n == 0 {
            self.live.remove(&(campaign, t));
        } else {
            self.live.insert((campaign, t), n);
        }
        true
    }

    /// One call a crashed process may have left up at the carrier: it
    /// holds a channel of `trunk` and of `campaign` until `until` (the
    /// longest such a call could last). False if the trunk is unknown.
    pub fn occupy_until(&mut self, trunk: &str, campaign: CampaignId, until: Instant) -> bool {
        let Some(t) = self.trunk_index(trunk) else {
            return false;
        };
        self.ghosts.push(Ghost {
            trunk: t,
            campaign,
            until,
        });
        true
    }

    /// The ghost call put there by `occupy_until(trunk, campaign, until)`
    /// is over (rivr ended it): its channel is free now. False if there is
    /// no such ghost (it ran out already).
    pub fn release_ghost(&mut self, trunk: &str, campaign: CampaignId, until: Instant) -> bool {
        let Some(t) = self.trunk_index(trunk) else {
            return false;
        };
        let found = self
            .ghosts
            .iter()
            .position(|g| g.trunk == t && g.campaign == campaign && g.until == until);
        match found {
            Some(i) => {
                self.ghosts.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Calls of a campaign up now, ghosts included.
    pub fn in_use(&self, campaign: CampaignId, now: Instant) -> u32 {
        let live: u32 = self
            .live
            .range((campaign, 0)..=(campaign, usize::MAX))
            .map(|(_, n)| *n)
            .sum();
        live + self.ghosts_where(now, |g| g.campaign == campaign)
    }

    /// Calls up on a trunk now, every campaign's and ghosts included.
    pub fn trunk_in_use(&self, trunk: &str, now: Instant) -> u32 {
        self.trunk_index(trunk)
            .map_or(0, |t| self.trunk_used(t, now))
    }

    fn trunk_used(&self, t: usize, now: Instant) -> u32 {
        let live: u32 = self
            .live
            .iter()
            .filter(|((_, i), _)| *i == t)
            .map(|(_, n)| *n)
            .sum();
        live + self.ghosts_where(now, |g| g.trunk == t)
    }

    fn ghosts_where(&self, now: Instant, f: impl Fn(&Ghost) -> bool) -> u32 {
        let n = self.ghosts.iter().filter(|g| g.until > now && f(g)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The next call to start, or how long to wait (module doc for the
    /// rules). `has_ready` says whether a campaign has a contact that may
    /// be called now; it is asked only of running campaigns.
    pub fn next_start(&mut self, now: Instant, has_ready: impl Fn(CampaignId) -> bool) -> Start {
        self.ghosts.retain(|g| g.until > now);
        let mut order: Vec<usize> = (0..self.campaigns.len())
            .filter(|&i| {
                self.campaigns
                    .get(i)
                    .is_some_and(|c| c.running && has_ready(c.spec.id))
            })
            .collect();
        order.sort_by_key(|&i| {
            self.campaigns
                .get(i)
                .map(|c| (std::cmp::Reverse(c.spec.priority), c.served, c.spec.id))
        });
        let mut wait: Option<Instant> = None;
        // Campaigns held back only by their own pacing, with a channel
        // free on a trunk: (priority, trunk, when they are due, how late
        // they may start and keep their schedule). A lower priority does
        // not take that trunk if the start would keep them off it longer.
        let mut due: Vec<(i32, usize, Instant, Duration)> = Vec::new();
        for &ci in &order {
            let Some(c) = self.campaigns.get(ci) else {
                continue;
            };
            if self.in_use(c.spec.id, now) >= c.spec.max_channels {
                continue;
            }
            let campaign_at = c.pace.allowed_at(now);
            for &ti in &c.trunks {
                let Some(t) = self.trunks.get(ti) else {
                    continue;
                };
                if !t.up || self.trunk_used(ti, now) >= t.limits.max_channels {
                    continue;
                }
                let trunk_at = t.pace.allowed_at(now);
                let at = campaign_at.max(trunk_at);
                if at > now {
                    if trunk_at <= now {
                        let slack = interval(c.spec.cps) / 10;
                        due.push((c.spec.priority, ti, campaign_at, slack));
                    }
                    wait = Some(wait.map_or(at, |w| w.min(at)));
                    continue;
                }
                let held = due
                    .iter()
                    .filter(|(p, i, due_at, slack)| {
                        *p > c.spec.priority
                            && *i == ti
                            && t.pace.bucket_after_take(now, *due_at) > *due_at + *slack
                    })
                    .map(|(_, _, at, _)| *at)
                    .min();
                match held {
                    Some(at) => wait = Some(wait.map_or(at, |w| w.min(at))),
                    None => return self.go(ci, ti, now),
                }
            }
        }
        if order.is_empty() {
            return Start::Idle;
        }
        // Channels held by ghosts free up on their own.
        let ghost = self.ghosts.iter().map(|g| g.until).min();
        match (wait, ghost) {
            (Some(a), Some(b)) => Start::WaitUntil(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Start::WaitUntil(a),
            (None, None) => Start::Idle,
        }
    }

    fn go(&mut self, ci: usize, ti: usize, now: Instant) -> Start {
        self.seq += 1;
        let (Some(c), Some(t)) = (self.campaigns.get_mut(ci), self.trunks.get_mut(ti)) else {
            return Start::Idle;
        };
        c.pace.take(now);
        t.pace.take(now);
        c.served = self.seq;
        *self.live.entry((c.spec.id, ti)).or_insert(0) += 1;
        Start::Go {
            campaign: c.spec.id,
            trunk: t.limits.name.clone(),
        }
    }

    fn campaign(&self, id: CampaignId) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| c.spec.id == id)
    }

    fn trunk_index(&self, name: &str) -> Option<usize> {
        self.trunks.iter().position(|t| t.limits.name == name)
    }
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod tests;
