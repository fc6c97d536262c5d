//! A seeded network emulator on a virtual clock: base latency, bounded delay
//! jitter, Gilbert–Elliott loss, reordering, duplication and sender clock
//! drift. It drives the jitter buffer in tests and `rivr media impair`.
//!
//! It schedules caller-owned packet ids, never payloads, so one emulator
//! serves any packet type. Its PRNG is our own SplitMix64, so a seed gives the
//! same run on every platform and every version of the `rand` crate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and stable forever.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

/// Two-state Markov loss model (Gilbert–Elliott): in the good state packets
/// are lost with `loss_good`, in the bad state with `loss_bad`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability per packet of moving good → bad.
    pub p: f64,
    /// Probability per packet of moving bad → good (1 / mean burst length).
    pub r: f64,
    /// Loss probability in the good state.
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// No loss at all.
    pub const NONE: Self = Self {
        p: 0.0,
        r: 1.0,
        loss_good: 0.0,
        loss_bad: 0.0,
    };

    /// Independent (Bernoulli) loss at `rate`.
    pub fn random(rate: f64) -> Self {
        Self {
            loss_good: rate,
            ..Self::NONE
        }
    }

    /// Bursty loss: every packet in the bad state is lost, bursts last
    /// `mean_burst` packets on average, and the long-run loss is `rate`.
    pub fn bursty(rate: f64, mean_burst: f64) -> Self {
        let r = 1.0 / mean_burst.max(1.0);
        let rate = rate.clamp(0.0, 0.99);
        Self {
            p: r * rate / (1.0 - rate),
            r,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// The stationary loss rate the model converges to.
    pub fn mean_loss(&self) -> f64 {
        let denom = self.p + self.r;
        if denom <= 0.0 {
            return self.loss_good;
        }
        let bad = self.p / denom;
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }
}

/// What the emulated network does to packets.
#[derive(Debug, Clone, PartialEq)]
pub struct NetemProfile {
    /// Fixed one-way delay every packet sees.
    pub latency: Duration,
    /// Mean of the variable delay added on top of `latency`.
    pub jitter_mean: Duration,
    /// Half-width of the variable delay: it is triangular on
    /// `[jitter_mean - jitter_spread, jitter_mean + jitter_spread]`, so it is
    /// bounded, centred on the mean, and thins out towards the edges.
    pub jitter_spread: Duration,
    /// Loss model.
    pub loss: GilbertElliott,
    /// Probability that a packet is held back by `reorder_delay` extra, so
    /// that later packets overtake it.
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// Probability that a packet is delivered twice (the copy gets its own
    /// jitter).
    pub duplicate: f64,
    /// How much faster the sender's clock runs than ours, in parts per
    /// million (+5000 = the sender produces 0.5 % more media per second).
    pub drift_ppm: i32,
}

impl NetemProfile {
    /// A perfect network with `latency` and nothing else.
    pub fn clean(latency: Duration) -> Self {
        Self {
            latency,
            jitter_mean: Duration::ZERO,
            jitter_spread: Duration::ZERO,
            loss: GilbertElliott::NONE,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            drift_ppm: 0,
        }
    }
}

/// What happened to one sent packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Dropped by the loss model.
    Lost,
    /// Will be delivered once.
    Delivered,
    /// Will be delivered twice.
    Duplicated,
}

/// Counters of what the emulator did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetemStats {
    /// Packets handed to `send`.
    pub sent: u64,
    /// Packets the loss model dropped.
    pub lost: u64,
    /// Extra copies scheduled.
    pub duplicated: u64,
    /// Packets held back to be overtaken.
    pub reordered: u64,
    /// Deliveries returned by `poll`.
    pub delivered: u64,
}

/// The emulator: `send` packets at `now`, `poll` them out when due.
#[derive(Debug)]
pub struct Netem {
    profile: NetemProfile,
    rng: SplitMix64,
    bad_state: bool,
    /// (due, order of scheduling, id): the order breaks ties so equal due
    /// times leave in the order they were scheduled.
    queue: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    scheduled: u64,
    stats: NetemStats,
}

impl Netem {
    /// An emulator for `profile` whose every random choice follows `seed`.
    pub fn new(profile: NetemProfile, seed: u64) -> Self {
        Self {
            profile,
            rng: SplitMix64::new(seed),
            bad_state: false,
            queue: BinaryHeap::with_capacity(256),
            scheduled: 0,
            stats: NetemStats::default(),
        }
    }

    /// The profile this emulator applies.
    pub fn profile(&self) -> &NetemProfile {
        &self.profile
    }

    /// Counters so far.
    pub fn stats(&self) -> &NetemStats {
        &self.stats
    }

    /// The true instant at which a sender whose clock drifts by
    /// `drift_ppm` has produced `media_elapsed` of media since `epoch`.
    /// Drift is a property of the sender, not of the path, so the driver asks
    /// this when to call [`Netem::send`] for each frame.
    pub fn sender_instant(&self, epoch: Instant, media_elapsed: Duration) -> Instant {
        let ppm = i128::from(self.profile.drift_ppm);
        let denom = 1_000_000i128.saturating_add(ppm).max(1);
        let nanos = (media_elapsed.as_nanos() as i128).saturating_mul(1_000_000) / denom;
        let nanos = u64::try_from(nanos.max(0)).unwrap_or(u64::MAX);
        epoch + Duration::from_nanos(nanos)
    }

    /// Sends packet `id` at `now`; returns what the network will do with it.
    pub fn send(&mut self, now: Instant, id: u64) -> Fate {
        self.stats.sent += 1;
        if self.lose() {
            self.stats.lost += 1;
            return Fate::Lost;
        }
        let mut delay = self.path_delay();
        if self.profile.reorder > 0.0 && self.rng.chance(self.profile.reorder) {
            self.stats.reordered += 1;
            delay += self.profile.reorder_delay;
        }
        self.schedule(now + delay, id);
        if self.profile.duplicate > 0.0 && self.rng.chance(self.profile.duplicate) {
            self.stats.duplicated += 1;
            let copy_delay = self.path_delay();
            self.schedule(now + copy_delay, id);
            return Fate::Duplicated;
        }
        Fate::Delivered
    }

    /// The next packet due at or before `now`, in delivery order.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        let Reverse((due, _, _)) = *self.queue.peek()?;
        if due > now {
            return None;
        }
        let Reverse((_, _, id)) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(id)
    }

    /// When the next packet is due, if any is in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    fn schedule(&mut self, due: Instant, id: u64) {
        self.queue.push(Reverse((due, self.scheduled, id)));
        self.scheduled += 1;
    }

    /// Steps the Gilbert–Elliott chain once and draws this packet's loss.
    fn lose(&mut self) -> bool {
        let ge = self.profile.loss;
        self.bad_state = if self.bad_state {
            !self.rng.chance(ge.r)
        } else {
            self.rng.chance(ge.p)
        };
        let rate = if self.bad_state {
            ge.loss_bad
        } else {
            ge.loss_good
        };
        rate > 0.0 && self.rng.chance(rate)
    }

    /// Latency plus a triangular jitter sample (the sum of two uniforms).
    fn path_delay(&mut self) -> Duration {
        let spread = self.profile.jitter_spread.as_secs_f64();
        let offset = if spread > 0.0 {
            (self.rng.next_f64() + self.rng.next_f64() - 1.0) * spread
        } else {
            0.0
        };
        let jitter = (self.profile.jitter_mean.as_secs_f64() + offset).max(0.0);
        self.profile.latency + Duration::from_secs_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Sends `n` packets 20 ms apart and drains them all; returns
    /// (id, send time, arrival time) per delivery, as offsets from the start.
    fn run(profile: NetemProfile, seed: u64, n: u64) -> (Netem, Vec<(u64, Duration, Duration)>) {
        let base = Instant::now();
        let mut net = Netem::new(profile, seed);
        let mut out = Vec::new();
        let mut sent_at = Vec::new();
        for id in 0..n {
            let t = base + ms(20 * id);
            sent_at.push(t);
            while let Some(due) = net.poll_timeout().filter(|d| *d <= t) {
                let got = net.poll(due).unwrap();
                out.push((got, sent_at[got as usize] - base, due - base));
            }
            net.send(t, id);
        }
        while let Some(due) = net.poll_timeout() {
            let got = net.poll(due).unwrap();
            out.push((got, sent_at[got as usize] - base, due - base));
        }
        (net, out)
    }

    #[test]
    fn splitmix_matches_reference_vector() {
        // Seed 1234567 from the published SplitMix64 task on Rosetta Code
        // ("Pseudo-random numbers/Splitmix64"), which follows Vigna's C code.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn same_seed_same_run_different_seed_different_run() {
        let mut p = NetemProfile::clean(ms(30));
        p.jitter_mean = ms(20);
        p.jitter_spread = ms(10);
        p.loss = GilbertElliott::random(0.05);
        let (_, a) = run(p.clone(), 7, 2000);
        let (_, b) = run(p.clone(), 7, 2000);
        let (_, c) = run(p, 8, 2000);
        assert!(a == b, "same seed, different runs");
        assert!(a != c, "different seeds, same run");
    }

    #[test]
    fn clean_path_is_fifo_with_exact_latency() {
        let (net, out) = run(NetemProfile::clean(ms(40)), 1, 500);
        assert_eq!(out.len(), 500);
        for (i, (id, sent, arrived)) in out.iter().enumerate() {
            assert_eq!(*id, i as u64);
            assert_eq!(*arrived - *sent, ms(40));
        }
        assert_eq!(net.stats().lost, 0);
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_has_its_mean() {
        let mut p = NetemProfile::clean(ms(10));
        p.jitter_mean = ms(50);
        p.jitter_spread = ms(30);
        let (_, out) = run(p, 3, 20_000);
        let delays: Vec<f64> = out
            .iter()
            .map(|(_, s, a)| (*a - *s).as_secs_f64() * 1e3)
            .collect();
        let min = delays.iter().cloned().fold(f64::MAX, f64::min);
        let max = delays.iter().cloned().fold(f64::MIN, f64::max);
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!(min >= 30.0 - 1e-6 && max <= 90.0 + 1e-6, "{min}..{max}");
        assert!((mean - 60.0).abs() < 0.5, "mean {mean}");
        // A 60 ms spread at 20 ms spacing must reorder some packets.
        assert!(out.windows(2).any(|w| w[1].0 < w[0].0));
    }

    #[test]
    fn gilbert_elliott_hits_its_rate_and_its_bursts() {
        let ge = GilbertElliott::bursty(0.05, 3.0);
        assert!((ge.mean_loss() - 0.05).abs() < 1e-9);
        let mut p = NetemProfile::clean(ms(10));
        p.loss = ge;
        let n = 200_000u64;
        let (net, out) = run(p, 11, n);
        let lost = net.stats().lost as f64 / n as f64;
        assert!((lost - 0.05).abs() < 0.005, "loss {lost}");
        // Mean burst length: runs of consecutive missing ids.
        let mut got = vec![false; n as usize];
        for (id, _, _) in &out {
            got[*id as usize] = true;
        }
        let (mut bursts, mut missing) = (0u64, 0u64);
        for i in 0..got.len() {
            if !got[i] {
                missing += 1;
                if i == 0 || got[i - 1] {
                    bursts += 1;
                }
            }
        }
        let mean_burst = missing as f64 / bursts as f64;
        assert!((mean_burst - 3.0).abs() < 0.2, "burst {mean_burst}");
    }

    #[test]
    fn bernoulli_loss_is_not_bursty() {
        let mut p = NetemProfile::clean(ms(10));
        p.loss = GilbertElliott::random(0.03);
        let (net, _) = run(p, 5, 100_000);
        let lost = net.stats().lost as f64 / 100_000.0;
        assert!((lost - 0.03).abs() < 0.003, "loss {lost}");
    }

    #[test]
    fn duplicates_and_reorders_are_counted_and_delivered() {
        let mut p = NetemProfile::clean(ms(10));
        p.duplicate = 0.01;
        p.reorder = 0.02;
        p.reorder_delay = ms(45);
        let (net, out) = run(p, 9, 50_000);
        let s = net.stats();
        assert_eq!(out.len() as u64, 50_000 + s.duplicated);
        assert!((s.duplicated as f64 / 50_000.0 - 0.01).abs() < 0.002);
        assert!((s.reordered as f64 / 50_000.0 - 0.02).abs() < 0.003);
        let overtaken = out.windows(2).filter(|w| w[1].0 < w[0].0).count();
        assert!(overtaken as u64 >= s.reordered / 2);
    }

    #[test]
    fn drift_stretches_or_squeezes_the_sender_clock() {
        let epoch = Instant::now();
        let mut p = NetemProfile::clean(ms(0));
        p.drift_ppm = 5000;
        let fast = Netem::new(p.clone(), 0);
        p.drift_ppm = -5000;
        let slow = Netem::new(p, 0);
        let media = Duration::from_secs(600);
        let f = fast.sender_instant(epoch, media) - epoch;
        let s = slow.sender_instant(epoch, media) - epoch;
        // 600 s / 1.005 and 600 s / 0.995.
        assert!((f.as_secs_f64() - 597.014_925).abs() < 1e-3, "{f:?}");
        assert!((s.as_secs_f64() - 603.015_075).abs() < 1e-3, "{s:?}");
    }
}
