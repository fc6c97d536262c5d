//! The INVITE client transaction (RFC 3261 §17.1.1 with RFC 6026's
//! Accepted state), for the INVITEs rivr sends on a trunk.
//!
//! Calling retransmits the INVITE over UDP on timer A (T1 doubling, no cap)
//! until a response or timer B (64·T1); a provisional moves to Proceeding
//! (no more retransmissions). A non-2xx final moves to Completed: the
//! transaction's owner builds the ACK (same branch, the response's To tag)
//! and hands it over, and every retransmitted final is answered with it
//! until timer D (32 s over UDP, 0 over TCP). A 2xx moves to Accepted
//! (RFC 6026 §8.4): each 2xx, retransmissions included, goes up to the
//! owner, which ACKs it end to end, until timer M (64·T1).

use std::time::{Duration, Instant};

use super::{TimerAction, TimerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Retransmit the INVITE over UDP.
    A = 0,
    /// Give up waiting for any response.
    B = 1,
    /// Absorb retransmitted non-2xx finals in Completed.
    D = 2,
    /// Pass retransmitted 2xx up in Accepted.
    M = 3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// What to do with a response that matched the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ResponseAction {
    /// Hand it to the owner (a provisional, or a 2xx — the first or a
    /// retransmission — which the owner ACKs itself).
    PassUp,
    /// The first non-2xx final: hand it up, then give the transaction its
    /// ACK with `set_ack` (and send that ACK once).
    PassUpFinal,
    /// A retransmitted non-2xx final: send the stored ACK again.
    ResendAck,
    /// Nothing to do (a late provisional, a response after the end).
    Absorb,
}

#[derive(Debug)]
pub struct InviteClientTx {
    state: InviteClientState,
    reliable: bool,
    timers: [Option<Instant>; 4],
    a_interval: Duration,
    cfg: TimerConfig,
    request: Vec<u8>,
    ack: Vec<u8>,
}

impl InviteClientTx {
    /// Starts the transaction; the caller sends `request` once now.
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Vec<u8>) -> Self {
        let mut timers = [None; 4];
        if !reliable {
            timers[Timer::A as usize] = Some(now + cfg.t1);
        }
        timers[Timer::B as usize] = Some(now + cfg.timeout_64t1());
        InviteClientTx {
            state: InviteClientState::Calling,
            reliable,
            timers,
            a_interval: cfg.t1,
            cfg,
            request,
            ack: Vec::new(),
        }
    }

    /// The transaction of an INVITE a dead process sent, taken over to
    /// cancel it (`Endpoint::end_orphan`): it is in Proceeding (the
    /// INVITE is not sent again) and waits for the final response.
    pub fn adopted(cfg: TimerConfig, reliable: bool) -> Self {
        InviteClientTx {
            state: InviteClientState::Proceeding,
            reliable,
            timers: [None; 4],
            a_interval: cfg.t1,
            cfg,
            request: Vec::new(),
            ack: Vec::new(),
        }
    }

    /// rivr sent a CANCEL for this INVITE: if no final response comes
    /// within 64·T1 the transaction gives up (RFC 3261 §9.1), as timer B
    /// would (`TimerAction::TimedOut`).
    pub fn cancel_sent(&mut self, now: Instant) {
        if matches!(
            self.state,
            InviteClientState::Calling | InviteClientState::Proceeding
        ) {
            self.timers[Timer::A as usize] = None;
            let b = now + self.cfg.timeout_64t1();
            let t = &mut self.timers[Timer::B as usize];
            *t = Some(t.map_or(b, |old| old.min(b)));
        }
    }

    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// The INVITE, to send again on `TimerAction::Retransmit`.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// The stored ACK (after a non-2xx final).
    pub fn ack_bytes(&self) -> &[u8] {
        &self.ack
    }

    /// A response with this transaction's branch arrived.
    pub fn on_response(&mut self, now: Instant, status: u16) -> ResponseAction {
        use InviteClientState::*;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                // Timer B guards only Calling (§17.1.1.2); a ringing call is
                // bounded by the owner's ring timeout and its CANCEL.
                self.state = Proceeding;
                self.timers[Timer::A as usize] = None;
                self.timers[Timer::B as usize] = None;
                ResponseAction::PassUp
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.timers = [None; 4];
                self.timers[Timer::M as usize] = Some(now + self.cfg.timeout_64t1());
                ResponseAction::PassUp
            }
            (Calling | Proceeding, 300..=699) => {
                self.state = Completed;
                self.timers = [None; 4];
                let d = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32).max(self.cfg.timeout_64t1() / 2)
                };
                self.timers[Timer::D as usize] = Some(now + d);
                ResponseAction::PassUpFinal
            }
            (Accepted, 200..=299) => ResponseAction::PassUp,
            (Completed, 300..=699) if !self.ack.is_empty() => ResponseAction::ResendAck,
            _ => ResponseAction::Absorb,
        }
    }

    /// The ACK for the non-2xx final, built by the owner.
    pub fn set_ack(&mut self, ack: Vec<u8>) {
        if self.state == InviteClientState::Completed {
            self.ack = ack;
        }
    }

    /// The owner gave up before any response (a CANCEL that went
    /// unanswered, shutdown): the transaction ends now.
    pub fn terminate(&mut self) {
        self.state = InviteClientState::Terminated;
        self.timers = [None; 4];
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// `Retransmit` (send the INVITE again), `TimedOut` (timer B: no
    /// response at all; the owner reports the attempt unreachable),
    /// `Terminated` (D or M ran out: forget the transaction). A spurious
    /// call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) -> TimerAction {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timers[Timer::B as usize]) {
            self.terminate();
            return TimerAction::TimedOut;
        }
        if due(self.timers[Timer::D as usize]) || due(self.timers[Timer::M as usize]) {
            self.terminate();
            return TimerAction::Terminated;
        }
        if due(self.timers[Timer::A as usize]) {
            self.a_interval *= 2;
            self.timers[Timer::A as usize] = Some(now + self.a_interval);
            return TimerAction::Retransmit;
        }
        TimerAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drive(tx: &mut InviteClientTx, t0: Instant) -> Vec<(u64, TimerAction)> {
        let mut log = Vec::new();
        while let Some(t) = tx.poll_timeout() {
            let a = tx.handle_timeout(t);
            log.push(((t - t0).as_millis() as u64, a));
            if matches!(a, TimerAction::TimedOut | TimerAction::Terminated) {
                break;
            }
        }
        log
    }

    #[test]
    fn timer_a_doubles_until_timer_b() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, TimerConfig::default(), false, b"INVITE".to_vec());
        let log = drive(&mut tx, t0);
        let retransmits: Vec<u64> = log
            .iter()
            .filter(|(_, a)| *a == TimerAction::Retransmit)
            .map(|(t, _)| *t)
            .collect();
        // A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (no T2 cap on INVITE); B at 32 s.
        assert_eq!(retransmits, vec![500, 1500, 3500, 7500, 15_500, 31_500]);
        assert_eq!(*log.last().unwrap(), (32_000, TimerAction::TimedOut));
        assert_eq!(tx.state(), InviteClientState::Terminated);
        assert_eq!(tx.handle_timeout(t0 + ms(40_000)), TimerAction::None);
    }

    #[test]
    fn a_provisional_stops_retransmissions_and_timer_b() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, TimerConfig::default(), false, b"INVITE".to_vec());
        assert_eq!(tx.handle_timeout(t0 + ms(500)), TimerAction::Retransmit);
        assert_eq!(tx.on_response(t0 + ms(600), 180), ResponseAction::PassUp);
        assert_eq!(tx.state(), InviteClientState::Proceeding);
        assert_eq!(tx.poll_timeout(), None);
        assert_eq!(tx.handle_timeout(t0 + ms(40_000)), TimerAction::None);
        assert_eq!(tx.on_response(t0 + ms(45_000), 200), ResponseAction::PassUp);
    }

    #[test]
    fn non_2xx_final_is_acked_and_retransmissions_get_the_same_ack_until_d() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, TimerConfig::default(), false, b"INVITE".to_vec());
        assert_eq!(tx.on_response(t0 + ms(50), 100), ResponseAction::PassUp);
        assert_eq!(
            tx.on_response(t0 + ms(90), 486),
            ResponseAction::PassUpFinal
        );
        tx.set_ack(b"ACK".to_vec());
        assert_eq!(tx.on_response(t0 + ms(600), 486), ResponseAction::ResendAck);
        assert_eq!(tx.ack_bytes(), b"ACK");
        assert_eq!(tx.on_response(t0 + ms(700), 180), ResponseAction::Absorb);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_090)));
        assert_eq!(tx.handle_timeout(t0 + ms(32_090)), TimerAction::Terminated);
    }

    #[test]
    fn over_tcp_no_retransmissions_and_d_is_zero() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, TimerConfig::default(), true, b"INVITE".to_vec());
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
        assert_eq!(
            tx.on_response(t0 + ms(10), 503),
            ResponseAction::PassUpFinal
        );
        assert_eq!(tx.handle_timeout(t0 + ms(10)), TimerAction::Terminated);
    }

    #[test]
    fn an_adopted_transaction_waits_for_the_final_and_gives_up_64_t1_after_cancel() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::adopted(TimerConfig::default(), false);
        assert_eq!(tx.state(), InviteClientState::Proceeding);
        assert_eq!(tx.poll_timeout(), None);
        tx.cancel_sent(t0);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
        assert_eq!(tx.handle_timeout(t0 + ms(31_999)), TimerAction::None);
        assert_eq!(tx.handle_timeout(t0 + ms(32_000)), TimerAction::TimedOut);

        let mut tx = InviteClientTx::adopted(TimerConfig::default(), false);
        tx.cancel_sent(t0);
        assert_eq!(
            tx.on_response(t0 + ms(40), 487),
            ResponseAction::PassUpFinal
        );
        tx.set_ack(b"ACK".to_vec());
        assert_eq!(tx.on_response(t0 + ms(540), 487), ResponseAction::ResendAck);
    }

    #[test]
    fn each_2xx_goes_up_in_accepted_until_timer_m() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, TimerConfig::default(), false, b"INVITE".to_vec());
        assert_eq!(tx.on_response(t0 + ms(100), 200), ResponseAction::PassUp);
        assert_eq!(tx.state(), InviteClientState::Accepted);
        assert_eq!(tx.on_response(t0 + ms(600), 200), ResponseAction::PassUp);
        assert_eq!(tx.on_response(t0 + ms(700), 486), ResponseAction::Absorb);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_100)));
        assert_eq!(tx.handle_timeout(t0 + ms(32_100)), TimerAction::Terminated);
    }
}
