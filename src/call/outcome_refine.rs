//! Refined outcomes: the base outcome of an attempt (`outcome`) combined
//! with what was heard before (or instead of) an answer — a SIT and its
//! code, an operator announcement, a busy tone — into `unreachable:sit-vc`,
//! `no_answer:announcement`, …, and each one's default retry. The base
//! part before the colon is the outcome of docs/outcomes.md, so a retry
//! rule naming only the base still applies (docs/campaigns.md, "Refined
//! outcomes").

use std::time::Duration;

use crate::call::outcome::Outcome;
use crate::media::sit::{EarlyMedia, SitCode};

/// An outcome and, when the audio said more, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refined {
    pub base: Outcome,
    /// `sit-vc`, `announcement`, `tone`; `None`: the base says it all.
    pub detail: Option<&'static str>,
}

impl Refined {
    /// `unreachable:sit-vc`, or the base alone.
    pub fn as_string(&self) -> String {
        match self.detail {
            Some(d) => format!("{}:{d}", self.base.as_str()),
            None => self.base.as_str().to_string(),
        }
    }
}

/// Every `DETAIL` a refined outcome may carry.
pub const DETAILS: [&str; 8] = [
    "sit-vc",
    "sit-ic",
    "sit-nc",
    "sit-ro",
    "sit-io",
    "sit",
    "announcement",
    "tone",
];

/// What a campaign does after a refined outcome its retry spec does not
/// name (docs/campaigns.md, "Refined outcomes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailRule {
    /// Never again, whatever the base's rule: the number does not exist.
    Final,
    /// Again after this long, whatever the base's rule.
    After(Duration),
    /// As the base outcome's rule.
    AsBase,
}

/// The default rule of a refined outcome's `DETAIL`. A vacant code, an
/// ineffective-other or unassigned SIT: the number does not work, never
/// again. An intercept (the line is cut off or changed, often for a
/// while): a day later. No-circuit and reorder are the network's
/// congestion; speech and a busy tone explain the base; all follow it.
pub fn default_rule(detail: &str) -> DetailRule {
    match detail {
        "sit-vc" | "sit-io" | "sit" => DetailRule::Final,
        "sit-ic" => DetailRule::After(Duration::from_secs(86_400)),
        _ => DetailRule::AsBase,
    }
}

fn sit_name(code: SitCode) -> &'static str {
    match code {
        SitCode::Ic => "sit-ic",
        SitCode::Vc => "sit-vc",
        SitCode::Ro => "sit-ro",
        SitCode::Nc => "sit-nc",
        SitCode::Io => "sit-io",
        SitCode::Other => "sit",
    }
}

/// Refines `base` (from the SIP status and Q.850 cause) with the early
/// media's verdict. A SIT names the reason whatever the status said (a
/// carrier may even answer to play it): vacant and intercept are
/// `unreachable`, no-circuit and reorder `congestion`, the rest `failed`.
/// An announcement refines a failure the status already gives; a busy tone
/// refines `busy` and a bare no-answer. Ringback adds nothing.
pub fn refine(base: Outcome, early: Option<EarlyMedia>) -> Refined {
    let plain = Refined { base, detail: None };
    match early {
        Some(EarlyMedia::Sit(code)) => {
            let base = match code {
                SitCode::Vc | SitCode::Ic => Outcome::Unreachable,
                SitCode::Nc | SitCode::Ro => Outcome::Congestion,
                SitCode::Io | SitCode::Other => Outcome::Failed,
            };
            Refined {
                base,
                detail: Some(sit_name(code)),
            }
        }
        Some(EarlyMedia::Announcement)
            if base != Outcome::Answered && base != Outcome::Cancelled =>
        {
            Refined {
                base,
                detail: Some("announcement"),
            }
        }
        Some(EarlyMedia::Busy) if matches!(base, Outcome::Busy | Outcome::NoAnswer) => Refined {
            base: Outcome::Busy,
            detail: Some("tone"),
        },
        _ => plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_docs_campaigns() {
        let r = |b, e| refine(b, e).as_string();
        let sit = |c| Some(EarlyMedia::Sit(c));
        assert_eq!(
            r(Outcome::Unreachable, sit(SitCode::Vc)),
            "unreachable:sit-vc"
        );
        assert_eq!(r(Outcome::NoAnswer, sit(SitCode::Ic)), "unreachable:sit-ic");
        assert_eq!(r(Outcome::Answered, sit(SitCode::Vc)), "unreachable:sit-vc");
        assert_eq!(
            r(Outcome::Congestion, sit(SitCode::Nc)),
            "congestion:sit-nc"
        );
        assert_eq!(r(Outcome::Failed, sit(SitCode::Ro)), "congestion:sit-ro");
        assert_eq!(r(Outcome::Rejected, sit(SitCode::Io)), "failed:sit-io");
        let ann = Some(EarlyMedia::Announcement);
        assert_eq!(r(Outcome::NoAnswer, ann), "no_answer:announcement");
        assert_eq!(r(Outcome::Unreachable, ann), "unreachable:announcement");
        assert_eq!(r(Outcome::Answered, ann), "answered");
        assert_eq!(r(Outcome::NoAnswer, Some(EarlyMedia::Busy)), "busy:tone");
        assert_eq!(
            r(Outcome::NoAnswer, Some(EarlyMedia::Ringback)),
            "no_answer"
        );
        assert_eq!(r(Outcome::Busy, None), "busy");
    }

    #[test]
    fn retry_defaults() {
        assert_eq!(default_rule("sit-vc"), DetailRule::Final);
        assert_eq!(
            default_rule("sit-ic"),
            DetailRule::After(Duration::from_secs(86_400))
        );
        assert_eq!(default_rule("sit-nc"), DetailRule::AsBase);
        assert_eq!(default_rule("announcement"), DetailRule::AsBase);
        // Every detail refine() gives is in DETAILS.
        for code in [
            SitCode::Ic,
            SitCode::Vc,
            SitCode::Ro,
            SitCode::Nc,
            SitCode::Io,
            SitCode::Other,
        ] {
            let r = refine(Outcome::NoAnswer, Some(EarlyMedia::Sit(code)));
            assert!(DETAILS.contains(&r.detail.unwrap()), "{r:?}");
        }
    }
}
