//! Retries: after an attempt, whether the contact is called again and
//! when, or is done. It owns the `--retry` spec (`busy=10m,no_answer=30m`),
//! the attempt limit and the campaign's end. It does not know calling
//! hours: a retry time is the earliest the contact may be called, and the
//! dialer waits from there for the contact's window (`super::hours`).
//!
//! Rules (docs/campaigns.md, Retries):
//! - An outcome is retried only if the spec names it. With no spec the
//!   default is `busy=10m,no_answer=30m,congestion=5m`.
//! - `answered`, `rejected`, `unreachable`, `auth_failed`, `cancelled` and
//!   `failed` are final unless named. `dnc` is always final, and naming it
//!   is refused.
//! - `unknown` (the attempt was in flight when rivr died) is always
//!   retried, as a new counted attempt, after its own interval if named,
//!   else the longest named interval, else 10 minutes.
//! - A refined outcome (`no_answer:announcement`, `unreachable:sit-ic`:
//!   the base outcome and what its early media said) may be named on its
//!   own, with an interval or `none`; unnamed, it follows its detail's
//!   default (`call::outcome_refine::default_rule`: a vacant-code SIT is
//!   final, an intercept is retried a day later), which for most details
//!   is the base outcome's rule.
//! - Every attempt counts, `unknown` ones included; after `attempts` the
//!   contact is done. A retry that would come at or after the campaign's
//!   end is not made.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{AttemptOutcome, CallOutcome};
use crate::call::outcome_refine::{default_rule, DetailRule, DETAILS};

/// Outcomes a spec may name, in the order of the store's names.
const KEYS: [AttemptOutcome; 10] = [
    AttemptOutcome::Call(CallOutcome::Answered),
    AttemptOutcome::Call(CallOutcome::Busy),
    AttemptOutcome::Call(CallOutcome::NoAnswer),
    AttemptOutcome::Call(CallOutcome::Rejected),
    AttemptOutcome::Call(CallOutcome::Unreachable),
    AttemptOutcome::Call(CallOutcome::Congestion),
    AttemptOutcome::Call(CallOutcome::AuthFailed),
    AttemptOutcome::Call(CallOutcome::Cancelled),
    AttemptOutcome::Call(CallOutcome::Failed),
    AttemptOutcome::Unknown,
];

const UNKNOWN: usize = 9;

fn slot(o: AttemptOutcome) -> Option<usize> {
    KEYS.iter().position(|k| *k == o)
}

/// What was wrong with `--retry` or `--attempts`. Items are quoted with
/// escapes; the caller names the option (`--retry: "busy=10x": unit must
/// be s, m, h or d`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    #[error("{0:?}: expected outcome=interval, e.g. busy=10m (or the word none)")]
    Format(String),
    #[error("{0:?}: unit must be s, m, h or d")]
    Unit(String),
    #[error("{0:?}: the interval must be a whole number and a unit, e.g. 10m")]
    Number(String),
    #[error("{0:?}: the interval must be at least 1s")]
    TooShort(String),
    #[error("{0:?}: the interval must be at most 365d")]
    TooLong(String),
    #[error(
        "{item:?}: {name:?} is not an outcome (answered, busy, no_answer, rejected, \
         unreachable, congestion, auth_failed, cancelled, failed, unknown)"
    )]
    Outcome { item: String, name: String },
    #[error(
        "{item:?}: {detail:?} is not a refined outcome's detail (sit-vc, sit-ic, sit-nc, \
         sit-ro, sit-io, sit, announcement, tone)"
    )]
    Detail { item: String, detail: String },
    #[error("{0:?}: a number on the do-not-call list is never called again")]
    Dnc(String),
    #[error("{0:?} is named twice")]
    Twice(String),
    #[error("attempts must be from 1 to {max}, not {n}", max = RetryPolicy::MAX_ATTEMPTS)]
    Attempts { n: u32 },
}

/// When to call a contact again, by the outcome of its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after each outcome in [`KEYS`] order; `None`: final.
    after: [Option<Duration>; KEYS.len()],
    /// Refined outcomes named in the spec: base, detail, wait (`None`:
    /// final), in the spec's order.
    refined: Vec<(CallOutcome, &'static str, Option<Duration>)>,
    attempts: u32,
}

/// What happens to a contact after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Next {
    /// Call again, no earlier than `at` (and inside calling hours).
    Retry { at: DateTime<Utc> },
    /// The contact is done.
    Final { why: FinalWhy },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalWhy {
    /// The outcome is not retried (answered, not named, dnc).
    NotRetried,
    /// All `attempts` are used.
    AttemptsUsed,
    /// The retry would come at or after the campaign's end.
    CampaignEnds,
}

impl Default for RetryPolicy {
    /// `busy=10m,no_answer=30m,congestion=5m` (unknown: 30m, the
    /// longest), 3 attempts.
    fn default() -> Self {
        let min = |m: u64| Some(Duration::from_secs(60 * m));
        let mut after = [None; KEYS.len()];
        for (o, d) in [
            (CallOutcome::Busy, min(10)),
            (CallOutcome::NoAnswer, min(30)),
            (CallOutcome::Congestion, min(5)),
        ] {
            if let Some(i) = slot(AttemptOutcome::Call(o)) {
                after[i] = d;
            }
        }
        after[UNKNOWN] = min(30);
        RetryPolicy {
            after,
            refined: Vec::new(),
            attempts: RetryPolicy::DEFAULT_ATTEMPTS,
        }
    }
}

impl RetryPolicy {
    pub const DEFAULT_ATTEMPTS: u32 = 3;
    pub const MAX_ATTEMPTS: u32 = 100;
    /// The wait after `unknown` when the spec names no interval at all.
    pub const UNKNOWN_FALLBACK: Duration = Duration::from_secs(600);
    const MAX_INTERVAL: Duration = Duration::from_secs(365 * 86_400);

    /// A spec (`busy=10m,no_answer=30m,congestion=5m`, or `none` for no
    /// retries but the crash rule's) and the attempts per contact.
    pub fn parse(spec: &str, attempts: u32) -> Result<RetryPolicy, RetryError> {
        if !(1..=RetryPolicy::MAX_ATTEMPTS).contains(&attempts) {
            return Err(RetryError::Attempts { n: attempts });
        }
        let mut after = [None; KEYS.len()];
        let mut refined = Vec::new();
        if !spec.trim().eq_ignore_ascii_case("none") {
            for item in spec.split(',') {
                let (name, interval) = item
                    .split_once('=')
                    .ok_or_else(|| RetryError::Format(item.trim().to_owned()))?;
                let name = name.trim();
                if name.contains(':') {
                    let rule = parse_refined(item.trim(), name, interval.trim())?;
                    if refined
                        .iter()
                        .any(|r: &(CallOutcome, &str, _)| (r.0, r.1) == (rule.0, rule.1))
                    {
                        return Err(RetryError::Twice(name.to_owned()));
                    }
                    refined.push(rule);
                    continue;
                }
                let outcome = AttemptOutcome::parse(name).ok_or_else(|| RetryError::Outcome {
                    item: item.trim().to_owned(),
                    name: name.to_owned(),
                })?;
                let i = slot(outcome).ok_or_else(|| RetryError::Dnc(item.trim().to_owned()))?;
                let d = parse_interval(item.trim(), interval.trim())?;
                if after[i].replace(d).is_some() {
                    return Err(RetryError::Twice(name.to_owned()));
                }
            }
        }
        if after[UNKNOWN].is_none() {
            after[UNKNOWN] = Some(
                after
                    .iter()
                    .flatten()
                    .max()
                    .copied()
                    .unwrap_or(RetryPolicy::UNKNOWN_FALLBACK),
            );
        }
        Ok(RetryPolicy {
            after,
            refined,
            attempts,
        })
    }

    /// Attempts per contact, at least 1.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before calling again after `outcome`; `None`: final.
    pub fn interval(&self, outcome: AttemptOutcome) -> Option<Duration> {
        slot(outcome).and_then(|i| self.after.get(i).copied().flatten())
    }

    /// The wait after `outcome` refined by `detail` (`announcement` of
    /// `no_answer:announcement`): the spec's rule for the refined outcome,
    /// else the detail's default, else the base outcome's rule.
    pub fn interval_refined(
        &self,
        outcome: AttemptOutcome,
        detail: Option<&str>,
    ) -> Option<Duration> {
        let (AttemptOutcome::Call(base), Some(detail)) = (outcome, detail) else {
            return self.interval(outcome);
        };
        if let Some((_, _, wait)) = self.refined.iter().find(|r| r.0 == base && r.1 == detail) {
            return *wait;
        }
        match default_rule(detail) {
            DetailRule::Final => None,
            DetailRule::After(d) => Some(d),
            DetailRule::AsBase => self.interval(outcome),
        }
    }

    /// After an attempt that ended at `ended_at` with `outcome`, the
    /// contact having had `attempts_made` attempts (this one included).
    pub fn next(
        &self,
        outcome: AttemptOutcome,
        attempts_made: u32,
        ended_at: DateTime<Utc>,
        campaign_ends: Option<DateTime<Utc>>,
    ) -> Next {
        self.next_refined(outcome, None, attempts_made, ended_at, campaign_ends)
    }

    /// As [`RetryPolicy::next`], for `outcome` refined by `detail`.
    pub fn next_refined(
        &self,
        outcome: AttemptOutcome,
        detail: Option<&str>,
        attempts_made: u32,
        ended_at: DateTime<Utc>,
        campaign_ends: Option<DateTime<Utc>>,
    ) -> Next {
        let Some(wait) = self.interval_refined(outcome, detail) else {
            return Next::Final {
                why: FinalWhy::NotRetried,
            };
        };
        if attempts_made >= self.attempts {
            return Next::Final {
                why: FinalWhy::AttemptsUsed,
            };
        }
        let at = TimeDelta::from_std(wait)
            .ok()
            .and_then(|d| ended_at.checked_add_signed(d));
        match at {
            Some(at) if campaign_ends.is_none_or(|end| at < end) => Next::Retry { at },
            _ => Next::Final {
                why: FinalWhy::CampaignEnds,
            },
        }
    }
}

/// `no_answer:announcement=2h` (or `=none`): its base, detail and wait.
fn parse_refined(
    item: &str,
    name: &str,
    interval: &str,
) -> Result<(CallOutcome, &'static str, Option<Duration>), RetryError> {
    let (base, detail) = name.split_once(':').unwrap_or((name, ""));
    let base = CallOutcome::parse(base.trim()).ok_or_else(|| RetryError::Outcome {
        item: item.to_owned(),
        name: name.to_owned(),
    })?;
    let detail = DETAILS
        .iter()
        .find(|d| **d == detail.trim())
        .ok_or_else(|| RetryError::Detail {
            item: item.to_owned(),
            detail: detail.trim().to_owned(),
        })?;
    let wait = if interval.eq_ignore_ascii_case("none") {
        None
    } else {
        Some(parse_interval(item, interval)?)
    };
    Ok((base, detail, wait))
}

/// `10m`: a whole number and a unit (s, m, h, d), 1 s to 365 d.
fn parse_interval(item: &str, s: &str) -> Result<Duration, RetryError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        u if n.is_empty() || !u.chars().all(char::is_alphabetic) => {
            return Err(RetryError::Number(item.to_owned()))
        }
        _ => return Err(RetryError::Unit(item.to_owned())),
    };
    if n.is_empty() {
        return Err(RetryError::Number(item.to_owned()));
    }
    // More digits than a u64 holds is too long, not malformed.
    let secs = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .map(Duration::from_secs)
        .unwrap_or(Duration::MAX);
    if secs.is_zero() {
        Err(RetryError::TooShort(item.to_owned()))
    } else if secs > RetryPolicy::MAX_INTERVAL {
        Err(RetryError::TooLong(item.to_owned()))
    } else {
        Ok(secs)
    }
}

/// The largest unit that states `d` exactly.
fn fmt_interval(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let s = d.as_secs();
    match [(86_400, 'd'), (3600, 'h'), (60, 'm')]
        .into_iter()
        .find(|(u, _)| s % u == 0)
    {
        Some((u, c)) => write!(f, "{}{c}", s / u),
        None => write!(f, "{s}s"),
    }
}

impl fmt::Display for RetryPolicy {
    /// The spec in full, every retried outcome named (`unknown`
    /// included), so it parses back to the same policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, d) in KEYS.iter().zip(self.after.iter()) {
            if let Some(d) = d {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{k}=")?;
                fmt_interval(*d, f)?;
            }
        }
        for (base, detail, wait) in &self.refined {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{}:{detail}=", base.as_str())?;
            match wait {
                Some(d) => fmt_interval(*d, f)?,
                None => f.write_str("none")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
