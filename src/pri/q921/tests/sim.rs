//! Test harness: a user-side and a network-side [`Link`] joined by two
//! seeded [`Netem`] pipes (loss, duplication, jitter, reordering) on a
//! virtual clock that jumps to the next wake-up of either link or pipe.
//!
//! Every frame a link transmits is decoded and checked (SAPI 0, TEI 0, the
//! C/R bit of Q.921 Table 1 for its side), and after every input the
//! window invariant V(A) ≤ V(S) ≤ V(A)+k is checked.

use std::time::{Duration, Instant};

use crate::media::netem::{Netem, NetemProfile};
use crate::pri::q921::procedures::seq_sub;
use crate::pri::q921::{decode, Frame, Kind, Link, LinkConfig, LinkEvent, Side};

/// One end: its link and what it did.
pub(super) struct Party {
    pub link: Link,
    /// Events other than `Data`, with the time they came out.
    pub events: Vec<(Duration, LinkEvent)>,
    /// `Data` messages, in order.
    pub data: Vec<Vec<u8>>,
    /// Every frame it transmitted.
    pub frames: Vec<(Duration, Frame)>,
    /// The most I frames it ever had outstanding.
    pub max_outstanding: u8,
}

impl Party {
    fn new(cfg: LinkConfig) -> Self {
        Party {
            link: Link::new(cfg),
            events: Vec::new(),
            data: Vec::new(),
            frames: Vec::new(),
            max_outstanding: 0,
        }
    }

    /// Times `Established` came out.
    pub fn established(&self) -> usize {
        self.count(|e| *e == LinkEvent::Established)
    }

    pub fn count(&self, f: impl Fn(&LinkEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// Frames it sent that match `f`, with their times.
    pub fn sent(&self, f: impl Fn(&Kind) -> bool) -> Vec<Duration> {
        self.frames
            .iter()
            .filter(|(_, fr)| f(&fr.kind))
            .map(|(t, _)| *t)
            .collect()
    }
}

/// Says which frames a [`Pipe`] drops.
pub(super) type DropRule = Box<dyn FnMut(&Frame) -> bool>;

/// One direction of the D-channel.
pub(super) struct Pipe {
    pub net: Netem,
    frames: Vec<Vec<u8>>,
    /// Drops everything while set (a dead peer or a cut line).
    pub cut: bool,
    /// Drops the frames it returns true for.
    pub drop_if: Option<DropRule>,
}

impl Pipe {
    fn new(profile: NetemProfile, seed: u64) -> Self {
        Pipe {
            net: Netem::new(profile, seed),
            frames: Vec::new(),
            cut: false,
            drop_if: None,
        }
    }

    fn send(&mut self, now: Instant, frame: &Frame, bytes: Vec<u8>) {
        if self.cut || self.drop_if.as_mut().is_some_and(|f| f(frame)) {
            return;
        }
        let id = self.frames.len() as u64;
        self.frames.push(bytes);
        let _ = self.net.send(now, id);
    }

    fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        let id = self.net.poll(now)?;
        self.frames.get(id as usize).cloned()
    }
}

pub(super) struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub user: Party,
    pub net: Party,
    /// User → network.
    pub up: Pipe,
    /// Network → user.
    pub down: Pipe,
}

impl Sim {
    /// Default user and network links over a clean 5 ms line.
    pub fn clean() -> Self {
        Self::new(NetemProfile::clean(Duration::from_millis(5)), 1)
    }

    pub fn new(profile: NetemProfile, seed: u64) -> Self {
        Self::with(
            LinkConfig::new(Side::User),
            LinkConfig::new(Side::Network),
            profile,
            seed,
        )
    }

    pub fn with(user: LinkConfig, net: LinkConfig, profile: NetemProfile, seed: u64) -> Self {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            user: Party::new(user),
            net: Party::new(net),
            up: Pipe::new(profile.clone(), seed),
            down: Pipe::new(profile, seed ^ 0x9E37_79B9),
        }
    }

    /// Virtual time since the start.
    pub fn at(&self) -> Duration {
        self.now - self.start
    }

    /// Moves every transmit into its pipe and every event into its log,
    /// checking frames and invariants.
    pub fn collect(&mut self) {
        let at = self.at();
        for (party, pipe) in [
            (&mut self.user, &mut self.up),
            (&mut self.net, &mut self.down),
        ] {
            let side = party.link.config().side;
            while let Some(bytes) = party.link.poll_transmit() {
                let frame = decode(&bytes).expect("a link sends only valid frames");
                check_address(side, &frame);
                pipe.send(self.now, &frame, bytes);
                party.frames.push((at, frame));
            }
            while let Some(e) = party.link.poll_event() {
                match e {
                    LinkEvent::Data(m) => party.data.push(m),
                    e => party.events.push((at, e)),
                }
            }
            let s = party.link.status();
            let outstanding = seq_sub(s.vs, s.va);
            let k = party.link.config().k;
            assert!(outstanding <= k, "V(S)-V(A) = {outstanding} > k: {s:?}");
            assert!(s.unacked <= usize::from(k), "{s:?}");
            party.max_outstanding = party.max_outstanding.max(outstanding);
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [
            self.user.link.poll_timeout(),
            self.net.link.poll_timeout(),
            self.up.net.poll_timeout(),
            self.down.net.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs everything due by the next wake-up, if it is not after `end`.
    fn step(&mut self, end: Instant) -> bool {
        self.collect();
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        if next > end {
            return false;
        }
        self.now = self.now.max(next);
        let now = self.now;
        while let Some(b) = self.up.poll(now) {
            self.net.link.handle_frame(now, &b);
            self.collect();
        }
        while let Some(b) = self.down.poll(now) {
            self.user.link.handle_frame(now, &b);
            self.collect();
        }
        self.user.link.handle_timeout(now);
        self.net.link.handle_timeout(now);
        self.collect();
        true
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = end;
        self.collect();
    }

    /// Runs until `done` holds (true) or `limit` of virtual time passes.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.collect();
            if done(self) {
                return true;
            }
            if !self.step(end) {
                return done(self);
            }
        }
    }

    /// Both links in multiple frame operation.
    pub fn both_up(&self) -> bool {
        self.user.link.state().is_established() && self.net.link.state().is_established()
    }
}

/// Q.921 Table 1, written out again here rather than taken from the link:
/// commands from the user and responses from the network carry C/R=0.
pub(super) fn cr_for(side: Side, command: bool) -> bool {
    match (side, command) {
        (Side::User, true) | (Side::Network, false) => false,
        (Side::User, false) | (Side::Network, true) => true,
    }
}

fn check_address(side: Side, f: &Frame) {
    assert_eq!((f.address.sapi, f.address.tei), (0, 0), "{f:?}");
    let command = match f.kind {
        Kind::I { .. } | Kind::Sabme { .. } | Kind::Disc { .. } | Kind::Ui { .. } => Some(true),
        Kind::Ua { .. } | Kind::Dm { .. } | Kind::Frmr { .. } => Some(false),
        _ => None,
    };
    if let Some(command) = command {
        assert_eq!(f.address.cr, cr_for(side, command), "{side:?} sent {f:?}");
    }
}
