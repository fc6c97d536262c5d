//! The route chooser and the failover rule on a virtual clock.

use std::time::{Duration, Instant};

use super::*;

fn spec(name: &str, prefixes: &[&str]) -> RouteSpec {
    RouteSpec {
        name: name.into(),
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        health: HealthConfig::default(),
        family: Family::Smpp,
    }
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn longest_prefix_first_then_file_order() {
    let t0 = Instant::now();
    let c = Chooser::new(
        vec![
            spec("any", &[]),
            spec("kenya", &["254"]),
            spec("safaricom", &["25471", "25472"]),
            spec("kenya2", &["254"]),
        ],
        t0,
    );
    assert_eq!(c.candidates("+254712000000"), [2, 1, 3, 0]);
    assert_eq!(c.candidates("254733000000"), [1, 3, 0]);
    assert_eq!(c.candidates("+15551234567"), [0]);
    assert_eq!(c.choose("+254712000000", None), Ok(2));
    assert_eq!(c.choose("+1555", Some("kenya")), Ok(1));
    assert!(matches!(
        c.choose("+1555", Some("nope")),
        Err(RouteError::NoSuchRoute(..))
    ));
    let only = Chooser::new(vec![spec("ke", &["254"])], t0);
    assert_eq!(
        only.choose("+1555", None),
        Err(RouteError::NoRouteFor("+1555".into()))
    );
}

#[test]
fn a_refused_bind_sends_the_messages_to_the_next_route_until_it_binds() {
    let t0 = Instant::now();
    let mut c = Chooser::new(vec![spec("a", &[]), spec("b", &[])], t0);
    assert_eq!(
        c.choose("1", None),
        Ok(0),
        "a starting route takes messages"
    );
    assert_eq!(
        c.signal(0, Signal::BindRefused("ESME_RBINDFAIL".into()), t0 + MS),
        Some(Change::Down("bind refused: ESME_RBINDFAIL".into()))
    );
    assert_eq!(c.choose("1", None), Ok(1));
    assert_eq!(c.next_after("1", 0), Some(1));
    // refused again: no second change
    assert_eq!(
        c.signal(0, Signal::BindRefused("x".into()), t0 + 2 * MS),
        None
    );
    assert_eq!(c.signal(0, Signal::Bound, t0 + 3 * MS), Some(Change::Up));
    assert_eq!(c.choose("1", None), Ok(0));
}

#[test]
fn a_route_unbound_for_failover_after_is_down_and_all_down_stays_put() {
    let t0 = Instant::now();
    let mut c = Chooser::new(vec![spec("a", &[]), spec("b", &[])], t0);
    c.signal(1, Signal::Bound, t0);
    assert_eq!(c.next_timeout(), Some(t0 + Duration::from_secs(3)));
    assert!(c.poll(t0 + Duration::from_millis(2999)).is_empty());
    let ch = c.poll(t0 + Duration::from_secs(3));
    assert_eq!(ch, [(0, Change::Down("not bound for 3000 ms".into()))]);
    assert_eq!(c.choose("1", None), Ok(1));
    // b's link drops: it has 3 s to come back
    c.signal(1, Signal::Unbound, t0 + Duration::from_secs(10));
    assert!(c.is_up(1));
    c.signal(1, Signal::Unbound, t0 + Duration::from_secs(12));
    let ch = c.poll(t0 + Duration::from_secs(13));
    assert_eq!(ch.len(), 1, "unbound since 10 s, not 12 s: {ch:?}");
    // all down: a message waits on its first candidate, nothing moves
    assert_eq!(c.choose("1", None), Ok(0));
    assert_eq!(c.next_after("1", 0), None);
}

#[test]
fn hard_throttling_fails_over_for_the_hold_time_soft_throttling_does_not() {
    let t0 = Instant::now();
    let mut c = Chooser::new(vec![spec("a", &[]), spec("b", &[])], t0);
    c.signal(0, Signal::Bound, t0);
    c.signal(1, Signal::Bound, t0);
    // four throttles, an acceptance, four more: never five in a row
    for i in 0..4 {
        assert_eq!(c.signal(0, Signal::Throttled, t0 + i * MS), None);
    }
    c.signal(0, Signal::Accepted, t0 + 5 * MS);
    for i in 0..4 {
        assert_eq!(c.signal(0, Signal::Throttled, t0 + (6 + i) * MS), None);
    }
    // throttles more than 10 s apart do not add up
    let t1 = t0 + Duration::from_secs(20);
    assert_eq!(c.signal(0, Signal::Throttled, t1), None);
    assert_eq!(c.signal(0, Signal::Accepted, t1), None);
    for i in 0..4 {
        assert_eq!(c.signal(0, Signal::Throttled, t1 + i * MS), None);
    }
    assert!(matches!(
        c.signal(0, Signal::Throttled, t1 + 4 * MS),
        Some(Change::Down(w)) if w.starts_with("throttling")
    ));
    assert_eq!(c.choose("1", None), Ok(1));
    // still bound, but held down for 30 s
    assert!(c.poll(t1 + Duration::from_secs(29)).is_empty());
    assert_eq!(
        c.signal(0, Signal::Bound, t1 + Duration::from_secs(29)),
        None
    );
    assert_eq!(
        c.poll(t1 + Duration::from_secs(30) + 4 * MS),
        [(0, Change::Up)]
    );
    assert_eq!(c.choose("1", None), Ok(0));
}

#[test]
fn a_part_taken_for_smpp_never_goes_to_an_http_route() {
    let t0 = Instant::now();
    let mut c = Chooser::new(
        vec![
            spec("a", &[]),
            spec("b", &["41"]),
            RouteSpec {
                family: Family::Http,
                ..spec("http", &[])
            },
        ],
        t0,
    );
    c.signal(0, Signal::BindRefused("x".into()), t0 + MS);
    // A new message may take the provider: it is encoded for it.
    assert_eq!(c.choose("1555", None), Ok(2));
    // One made for a (SMPP) waits for it rather than reach the provider
    // as encoded bytes; where b serves, it goes to b.
    assert_eq!(c.choose_like("1555", None, Some(0)), Ok(0));
    assert_eq!(c.choose_like("41791", None, Some(0)), Ok(1));
    // The provider's own parts stay with it; no route known: any.
    assert_eq!(c.choose_like("1555", None, Some(2)), Ok(2));
    assert_eq!(c.choose_like("1555", None, None), Ok(2));
    assert_eq!(c.choose_like("1555", Some("a"), Some(2)), Ok(0));
}

#[test]
fn an_http_route_after_the_smpp_routes_takes_over_when_they_go_down() {
    let t0 = Instant::now();
    // Built as the service builds it: SMPP routes in file order, then
    // `[sms_http]`, which is up from the start (it has no bind).
    let mut c = Chooser::new(
        vec![
            spec("a", &["1555"]),
            spec("b", &[]),
            spec("http", &["1555"]),
        ],
        t0,
    );
    c.signal(2, Signal::Bound, t0);
    assert_eq!(c.candidates("+15550001"), [0, 2, 1]);
    assert_eq!(c.candidates("+4479"), [1]);
    assert_eq!(c.choose("+15550001", None), Ok(0));
    assert_eq!(
        c.signal(0, Signal::BindRefused("ESME_RBINDFAIL".into()), t0 + MS),
        Some(Change::Down("bind refused: ESME_RBINDFAIL".into()))
    );
    assert_eq!(c.next_after("+15550001", 0), Some(2));
    assert_eq!(c.choose("+15550001", None), Ok(2));
    // b never binds: down after failover_after; +44 has nowhere to go
    let later = t0 + Duration::from_secs(3);
    assert_eq!(
        c.poll(later),
        vec![(1, Change::Down("not bound for 3000 ms".into()))]
    );
    assert_eq!(c.next_after("+4479", 1), None);
    // a binds again: new messages to +1555 take it, the HTTP route stays
    // the fallback
    assert_eq!(c.signal(0, Signal::Bound, later + MS), Some(Change::Up));
    assert_eq!(c.choose("+15550001", None), Ok(0));
    assert_eq!(c.next_after("+15550001", 0), Some(2));
}
