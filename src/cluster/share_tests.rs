use std::collections::BTreeMap;

use super::*;

fn trunk(cps: u32, channels: u32) -> Vec<TrunkPace> {
    vec![TrunkPace {
        name: "carrier".into(),
        cps,
        max_channels: channels,
    }]
}

fn row(id: &str, lease_until: i64, reserved_until: Option<i64>, used: u32) -> NodeRow {
    NodeRow {
        id: id.into(),
        incarnation: "x".into(),
        started_at: 0,
        heartbeat_at: lease_until - 10_000,
        lease_until,
        reserved_until,
        channels: BTreeMap::from([("carrier".to_string(), used)]),
    }
}

#[test]
fn shares_add_up_to_the_cap_and_the_lowest_ids_get_the_rest() {
    for cap in 0..60 {
        for n in 1..6 {
            let all: Vec<u32> = (0..n).map(|i| share(cap, n, i)).collect();
            assert_eq!(
                all.iter().sum::<u32>(),
                cap,
                "cap {cap}, {n} nodes: {all:?}"
            );
            assert!(all.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
        }
    }
    assert_eq!(
        (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
        [4, 3, 3]
    );
}

#[test]
fn members_are_live_nodes_and_dead_ones_until_their_reservation_ends() {
    let rows = [
        row("b", 5_000, None, 0),
        row("a", 20_000, None, 0),
        row("c", 5_000, Some(9_000), 0),
        row("d", 1_000, Some(8_000), 0),
    ];
    let m = members(&rows, 8_500);
    let ids: Vec<(&str, bool)> = m.iter().map(|m| (m.id.as_str(), m.live)).collect();
    // b's lease ran out but nobody took it over yet: held, not live.
    assert_eq!(ids, [("a", true), ("b", false), ("c", false)]);
}

/// Three nodes poll the table at their own times (every 500 ms, offset);
/// at every 10 ms of a virtual minute in which one joins late and one dies,
/// the limits in force add up to no more than the caps.
#[test]
fn the_sum_of_the_limits_in_force_never_passes_the_caps() {
    let full = trunk(25, 20);
    let ids = ["n1", "n2", "n3"];
    let mut caps: Vec<Caps> = ids.iter().map(|i| Caps::new(i, full.clone())).collect();
    // In force per node: nothing until its first poll (it has not joined).
    let mut in_force: Vec<Option<Vec<TrunkPace>>> = vec![None; 3];
    let joins = [0_i64, 0, 12_000];
    let n3_dies = 30_000;
    let lease = 10_000;
    let mut reserved: Option<i64> = None;
    let mut grown_at = None;
    for now in (0..60_000).step_by(10) {
        // The table as the renewals (every second) left it.
        let rows: Vec<NodeRow> = (0..3)
            .filter(|&i| now >= joins[i])
            .map(|i| {
                let alive_until = if i == 2 { n3_dies } else { i64::MAX };
                let beat = now.min(alive_until) / 1_000 * 1_000;
                let used = in_force[i].as_ref().map_or(0, |l| l[0].max_channels);
                let mut r = row(ids[i], beat + lease, None, used);
                if i == 2 && now >= n3_dies + lease {
                    // Taken over when its lease ran out: held 5 s more.
                    let until = *reserved.get_or_insert(n3_dies + lease + 5_000);
                    r.reserved_until = Some(until);
                }
                r
            })
            .collect();
        for i in 0..3 {
            let polls = now >= joins[i] && (now - joins[i] + 170 * i as i64) % 500 == 0;
            let dead = i == 2 && now >= n3_dies;
            if dead {
                // Its calls stay up at the carrier: what it had in force.
                continue;
            }
            if polls {
                caps[i].update(now, &rows);
                in_force[i] = Some(caps[i].limits().to_vec());
            }
        }
        // A dead node's limits stay counted until its reservation ends.
        if reserved.is_some_and(|r| now >= r) {
            in_force[2] = None;
        }
        let sum =
            |f: fn(&TrunkPace) -> u32| -> u32 { in_force.iter().flatten().map(|l| f(&l[0])).sum() };
        assert!(sum(|t| t.cps) <= 25, "{now} ms: cps {in_force:?}");
        assert!(
            sum(|t| t.max_channels) <= 20,
            "{now} ms: channels {in_force:?}"
        );
        if in_force[2].is_none() && now > n3_dies && grown_at.is_none() && sum(|t| t.cps) == 25 {
            grown_at = Some(now);
        }
    }
    // Two nodes: 13 + 12 cps, and after n3 joined 9 + 8 + 8.
    assert_eq!(caps[0].limits()[0].cps + caps[1].limits()[0].cps, 25);
    // The survivors took the dead node's share once its reservation and
    // the settling were over.
    let grown_at = grown_at.expect("the survivors never took the dead node's share");
    assert!(
        grown_at >= n3_dies + lease + 5_000 + SETTLE_MS,
        "{grown_at}"
    );
    assert!(
        grown_at <= n3_dies + lease + 5_000 + SETTLE_MS + 600,
        "{grown_at}"
    );
}

#[test]
fn a_joining_node_waits_for_the_others_to_make_room() {
    let full = trunk(10, 10);
    let mut b = Caps::new("b", full.clone());
    // a has all 10 channels up: b may start nothing, even once settled.
    let rows = [row("a", 60_000, None, 10), row("b", 60_000, None, 0)];
    assert_eq!(b.update(0, &rows).map(|l| l[0].cps), None.or(Some(0)));
    assert_eq!(b.limits()[0].max_channels, 0);
    assert_eq!(
        b.update(SETTLE_MS, &rows)
            .map(|l| l[0].clone())
            .unwrap()
            .cps,
        5
    );
    assert_eq!(b.limits()[0].max_channels, 0);
    // A cps change holds every start for a window.
    assert_eq!(b.hold_until(), SETTLE_MS + WINDOW_MS);
    // a's calls end: b gets its 5 channels as a reports them.
    let rows = [row("a", 60_000, None, 4), row("b", 60_000, None, 0)];
    assert_eq!(b.update(SETTLE_MS + 500, &rows).unwrap()[0].max_channels, 5);
    // No cps change, no hold.
    assert_eq!(b.hold_until(), SETTLE_MS + WINDOW_MS);
}

#[test]
fn a_node_alone_has_the_whole_caps_at_once_and_shrinks_at_once() {
    let full = trunk(10, 10);
    let mut a = Caps::new("a", full.clone());
    assert_eq!(a.update(0, &[row("a", 10_000, None, 0)]), None);
    assert_eq!(a.limits(), &full[..]);
    let two = [row("a", 10_000, None, 3), row("b", 10_000, None, 0)];
    let l = a.update(500, &two).unwrap();
    assert_eq!((l[0].cps, l[0].max_channels), (5, 5));
    assert_eq!(a.hold_until(), 500 + WINDOW_MS);
    // A cap below the node count: the lowest id gets it, the other none.
    let mut b = Caps::new("b", trunk(1, 1));
    b.update(0, &two);
    assert_eq!(b.update(SETTLE_MS, &two), None);
    assert_eq!((b.limits()[0].cps, b.limits()[0].max_channels), (0, 0));
}

#[test]
fn a_campaigns_own_caps_are_shared_alike() {
    let full = trunk(30, 30);
    let mut c = Caps::new("c", full.clone());
    assert_eq!(c.share_of(10, 0), 10);
    let three = [
        row("a", 60_000, None, 0),
        row("b", 60_000, None, 0),
        row("c", 60_000, None, 0),
    ];
    c.update(1_000, &three);
    // Joining: nothing until settled, then 10 = 4 + 3 + 3.
    assert_eq!(c.share_of(10, 1_000), 0);
    assert_eq!(c.share_of(10, 1_000 + SETTLE_MS), 3);
    let mut a = Caps::new("a", full);
    a.update(0, &three[..1]);
    assert_eq!(a.share_of(10, 0), 10);
    a.update(1_000, &three);
    // Shrinks at once.
    assert_eq!(a.share_of(10, 1_000), 4);
    assert_eq!(a.share_of(1, 1_000 + SETTLE_MS), 1);
    assert_eq!(c.share_of(1, 1_000 + SETTLE_MS), 0);
}
