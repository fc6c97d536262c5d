use super::*;
use crate::call::outcome::Outcome as O;
use chrono::NaiveDateTime;

fn utc(s: &str) -> DateTime<Utc> {
    match NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M") {
        Ok(t) => t.and_utc(),
        Err(e) => panic!("bad test time {s:?}: {e}"),
    }
}

fn policy(spec: &str, attempts: u32) -> RetryPolicy {
    match RetryPolicy::parse(spec, attempts) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn call(o: O) -> AttemptOutcome {
    AttemptOutcome::Call(o)
}

const MIN: u64 = 60;

#[test]
fn parses_the_issue_example_with_every_unit() {
    let p = policy("busy=10m,no_answer=30m,congestion=5m", 4);
    assert_eq!(p.attempts(), 4);
    assert_eq!(
        p.interval(call(O::Busy)),
        Some(Duration::from_secs(10 * MIN))
    );
    assert_eq!(
        p.interval(call(O::NoAnswer)),
        Some(Duration::from_secs(30 * MIN))
    );
    assert_eq!(
        p.interval(call(O::Congestion)),
        Some(Duration::from_secs(5 * MIN))
    );
    for o in [
        O::Answered,
        O::Rejected,
        O::Unreachable,
        O::AuthFailed,
        O::Cancelled,
        O::Failed,
    ] {
        assert_eq!(p.interval(call(o)), None, "{o}");
    }
    assert_eq!(p.interval(AttemptOutcome::Dnc), None);
    // unknown: the longest named interval.
    assert_eq!(
        p.interval(AttemptOutcome::Unknown),
        Some(Duration::from_secs(30 * MIN))
    );
    let p = policy(" busy = 45s , failed=2h,unreachable=1d, unknown=90s", 2);
    assert_eq!(p.interval(call(O::Busy)), Some(Duration::from_secs(45)));
    assert_eq!(p.interval(call(O::Failed)), Some(Duration::from_secs(7200)));
    assert_eq!(
        p.interval(call(O::Unreachable)),
        Some(Duration::from_secs(86_400))
    );
    assert_eq!(
        p.interval(AttemptOutcome::Unknown),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        p.to_string(),
        "busy=45s,unreachable=1d,failed=2h,unknown=90s"
    );
}

#[test]
fn the_default_and_none() {
    let d = RetryPolicy::default();
    assert_eq!(d.attempts(), 3);
    assert_eq!(
        d.to_string(),
        "busy=10m,no_answer=30m,congestion=5m,unknown=30m"
    );
    assert_eq!(policy("busy=10m,no_answer=30m,congestion=5m", 3), d);
    // none: only the crash rule's retry, after 10 minutes.
    let n = policy("none", 1);
    assert_eq!(n.to_string(), "unknown=10m");
    assert_eq!(n.interval(call(O::Busy)), None);
    // The written form parses back to the same policy.
    for p in [d, n, policy("busy=90m,answered=1d", 5)] {
        assert_eq!(policy(&p.to_string(), p.attempts()), p);
    }
}

#[test]
fn bad_specs_say_what_was_wrong() {
    let err = |s: &str| RetryPolicy::parse(s, 3).unwrap_err().to_string();
    assert_eq!(err("busy=10x"), "\"busy=10x\": unit must be s, m, h or d");
    assert_eq!(err("busy=10"), "\"busy=10\": unit must be s, m, h or d");
    assert_eq!(
        err("busy=1.5h"),
        "\"busy=1.5h\": the interval must be a whole number and a unit, e.g. 10m"
    );
    assert!(err("busy=").contains("whole number"));
    assert!(err("busy=-5m").contains("whole number"));
    assert_eq!(
        err("busy=0m"),
        "\"busy=0m\": the interval must be at least 1s"
    );
    assert_eq!(
        err("busy=366d"),
        "\"busy=366d\": the interval must be at most 365d"
    );
    assert!(err("busy=99999999999999999999999s").contains("at most 365d"));
    assert_eq!(
        err("busy"),
        "\"busy\": expected outcome=interval, e.g. busy=10m (or the word none)"
    );
    assert!(err("").contains("expected outcome=interval"));
    assert!(err("busy=10m,").contains("expected outcome=interval"));
    assert!(err("bsy=10m").starts_with("\"bsy=10m\": \"bsy\" is not an outcome (answered, busy"));
    assert!(err("Busy=10m").contains("is not an outcome"));
    assert_eq!(
        err("busy=10m,dnc=1d"),
        "\"dnc=1d\": a number on the do-not-call list is never called again"
    );
    assert_eq!(err("busy=10m,busy=5m"), "\"busy\" is named twice");
    assert!(err("busy=\u{1b}[31m").contains("\\u{1b}"));
    for n in [0, 101] {
        assert_eq!(
            RetryPolicy::parse("busy=1m", n).unwrap_err().to_string(),
            format!("attempts must be from 1 to 100, not {n}")
        );
    }
}

#[test]
fn retried_outcomes_come_back_after_their_interval() {
    let p = RetryPolicy::default();
    let t = utc("2026-05-01 10:00");
    assert_eq!(
        p.next(call(O::Busy), 1, t, None),
        Next::Retry {
            at: utc("2026-05-01 10:10")
        }
    );
    assert_eq!(
        p.next(call(O::NoAnswer), 2, t, None),
        Next::Retry {
            at: utc("2026-05-01 10:30")
        }
    );
    assert_eq!(
        p.next(call(O::Congestion), 1, t, None),
        Next::Retry {
            at: utc("2026-05-01 10:05")
        }
    );
}

#[test]
fn final_outcomes_are_not_retried_unless_named() {
    let p = RetryPolicy::default();
    let t = utc("2026-05-01 10:00");
    let done = Next::Final {
        why: FinalWhy::NotRetried,
    };
    for o in [
        O::Answered,
        O::Rejected,
        O::Unreachable,
        O::AuthFailed,
        O::Cancelled,
        O::Failed,
    ] {
        assert_eq!(p.next(call(o), 1, t, None), done, "{o}");
    }
    assert_eq!(p.next(AttemptOutcome::Dnc, 0, t, None), done);
    // Named, they are.
    let p = policy("unreachable=1h,rejected=1d", 3);
    assert_eq!(
        p.next(call(O::Unreachable), 1, t, None),
        Next::Retry {
            at: utc("2026-05-01 11:00")
        }
    );
    assert_eq!(
        p.next(call(O::Rejected), 1, t, None),
        Next::Retry {
            at: utc("2026-05-02 10:00")
        }
    );
    assert_eq!(p.next(call(O::Busy), 1, t, None), done);
}

#[test]
fn attempts_are_counted_and_run_out() {
    let p = policy("busy=10m", 3);
    let t = utc("2026-05-01 10:00");
    assert!(matches!(
        p.next(call(O::Busy), 1, t, None),
        Next::Retry { .. }
    ));
    assert!(matches!(
        p.next(call(O::Busy), 2, t, None),
        Next::Retry { .. }
    ));
    assert_eq!(
        p.next(call(O::Busy), 3, t, None),
        Next::Final {
            why: FinalWhy::AttemptsUsed
        }
    );
    // One attempt: nothing is retried, not even an unknown.
    let once = policy("busy=10m", 1);
    assert_eq!(
        once.next(AttemptOutcome::Unknown, 1, t, None),
        Next::Final {
            why: FinalWhy::AttemptsUsed
        }
    );
    // A final outcome says so, whatever the count.
    assert_eq!(
        p.next(call(O::Answered), 3, t, None),
        Next::Final {
            why: FinalWhy::NotRetried
        }
    );
}

/// The crash rule: an attempt in flight at a crash ends `unknown`, counts,
/// and is retried after the unknown interval while attempts remain.
#[test]
fn an_unknown_attempt_counts_and_is_retried() {
    let t = utc("2026-05-01 10:00");
    let unknown = AttemptOutcome::Unknown;
    let p = policy("busy=10m,no_answer=30m", 2);
    assert_eq!(
        p.next(unknown, 1, t, None),
        Next::Retry {
            at: utc("2026-05-01 10:30")
        }
    );
    assert_eq!(
        p.next(unknown, 2, t, None),
        Next::Final {
            why: FinalWhy::AttemptsUsed
        }
    );
    let p = policy("busy=10m,unknown=2m", 3);
    assert_eq!(
        p.next(unknown, 1, t, None),
        Next::Retry {
            at: utc("2026-05-01 10:02")
        }
    );
    let p = policy("none", 3);
    assert_eq!(
        p.next(unknown, 2, t, None),
        Next::Retry {
            at: utc("2026-05-01 10:10")
        }
    );
}

#[test]
fn no_retry_at_or_after_the_campaign_end() {
    let p = RetryPolicy::default();
    let t = utc("2026-05-01 10:00");
    let end = Some(utc("2026-05-01 10:30"));
    assert_eq!(
        p.next(call(O::Busy), 1, t, end),
        Next::Retry {
            at: utc("2026-05-01 10:10")
        }
    );
    // no_answer would come back at 10:30, the end itself: done.
    assert_eq!(
        p.next(call(O::NoAnswer), 1, t, end),
        Next::Final {
            why: FinalWhy::CampaignEnds
        }
    );
    assert_eq!(
        p.next(call(O::Busy), 1, utc("2026-05-01 11:00"), end),
        Next::Final {
            why: FinalWhy::CampaignEnds
        }
    );
}

proptest::proptest! {
    /// Hostile input is an error, never a panic; what parses writes back
    /// to itself.
    #[test]
    fn the_parser_never_panics(
        spec in "([a-z_]{0,12}=[0-9]{0,4}[smhdx]?,?){0,4}|\\PC{0,30}",
        attempts in 0u32..200,
    ) {
        if let Ok(p) = RetryPolicy::parse(&spec, attempts) {
            proptest::prop_assert_eq!(RetryPolicy::parse(&p.to_string(), attempts), Ok(p));
        }
    }
}

#[test]
fn a_refined_outcome_has_its_own_rule_then_its_default_then_its_base() {
    let p = policy(
        "no_answer=30m,unreachable=1h,no_answer:announcement=2h,congestion:sit-nc=none",
        3,
    );
    let w = |o, d| p.interval_refined(call(o), d).map(|d| d.as_secs() / MIN);
    // Named: its own rule, `none` included.
    assert_eq!(w(O::NoAnswer, Some("announcement")), Some(120));
    assert_eq!(w(O::Congestion, Some("sit-nc")), None);
    // Not named: the detail's default...
    assert_eq!(
        w(O::Unreachable, Some("sit-vc")),
        None,
        "vacant: never again"
    );
    assert_eq!(w(O::Unreachable, Some("sit-ic")), Some(24 * 60));
    // ...which for most is the base's rule.
    assert_eq!(w(O::Busy, Some("tone")), None, "busy not named here");
    assert_eq!(w(O::Unreachable, Some("announcement")), Some(60));
    assert_eq!(w(O::NoAnswer, None), Some(30));
    // The spec prints back whole and parses to the same policy.
    let text = p.to_string();
    assert!(
        text.contains("no_answer:announcement=2h") && text.contains("congestion:sit-nc=none"),
        "{text}"
    );
    assert_eq!(policy(&text, 3), p);
}

#[test]
fn the_default_policy_applies_the_detail_defaults() {
    let p = RetryPolicy::default();
    let w = |o, d| p.interval_refined(call(o), d).map(|d| d.as_secs() / MIN);
    assert_eq!(w(O::NoAnswer, Some("announcement")), Some(30));
    assert_eq!(w(O::Unreachable, Some("sit-vc")), None);
    assert_eq!(w(O::Congestion, Some("sit-ro")), Some(5));
    let t = utc("2026-03-02 10:00");
    assert_eq!(
        p.next_refined(call(O::Unreachable), Some("sit-ic"), 1, t, None),
        Next::Retry {
            at: utc("2026-03-03 10:00")
        }
    );
}

#[test]
fn bad_refined_items_are_refused_with_what_is_wrong() {
    let e = |spec: &str| RetryPolicy::parse(spec, 3).unwrap_err().to_string();
    assert!(e("no_answer:sit-xx=1h").contains("\"sit-xx\" is not a refined"));
    assert!(e("nobody:announcement=1h").contains("is not an outcome"));
    assert!(e("no_answer:announcement=1x").contains("unit must be"));
    assert!(e("no_answer:announcement=1h,no_answer:announcement=2h").contains("named twice"));
}
