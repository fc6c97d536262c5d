//! Data link tests on a virtual clock: [`Solo`], one link with a scripted
//! peer, for the exact frames of one procedure; [`sim::Sim`], a user and a
//! network link over seeded lossy, duplicating and reordering pipes, for
//! whole runs.
//!
//! - `establish`: establishment, release, collisions, resets, bad frames;
//! - `transfer`: I frames, window, acknowledgement, REJ, RNR, T200;
//! - `runs`: thousands of messages over bad lines, T203, a silent peer.

mod establish;
mod runs;
mod sim;
mod transfer;

use std::time::{Duration, Instant};

use self::sim::{cr_for, Party};
use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

/// Message `n` of the `tag` side: its number big-endian, so messages sort
/// in sending order, padded to lengths that vary.
fn message(tag: u8, n: usize) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(n as u32).to_be_bytes());
    m.resize(5 + n % 40, 0xA5);
    m
}

/// When `p` sent an enquiry (RR command P=1).
fn polls(p: &Party) -> Vec<Duration> {
    let command = cr_for(p.link.config().side, true);
    p.frames
        .iter()
        .filter(|(_, f)| f.address.cr == command && matches!(f.kind, Kind::Rr { pf: true, .. }))
        .map(|(t, _)| *t)
        .collect()
}

fn i(ns: u8, nr: u8, info: &[u8]) -> Kind {
    Kind::I {
        ns,
        nr,
        p: false,
        info: info.to_vec(),
    }
}

fn rr(nr: u8, pf: bool) -> Kind {
    Kind::Rr { nr, pf }
}

/// One link driven by a scripted peer on the other side.
struct Solo {
    link: Link,
    start: Instant,
    now: Instant,
    out: Vec<Frame>,
    events: Vec<LinkEvent>,
}

impl Solo {
    fn new(side: Side) -> Self {
        let start = Instant::now();
        Solo {
            link: Link::new(LinkConfig::new(side)),
            start,
            now: start,
            out: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A user link brought up by the script (SABME answered by UA).
    fn up() -> Self {
        let mut s = Solo::new(Side::User);
        s.link.establish(s.now);
        s.drain();
        assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
        s.feed(false, Kind::Ua { f: true });
        assert_eq!(s.take_events(), vec![LinkEvent::Established]);
        s
    }

    fn peer(&self) -> Side {
        match self.link.config().side {
            Side::User => Side::Network,
            Side::Network => Side::User,
        }
    }

    fn drain(&mut self) {
        while let Some(b) = self.link.poll_transmit() {
            self.out.push(decode(&b).expect("valid frame"));
        }
        while let Some(e) = self.link.poll_event() {
            self.events.push(e);
        }
    }

    /// The peer sends `kind` as a command or a response.
    fn feed(&mut self, command: bool, kind: Kind) {
        let f = Frame {
            address: Address {
                sapi: 0,
                cr: cr_for(self.peer(), command),
                tei: 0,
            },
            kind,
        };
        self.feed_bytes(&f.to_bytes());
    }

    fn feed_bytes(&mut self, bytes: &[u8]) {
        self.link.handle_frame(self.now, bytes);
        self.drain();
    }

    fn send(&mut self, m: &[u8]) {
        self.link.send(self.now, m.to_vec()).unwrap();
        self.drain();
    }

    /// Advances to `at` (since the start), running every timer on the way.
    fn advance_to(&mut self, at: Duration) {
        let end = self.start + at;
        while let Some(t) = self.link.poll_timeout().filter(|t| *t <= end) {
            self.now = t;
            self.link.handle_timeout(t);
            self.drain();
        }
        self.now = end;
    }

    fn take(&mut self) -> Vec<Kind> {
        self.out.drain(..).map(|f| f.kind).collect()
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        std::mem::take(&mut self.events)
    }
}
