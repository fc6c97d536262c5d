//! Whole runs between a user and a network link: a thousand messages each
//! way over clean, lossy and reordering lines, an idle link polled by
//! T203, and a peer that falls silent.

use super::sim::Sim;
use super::*;
use crate::media::netem::{GilbertElliott, Netem, NetemProfile};

/// Sends `n` messages each way once both links are up, runs to the end,
/// and returns the sim.
fn exchange(profile: NetemProfile, seed: u64, n: usize) -> Sim {
    let mut sim = Sim::new(profile, seed);
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(30), Sim::both_up), "seed {seed}: not up");
    let now = sim.now;
    for m in 0..n {
        sim.user.link.send(now, message(b'u', m)).unwrap();
        sim.net.link.send(now, message(b'n', m)).unwrap();
    }
    let done = |s: &Sim| s.user.data.len() >= n && s.net.data.len() >= n;
    assert!(sim.run_until(secs(3600), done), "seed {seed}: stalled");
    sim.run_for(secs(5));
    sim
}

fn assert_exactly_once(sim: &Sim, n: usize, seed: u64) {
    let want_at_net: Vec<_> = (0..n).map(|m| message(b'u', m)).collect();
    let want_at_user: Vec<_> = (0..n).map(|m| message(b'n', m)).collect();
    assert!(sim.net.data == want_at_net, "seed {seed}: user → network");
    assert!(sim.user.data == want_at_user, "seed {seed}: network → user");
    for p in [&sim.user, &sim.net] {
        // One Established: the link was never reset, nothing was lost.
        assert_eq!(p.established(), 1, "seed {seed}: {:?}", p.events);
        assert!(p.max_outstanding <= 7);
    }
}

#[test]
fn thousand_messages_each_way_on_a_clean_line_fill_the_window() {
    let sim = exchange(NetemProfile::clean(ms(20)), 1, 1000);
    assert_exactly_once(&sim, 1000, 1);
    for p in [&sim.user, &sim.net] {
        assert_eq!(
            p.max_outstanding, 7,
            "a 40 ms round trip needs the whole window"
        );
        assert!(p.events.iter().all(|(_, e)| *e == LinkEvent::Established));
        // Sequence numbers wrapped (1,000 > 128) and every I frame went once.
        assert_eq!(p.sent(|k| matches!(k, Kind::I { .. })).len(), 1000);
        assert!(p.sent(|k| matches!(k, Kind::Rej { .. })).is_empty());
    }
}

/// Random loss (Bernoulli and in bursts), duplicates and order-keeping
/// jitter: every message arrives once, in order, with no link reset.
#[test]
fn thousand_messages_each_way_survive_loss_and_duplicates() {
    for seed in 1..=4 {
        let mut p = NetemProfile::clean(ms(10));
        p.loss = if seed % 2 == 0 {
            GilbertElliott::random(0.05)
        } else {
            GilbertElliott::bursty(0.05, 3.0)
        };
        p.duplicate = 0.05;
        let sim = exchange(p, seed, 1000);
        assert_exactly_once(&sim, 1000, seed);
        let lost = sim.up.net.stats().lost + sim.down.net.stats().lost;
        let dup = sim.up.net.stats().duplicated + sim.down.net.stats().duplicated;
        assert!(lost > 50 && dup > 50, "seed {seed}: lost {lost}, dup {dup}");
        let rej = |k: &Kind| matches!(k, Kind::Rej { .. });
        assert!(!sim.user.sent(rej).is_empty() || !sim.net.sent(rej).is_empty());
    }
}

/// Q.921 assumes an order-keeping channel: a reordered stale N(R) is a
/// sequence error, which resets the link, dropping what was outstanding and
/// queued and saying so (`Established` again). Checked: the invariants hold
/// throughout (in `Sim`), the resets are reported, the link keeps carrying
/// a steady trickle of messages, and once the line keeps order again a
/// batch arrives exactly once, in order.
#[test]
fn reordering_resets_the_link_safely_and_it_recovers() {
    for seed in 1..=3 {
        let mut p = NetemProfile::clean(ms(10));
        p.loss = GilbertElliott::random(0.02);
        p.duplicate = 0.05;
        p.reorder = 0.1;
        p.reorder_delay = ms(15);
        let mut sim = Sim::new(p, seed);
        let now = sim.now;
        sim.user.link.establish(now);
        // Ten messages a second each way for a minute, as call control
        // would offer them.
        for m in 0..600 {
            let now = sim.now;
            // Refused only while a release is under way, never here.
            sim.user.link.send(now, message(b'u', m)).unwrap();
            sim.net.link.send(now, message(b'n', m)).unwrap();
            sim.run_for(ms(100));
        }
        sim.run_for(secs(30));
        let resets = sim.user.established() + sim.net.established();
        assert!(resets > 2, "seed {seed}: reordering went unnoticed");
        let (at_user, at_net) = (sim.user.data.len(), sim.net.data.len());
        // Not something Q.921 can promise over a reordering line (a stale
        // frame from before a reset could pass for a new one), but no such
        // case arises with these seeds: a regression check on the rest.
        for data in [&sim.user.data, &sim.net.data] {
            assert!(data.windows(2).all(|w| w[0] < w[1]), "seed {seed}");
        }
        assert!(
            at_user > 300 && at_net > 300,
            "seed {seed}: {at_user} and {at_net} of 600 delivered"
        );

        // Heal the line: the link must come (or stay) up and carry a
        // second batch exactly once.
        let clean = NetemProfile::clean(ms(10));
        sim.up.net = Netem::new(clean.clone(), seed);
        sim.down.net = Netem::new(clean, seed);
        sim.run_for(secs(30));
        assert!(sim.both_up(), "seed {seed}");
        let now = sim.now;
        for m in 0..200 {
            sim.user.link.send(now, message(b'U', m)).unwrap();
            sim.net.link.send(now, message(b'N', m)).unwrap();
        }
        sim.run_for(secs(60));
        let want: Vec<_> = (0..200).map(|m| message(b'U', m)).collect();
        assert_eq!(sim.net.data[at_net..], want[..], "seed {seed}");
        let want: Vec<_> = (0..200).map(|m| message(b'N', m)).collect();
        assert_eq!(sim.user.data[at_user..], want[..], "seed {seed}");
    }
}

#[test]
fn t203_enquiry_keeps_an_idle_link_up() {
    let mut sim = Sim::clean();
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    let up_at = sim.at();
    sim.run_for(secs(60));
    assert!(sim.both_up());
    // Whichever side's T203 runs out first polls; the answer restarts T203
    // on both, so the link sees one enquiry per T203, and no error.
    let mut polls = polls(&sim.user);
    polls.extend(self::polls(&sim.net));
    polls.sort();
    assert!((5..=6).contains(&polls.len()), "{polls:?}");
    assert!(polls[0] >= up_at + secs(9) && polls[0] < up_at + secs(11));
    for w in polls.windows(2) {
        assert!(
            w[1] - w[0] >= secs(10) && w[1] - w[0] < secs(11),
            "{polls:?}"
        );
    }
    for p in [&sim.user, &sim.net] {
        assert_eq!(p.events.len(), 1, "{:?}", p.events);
    }
}

/// A peer that goes silent is found by T203, polled N200 times, then the
/// link is re-established, fails, and is reported down.
#[test]
fn peer_silence_brings_the_link_down() {
    let mut sim = Sim::clean();
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    let t0 = sim.at();
    sim.down.cut = true;
    sim.run_for(secs(30));
    let u = &sim.user;
    let polls = polls(u);
    assert_eq!(polls.len(), 4, "T203 then three T200: {polls:?}");
    assert!(polls[0] - t0 >= secs(10) && polls[0] - t0 < secs(11));
    assert_eq!(u.sent(|k| matches!(k, Kind::Sabme { .. })).len(), 1 + 4);
    let errors: Vec<_> = u
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            LinkEvent::Error(c) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec![MdlError::I, MdlError::G]);
    assert_eq!(u.events.last().map(|(_, e)| e), Some(&LinkEvent::Released));
    let down_at = u.events.last().map(|(t, _)| *t - t0).unwrap_or_default();
    assert!(down_at >= secs(18) && down_at < secs(19), "{down_at:?}");
    assert_eq!(u.link.state(), State::TeiAssigned);
}
