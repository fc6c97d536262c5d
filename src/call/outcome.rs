//! The one normalized outcome of a call attempt (an outbound leg), the
//! vocabulary of CDRs, `rivr call`, `dial()` and campaign retries. It is
//! decided from transport-neutral facts: whether the leg was answered, the
//! Q.850 cause, the SIP status when the leg was SIP, and what rivr itself
//! did (gave up ringing, cancelled, saw its credentials refused).

use crate::call::cause::Cause;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Answered,
    Busy,
    NoAnswer,
    Rejected,
    Unreachable,
    Congestion,
    AuthFailed,
    Cancelled,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Answered,
        Outcome::Busy,
        Outcome::NoAnswer,
        Outcome::Rejected,
        Outcome::Unreachable,
        Outcome::Congestion,
        Outcome::AuthFailed,
        Outcome::Cancelled,
        Outcome::Failed,
    ];

    /// The name in CDRs, JSON and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Rejected => "rejected",
            Outcome::Unreachable => "unreachable",
            Outcome::Congestion => "congestion",
            Outcome::AuthFailed => "auth_failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an unanswered attempt ended, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The far end (or the network) refused: the cause, and the SIP final
    /// status when the leg was SIP.
    Refused {
        cause: Cause,
        sip_status: Option<u16>,
    },
    /// rivr stopped waiting for an answer (ring timeout).
    RingTimeout,
    /// Nothing ever answered the attempt (SIP timer B, Q.931 T303 twice).
    NoResponse,
    /// The far end refused rivr's credentials (a 403 or a fresh challenge
    /// in answer to them).
    AuthFailed,
    /// rivr withdrew the attempt (campaign cancelled, shutdown, the calling
    /// party of a `dial()` hung up).
    Cancelled,
    /// rivr could not place the attempt at all (no trunk up, no channel,
    /// no common codec): the cause says why.
    Local(Cause),
}

/// The outcome of an attempt that was never answered. SIP statuses are
/// read first where docs/outcomes.md's table names them (408 is no answer
/// though RFC 3398 maps it to cause 102), then the cause.
pub fn classify(u: Unanswered) -> Outcome {
    match u {
        Unanswered::RingTimeout => Outcome::NoAnswer,
        Unanswered::NoResponse => Outcome::Unreachable,
        Unanswered::AuthFailed => Outcome::AuthFailed,
        Unanswered::Cancelled => Outcome::Cancelled,
        Unanswered::Local(cause) => match by_cause(cause) {
            Outcome::Failed => Outcome::Failed,
            o => o,
        },
        Unanswered::Refused { cause, sip_status } => {
            let by_status = sip_status.and_then(|s| match s {
                486 | 600 => Some(Outcome::Busy),
                408 | 480 => Some(Outcome::NoAnswer),
                403 | 603 => Some(Outcome::Rejected),
                404 | 484 | 604 => Some(Outcome::Unreachable),
                502 | 503 => Some(Outcome::Congestion),
                // RFC 3398 maps these to cause 41 (temporary failure), but
                // they say rivr's request was wrong, not that the network
                // is busy: retrying later would not help.
                400 | 481 | 500 => Some(Outcome::Failed),
                _ => None,
            });
            by_status.unwrap_or_else(|| by_cause(cause))
        }
    }
}

fn by_cause(cause: Cause) -> Outcome {
    match cause.value() {
        17 => Outcome::Busy,
        18..=20 => Outcome::NoAnswer,
        21 => Outcome::Rejected,
        1..=3 | 28 => Outcome::Unreachable,
        34 | 38 | 41 | 42 | 47 => Outcome::Congestion,
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> Outcome {
        classify(Unanswered::Refused {
            cause: Cause::from_sip_status(status),
            sip_status: Some(status),
        })
    }

    fn cause(c: u8) -> Outcome {
        classify(Unanswered::Refused {
            cause: Cause::new(c).unwrap(),
            sip_status: None,
        })
    }

    #[test]
    fn the_issue_table() {
        for s in [486, 600] {
            assert_eq!(refused(s), Outcome::Busy, "{s}");
        }
        assert_eq!(cause(17), Outcome::Busy);
        for s in [408, 480] {
            assert_eq!(refused(s), Outcome::NoAnswer, "{s}");
        }
        assert_eq!(cause(18), Outcome::NoAnswer);
        assert_eq!(cause(19), Outcome::NoAnswer);
        assert_eq!(classify(Unanswered::RingTimeout), Outcome::NoAnswer);
        for s in [403, 603] {
            assert_eq!(refused(s), Outcome::Rejected, "{s}");
        }
        assert_eq!(cause(21), Outcome::Rejected);
        assert_eq!(classify(Unanswered::AuthFailed), Outcome::AuthFailed);
        for s in [404, 484, 604] {
            assert_eq!(refused(s), Outcome::Unreachable, "{s}");
        }
        for c in [1, 3, 28] {
            assert_eq!(cause(c), Outcome::Unreachable, "{c}");
        }
        for s in [502, 503] {
            assert_eq!(refused(s), Outcome::Congestion, "{s}");
        }
        for c in [34, 38, 41, 42] {
            assert_eq!(cause(c), Outcome::Congestion, "{c}");
        }
        assert_eq!(classify(Unanswered::NoResponse), Outcome::Unreachable);
        assert_eq!(classify(Unanswered::Cancelled), Outcome::Cancelled);
        assert_eq!(refused(500), Outcome::Failed); // cause 41, but rivr's fault
        assert_eq!(cause(41), Outcome::Congestion);
        assert_eq!(refused(488), Outcome::Failed);
        assert_eq!(cause(111), Outcome::Failed);
    }

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }
}
