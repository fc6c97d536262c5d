//! The base transit of the jitter buffer: the smallest transit among the
//! packets that arrived in the last couple of seconds (a sliding-window
//! minimum kept as a monotonic queue: O(1) amortized per
//! packet, no allocation once the queue has grown to what the path needs).
//!
//! A minimum over a short time window rather than over the whole call: a
//! sender whose clock runs slow makes transits rise without end, and the
//! window lets the base follow; one whose clock runs fast makes every packet
//! a new minimum. Either way the drift shows up in the transit above the
//! base, which the target delay then covers.
//!
//! The queue starts small and grows (doubling, up to its capacity) only
//! when more candidates are alive at once: transits that keep rising hold
//! every packet of the window, a steady path one or two (the full
//! capacity was 4 kB of every call).

use std::collections::VecDeque;

/// Sliding-window minimum of (arrival, transit) pairs, in µs.
#[derive(Debug, Clone)]
pub(super) struct BaseWindow {
    /// (arrival, transit), arrivals increasing and transits strictly
    /// increasing; the front is the minimum.
    queue: VecDeque<(i64, i64)>,
    capacity: usize,
    window_us: i64,
}

/// Candidates the queue has room for at first.
const FIRST_ROOM: usize = 8;

impl BaseWindow {
    /// A minimum over the last `window_us`, over at most `capacity` packets
    /// (beyond that the oldest candidate is forgotten early).
    pub fn new(window_us: i64, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: VecDeque::with_capacity(FIRST_ROOM.min(capacity)),
            capacity,
            window_us: window_us.max(0),
        }
    }

    /// Adds a packet's transit; `arrival_us` never goes backwards.
    pub fn push(&mut self, arrival_us: i64, transit_us: i64) {
        // Packets slower than this one can never be the minimum again.
        while self.queue.back().is_some_and(|&(_, t)| t >= transit_us) {
            self.queue.pop_back();
        }
        if self.queue.len() >= self.capacity {
            self.queue.pop_front();
        }
        self.queue.push_back((arrival_us, transit_us));
        // The newest packet always stays: after a long pause (DTX) the last
        // base is still the best reference there is.
        while self.queue.len() > 1
            && self
                .queue
                .front()
                .is_some_and(|&(at, _)| at < arrival_us.saturating_sub(self.window_us))
        {
            self.queue.pop_front();
        }
    }

    /// The smallest transit in the window as of the last push.
    pub fn get(&self) -> Option<i64> {
        self.queue.front().map(|&(_, t)| t)
    }

    /// Forgets every packet.
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_the_time_window() {
        let mut b = BaseWindow::new(1_000, 8);
        assert_eq!(b.get(), None);
        b.push(0, 50);
        b.push(100, 30);
        b.push(200, 40);
        assert_eq!(b.get(), Some(30));
        // 30 arrived at 100: gone after 1100; 40 (at 200) takes over.
        b.push(1_150, 45);
        assert_eq!(b.get(), Some(40));
        b.push(1_300, 60);
        assert_eq!(b.get(), Some(45));
        b.push(1_400, 10);
        assert_eq!(b.get(), Some(10));
    }

    #[test]
    fn the_newest_packet_survives_a_long_pause() {
        let mut b = BaseWindow::new(1_000, 8);
        b.push(0, 5);
        b.push(10, 7);
        b.push(60_000, 9);
        assert_eq!(b.get(), Some(9));
    }

    #[test]
    fn follows_a_rising_transit_one_window_behind() {
        // A slow sender: transit rises 100 µs per 20 ms packet.
        let mut b = BaseWindow::new(2_000_000, 256);
        for k in 0..1000i64 {
            b.push(k * 20_000, k * 100);
            let lag = (k * 100).min(10_000);
            assert_eq!(b.get(), Some(k * 100 - lag), "packet {k}");
        }
    }

    #[test]
    fn matches_a_brute_force_minimum() {
        let mut rng = crate::media::netem::SplitMix64::new(3);
        // Capacity large enough that no candidate is forgotten early.
        let mut b = BaseWindow::new(300, 64);
        let mut seen: Vec<(i64, i64)> = Vec::new();
        let mut t = 0;
        for _ in 0..5000 {
            t += (rng.next_u64() % 40) as i64;
            let transit = (rng.next_u64() % 1000) as i64;
            b.push(t, transit);
            seen.push((t, transit));
            let expect = seen
                .iter()
                .filter(|(at, _)| *at >= t - 300)
                .map(|(_, tr)| *tr)
                .min();
            assert_eq!(b.get(), expect);
        }
        b.clear();
        assert_eq!(b.get(), None);
    }
}
