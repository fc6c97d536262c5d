//! Several SMS routes (SMPP accounts, an HTTP provider) and which one a
//! message takes, sans-IO: [`Chooser`] knows the routes' prefixes, their
//! fallback order and their [`health`]; [`task`] is the thin tokio layer
//! that claims parts in the store and hands them to the routes' drivers.
//!
//! The rule: the routes whose `prefixes` match the destination (a route
//! with none matches every destination), longest match first, then file
//! order. A message takes the first of them that is up; when a route goes
//! down, the parts it has not yet written go to the next one that is up.
//! `via` forces a route: such a message never moves.

pub mod health;
pub(crate) mod spawn;
pub(crate) mod task;

use std::cmp::Reverse;
use std::time::Instant;

pub use health::{Change, Health, HealthConfig, Signal};

/// A route's name and the destinations it serves.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub name: String,
    /// Digit prefixes (no `+`); empty serves every destination.
    pub prefixes: Vec<String>,
    pub health: HealthConfig,
    pub family: Family,
}

/// What a route's stored parts are made for: SMPP parts are encoded
/// short messages (GSM 7-bit or UCS-2, with their UDH), an HTTP
/// provider's are the text itself. A part taken for one family never
/// goes to a route of the other: it would arrive as bytes of the wrong
/// kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Smpp,
    Http,
}

/// Why no route can be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no SMS route named {0:?} (routes: {1})")]
    NoSuchRoute(String, String),
    #[error("no SMS route serves {0:?} (no route's prefixes match it)")]
    NoRouteFor(String),
}

/// The routes, in file order, and their health.
#[derive(Debug)]
pub struct Chooser {
    specs: Vec<RouteSpec>,
    health: Vec<Health>,
}

impl Chooser {
    pub fn new(specs: Vec<RouteSpec>, now: Instant) -> Chooser {
        let health = specs.iter().map(|s| Health::new(s.health, now)).collect();
        Chooser { specs, health }
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        self.specs.get(i).map_or("", |s| s.name.as_str())
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.health.get(i).is_some_and(Health::is_up)
    }

    /// The routes that serve `dest`, best first.
    pub fn candidates(&self, dest: &str) -> Vec<usize> {
        let d = dest.strip_prefix('+').unwrap_or(dest);
        let mut v: Vec<(usize, usize)> = self
            .specs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                if s.prefixes.is_empty() {
                    return Some((0, i));
                }
                s.prefixes
                    .iter()
                    .filter(|p| d.starts_with(p.as_str()))
                    .map(String::len)
                    .max()
                    .map(|l| (l, i))
            })
            .collect();
        v.sort_by_key(|(l, i)| (Reverse(*l), *i));
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// The route for a new message to `dest`: `via` when forced, else the
    /// first candidate that is up, else (all down) the first candidate,
    /// where it waits for the route to come back.
    pub fn choose(&self, dest: &str, via: Option<&str>) -> Result<usize, RouteError> {
        if let Some(v) = via {
            return self.index(v).ok_or_else(|| {
                let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
                RouteError::NoSuchRoute(v.to_string(), names.join(", "))
            });
        }
        let c = self.candidates(dest);
        c.iter()
            .copied()
            .find(|&i| self.is_up(i))
            .or_else(|| c.first().copied())
            .ok_or_else(|| RouteError::NoRouteFor(dest.to_string()))
    }

    /// [`Self::choose`] for a part already taken for route `like`: only
    /// the routes of `like`'s family, and `like` itself when none of them
    /// is up (the part waits for it).
    pub fn choose_like(
        &self,
        dest: &str,
        via: Option<&str>,
        like: Option<usize>,
    ) -> Result<usize, RouteError> {
        let Some((like, family)) = like.and_then(|l| self.specs.get(l).map(|s| (l, s.family)))
        else {
            return self.choose(dest, via);
        };
        if via.is_some() {
            return self.choose(dest, via);
        }
        let c: Vec<usize> = self
            .candidates(dest)
            .into_iter()
            .filter(|&i| self.specs[i].family == family)
            .collect();
        Ok(c.iter().copied().find(|&i| self.is_up(i)).unwrap_or(like))
    }

    /// Where the unsent parts to `dest` of route `from` (now down) go: the
    /// next candidate that is up, or `None` to stay.
    pub fn next_after(&self, dest: &str, from: usize) -> Option<usize> {
        self.candidates(dest)
            .into_iter()
            .find(|&i| i != from && self.is_up(i))
    }

    /// A driver's signal; returns the change of that route's health.
    pub fn signal(&mut self, route: usize, s: Signal, now: Instant) -> Option<Change> {
        self.health.get_mut(route)?.signal(s, now)
    }

    /// Timers due at `now`: the routes whose health changed.
    pub fn poll(&mut self, now: Instant) -> Vec<(usize, Change)> {
        self.health
            .iter_mut()
            .enumerate()
            .filter_map(|(i, h)| h.poll(now).map(|c| (i, c)))
            .collect()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.health.iter().filter_map(Health::next_timeout).min()
    }

    /// Why route `i` is down, if it is.
    pub fn why_down(&self, i: usize) -> Option<&str> {
        self.health.get(i).and_then(Health::why_down)
    }
}

#[cfg(test)]
mod tests;
