//! Flood control on a virtual clock: rates, refill, escalation to silence
//! and back, keys, and the table's bound under a flood of spoofed sources.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg() -> FloodConfig {
    FloodConfig {
        rate: 20,
        burst: 20,
        refusals: 10,
        window: Duration::from_secs(10),
        silence: Duration::from_secs(60),
        capacity: 1024,
    }
}

#[test]
fn burst_then_refusals_with_the_wait_as_retry_after() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(cfg());
    let a = ip("192.0.2.1");
    for i in 0..20 {
        assert_eq!(f.on_invite(t0, a), Verdict::Allow, "INVITE {i}");
    }
    assert_eq!(
        f.on_invite(t0, a),
        Verdict::Reject503 {
            retry_after: ms(50)
        }
    );
    // One token per 50 ms refills.
    assert_eq!(f.on_invite(t0 + ms(50), a), Verdict::Allow);
    assert!(matches!(
        f.on_invite(t0 + ms(60), a),
        Verdict::Reject503 { .. }
    ));
    // Another source is untouched.
    assert_eq!(f.on_invite(t0, ip("192.0.2.2")), Verdict::Allow);
    assert!(!f.is_silenced(t0, a));
}

#[test]
fn a_source_that_keeps_going_is_silenced_then_heard_again_once_it_stops() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(cfg());
    let a = ip("192.0.2.1");
    // 300 INVITEs in one second, like the integration test.
    let mut counts = [0usize; 3];
    let mut order = Vec::new();
    for i in 0..300u64 {
        let v = f.on_invite(t0 + Duration::from_micros(i * 3333), a);
        let k = match v {
            Verdict::Allow => 0,
            Verdict::Reject503 { .. } => 1,
            Verdict::Silence => 2,
        };
        counts[k] += 1;
        order.push(k);
    }
    assert_eq!(counts[1], 10, "exactly `refusals` 503s: {counts:?}");
    assert!((20..=22).contains(&counts[0]), "{counts:?}");
    let first_silence = order.iter().position(|k| *k == 2).unwrap();
    assert!(
        order[first_silence..].iter().all(|k| *k == 2),
        "once silenced, nothing but silence"
    );
    assert_eq!(f.stats().sources_silenced, 1);
    let t1 = t0 + Duration::from_secs(1);
    assert!(f.is_silenced(t1, a), "silence covers every message");

    // The flood goes on at 100/s for five minutes: still silenced.
    let mut t = t1;
    for _ in 0..30_000 {
        t += ms(10);
        assert_eq!(f.on_invite(t, a), Verdict::Silence);
    }
    assert!(f.is_silenced(t + Duration::from_secs(59), a));
    // Then it sends slower than its rate (10/s) — still silent until 60 s
    // after the last INVITE over the rate...
    let last_over = t;
    for _ in 0..590 {
        t += ms(100);
        assert_eq!(f.on_invite(t, a), Verdict::Silence);
    }
    assert!(t < last_over + Duration::from_secs(60));
    // ...and heard again after it, with a fresh allowance of refusals.
    t = last_over + Duration::from_secs(60);
    assert!(!f.is_silenced(t, a));
    assert_eq!(f.on_invite(t, a), Verdict::Allow);
    assert_eq!(f.stats().sources_silenced, 1);
}

#[test]
fn a_source_quiet_for_the_silence_is_heard_again() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(cfg());
    let a = ip("192.0.2.9");
    while f.on_invite(t0, a) != Verdict::Silence {}
    assert!(f.is_silenced(t0 + ms(59_999), a));
    let t = t0 + Duration::from_secs(60);
    assert!(!f.is_silenced(t, a));
    for _ in 0..20 {
        assert_eq!(f.on_invite(t, a), Verdict::Allow);
    }
    // Ten more 503s before silence again: the slate was cleaned.
    for _ in 0..10 {
        assert!(matches!(f.on_invite(t, a), Verdict::Reject503 { .. }));
    }
    assert_eq!(f.on_invite(t, a), Verdict::Silence);
}

#[test]
fn occasional_refusals_spread_over_windows_never_silence() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(FloodConfig {
        burst: 1,
        rate: 1,
        ..cfg()
    });
    let a = ip("198.51.100.4");
    // Two INVITEs 10 ms apart every 2 s: one refusal each time, five per
    // 10 s window; never the ten that silence.
    for i in 0..1000u64 {
        let t = t0 + Duration::from_secs(2 * i);
        assert_eq!(f.on_invite(t, a), Verdict::Allow);
        assert!(matches!(
            f.on_invite(t + ms(10), a),
            Verdict::Reject503 { .. }
        ));
    }
    assert_eq!(f.stats().sources_silenced, 0);
}

#[test]
fn ipv6_sources_are_keyed_by_their_64() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(FloodConfig { burst: 2, ..cfg() });
    // Two hosts of one /64 share one bucket.
    assert_eq!(f.on_invite(t0, ip("2001:db8:1:2::1")), Verdict::Allow);
    assert_eq!(f.on_invite(t0, ip("2001:db8:1:2:ffff::9")), Verdict::Allow);
    assert!(matches!(
        f.on_invite(t0, ip("2001:db8:1:2::77")),
        Verdict::Reject503 { .. }
    ));
    // The next /64 has its own.
    assert_eq!(f.on_invite(t0, ip("2001:db8:1:3::1")), Verdict::Allow);
    // An IPv4-mapped address is the IPv4 address.
    assert_eq!(f.on_invite(t0, ip("::ffff:192.0.2.1")), Verdict::Allow);
    assert_eq!(f.on_invite(t0, ip("192.0.2.1")), Verdict::Allow);
    assert!(matches!(
        f.on_invite(t0, ip("::ffff:192.0.2.1")),
        Verdict::Reject503 { .. }
    ));
    assert_eq!(f.len(), 3);
}

#[test]
fn a_million_spoofed_sources_stay_within_the_table() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(FloodConfig {
        capacity: DEFAULT_CAPACITY,
        ..cfg()
    });
    let attacker = ip("203.0.113.66");
    while f.on_invite(t0, attacker) != Verdict::Silence {}
    let memory = f.memory_bytes();
    let mut allowed = 0u32;
    for i in 0..1_000_000u32 {
        // One INVITE per µs from a new address each time.
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let t = t0 + Duration::from_micros(u64::from(i));
        if f.on_invite(t, src) == Verdict::Allow {
            allowed += 1;
        }
        assert!(f.len() <= DEFAULT_CAPACITY);
    }
    assert_eq!(allowed, 1_000_000, "each new source gets its burst");
    assert_eq!(f.len(), DEFAULT_CAPACITY);
    assert_eq!(f.memory_bytes(), memory, "the table never grew");
    assert!(f.stats().evictions >= 1_000_000 - DEFAULT_CAPACITY as u64);
    assert!(
        f.is_silenced(t0 + Duration::from_secs(1), attacker),
        "a silenced source survives the churn"
    );
    println!(
        "flood table: {} sources, {} bytes ({} per source)",
        f.len(),
        f.memory_bytes(),
        f.memory_bytes() / f.len()
    );
    assert!(f.memory_bytes() < 8 << 20, "{} bytes", f.memory_bytes());
}

#[test]
fn eviction_prefers_sources_with_nothing_to_remember() {
    let t0 = Instant::now();
    let mut f = FloodControl::new(FloodConfig {
        capacity: 3,
        ..cfg()
    });
    let (a, b, c, d) = (
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        ip("10.0.0.3"),
        ip("10.0.0.4"),
    );
    while f.on_invite(t0, a) != Verdict::Silence {} // silenced
    f.on_invite(t0, b); // one token spent, refilled at t0 + 50 ms
    for _ in 0..21 {
        f.on_invite(t0, c); // a refusal on record
    }
    // At t0 + 1 s, b has nothing to remember: d takes its slot.
    let t = t0 + Duration::from_secs(1);
    assert_eq!(f.on_invite(t, d), Verdict::Allow);
    assert!(f.is_silenced(t, a));
    assert!(f.index.contains_key(&SourceKey::of(c)));
    assert!(!f.index.contains_key(&SourceKey::of(b)));
    // A full table of silenced sources still takes a new one.
    let mut g = FloodControl::new(FloodConfig {
        capacity: 2,
        ..cfg()
    });
    while g.on_invite(t0, a) != Verdict::Silence {}
    while g.on_invite(t0, b) != Verdict::Silence {}
    assert_eq!(g.on_invite(t0, c), Verdict::Allow);
    assert_eq!(g.len(), 2);
}
