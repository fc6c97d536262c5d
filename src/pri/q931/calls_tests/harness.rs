//! The test harness: a user-side and a network-side [`CallControl`]
//! wired back to back through a message pipe the test controls (drop,
//! duplicate, hold and reorder messages), on a virtual clock that jumps
//! to the next deadline of either side. After every step both sides'
//! books are checked, `Released` is checked to come once per call, and
//! whenever the pipe is empty no channel carries two different active
//! calls across the interface.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::call::cause::Cause;
use crate::pri::q931::ie::{CalledNumber, NumberingPlan, TypeOfNumber};
use crate::pri::q931::{
    CallControl, CallEvent, CallId, Config, Message, MessageType, OutgoingCall, Side, Variant,
};

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Sent by the user side.
    ToNet,
    /// Sent by the network side.
    ToUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Duplicate,
}

#[derive(Debug)]
struct Fault {
    dir: Dir,
    kind: MessageType,
    action: Action,
    remaining: usize,
}

pub struct Pair {
    pub now: Instant,
    pub user: CallControl,
    pub net: CallControl,
    pub to_net: VecDeque<Vec<u8>>,
    pub to_user: VecDeque<Vec<u8>>,
    /// Messages in this direction wait in the pipe until released.
    pub hold: HashSet<Dir>,
    user_events: Vec<CallEvent>,
    net_events: Vec<CallEvent>,
    /// Every message sent, in order (faults applied after logging).
    pub log: Vec<(Dir, Message)>,
    faults: Vec<Fault>,
    released: HashSet<(Side, CallId)>,
    /// While the D-channel is down every message is lost.
    link_down: bool,
    /// Random loss, duplication and reordering, for property tests.
    pub chaos: Option<Chaos>,
}

/// Seeded faults on every message: loss, duplication, and swapping with
/// the message ahead of it in the pipe (percentages).
#[derive(Debug, Clone)]
pub struct Chaos {
    pub seed: u64,
    pub drop: u64,
    pub duplicate: u64,
    pub reorder: u64,
}

impl Chaos {
    fn roll(&mut self, percent: u64) -> bool {
        // xorshift64*: deterministic per seed, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100 < percent
    }
}

pub fn called(digits: &str) -> CalledNumber {
    CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, digits).unwrap()
}

pub fn call_to(digits: &str) -> OutgoingCall {
    OutgoingCall::new(called(digits))
}

impl Pair {
    /// An E1 with EuroISDN, the link up.
    pub fn e1() -> Pair {
        Pair::with(
            Config::new(Side::User, Variant::Etsi),
            Config::new(Side::Network, Variant::Etsi),
        )
    }

    pub fn with(user: Config, net: Config) -> Pair {
        let now = Instant::now();
        let mut p = Pair {
            now,
            user: CallControl::new(user),
            net: CallControl::new(net),
            to_net: VecDeque::new(),
            to_user: VecDeque::new(),
            hold: HashSet::new(),
            user_events: Vec::new(),
            net_events: Vec::new(),
            log: Vec::new(),
            faults: Vec::new(),
            released: HashSet::new(),
            link_down: false,
            chaos: None,
        };
        p.user.link_up(now);
        p.net.link_up(now);
        p
    }

    /// Drops the next `n` messages of `kind` going `dir`.
    pub fn drop_next(&mut self, dir: Dir, kind: MessageType, n: usize) {
        self.faults.push(Fault {
            dir,
            kind,
            action: Action::Drop,
            remaining: n,
        });
    }

    /// Delivers the next message of `kind` going `dir` twice.
    pub fn duplicate_next(&mut self, dir: Dir, kind: MessageType) {
        self.faults.push(Fault {
            dir,
            kind,
            action: Action::Duplicate,
            remaining: 1,
        });
    }

    /// The D-channel fails: both sides are told, and messages are lost
    /// until [`Pair::link_up`].
    pub fn link_down(&mut self) {
        self.collect();
        self.link_down = true;
        self.user.link_down(self.now);
        self.net.link_down(self.now);
        self.to_net.clear();
        self.to_user.clear();
        self.settle();
    }

    pub fn link_up(&mut self) {
        self.link_down = false;
        self.user.link_up(self.now);
        self.net.link_up(self.now);
        self.settle();
    }

    /// Puts raw octets in the pipe.
    pub fn inject(&mut self, dir: Dir, bytes: Vec<u8>) {
        match dir {
            Dir::ToNet => self.to_net.push_back(bytes),
            Dir::ToUser => self.to_user.push_back(bytes),
        }
    }

    /// Moves what both sides sent into the pipe and what they reported
    /// into the event lists, and checks both sides.
    pub fn collect(&mut self) {
        while let Some(b) = self.user.poll_transmit() {
            self.sent(Dir::ToNet, b);
        }
        while let Some(b) = self.net.poll_transmit() {
            self.sent(Dir::ToUser, b);
        }
        while let Some(e) = self.user.poll_event() {
            self.note_event(Side::User, &e);
            self.user_events.push(e);
        }
        while let Some(e) = self.net.poll_event() {
            self.note_event(Side::Network, &e);
            self.net_events.push(e);
        }
        self.user.check_invariants().expect("user side books");
        self.net.check_invariants().expect("network side books");
    }

    fn sent(&mut self, dir: Dir, bytes: Vec<u8>) {
        let msg = Message::decode(&bytes).expect("call control sends valid messages");
        let kind = msg.kind;
        self.log.push((dir, msg));
        if self.link_down {
            return;
        }
        let mut copies = 1;
        if let Some(f) = self
            .faults
            .iter_mut()
            .find(|f| f.dir == dir && f.kind == kind && f.remaining > 0)
        {
            f.remaining -= 1;
            copies = match f.action {
                Action::Drop => 0,
                Action::Duplicate => 2,
            };
        }
        if let Some(chaos) = &mut self.chaos {
            if chaos.roll(chaos.drop) {
                copies = 0;
            } else if chaos.roll(chaos.duplicate) {
                copies = 2;
            }
        }
        for _ in 0..copies {
            self.inject(dir, bytes.clone());
        }
        let reorder = self.chaos.as_mut().is_some_and(|c| c.roll(c.reorder));
        let queue = match dir {
            Dir::ToNet => &mut self.to_net,
            Dir::ToUser => &mut self.to_user,
        };
        if reorder && queue.len() >= 2 {
            let n = queue.len();
            queue.swap(n - 1, n - 2);
        }
    }

    fn note_event(&mut self, side: Side, e: &CallEvent) {
        if let CallEvent::Released { call, .. } = e {
            assert!(
                self.released.insert((side, *call)),
                "{side:?} released {call} twice"
            );
        }
    }

    /// Delivers messages until the pipe is empty (or only held
    /// directions have any).
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            self.collect();
            let to_net = !self.hold.contains(&Dir::ToNet) && !self.to_net.is_empty();
            let to_user = !self.hold.contains(&Dir::ToUser) && !self.to_user.is_empty();
            if !to_net && !to_user {
                self.check_across();
                return;
            }
            if to_net {
                for b in std::mem::take(&mut self.to_net) {
                    self.net.receive(self.now, &b);
                }
            }
            if to_user {
                for b in std::mem::take(&mut self.to_user) {
                    self.user.receive(self.now, &b);
                }
            }
        }
        panic!("the two sides keep messaging each other");
    }

    /// With nothing in flight, a channel active on both sides carries
    /// the same call.
    fn check_across(&self) {
        if !self.to_net.is_empty() || !self.to_user.is_empty() {
            return;
        }
        for ch in 1..=31 {
            if let (Some(u), Some(n)) = (self.user.active_on(ch), self.net.active_on(ch)) {
                assert!(
                    u.0 == n.0 && u.1 != n.1,
                    "channel {ch}: user's active call {u:?} is not the network's {n:?}"
                );
            }
        }
    }

    /// Runs the clock `d` forward, firing every deadline on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            self.settle();
            let next = [self.user.poll_timeout(), self.net.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.user.handle_timeout(self.now);
                    self.net.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    self.settle();
                    return;
                }
            }
        }
        panic!("timers keep firing");
    }

    pub fn secs(&mut self, s: u64) {
        self.advance(Duration::from_secs(s));
    }

    pub fn user_events(&mut self) -> Vec<CallEvent> {
        std::mem::take(&mut self.user_events)
    }

    pub fn net_events(&mut self) -> Vec<CallEvent> {
        std::mem::take(&mut self.net_events)
    }

    /// The kinds of the messages sent `dir` since the log was cleared.
    pub fn sent_kinds(&self, dir: Dir) -> Vec<MessageType> {
        self.log
            .iter()
            .filter(|(d, _)| *d == dir)
            .map(|(_, m)| m.kind)
            .collect()
    }

    /// The cause of the last message of `kind` sent `dir`.
    pub fn sent_cause(&self, dir: Dir, kind: MessageType) -> Option<u8> {
        self.log
            .iter()
            .rev()
            .find(|(d, m)| *d == dir && m.kind == kind)
            .and_then(|(_, m)| m.cause())
            .and_then(Result::ok)
            .map(|c| c.cause.value())
    }

    /// The user places `call`; returns (user's id, network's id,
    /// channel) once the network reported it.
    pub fn user_places(&mut self, call: OutgoingCall) -> (CallId, CallId, u8) {
        let u = self.user.setup(self.now, call).expect("setup");
        self.settle();
        let (n, ch) = incoming(&self.net_events()).expect("the network sees the call");
        (u, n, ch)
    }

    /// The network places `call`; returns (network's id, user's id,
    /// channel).
    pub fn net_places(&mut self, call: OutgoingCall) -> (CallId, CallId, u8) {
        let n = self.net.setup(self.now, call).expect("setup");
        self.settle();
        let (u, ch) = incoming(&self.user_events()).expect("the user sees the call");
        (n, u, ch)
    }

    /// A user call answered by the network: (user's, network's, channel).
    pub fn user_call_answered(&mut self, digits: &str) -> (CallId, CallId, u8) {
        let (u, n, ch) = self.user_places(call_to(digits));
        let now = self.now;
        self.net.proceeding(now, n).unwrap();
        self.net.alerting(now, n, true).unwrap();
        self.net.connect(now, n).unwrap();
        self.settle();
        assert!(connected(&self.user_events(), u));
        assert!(connected(&self.net_events(), n));
        (u, n, ch)
    }
}

/// The call and channel of the first `Incoming` event.
pub fn incoming(events: &[CallEvent]) -> Option<(CallId, u8)> {
    events.iter().find_map(|e| match e {
        CallEvent::Incoming(i) => Some((i.call, i.channel)),
        _ => None,
    })
}

pub fn connected(events: &[CallEvent], call: CallId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, CallEvent::Connected { call: c, .. } if *c == call))
}

/// The causes `call` was released with (one, if all is well).
pub fn released(events: &[CallEvent], call: CallId) -> Vec<Cause> {
    events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Released { call: c, cause } if *c == call => Some(*cause),
            _ => None,
        })
        .collect()
}

pub fn cause(v: u8) -> Cause {
    Cause::new(v).unwrap()
}
