//! The health of one route, sans-IO: signals from its driver (bound, bind
//! refused, link down, throttled, accepted) and `now` in; "down" / "up"
//! out. A route that cannot bind for `failover_after`, whose bind is
//! refused, or that throttles `throttle_failover` times within 10 s with
//! no acceptance between is down: its queued messages go to the next
//! route. It is up again when it binds (after `throttle_hold` when it was
//! throttling).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The thresholds of one route (from its `[[smsc]]` block).
#[derive(Debug, Clone, Copy)]
pub struct HealthConfig {
    pub failover_after: Duration,
    /// 0: throttling never takes a route down.
    pub throttle_failover: u32,
    pub throttle_window: Duration,
    pub throttle_hold: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failover_after: Duration::from_secs(3),
            throttle_failover: 5,
            throttle_window: Duration::from_secs(10),
            throttle_hold: Duration::from_secs(30),
        }
    }
}

/// What a route's driver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Bound,
    /// The SMSC answered the bind with an error (status named).
    BindRefused(String),
    /// The TCP connect failed or the link was lost.
    Unbound,
    /// ESME_RTHROTTLED or ESME_RMSGQFUL for a submit.
    Throttled,
    /// A submit was accepted.
    Accepted,
}

/// A change of a route's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Down(String),
    Up,
}

#[derive(Debug)]
pub struct Health {
    cfg: HealthConfig,
    bound: bool,
    down: Option<String>,
    unbound_since: Option<Instant>,
    throttles: VecDeque<Instant>,
    hold_until: Option<Instant>,
}

impl Health {
    /// A route that is starting (unbound since `now`, not yet down).
    pub fn new(cfg: HealthConfig, now: Instant) -> Health {
        Health {
            cfg,
            bound: false,
            down: None,
            unbound_since: Some(now),
            throttles: VecDeque::new(),
            hold_until: None,
        }
    }

    /// True while the route takes new messages.
    pub fn is_up(&self) -> bool {
        self.down.is_none()
    }

    /// Why the route is down.
    pub fn why_down(&self) -> Option<&str> {
        self.down.as_deref()
    }

    fn go_down(&mut self, why: String) -> Option<Change> {
        if self.down.is_some() {
            return None;
        }
        self.down = Some(why.clone());
        Some(Change::Down(why))
    }

    pub fn signal(&mut self, s: Signal, now: Instant) -> Option<Change> {
        match s {
            Signal::Bound => {
                self.bound = true;
                self.unbound_since = None;
                if self.down.is_some() && self.hold_until.is_none() {
                    self.down = None;
                    return Some(Change::Up);
                }
                None
            }
            Signal::BindRefused(why) => {
                self.lost(now);
                self.go_down(format!("bind refused: {why}"))
            }
            Signal::Unbound => {
                self.lost(now);
                None
            }
            Signal::Throttled => {
                if self.cfg.throttle_failover == 0 {
                    return None;
                }
                self.throttles.push_back(now);
                while self
                    .throttles
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > self.cfg.throttle_window)
                {
                    self.throttles.pop_front();
                }
                if self.throttles.len() >= self.cfg.throttle_failover as usize
                    && self.down.is_none()
                {
                    self.throttles.clear();
                    self.hold_until = Some(now + self.cfg.throttle_hold);
                    return self.go_down(format!(
                        "throttling ({} times within {} s)",
                        self.cfg.throttle_failover,
                        self.cfg.throttle_window.as_secs()
                    ));
                }
                None
            }
            Signal::Accepted => {
                self.throttles.clear();
                None
            }
        }
    }

    fn lost(&mut self, now: Instant) {
        self.bound = false;
        self.unbound_since.get_or_insert(now);
    }

    /// Applies the timers due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Change> {
        if let Some(h) = self.hold_until.filter(|h| *h <= now) {
            let _ = h;
            self.hold_until = None;
            if self.bound && self.down.is_some() {
                self.down = None;
                return Some(Change::Up);
            }
        }
        if let Some(since) = self.unbound_since {
            if !self.bound && now.duration_since(since) >= self.cfg.failover_after {
                return self.go_down(format!(
                    "not bound for {} ms",
                    self.cfg.failover_after.as_millis()
                ));
            }
        }
        None
    }

    /// When [`Self::poll`] has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        let lost = self
            .unbound_since
            .filter(|_| !self.bound && self.down.is_none())
            .map(|s| s + self.cfg.failover_after);
        match (lost, self.hold_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
