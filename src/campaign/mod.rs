//! Outbound voice-blast campaigns: the dialer's rules, sans-IO. Which
//! contact may be called now (calling hours in the contact's own zone,
//! retry times, the do-not-call list, the campaign's end), how fast
//! (pacing per campaign, never above `cps` in any 1 s window), what an
//! attempt's outcome means for the contact (retry, final, SMS fallback).
//! Time is passed in; the durable state lives in `crate::store`, which
//! holds rows, not these rules. It must not know SIP or PRI: a campaign
//! names trunks, and `crate::call` places the calls.
//! See docs/campaigns.md.
//!
//! - `hours`: calling hours in each contact's zone, DST gaps and folds;
//! - `retry`: whether and when a contact is called again;
//! - `pace`: which campaign starts its next call, on which trunk, when;
//! - `ops`: the operator's operations (create, start, pause, …, report),
//!   shared by `cli` and the HTTP API.

pub mod hours;
pub mod pace;
pub mod retry;

pub mod cli;
pub mod contacts;
pub mod ops;

use crate::call::outcome::Outcome as CallOutcome;

/// What one attempt came to. The call outcomes, plus what only a campaign
/// knows: the contact was on the do-not-call list when its turn came, or
/// the attempt was in flight when rivr died (docs/campaigns.md, the crash
/// rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    Call(CallOutcome),
    /// Not dialed: the number is on the do-not-call list.
    Dnc,
    /// In flight when the process died; what happened is not known.
    Unknown,
}

impl AttemptOutcome {
    /// Every outcome an attempt can end with.
    pub fn all() -> impl Iterator<Item = AttemptOutcome> {
        CallOutcome::ALL
            .into_iter()
            .map(AttemptOutcome::Call)
            .chain([AttemptOutcome::Dnc, AttemptOutcome::Unknown])
    }

    /// The name in the store, reports and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Call(o) => o.as_str(),
            AttemptOutcome::Dnc => "dnc",
            AttemptOutcome::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        match s {
            "dnc" => Some(AttemptOutcome::Dnc),
            "unknown" => Some(AttemptOutcome::Unknown),
            _ => CallOutcome::parse(s).map(AttemptOutcome::Call),
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in AttemptOutcome::all() {
            assert_eq!(AttemptOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(AttemptOutcome::parse("bogus"), None);
    }
}
