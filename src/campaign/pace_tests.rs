//! The pacer on a virtual clock. The harness keeps its own count of calls
//! up and checks every 1 s window from the log of starts, so the checks
//! do not lean on the pacer's own bookkeeping.

use super::*;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;

const A: CampaignId = CampaignId(1);
const B: CampaignId = CampaignId(2);
const C: CampaignId = CampaignId(3);

fn trunk(name: &str, cps: u32, max_channels: u32) -> TrunkPace {
    TrunkPace {
        name: name.into(),
        cps,
        max_channels,
    }
}

fn campaign(
    id: CampaignId,
    priority: i32,
    cps: u32,
    max_channels: u32,
    trunks: &[&str],
) -> CampaignPace {
    CampaignPace {
        id,
        priority,
        cps,
        max_channels,
        trunks: trunks.iter().map(|t| t.to_string()).collect(),
    }
}

fn pacer(trunks: Vec<TrunkPace>, campaigns: Vec<CampaignPace>) -> Pacer {
    let mut p = Pacer::new(trunks);
    for c in campaigns {
        if let Err(e) = p.add(c, true) {
            panic!("{e}");
        }
    }
    p
}

/// A driver on a virtual clock: every campaign always has contacts
/// ready, calls last `call_len`, and the driver wakes up to `late_us`
/// after the time it was told.
struct Sim {
    t0: Instant,
    now: Instant,
    /// (end, campaign, trunk) of calls up.
    up: Vec<(Instant, CampaignId, String)>,
    starts: Vec<(Instant, CampaignId, String)>,
    max_up: HashMap<String, usize>,
    rng: rand::rngs::StdRng,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            up: vec![],
            starts: vec![],
            max_up: HashMap::new(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    fn count_up(&mut self, key: String, n: usize) {
        let m = self.max_up.entry(key).or_insert(0);
        *m = (*m).max(n);
    }

    fn run(
        &mut self,
        p: &mut Pacer,
        secs: u64,
        call_len: Duration,
        late_us: u64,
        ready: impl Fn(CampaignId) -> bool,
    ) {
        let end = self.now + Duration::from_secs(secs);
        while self.now < end {
            let now = self.now;
            let (done, still): (Vec<_>, Vec<_>) =
                self.up.drain(..).partition(|(e, _, _)| *e <= now);
            self.up = still;
            for (_, c, t) in done {
                assert!(p.ended(c, &t));
            }
            let next_end = self.up.iter().map(|(e, _, _)| *e).min();
            match p.next_start(now, &ready) {
                Start::Go { campaign, trunk } => {
                    self.up.push((now + call_len, campaign, trunk.clone()));
                    self.starts.push((now, campaign, trunk.clone()));
                    let by_c = self.up.iter().filter(|u| u.1 == campaign).count();
                    let by_t = self.up.iter().filter(|u| u.2 == trunk).count();
                    self.count_up(format!("campaign {campaign}"), by_c);
                    self.count_up(format!("trunk {trunk}"), by_t);
                }
                Start::WaitUntil(at) => {
                    assert!(at > now, "told to wait until {at:?}, now {now:?}");
                    let late = Duration::from_micros(self.rng.gen_range(0..=late_us));
                    self.now = next_end.map_or(at + late, |e| e.min(at + late));
                }
                Start::Idle => match next_end {
                    Some(e) => self.now = e,
                    None => return,
                },
            }
        }
    }

    fn times(&self, f: impl Fn(CampaignId, &str) -> bool) -> Vec<Instant> {
        self.starts
            .iter()
            .filter(|(_, c, t)| f(*c, t))
            .map(|(at, _, _)| *at)
            .collect()
    }

    fn count(&self, f: impl Fn(CampaignId, &str) -> bool) -> usize {
        self.times(f).len()
    }
}

/// The most starts in any 1 s window, checked ending at every start.
fn most_in_a_second(starts: &[Instant]) -> usize {
    let mut first = 0;
    let mut most = 0;
    for (i, s) in starts.iter().enumerate() {
        while starts
            .get(first)
            .is_some_and(|f| *s - *f >= Duration::from_secs(1))
        {
            first += 1;
        }
        most = most.max(i + 1 - first);
    }
    most
}

fn min_gap(starts: &[Instant]) -> Duration {
    starts
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(Duration::MAX)
}

/// (a) One campaign, cps 10, 5 channels, calls of 2 s: the channels bind
/// (2.5 calls a second), never above 5, never above 10 in any second;
/// with calls of 200 ms the rate binds: 10 a second, spaced out.
#[test]
fn one_campaign_keeps_its_cps_and_channels() {
    let mut p = pacer(
        vec![trunk("t", 100, 100)],
        vec![campaign(A, 0, 10, 5, &["t"])],
    );
    let mut sim = Sim::new(1);
    sim.run(&mut p, 60, Duration::from_secs(2), 2_000, |_| true);
    let starts = sim.times(|_, _| true);
    assert!(most_in_a_second(&starts) <= 10);
    assert_eq!(sim.max_up["campaign 1"], 5);
    // 5 channels of 2 s calls: 2.5 a second, a little less for wake-ups.
    assert!((145..=151).contains(&starts.len()), "{}", starts.len());

    let mut p = pacer(
        vec![trunk("t", 100, 100)],
        vec![campaign(A, 0, 10, 5, &["t"])],
    );
    let mut sim = Sim::new(2);
    sim.run(&mut p, 60, Duration::from_millis(200), 2_000, |_| true);
    let starts = sim.times(|_, _| true);
    let most = most_in_a_second(&starts);
    let gap = min_gap(&starts);
    eprintln!(
        "(a) 60 s at cps 10: {} starts, at most {most} in any 1 s, min gap {gap:?}",
        starts.len()
    );
    assert!(most <= 10);
    assert!(gap >= Duration::from_millis(90), "{gap:?}");
    assert!(starts.len() >= 570, "{}", starts.len());
    assert!(sim.max_up["campaign 1"] <= 5);
}

/// (b) Two campaigns on one 10 cps trunk: never above 10 a second at the
/// trunk; equal priorities share it about evenly; a higher priority takes
/// what it can use and the lower one gets the rest.
#[test]
fn campaigns_share_a_trunk_by_priority() {
    let t = || vec![trunk("t", 10, 1000)];
    // Equal priority, both able to take the whole trunk.
    let mut p = pacer(
        t(),
        vec![
            campaign(A, 0, 10, 100, &["t"]),
            campaign(B, 0, 10, 100, &["t"]),
        ],
    );
    let mut sim = Sim::new(3);
    sim.run(&mut p, 120, Duration::from_secs(3), 2_000, |_| true);
    let all = sim.times(|_, _| true);
    let (a, b) = (sim.count(|c, _| c == A), sim.count(|c, _| c == B));
    eprintln!(
        "(b) equal: {a} and {b} starts in 120 s, at most {} a second at the trunk",
        most_in_a_second(&all)
    );
    assert!(most_in_a_second(&all) <= 10);
    assert!(a.abs_diff(b) <= 1, "{a} vs {b}");
    assert!(a + b >= 1180, "{}", a + b);

    // Higher priority first: the low one gets nothing it could take.
    let mut p = pacer(
        t(),
        vec![
            campaign(A, 0, 10, 100, &["t"]),
            campaign(B, 5, 10, 100, &["t"]),
        ],
    );
    let mut sim = Sim::new(4);
    sim.run(&mut p, 60, Duration::from_secs(3), 2_000, |_| true);
    let (a, b) = (sim.count(|c, _| c == A), sim.count(|c, _| c == B));
    eprintln!("(b) priority 5 over 0: {b} and {a} starts in 60 s");
    assert!(most_in_a_second(&sim.times(|_, _| true)) <= 10);
    assert!(a <= 1, "low priority took {a}");
    assert!(b >= 590, "{b}");

    // A high priority that wants only 4 a second keeps all 4; the other
    // gets what is left. 4 a second spaced 250 ms apart does not fit a
    // 100 ms trunk grid with a start between every two, so the trunk runs
    // at 8 a second here rather than slow the higher priority down.
    let mut p = pacer(
        t(),
        vec![
            campaign(A, 0, 10, 100, &["t"]),
            campaign(B, 5, 4, 100, &["t"]),
        ],
    );
    let mut sim = Sim::new(5);
    sim.run(&mut p, 60, Duration::from_secs(3), 2_000, |_| true);
    let (a, b) = (sim.count(|c, _| c == A), sim.count(|c, _| c == B));
    eprintln!("(b) priority 5 at cps 4 over 0 at cps 10: {b} and {a} starts in 60 s");
    assert!(most_in_a_second(&sim.times(|_, _| true)) <= 10);
    assert!(most_in_a_second(&sim.times(|c, _| c == B)) <= 4);
    assert!((236..=241).contains(&b), "{b}");
    assert!(a >= 235, "{a}");

    // Three equal campaigns, one of them out of contacts for a while.
    let mut p = pacer(
        t(),
        vec![
            campaign(A, 1, 10, 100, &["t"]),
            campaign(B, 1, 10, 100, &["t"]),
            campaign(C, 1, 10, 100, &["t"]),
        ],
    );
    let mut sim = Sim::new(6);
    sim.run(&mut p, 30, Duration::from_secs(1), 2_000, |c| c != C);
    sim.run(&mut p, 30, Duration::from_secs(1), 2_000, |_| true);
    let counts = [A, B, C].map(|id| sim.count(|c, _| c == id));
    eprintln!("(b) three equal, C idle for the first 30 s: {counts:?}");
    assert!(most_in_a_second(&sim.times(|_, _| true)) <= 10);
    assert!((98..=102).contains(&counts[2]), "{counts:?}");
    assert!(counts[0].abs_diff(counts[1]) <= 1, "{counts:?}");
}

/// (c) A campaign asking more than its trunk allows gets the trunk's rate.
#[test]
fn the_trunk_wins_over_a_faster_campaign() {
    let mut p = pacer(
        vec![trunk("t", 10, 30)],
        vec![campaign(A, 0, 50, 100, &["t"])],
    );
    let mut sim = Sim::new(7);
    sim.run(&mut p, 60, Duration::from_secs(2), 2_000, |_| true);
    let starts = sim.times(|_, _| true);
    let most = most_in_a_second(&starts);
    eprintln!(
        "(c) cps 50 on a 10 cps trunk: {} starts in 60 s, at most {most} in 1 s",
        starts.len()
    );
    assert!(most <= 10);
    assert!(starts.len() >= 590, "{}", starts.len());
    assert!(sim.max_up["trunk t"] <= 30);
    // Channels at the trunk bind too: 30 channels of 5 s calls is 6/s.
    let mut p = pacer(
        vec![trunk("t", 10, 30)],
        vec![campaign(A, 0, 50, 100, &["t"])],
    );
    let mut sim = Sim::new(8);
    sim.run(&mut p, 60, Duration::from_secs(5), 2_000, |_| true);
    assert_eq!(sim.max_up["trunk t"], 30);
    assert!(most_in_a_second(&sim.times(|_, _| true)) <= 10);
}

/// A campaign overflows to its next trunk when the first is full.
#[test]
fn trunks_are_tried_in_the_campaigns_order() {
    let mut p = pacer(
        vec![trunk("x", 10, 2), trunk("y", 10, 100)],
        vec![campaign(A, 0, 20, 100, &["x", "y"])],
    );
    let mut sim = Sim::new(9);
    sim.run(&mut p, 10, Duration::from_secs(60), 0, |_| true);
    assert_eq!(sim.count(|_, t| t == "x"), 2);
    assert_eq!(sim.max_up["trunk x"], 2);
    assert!(sim.count(|_, t| t == "y") >= 95);
    let starts = sim.times(|_, _| true);
    assert!(most_in_a_second(&starts) <= 20);
}

/// A trunk that is down is skipped; all down, nothing starts.
#[test]
fn a_down_trunk_is_skipped() {
    let t0 = Instant::now();
    let mut p = pacer(
        vec![trunk("x", 10, 10), trunk("y", 10, 10)],
        vec![campaign(A, 0, 10, 10, &["x", "y"])],
    );
    assert!(p.set_trunk_up("x", false));
    assert!(!p.set_trunk_up("z", false));
    let on = |t: &str| Start::Go {
        campaign: A,
        trunk: t.into(),
    };
    assert_eq!(p.next_start(t0, |_| true), on("y"));
    assert!(p.set_trunk_up("y", false));
    assert_eq!(
        p.next_start(t0 + Duration::from_secs(1), |_| true),
        Start::Idle
    );
    assert!(p.set_trunk_up("x", true));
    assert_eq!(p.next_start(t0 + Duration::from_secs(1), |_| true), on("x"));
}

/// (d) Calls a crashed process left up hold their channels until their
/// time, at the trunk and at the campaign.
#[test]
fn ghost_channels_block_until_their_time() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut p = pacer(vec![trunk("t", 10, 2)], vec![campaign(A, 0, 10, 5, &["t"])]);
    assert!(p.occupy_until("t", A, t0 + s(5)));
    assert!(p.occupy_until("t", B, t0 + s(8)));
    assert!(!p.occupy_until("nope", A, t0 + s(8)));
    assert_eq!(p.trunk_in_use("t", t0), 2);
    assert_eq!(p.in_use(A, t0), 1);
    assert_eq!(p.next_start(t0, |_| true), Start::WaitUntil(t0 + s(5)));
    assert_eq!(
        p.next_start(t0 + s(4), |_| true),
        Start::WaitUntil(t0 + s(5))
    );
    let go = Start::Go {
        campaign: A,
        trunk: "t".into(),
    };
    assert_eq!(p.next_start(t0 + s(5), |_| true), go);
    // One ghost (B's) and one live call: full until the ghost goes.
    assert_eq!(
        p.next_start(t0 + s(6), |_| true),
        Start::WaitUntil(t0 + s(8))
    );
    assert_eq!(p.next_start(t0 + s(8), |_| true), go);
    assert_eq!(p.trunk_in_use("t", t0 + s(8)), 2);
    // Live calls only: nothing to wait for but an end.
    assert_eq!(p.next_start(t0 + s(9), |_| true), Start::Idle);
    assert!(p.ended(A, "t"));
    assert_eq!(p.next_start(t0 + s(9), |_| true), go);

    // A ghost of the campaign holds the campaign's own channel too.
    let mut p = pacer(
        vec![trunk("t", 10, 100)],
        vec![campaign(A, 0, 10, 1, &["t"])],
    );
    assert!(p.occupy_until("t", A, t0 + s(3)));
    assert_eq!(p.next_start(t0, |_| true), Start::WaitUntil(t0 + s(3)));
    assert_eq!(p.next_start(t0 + s(3), |_| true), go);

    // A ghost rivr ended itself (its BYE or CANCEL answered) frees its
    // channel at once.
    let mut p = pacer(
        vec![trunk("t", 10, 100)],
        vec![campaign(A, 0, 10, 1, &["t"])],
    );
    assert!(p.occupy_until("t", A, t0 + s(300)));
    assert_eq!(p.next_start(t0, |_| true), Start::WaitUntil(t0 + s(300)));
    assert!(!p.release_ghost("t", A, t0 + s(299)));
    assert!(p.release_ghost("t", A, t0 + s(300)));
    assert!(!p.release_ghost("t", A, t0 + s(300)));
    assert_eq!(p.in_use(A, t0), 0);
    assert_eq!(p.next_start(t0 + s(1), |_| true), go);
}

/// (e) A paused campaign gets nothing; resumed, it does; removed, its
/// calls still hold the trunk until they end.
#[test]
fn paused_and_removed_campaigns_get_nothing() {
    let mut p = pacer(
        vec![trunk("t", 10, 100)],
        vec![
            campaign(A, 9, 10, 100, &["t"]),
            campaign(B, 0, 10, 100, &["t"]),
        ],
    );
    assert!(p.pause(A));
    let mut sim = Sim::new(10);
    sim.run(&mut p, 10, Duration::from_secs(1), 2_000, |_| true);
    assert_eq!(sim.count(|c, _| c == A), 0);
    assert!(sim.count(|c, _| c == B) >= 95);
    // Nothing else to dial: idle, even with a paused campaign that has.
    assert!(p.pause(B));
    assert_eq!(
        p.next_start(sim.now + Duration::from_secs(60), |_| true),
        Start::Idle
    );
    assert!(p.resume(A));
    let base = p.trunk_in_use("t", sim.now);
    let go = p.next_start(sim.now + Duration::from_secs(60), |_| true);
    assert_eq!(
        go,
        Start::Go {
            campaign: A,
            trunk: "t".into()
        }
    );
    assert!(p.remove(A));
    assert!(!p.remove(A) && !p.pause(A) && !p.resume(A));
    assert_eq!(p.trunk_in_use("t", sim.now), base + 1);
    assert!(p.ended(A, "t"));
    assert!(!p.ended(A, "t"));
    assert_eq!(p.trunk_in_use("t", sim.now), base);
    // No contacts ready: idle.
    assert!(p.resume(B));
    assert_eq!(
        p.next_start(sim.now + Duration::from_secs(90), |_| false),
        Start::Idle
    );
}

#[test]
fn registration_is_checked() {
    let mut p = Pacer::new([trunk("t", 10, 10)]);
    assert_eq!(p.add(campaign(A, 0, 10, 5, &["t"]), false), Ok(()));
    assert_eq!(
        p.add(campaign(A, 0, 10, 5, &["t"]), true),
        Err(PaceError::Duplicate(A))
    );
    assert_eq!(
        p.add(campaign(B, 0, 10, 5, &["t", "u"]), true)
            .map_err(|e| e.to_string()),
        Err("campaign 2: no trunk named \"u\"".to_string())
    );
    assert_eq!(
        p.add(campaign(B, 0, 10, 5, &[]), true),
        Err(PaceError::NoTrunks(B))
    );
    assert_eq!(
        p.add(campaign(B, 0, 0, 5, &["t"]), true),
        Err(PaceError::Zero(B))
    );
    assert_eq!(
        p.update(campaign(C, 0, 1, 1, &["t"])),
        Err(PaceError::NoSuchCampaign(C))
    );
    // set_in_use adopts calls up; update changes the limits.
    let t0 = Instant::now();
    assert!(p.set_in_use(A, "t", 5));
    assert!(p.resume(A));
    assert_eq!(p.next_start(t0, |_| true), Start::Idle);
    assert_eq!(p.update(campaign(A, 0, 10, 6, &["t"])), Ok(()));
    assert!(matches!(p.next_start(t0, |_| true), Start::Go { .. }));
    assert_eq!(p.in_use(A, t0), 6);
    assert!(!p.set_in_use(A, "u", 1));
    // A trunk's limits change with the config.
    p.set_trunk(trunk("t", 10, 6));
    assert!(p.set_in_use(A, "t", 0));
    assert_eq!(p.trunk_in_use("t", t0), 0);
}

/// The driver wakes late (up to 2 ms) and calls are short: the campaign
/// still gets at least 95 % of its cps and never more in any second.
#[test]
fn late_wake_ups_keep_the_rate() {
    for cps in [1, 5, 20, 50] {
        let mut p = pacer(
            vec![trunk("t", 100, 1000)],
            vec![campaign(A, 0, cps, 1000, &["t"])],
        );
        let mut sim = Sim::new(u64::from(cps));
        sim.run(&mut p, 100, Duration::from_millis(500), 2_000, |_| true);
        let starts = sim.times(|_, _| true);
        let rate = (starts.len() - 1) as f64 / (starts[starts.len() - 1] - starts[0]).as_secs_f64();
        let most = most_in_a_second(&starts);
        eprintln!(
            "cps {cps}: {rate:.3}/s, at most {most} in 1 s, min gap {:?}",
            min_gap(&starts)
        );
        assert!(most <= cps as usize);
        assert!(rate >= 0.95 * f64::from(cps), "{rate}");
        assert!(sim.t0 < starts[0] + Duration::from_secs(1));
    }
}
