//! The reflection guard: whether a call's media may go to its peer yet.
//!
//! An INVITE's source and SDP address can both be forged, so a server that
//! streams to the SDP address as soon as it answers turns one datagram into
//! tens of seconds of RTP aimed at whoever the forger names (issue 9 §4:
//! ×690). rivr therefore sends no RTP and no RTCP to the peer until it is
//! *verified*:
//!
//! - **confirmed** by signalling (for SIP, the ACK: a forger who cannot
//!   read rivr's responses cannot produce it) — for the rest of the call; or
//! - **heard**: RTP from the address media goes to was accepted by the
//!   session (latching, `rtp_session::latch`) within the last
//!   [`PEER_HEARD_LEASE`]. Before confirmation this is a lease, not a
//!   verdict: a forged packet buys at most the lease's worth of media, and
//!   a peer that falls silent is no longer sent to until it speaks again or
//!   signalling confirms it.
//!
//! Early media (before the call is answered) may go to a peer not yet
//! verified for a bounded time from when it starts — the *unverified
//! early-media cap* — because many phones send nothing before they are
//! answered and would otherwise hear no announcement at all.
//!
//! What happens to media while the gate is shut ([`Flow`]):
//!
//! - an *answered* call **holds** it: the prompt waits where it is, so a
//!   caller whose ACK takes a round trip still hears the greeting from its
//!   first word, and a forged call's script waits instead of talking to
//!   nobody;
//! - *early media* past its cap is **muted**: the media clock keeps running
//!   and nothing is sent, so `progress(); play(…); answer()` moves on when
//!   the prompt is over whether or not the phone could hear it (a silent
//!   phone would otherwise keep the script waiting until it gave up).
//!
//! Sans-IO: the media worker reports what happened with `now` and asks
//! [`SendGate::flow`] once per tick.

use std::time::{Duration, Instant};

/// How long one accepted RTP packet from the peer keeps media flowing to an
/// address signalling has not confirmed: long enough for 20–120 ms
/// packetisation, jitter and Opus DTX (a packet every 400 ms), short enough
/// that a forged packet buys at most 25 of ours.
pub const PEER_HEARD_LEASE: Duration = Duration::from_millis(500);

/// What to do with this tick's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Send it.
    Send,
    /// Keep it for later: the call is answered and waits for its peer.
    Hold,
    /// Let the media clock run and send nothing: early media past its cap.
    Mute,
}

/// Whether media may be sent to one call's peer; see the module doc.
#[derive(Debug, Clone)]
pub struct SendGate {
    confirmed: bool,
    last_heard: Option<Instant>,
    early_cap: Duration,
    /// When early media first started: the unverified allowance runs from
    /// here and is not renewed.
    early_since: Option<Instant>,
    /// Sending as early media (started before the call was answered).
    early: bool,
}

impl SendGate {
    /// A gate that is shut until the peer is verified; early media may go
    /// to an unverified peer for `early_cap` from its start.
    pub fn new(early_cap: Duration) -> Self {
        SendGate {
            confirmed: false,
            last_heard: None,
            early_cap,
            early_since: None,
            early: false,
        }
    }

    /// Signalling confirmed the peer (for SIP, the ACK of the 2xx).
    pub fn peer_confirmed(&mut self) {
        self.confirmed = true;
    }

    /// An RTP packet from the address media is sent to was accepted at
    /// `now`. Per packet: stores one instant, nothing else.
    pub fn peer_heard(&mut self, now: Instant) {
        self.last_heard = Some(now);
    }

    /// The peer's media address changed by signalling: what was heard from
    /// the old address no longer speaks for the new one.
    pub fn remote_changed(&mut self) {
        self.last_heard = None;
    }

    /// Sending starts (or goes on) as early media at `now`. The unverified
    /// allowance starts with the first early media and is not renewed.
    pub fn early_media(&mut self, now: Instant) {
        self.early = true;
        self.early_since.get_or_insert(now);
    }

    /// The call is answered: media is no longer early, and only a verified
    /// peer is sent to (the ACK follows the answer within a round trip).
    pub fn answered(&mut self) {
        self.early = false;
    }

    /// Whether the peer is verified at `now`.
    pub fn verified(&self, now: Instant) -> bool {
        self.confirmed
            || self
                .last_heard
                .is_some_and(|t| now.saturating_duration_since(t) < PEER_HEARD_LEASE)
    }

    /// What to do with media at `now`.
    pub fn flow(&self, now: Instant) -> Flow {
        if self.may_send(now) {
            Flow::Send
        } else if self.early {
            Flow::Mute
        } else {
            Flow::Hold
        }
    }

    /// Whether RTP and RTCP may be sent to the peer at `now`.
    pub fn may_send(&self, now: Instant) -> bool {
        self.verified(now)
            || (self.early
                && self
                    .early_since
                    .is_some_and(|t| now.saturating_duration_since(t) < self.early_cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_millis(1000);
    const TICK: Duration = Duration::from_millis(20);

    /// Ticks of `gate` that may send over `span` from `t0`, 20 ms apart.
    fn open_ticks(gate: &SendGate, t0: Instant, span: Duration) -> usize {
        (0..span.as_millis() / TICK.as_millis())
            .filter(|&i| gate.may_send(t0 + TICK * i as u32))
            .count()
    }

    #[test]
    fn shut_until_the_peer_is_confirmed() {
        let t0 = Instant::now();
        let mut g = SendGate::new(CAP);
        g.answered();
        assert_eq!(open_ticks(&g, t0, Duration::from_secs(32)), 0);
        g.peer_confirmed();
        assert!(g.may_send(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn rtp_from_the_peer_opens_it_for_a_lease() {
        let t0 = Instant::now();
        let mut g = SendGate::new(CAP);
        g.answered();
        g.peer_heard(t0);
        assert!(g.may_send(t0));
        assert!(g.may_send(t0 + PEER_HEARD_LEASE - Duration::from_millis(1)));
        assert!(!g.may_send(t0 + PEER_HEARD_LEASE));
        // One forged packet buys at most a lease of 20 ms frames.
        assert_eq!(
            open_ticks(&g, t0, Duration::from_secs(32)),
            (PEER_HEARD_LEASE.as_millis() / TICK.as_millis()) as usize
        );
        // A peer that keeps talking keeps it open.
        for i in 0..500u32 {
            let now = t0 + TICK * i;
            g.peer_heard(now);
            assert!(g.may_send(now + TICK));
        }
    }

    #[test]
    fn unverified_early_media_stops_at_the_cap() {
        let t0 = Instant::now();
        let mut g = SendGate::new(CAP);
        g.early_media(t0);
        assert_eq!(
            open_ticks(&g, t0, Duration::from_secs(10)),
            (CAP.as_millis() / TICK.as_millis()) as usize
        );
        // A second progress() does not renew it.
        g.early_media(t0 + Duration::from_secs(5));
        assert!(!g.may_send(t0 + Duration::from_secs(5)));
        // Answering ends what is left of it.
        let mut g = SendGate::new(CAP);
        g.early_media(t0);
        g.answered();
        assert!(!g.may_send(t0));
    }

    #[test]
    fn verified_early_media_flows_past_the_cap() {
        let t0 = Instant::now();
        let mut g = SendGate::new(CAP);
        g.early_media(t0);
        for i in 0..500u32 {
            let now = t0 + TICK * i;
            g.peer_heard(now);
            assert!(g.may_send(now), "tick {i}");
        }
        // The peer falls silent after 10 s, past the cap: media stops
        // with the lease.
        let silent = t0 + TICK * 499;
        assert!(!g.may_send(silent + PEER_HEARD_LEASE));
    }

    #[test]
    fn new_remote_address_must_be_heard_again() {
        let t0 = Instant::now();
        let mut g = SendGate::new(Duration::ZERO);
        g.answered();
        g.peer_heard(t0);
        g.remote_changed();
        assert!(!g.may_send(t0));
        // Confirmed calls keep sending wherever signalling points.
        g.peer_confirmed();
        g.remote_changed();
        assert!(g.may_send(t0));
    }

    #[test]
    fn answered_calls_hold_and_early_media_mutes() {
        let t0 = Instant::now();
        let mut g = SendGate::new(CAP);
        g.early_media(t0);
        assert_eq!(g.flow(t0), Flow::Send);
        assert_eq!(g.flow(t0 + CAP), Flow::Mute);
        g.answered();
        assert_eq!(g.flow(t0 + CAP), Flow::Hold);
        g.peer_confirmed();
        assert_eq!(g.flow(t0 + CAP), Flow::Send);
    }

    #[test]
    fn a_huge_cap_does_not_overflow() {
        let t0 = Instant::now();
        let mut g = SendGate::new(Duration::MAX);
        g.early_media(t0);
        assert!(g.may_send(t0 + Duration::from_secs(86_400)));
    }

    #[test]
    fn a_zero_cap_means_no_unverified_early_media() {
        let t0 = Instant::now();
        let mut g = SendGate::new(Duration::ZERO);
        g.early_media(t0);
        assert_eq!(open_ticks(&g, t0, Duration::from_secs(10)), 0);
    }
}
