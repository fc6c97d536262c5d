//! The `q921` target: the LAPD frame codec, and two data links (A, on the
//! side the input picks, and B, the other side) joined by a line the input
//! controls, on a virtual clock the input advances.
//!
//! Operations: raw bytes, or a frame built from fields, injected into A;
//! layer-3 requests (establish, release, send, send UI) on either link;
//! delivering, losing, duplicating or swapping the frames in flight; time
//! steps and timer expiries. Checked after every step:
//! - the decoder: whatever bytes decode re-encode to themselves;
//! - every frame a link sends decodes, is for SAPI 0 / TEI 0, carries the
//!   C/R bit of its side (Q.921 Table 1), and an I or UI frame's
//!   information field is at most N201;
//! - V(S) − V(A) (mod 128) ≤ k, and at most k frames are kept for
//!   retransmission;
//! - after `handle_timeout(now)` no timer is still due at `now`;
//! - while the line has only delivered or lost frames in order and nothing
//!   was injected, each link's `Data` is an in-order subsequence, without
//!   repeats, of the messages the other link accepted to send.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::input::{Input, Seed};
use crate::pri::q921::{self, Address, Frame, Kind, Link, LinkConfig, LinkEvent, Side, State};

const OP_RAW: u8 = 0;
const OP_FRAME: u8 = 1;
const OP_DELIVER: u8 = 2;
const OP_LOSE: u8 = 3;
const OP_DUPLICATE: u8 = 4;
const OP_SWAP: u8 = 5;
const OP_ADVANCE: u8 = 6;
const OP_TIMEOUT: u8 = 7;
const OP_ESTABLISH: u8 = 8;
const OP_RELEASE: u8 = 9;
const OP_SEND: u8 = 10;
const OP_SEND_UI: u8 = 11;
const OP_DELIVER_ALL: u8 = 12;
const OPS: u8 = 13;

const MAX_OPS: usize = 2048;
/// Frames in flight per direction at most; more are lost (keeps a run of
/// many sends cheap).
const MAX_IN_FLIGHT: usize = 512;

/// What a run reached (for the seed tests).
#[derive(Debug, Clone, Default)]
pub struct Reached {
    /// `Established` events, both links.
    pub established: u64,
    /// `Data` events, both links.
    pub delivered: u64,
    /// `Error` events, both links.
    pub errors: u64,
    /// Timer recovery was entered.
    pub timer_recovery: bool,
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = exercise(data);
}

/// One link, the frames it sent that are in flight, and its messages.
struct End {
    link: Link,
    line: VecDeque<Vec<u8>>,
    /// Next id for a message it sends.
    next_id: u32,
    /// The last message id received from the other end.
    last_got: Option<u32>,
}

impl End {
    fn new(cfg: LinkConfig) -> Self {
        End {
            link: Link::new(cfg),
            line: VecDeque::new(),
            next_id: 0,
            last_got: None,
        }
    }
}

fn config(b: u8, side: Side) -> LinkConfig {
    let mut cfg = LinkConfig::new(side);
    // k = 127 puts the window edge on the modulo-128 edge.
    cfg.k = if b & 0x80 != 0 { 127 } else { 1 + (b >> 1) % 7 };
    cfg.n200 = (b >> 4) & 3;
    cfg
}

/// Runs `data`; returns what it reached.
pub fn exercise(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let b = input.u8();
    let side_a = if b & 1 == 0 {
        Side::User
    } else {
        Side::Network
    };
    let side_b = match side_a {
        Side::User => Side::Network,
        Side::Network => Side::User,
    };
    let mut ends = [End::new(config(b, side_a)), End::new(config(b, side_b))];
    let mut now = Instant::now();
    let mut clean = true;
    let mut reached = Reached::default();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8() % OPS;
        let dir = usize::from(input.u8() & 1);
        let [a, b] = &mut ends;
        let (from, to) = if dir == 0 { (a, b) } else { (b, a) };
        match op {
            OP_RAW => {
                let raw = input.bytes8();
                if let Ok(f) = q921::decode(raw) {
                    assert_eq!(f.to_bytes(), raw, "decoding is canonical");
                }
                ends[0].link.handle_frame(now, raw);
                clean = false;
            }
            OP_FRAME => {
                let f = built_frame(&mut input, side_b);
                ends[0].link.handle_frame(now, &f.to_bytes());
                clean = false;
            }
            OP_DELIVER => {
                if let Some(f) = from.line.pop_front() {
                    to.link.handle_frame(now, &f);
                }
            }
            OP_DELIVER_ALL => {
                while let Some(f) = from.line.pop_front() {
                    to.link.handle_frame(now, &f);
                }
            }
            OP_LOSE => {
                from.line.pop_front();
            }
            OP_DUPLICATE => {
                if let Some(f) = from.line.front().cloned() {
                    from.line.push_front(f);
                    clean = false;
                }
            }
            OP_SWAP => {
                if from.line.len() >= 2 {
                    from.line.swap(0, 1);
                    clean = false;
                }
            }
            OP_ADVANCE => {
                now += Duration::from_millis(u64::from(input.u16()));
                timeouts(&mut ends, now);
            }
            OP_TIMEOUT => {
                let next = ends.iter().filter_map(|e| e.link.poll_timeout()).min();
                if let Some(t) = next {
                    now = now.max(t);
                    timeouts(&mut ends, now);
                }
            }
            OP_ESTABLISH => from.link.establish(now),
            OP_RELEASE => from.link.release(now),
            OP_SEND => {
                let len = usize::from(input.u8());
                let mut m = from.next_id.to_be_bytes().to_vec();
                m.resize(len.max(4), 0x5A);
                if from.link.send(now, m).is_ok() {
                    from.next_id += 1;
                }
            }
            _ => {
                let _ = from.link.send_unit_data(input.bytes8().to_vec());
            }
        }
        collect(&mut ends, clean, &mut reached);
    }
    reached
}

fn timeouts(ends: &mut [End; 2], now: Instant) {
    for e in ends.iter_mut() {
        e.link.handle_timeout(now);
        if let Some(t) = e.link.poll_timeout() {
            assert!(t > now, "a timer is still due after handle_timeout");
        }
    }
}

/// A frame from fields, addressed (mostly) as B would address it.
fn built_frame(input: &mut Input, peer: Side) -> Frame {
    let sel = input.u8();
    let (ns, nr) = (input.u8() & 0x7F, input.u8() & 0x7F);
    let pf = sel & 0x80 != 0;
    let info = match input.u8() {
        // One octet over N201 (error O).
        255 => vec![0; 261],
        n => input.take(usize::from(n)).to_vec(),
    };
    let (kind, command) = match sel % 11 {
        0 => (
            Kind::I {
                ns,
                nr,
                p: pf,
                info,
            },
            true,
        ),
        1 => (Kind::Rr { nr, pf }, sel & 0x40 != 0),
        2 => (Kind::Rnr { nr, pf }, sel & 0x40 != 0),
        3 => (Kind::Rej { nr, pf }, sel & 0x40 != 0),
        4 => (Kind::Sabme { p: pf }, true),
        5 => (Kind::Dm { f: pf }, false),
        6 => (Kind::Disc { p: pf }, true),
        7 => (Kind::Ua { f: pf }, false),
        8 => (Kind::Ui { p: pf, info }, true),
        9 => (Kind::Frmr { f: pf, info }, false),
        _ => (Kind::Xid { pf, info }, sel & 0x40 != 0),
    };
    let cr = command == (peer == Side::Network);
    // Now and then the wrong C/R bit, SAPI or TEI.
    let cr = cr ^ (sel & 0x20 != 0 && sel & 0x10 != 0);
    let (sapi, tei) = if sel & 0x30 == 0x10 { (16, 1) } else { (0, 0) };
    Frame {
        address: Address { sapi, cr, tei },
        kind,
    }
}

/// Moves transmits onto the line and checks every frame and event.
fn collect(ends: &mut [End; 2], clean: bool, reached: &mut Reached) {
    for i in 0..2 {
        let [a, b] = &mut *ends;
        let (me, other) = if i == 0 { (a, &*b) } else { (b, &*a) };
        let cfg = me.link.config().clone();
        while let Some(bytes) = me.link.poll_transmit() {
            let f = q921::decode(&bytes).expect("a link sends only valid frames");
            check_frame(&f, &cfg);
            if me.line.len() < MAX_IN_FLIGHT {
                me.line.push_back(bytes);
            }
        }
        while let Some(e) = me.link.poll_event() {
            match e {
                LinkEvent::Established => reached.established += 1,
                LinkEvent::Error(_) => reached.errors += 1,
                LinkEvent::Data(m) => {
                    reached.delivered += 1;
                    if clean {
                        check_data(me, other.next_id, &m);
                    }
                }
                _ => {}
            }
        }
        let s = me.link.status();
        let outstanding = s.vs.wrapping_sub(s.va) & 0x7F;
        assert!(outstanding <= cfg.k, "window exceeded: {s:?}");
        assert!(s.unacked <= usize::from(cfg.k), "{s:?}");
        reached.timer_recovery |= s.state == State::TimerRecovery;
    }
}

fn check_frame(f: &Frame, cfg: &LinkConfig) {
    assert_eq!((f.address.sapi, f.address.tei), (0, 0), "{f:?}");
    let command = match f.kind {
        Kind::I { .. } | Kind::Sabme { .. } | Kind::Disc { .. } | Kind::Ui { .. } => Some(true),
        Kind::Ua { .. } | Kind::Dm { .. } => Some(false),
        Kind::Rr { .. } | Kind::Rnr { .. } | Kind::Rej { .. } => None,
        Kind::Frmr { .. } | Kind::Xid { .. } => panic!("LAPD here never sends {f:?}"),
    };
    if let Some(command) = command {
        assert_eq!(
            f.address.cr,
            command == (cfg.side == Side::Network),
            "{f:?}"
        );
    }
    assert!(f.info().map_or(0, <[u8]>::len) <= cfg.n201, "{f:?}");
}

/// `m` (an id the other end gave out, in its first four octets) comes after
/// every earlier one and was sent.
fn check_data(me: &mut End, other_next: u32, m: &[u8]) {
    let Some(id) = m
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
    else {
        panic!("a message shorter than its id: {m:?}");
    };
    assert!(id < other_next, "message {id} was never sent");
    assert!(
        me.last_got.is_none_or(|last| id > last),
        "message {id} after {:?}: repeated or out of order",
        me.last_got
    );
    me.last_got = Some(id);
}

/// Seeds: a clean exchange both ways; losses that drive timer recovery
/// and re-establishment; collisions and release; frames of every type.
pub fn seeds() -> Vec<Vec<u8>> {
    let op = |s: &mut Seed, op: u8, dir: u8| {
        s.u8(op).u8(dir);
    };
    let exchange = |s: &mut Seed, n: u8| {
        for i in 0..n {
            op(s, OP_SEND, i & 1);
            s.u8(8 + i);
        }
        for _ in 0..16 {
            op(s, OP_DELIVER_ALL, 0);
            op(s, OP_DELIVER_ALL, 1);
        }
    };
    let mut clean = Seed::new();
    // User side, k = 7, N200 = 0.
    clean.u8(0x0C);
    op(&mut clean, OP_ESTABLISH, 0);
    exchange(&mut clean, 40);
    op(&mut clean, OP_RELEASE, 1);
    op(&mut clean, OP_DELIVER_ALL, 1);
    op(&mut clean, OP_DELIVER_ALL, 0);

    let mut lossy = Seed::new();
    lossy.u8(0x31);
    op(&mut lossy, OP_SEND, 0);
    lossy.u8(20);
    op(&mut lossy, OP_DELIVER_ALL, 0);
    op(&mut lossy, OP_DELIVER_ALL, 1);
    for i in 0..6 {
        op(&mut lossy, OP_SEND, 0);
        lossy.u8(30);
        op(&mut lossy, OP_LOSE, 0);
        op(&mut lossy, OP_TIMEOUT, 0);
        if i % 2 == 0 {
            op(&mut lossy, OP_DELIVER_ALL, 0);
            op(&mut lossy, OP_DELIVER_ALL, 1);
        }
    }
    for _ in 0..12 {
        op(&mut lossy, OP_TIMEOUT, 0);
    }
    exchange(&mut lossy, 10);

    let mut collide = Seed::new();
    collide.u8(0x80);
    op(&mut collide, OP_ESTABLISH, 0);
    op(&mut collide, OP_ESTABLISH, 1);
    exchange(&mut collide, 20);
    op(&mut collide, OP_DUPLICATE, 0);
    op(&mut collide, OP_SWAP, 1);
    op(&mut collide, OP_RELEASE, 0);
    op(&mut collide, OP_RELEASE, 1);
    op(&mut collide, OP_DELIVER_ALL, 0);
    op(&mut collide, OP_DELIVER_ALL, 1);
    op(&mut collide, OP_ADVANCE, 0);
    collide.u16(11_000);

    let mut frames = Seed::new();
    frames.u8(0x0E);
    op(&mut frames, OP_ESTABLISH, 1);
    op(&mut frames, OP_DELIVER_ALL, 1);
    op(&mut frames, OP_DELIVER_ALL, 0);
    for sel in 0..11u8 {
        op(&mut frames, OP_FRAME, 0);
        frames.u8(sel).u8(0).u8(0).u8(2).raw(&[8, 1]);
        op(&mut frames, OP_RAW, 0);
        frames.bytes8(&[0x02, 0x01, 0x7F]);
    }
    op(&mut frames, OP_SEND_UI, 0);
    frames.bytes8(b"ui");
    vec![
        clean.into_bytes(),
        lossy.into_bytes(),
        collide.into_bytes(),
        frames.into_bytes(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_reach_the_interesting_states() {
        let s = seeds();
        let clean = exercise(&s[0]);
        assert_eq!(clean.established, 2, "{clean:?}");
        assert_eq!(clean.delivered, 40, "{clean:?}");
        assert_eq!(clean.errors, 0, "{clean:?}");
        let lossy = exercise(&s[1]);
        assert!(lossy.timer_recovery && lossy.errors > 0, "{lossy:?}");
        let collide = exercise(&s[2]);
        assert!(
            collide.established >= 2 && collide.delivered > 0,
            "{collide:?}"
        );
        let frames = exercise(&s[3]);
        assert!(frames.errors > 0 && frames.established >= 2, "{frames:?}");
    }
}
