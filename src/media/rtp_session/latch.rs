//! Symmetric RTP that cannot be stolen (the "RTP Bleed" attacks,
//! AST-2017-005/008): deciding which source address media is accepted from,
//! and where ours is sent.
//!
//! - Until a source is locked we send to the SDP address and accept media
//!   from it; its first packet locks the session to it for good (the peer is
//!   not behind a NAT, so nothing else may ever latch).
//! - A NAT'd peer's media arrives from an address the SDP did not name. Such
//!   an address is accepted only after [`LATCH_RUN`] consecutive in-sequence
//!   audio packets (seq + 1 each time) with the same SSRC from that one
//!   address; until then its packets are dropped (telephone-events, which
//!   may have an SSRC and sequence of their own, neither build nor break a
//!   run). A few candidates are tracked at once
//!   (a fixed array) so a sprayer on other ports cannot reset the real peer's
//!   run: the least advanced candidate is the one replaced, and among equals
//!   the newest, so one-off packets from ever-new ports churn a single slot.
//!   Nothing without signalling can stop a sender that beats the real peer to
//!   a full in-sequence run from a fresh address before the peer's first
//!   packet; that window is the price of serving NAT'd phones. It closes at
//!   the first latch, and a packet from the SDP address undoes a wrong one.
//! - Once locked, packets from any other address are dropped, and the lock is
//!   never moved by media from an unsignalled address: only new signalling
//!   ([`Latch::reset`], from a re-INVITE) restarts learning. The one move
//!   allowed is back to the SDP address itself, whose media is always
//!   accepted: if someone won the learning race before the real peer's first
//!   packet, the peer's signalled address takes the session back.

use std::cmp::Reverse;
use std::net::SocketAddr;

/// Consecutive in-sequence packets needed before a non-SDP address is
/// trusted: 4 packets is 80 ms of audio at 20 ms packetisation, cheap for a
/// real phone and a real hurdle for blind spraying.
pub const LATCH_RUN: u8 = 4;

const CANDIDATES: usize = 4;

/// What to do with a packet, judged on its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the locked source (or the source just locked).
    Accept,
    /// From an address still being learned; dropped for now.
    Unverified,
    /// From an address other than the locked one.
    Wrong,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    addr: SocketAddr,
    ssrc: u32,
    last_seq: u16,
    run: u8,
    /// Arrival order, to break ties when replacing.
    touched: u64,
}

#[derive(Debug, Clone)]
enum State {
    Learning {
        candidates: [Option<Candidate>; CANDIDATES],
        clock: u64,
    },
    Locked {
        addr: SocketAddr,
        /// Whether the lock came from a run of packets (a NAT) rather than
        /// the SDP address itself.
        learned: bool,
    },
}

/// The latching state machine of one session.
#[derive(Debug, Clone)]
pub struct Latch {
    sdp: SocketAddr,
    state: State,
}

/// Compares IPv4-mapped IPv6 sources (a dual-stack socket) equal to IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl Latch {
    /// Starts learning, with `sdp` as the peer's signalled address.
    pub fn new(sdp: SocketAddr) -> Self {
        Self {
            sdp: canonical(sdp),
            state: State::Learning {
                candidates: [None; CANDIDATES],
                clock: 0,
            },
        }
    }

    /// New signalling: forget everything and learn again.
    pub fn reset(&mut self, sdp: SocketAddr) {
        *self = Self::new(sdp);
    }

    /// Where to send media now.
    pub fn target(&self) -> SocketAddr {
        match self.state {
            State::Locked { addr, .. } => addr,
            State::Learning { .. } => self.sdp,
        }
    }

    /// The locked source, if any.
    pub fn locked(&self) -> Option<SocketAddr> {
        match self.state {
            State::Locked { addr, .. } => Some(addr),
            State::Learning { .. } => None,
        }
    }

    /// The address learned from a run of packets (a NAT), if that is how the
    /// lock came about.
    pub fn learned(&self) -> Option<SocketAddr> {
        match self.state {
            State::Locked {
                addr,
                learned: true,
            } => Some(addr),
            _ => None,
        }
    }

    /// Judges one well-formed RTP packet by its source. Only packets with
    /// `learn` set (the audio stream) advance a candidate's run: phones may
    /// send telephone-events with their own SSRC and sequence numbers, and
    /// those must neither break nor build a run.
    pub fn check(&mut self, from: SocketAddr, ssrc: u32, seq: u16, learn: bool) -> Verdict {
        let from = canonical(from);
        let sdp = self.sdp;
        if from == sdp {
            self.state = State::Locked {
                addr: from,
                learned: false,
            };
            return Verdict::Accept;
        }
        let State::Learning { candidates, clock } = &mut self.state else {
            return if Some(from) == self.locked() {
                Verdict::Accept
            } else {
                Verdict::Wrong
            };
        };
        if !learn {
            return Verdict::Unverified;
        }
        *clock += 1;
        let now = *clock;
        if let Some(c) = candidates.iter_mut().flatten().find(|c| c.addr == from) {
            if c.ssrc == ssrc && seq == c.last_seq.wrapping_add(1) {
                c.run = c.run.saturating_add(1);
            } else {
                c.ssrc = ssrc;
                c.run = 1;
            }
            c.last_seq = seq;
            c.touched = now;
            if c.run >= LATCH_RUN {
                self.state = State::Locked {
                    addr: from,
                    learned: true,
                };
                return Verdict::Accept;
            }
            return Verdict::Unverified;
        }
        let fresh = Candidate {
            addr: from,
            ssrc,
            last_seq: seq,
            run: 1,
            touched: now,
        };
        let slot = match candidates.iter().position(Option::is_none) {
            Some(free) => free,
            None => candidates
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.map(|c| (c.run, Reverse(c.touched))))
                .map_or(0, |(i, _)| i),
        };
        if let Some(s) = candidates.get_mut(slot) {
            *s = Some(fresh);
        }
        Verdict::Unverified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sdp_address_locks_on_first_packet() {
        let mut l = Latch::new(a("192.0.2.1:4000"));
        assert_eq!(l.target(), a("192.0.2.1:4000"));
        assert_eq!(l.check(a("192.0.2.1:4000"), 5, 100, true), Verdict::Accept);
        assert_eq!(l.locked(), Some(a("192.0.2.1:4000")));
        assert_eq!(l.learned(), None);
        // Nothing else can latch afterwards, however well-formed its run.
        for i in 0..20 {
            assert_eq!(
                l.check(a("198.51.100.9:5000"), 5, 101 + i, true),
                Verdict::Wrong
            );
        }
        assert_eq!(l.target(), a("192.0.2.1:4000"));
    }

    #[test]
    fn nat_address_latches_after_a_run() {
        let mut l = Latch::new(a("10.0.0.5:4000"));
        let nat = a("203.0.113.7:31000");
        for i in 0..LATCH_RUN - 1 {
            assert_eq!(
                l.check(nat, 77, 500 + u16::from(i), true),
                Verdict::Unverified
            );
            assert_eq!(l.target(), a("10.0.0.5:4000"));
        }
        assert_eq!(
            l.check(nat, 77, 500 + u16::from(LATCH_RUN) - 1, true),
            Verdict::Accept
        );
        assert_eq!(l.target(), nat);
        assert_eq!(l.learned(), Some(nat));
        // Another address is now "other"...
        assert_eq!(
            l.check(a("203.0.113.7:31002"), 77, 504, true),
            Verdict::Wrong
        );
        // ...but the signalled address always wins the session back.
        assert_eq!(l.check(a("10.0.0.5:4000"), 77, 9, true), Verdict::Accept);
        assert_eq!(l.target(), a("10.0.0.5:4000"));
        assert_eq!(l.learned(), None);
        assert_eq!(l.check(nat, 77, 505, true), Verdict::Wrong);
    }

    #[test]
    fn run_breaks_on_gap_ssrc_change_and_wrap_is_in_sequence() {
        let mut l = Latch::new(a("10.0.0.5:4000"));
        let nat = a("203.0.113.7:31000");
        assert_eq!(l.check(nat, 1, 65534, true), Verdict::Unverified);
        assert_eq!(l.check(nat, 1, 65535, true), Verdict::Unverified);
        assert_eq!(l.check(nat, 1, 1, true), Verdict::Unverified); // gap: run restarts
        assert_eq!(l.check(nat, 2, 2, true), Verdict::Unverified); // new ssrc: restarts
        assert_eq!(l.check(nat, 2, 3, true), Verdict::Unverified);
        assert_eq!(l.check(nat, 2, 4, true), Verdict::Unverified);
        assert_eq!(l.check(nat, 2, 5, true), Verdict::Accept);

        let mut l = Latch::new(a("10.0.0.5:4000"));
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            let want = if i == 3 {
                Verdict::Accept
            } else {
                Verdict::Unverified
            };
            assert_eq!(l.check(nat, 1, seq, true), want);
        }
    }

    #[test]
    fn sprayer_on_many_ports_cannot_reset_the_real_run() {
        let mut l = Latch::new(a("10.0.0.5:4000"));
        let nat = a("203.0.113.7:31000");
        let mut got = Verdict::Unverified;
        for i in 0..LATCH_RUN {
            got = l.check(nat, 9, 100 + u16::from(i), true);
            for port in 0..10u16 {
                let spray = SocketAddr::new(nat.ip(), 40000 + port + 10 * u16::from(i));
                assert_eq!(
                    l.check(spray, 9, 100 + u16::from(i), true),
                    if got == Verdict::Accept {
                        Verdict::Wrong
                    } else {
                        Verdict::Unverified
                    }
                );
            }
        }
        assert_eq!(got, Verdict::Accept);
        assert_eq!(l.target(), nat);
    }

    #[test]
    fn mapped_ipv6_equals_ipv4_and_reset_relearns() {
        let mut l = Latch::new(a("192.0.2.1:4000"));
        assert_eq!(
            l.check(a("[::ffff:192.0.2.1]:4000"), 1, 1, true),
            Verdict::Accept
        );
        l.reset(a("192.0.2.2:4002"));
        assert_eq!(l.locked(), None);
        assert_eq!(l.target(), a("192.0.2.2:4002"));
        assert_eq!(
            l.check(a("192.0.2.1:4000"), 1, 2, true),
            Verdict::Unverified
        );
    }

    proptest::proptest! {
        /// A NAT'd peer sending in sequence, interleaved with an attacker
        /// sending from random ports of its own host with random SSRCs and
        /// sequence numbers: the peer is latched after exactly LATCH_RUN of
        /// its packets, the attacker never is, and nothing moves the target
        /// afterwards.
        #[test]
        fn random_spray_never_wins(
            spray in proptest::collection::vec(
                (proptest::prelude::any::<u16>(), proptest::prelude::any::<u32>(),
                 proptest::prelude::any::<u16>(), 0usize..6), 0..400),
            peer_seq in proptest::prelude::any::<u16>(),
        ) {
            let mut l = Latch::new(a("10.0.0.5:4000"));
            let peer = a("203.0.113.7:31000");
            let mut spray = spray.into_iter();
            let mut peer_sent = 0u16;
            loop {
                let v = l.check(peer, 0xFEED, peer_seq.wrapping_add(peer_sent), true);
                peer_sent += 1;
                if peer_sent < u16::from(LATCH_RUN) {
                    proptest::prop_assert_eq!(v, Verdict::Unverified);
                } else {
                    proptest::prop_assert_eq!(v, Verdict::Accept);
                }
                // Up to five attacker packets between two of the peer's.
                let burst = spray.next();
                let Some((port, ssrc, seq, n)) = burst else { break };
                for _ in 0..n {
                    let from = SocketAddr::new(a("198.51.100.66:1").ip(), port);
                    let v = l.check(from, ssrc, seq, true);
                    proptest::prop_assert_ne!(v, Verdict::Accept);
                    proptest::prop_assert_ne!(l.target(), from);
                }
                if peer_sent >= 50 {
                    break;
                }
            }
            if peer_sent >= u16::from(LATCH_RUN) {
                proptest::prop_assert_eq!(l.target(), peer);
            } else {
                proptest::prop_assert_eq!(l.target(), a("10.0.0.5:4000"));
            }
        }
    }
}
