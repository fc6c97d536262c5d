//! Session timers (RFC 4028), the decisions without the dialog: what a
//! UAS answers to an INVITE's `Session-Expires` / `Min-SE` / `Supported:
//! timer`, what a UAC learns from the 2xx, and when a running session is
//! due for a refresh (the refresher, at half the interval) or has expired
//! (the other side, when no refresh came `min(32 s, interval / 3)` before
//! the end). Sans-IO: header values in, decisions and instants out. The
//! dialog side (the 2xx headers, the refresh requests, BYE on expiry) is
//! `sip::endpoint::session`.

use std::time::{Duration, Instant};

/// RFC 4028 §4: the smallest interval anyone may ask for.
pub const MIN_SE_FLOOR: u32 = 90;

/// Who sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A `Session-Expires` header value: `1800;refresher=uac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub seconds: u32,
    pub refresher: Option<Refresher>,
}

/// Parses a `Session-Expires` (or compact `x`) value; `None` if it is not
/// one (a malformed value is treated as absent, never a panic).
pub fn parse_session_expires(value: &str) -> Option<SessionExpires> {
    let mut parts = value.split(';');
    let seconds = parts.next()?.trim().parse::<u32>().ok()?;
    let mut refresher = None;
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case("refresher") {
            refresher = match v.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => None,
            };
        }
    }
    Some(SessionExpires { seconds, refresher })
}

/// A `Min-SE` value (delta-seconds, parameters ignored).
pub fn parse_min_se(value: &str) -> Option<u32> {
    value.split(';').next()?.trim().parse().ok()
}

/// What a request or a response says about session timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headers {
    pub session_expires: Option<SessionExpires>,
    pub min_se: Option<u32>,
    /// `Supported: timer` (or `Require: timer`).
    pub supports_timer: bool,
    /// `Allow` lists UPDATE: refreshes may use it (RFC 4028 §7.4, §9).
    pub allows_update: bool,
}

/// Reads the session-timer headers (long and compact names) from a list
/// of (name, value) pairs.
pub fn read_headers<'a>(headers: impl IntoIterator<Item = &'a (String, String)>) -> Headers {
    let mut h = Headers::default();
    let tokens = |v: &str, want: &str| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want));
    for (name, value) in headers {
        let name = name.trim();
        let is = |long: &str, short: &str| {
            name.eq_ignore_ascii_case(long)
                || (!short.is_empty() && name.eq_ignore_ascii_case(short))
        };
        if is("Session-Expires", "x") {
            h.session_expires = h.session_expires.or(parse_session_expires(value));
        } else if is("Min-SE", "") {
            h.min_se = h.min_se.or(parse_min_se(value));
        } else if is("Supported", "k") || is("Require", "") {
            h.supports_timer |= tokens(value, "timer");
        } else if is("Allow", "") {
            h.allows_update |= tokens(value, "UPDATE");
        }
    }
    h
}

/// What rivr as UAS does with an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasDecision {
    /// No session timer on this dialog (the UAC asked for none and rivr
    /// does not insist: RFC 4028 §9 lets the UAS add one only if the UAC
    /// supports it).
    None,
    /// 422 Session Interval Too Small, with `Min-SE: min_se`.
    TooSmall { min_se: u32 },
    /// 2xx with `Session-Expires: seconds;refresher=…` (and `Require:
    /// timer` when the UAC said it supports timers).
    Run {
        seconds: u32,
        refresher: Refresher,
        require_timer: bool,
    },
}

/// rivr's own limits as UAS: the interval it asks for when the UAC
/// supports timers but named none, and the smallest it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub default_seconds: u32,
    pub min_se: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_seconds: 1800,
            min_se: MIN_SE_FLOOR,
        }
    }
}

/// RFC 4028 §9 for an initial INVITE (or a refresh: the same rules).
pub fn uas_decide(
    policy: Policy,
    session_expires: Option<SessionExpires>,
    min_se: Option<u32>,
    uac_supports_timer: bool,
) -> UasDecision {
    let floor = policy.min_se.max(MIN_SE_FLOOR).max(min_se.unwrap_or(0));
    match session_expires {
        Some(se) if se.seconds < policy.min_se.max(MIN_SE_FLOOR) => {
            // Only a UAC that supports timers understands a 422; for one
            // that does not, the request's interval is raised instead.
            if uac_supports_timer {
                UasDecision::TooSmall {
                    min_se: policy.min_se.max(MIN_SE_FLOOR),
                }
            } else {
                UasDecision::Run {
                    seconds: floor,
                    refresher: Refresher::Uas,
                    require_timer: false,
                }
            }
        }
        Some(se) => UasDecision::Run {
            seconds: se.seconds,
            // The UAC's choice stands; if it made none, a UAC that
            // supports timers refreshes (it asked), else rivr must.
            refresher: se.refresher.unwrap_or(if uac_supports_timer {
                Refresher::Uac
            } else {
                Refresher::Uas
            }),
            require_timer: uac_supports_timer,
        },
        None if uac_supports_timer => UasDecision::Run {
            seconds: policy.default_seconds.max(floor),
            refresher: Refresher::Uac,
            require_timer: true,
        },
        None => UasDecision::None,
    }
}

/// What rivr as UAC learns from a 2xx: the interval and who refreshes.
/// A 2xx without `Session-Expires` means the UAS runs no timer; rivr then
/// refreshes itself only if it asked for one (§7.2), at its own interval.
pub fn uac_learn(asked: Option<u32>, answer: Option<SessionExpires>) -> Option<(u32, Refresher)> {
    match (answer, asked) {
        (Some(se), _) => Some((se.seconds, se.refresher.unwrap_or(Refresher::Uac))),
        (None, Some(seconds)) => Some((seconds, Refresher::Uac)),
        (None, None) => None,
    }
}

/// A running session timer on one dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    interval: Duration,
    /// True when this side sends the refreshes.
    we_refresh: bool,
    /// When the session was last refreshed (or started).
    refreshed_at: Instant,
}

/// What a session timer wants at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Nothing yet.
    Wait,
    /// Send a refresh (re-INVITE or UPDATE) now.
    Refresh,
    /// No refresh arrived in time: send BYE and end the call (§10).
    Expired,
}

impl SessionTimer {
    /// Starts (or restarts, on a refresh) at `now`.
    pub fn new(seconds: u32, we_refresh: bool, now: Instant) -> Self {
        SessionTimer {
            interval: Duration::from_secs(seconds.max(1).into()),
            we_refresh,
            refreshed_at: now,
        }
    }

    /// A refresh was answered 2xx (ours) or received (theirs).
    pub fn refreshed(&mut self, now: Instant) {
        self.refreshed_at = now;
    }

    /// The negotiated interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// True when this side sends the refreshes.
    pub fn we_refresh(&self) -> bool {
        self.we_refresh
    }

    /// When the session is over without a refresh, whoever refreshes: the
    /// refresher whose refreshes keep failing gives up here too.
    pub fn expires_at(&self) -> Instant {
        let margin = Duration::from_secs(32).min(self.interval / 3);
        self.refreshed_at + self.interval - margin
    }

    /// When the next action is due.
    pub fn deadline(&self) -> Instant {
        if self.we_refresh {
            // §10: the refresher refreshes at half the interval.
            self.refreshed_at + self.interval / 2
        } else {
            // The other side gives up a little before the end, so a BYE
            // still reaches a peer whose own timer is about to fire.
            self.expires_at()
        }
    }

    /// What to do at `now`.
    pub fn poll(&self, now: Instant) -> TimerAction {
        if now < self.deadline() {
            TimerAction::Wait
        } else if self.we_refresh {
            TimerAction::Refresh
        } else {
            TimerAction::Expired
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_and_min_se_parse_or_are_absent() {
        assert_eq!(
            parse_session_expires("1800;refresher=uac"),
            Some(SessionExpires {
                seconds: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            parse_session_expires(" 600 ; Refresher = UAS ; x=y"),
            Some(SessionExpires {
                seconds: 600,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(parse_session_expires("abc"), None);
        assert_eq!(parse_session_expires("99999999999"), None);
        assert_eq!(parse_min_se("120;lr"), Some(120));
        assert_eq!(parse_min_se(""), None);
    }

    #[test]
    fn headers_are_read_by_long_and_compact_names() {
        let hs: Vec<(String, String)> = [
            ("x", "600;refresher=uas"),
            ("Min-SE", "120"),
            ("k", "replaces, timer"),
            ("Allow", "INVITE, ACK, update"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let h = read_headers(&hs);
        assert_eq!(
            h.session_expires,
            Some(SessionExpires {
                seconds: 600,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(h.min_se, Some(120));
        assert!(h.supports_timer && h.allows_update);
        assert_eq!(read_headers(&[]), Headers::default());
    }

    #[test]
    fn uas_follows_rfc4028_section_9() {
        let p = Policy::default();
        let se = |s, r| {
            Some(SessionExpires {
                seconds: s,
                refresher: r,
            })
        };
        // Too small, from a UAC that understands 422.
        assert_eq!(
            uas_decide(p, se(60, None), None, true),
            UasDecision::TooSmall { min_se: 90 }
        );
        // Too small from one that does not: raised, and rivr refreshes.
        assert_eq!(
            uas_decide(p, se(60, None), Some(120), false),
            UasDecision::Run {
                seconds: 120,
                refresher: Refresher::Uas,
                require_timer: false
            }
        );
        // The UAC's refresher stands.
        assert_eq!(
            uas_decide(p, se(600, Some(Refresher::Uas)), None, true),
            UasDecision::Run {
                seconds: 600,
                refresher: Refresher::Uas,
                require_timer: true
            }
        );
        // Supported but no interval: rivr's default, the UAC refreshes.
        assert_eq!(
            uas_decide(p, None, None, true),
            UasDecision::Run {
                seconds: 1800,
                refresher: Refresher::Uac,
                require_timer: true
            }
        );
        assert_eq!(uas_decide(p, None, None, false), UasDecision::None);
    }

    #[test]
    fn uac_learns_the_interval_and_the_refresher() {
        let se = SessionExpires {
            seconds: 900,
            refresher: Some(Refresher::Uas),
        };
        assert_eq!(uac_learn(Some(1800), Some(se)), Some((900, Refresher::Uas)));
        assert_eq!(uac_learn(Some(1800), None), Some((1800, Refresher::Uac)));
        assert_eq!(uac_learn(None, None), None);
    }

    #[test]
    fn refresher_refreshes_at_half_and_the_other_side_expires_before_the_end() {
        let t0 = Instant::now();
        let mut ours = SessionTimer::new(1800, true, t0);
        assert_eq!(ours.poll(t0 + Duration::from_secs(899)), TimerAction::Wait);
        assert_eq!(
            ours.poll(t0 + Duration::from_secs(900)),
            TimerAction::Refresh
        );
        ours.refreshed(t0 + Duration::from_secs(900));
        assert_eq!(ours.deadline(), t0 + Duration::from_secs(1800));

        let theirs = SessionTimer::new(1800, false, t0);
        // min(32, 600) = 32 s before the end.
        assert_eq!(theirs.deadline(), t0 + Duration::from_secs(1768));
        assert_eq!(
            theirs.poll(t0 + Duration::from_secs(1768)),
            TimerAction::Expired
        );
        // A short interval: a third of it.
        let short = SessionTimer::new(90, false, t0);
        assert_eq!(short.deadline(), t0 + Duration::from_secs(60));
    }
}
