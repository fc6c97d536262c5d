//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state): the
//! INVITE and non-INVITE server transactions, the non-INVITE client
//! transaction rivr uses for the BYE it sends, and the INVITE client
//! transaction (`invite_client`) for the calls it places.
//!
//! Each transaction is a small state machine with one typed timer table; it
//! owns the bytes of the last response or request it must retransmit. It is
//! driven with `now` and returns what to do; it never sends or sleeps.

mod invite_client;

use std::time::{Duration, Instant};

pub use invite_client::{InviteClientState, InviteClientTx, ResponseAction};

/// The RFC 3261 timer base values.
#[derive(Debug, Clone, Copy)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    pub fn timeout_64t1(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction wants after a timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum TimerAction {
    None,
    /// Send the stored message again.
    Retransmit,
    /// Timer H / F: the peer never answered. The TU is told.
    TimedOut,
    /// The transaction is over; remove it.
    Terminated,
}

/// Timers of the INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvTimer {
    /// Retransmit a non-2xx final over UDP.
    G = 0,
    /// Give up waiting for the ACK of a non-2xx final.
    H = 1,
    /// Absorb ACK retransmissions in Confirmed.
    I = 2,
    /// Absorb INVITE retransmissions in Accepted (RFC 6026).
    L = 3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    Proceeding,
    /// A 2xx was sent; the TU retransmits it (RFC 6026 §7.1).
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

/// The INVITE server transaction (RFC 3261 §17.2.1, RFC 6026).
#[derive(Debug)]
pub struct InviteServerTx {
    state: InviteServerState,
    reliable: bool,
    timers: [Option<Instant>; 4],
    g_interval: Duration,
    cfg: TimerConfig,
    last_response: Vec<u8>,
    last_status: u16,
}

impl InviteServerTx {
    pub fn new(cfg: TimerConfig, reliable: bool) -> Self {
        InviteServerTx {
            state: InviteServerState::Proceeding,
            reliable,
            timers: [None; 4],
            g_interval: cfg.t1,
            cfg,
            last_response: Vec::new(),
            last_status: 0,
        }
    }

    pub fn state(&self) -> InviteServerState {
        self.state
    }

    pub fn last_status(&self) -> u16 {
        self.last_status
    }

    /// The TU sends a response; returns whether it may go on the wire.
    pub fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        match self.state {
            InviteServerState::Proceeding => {}
            // RFC 6026: 2xx retransmissions from the TU pass through Accepted.
            InviteServerState::Accepted if (200..300).contains(&status) => {
                return true;
            }
            _ => return false,
        }
        self.last_status = status;
        self.last_response = bytes;
        if status < 200 {
            return true;
        }
        if status < 300 {
            self.state = InviteServerState::Accepted;
            self.timers[InvTimer::L as usize] = Some(now + self.cfg.timeout_64t1());
        } else {
            self.state = InviteServerState::Completed;
            if !self.reliable {
                self.timers[InvTimer::G as usize] = Some(now + self.g_interval);
            }
            self.timers[InvTimer::H as usize] = Some(now + self.cfg.timeout_64t1());
        }
        true
    }

    /// A retransmission of the INVITE arrived: the bytes to send again, if any.
    pub fn on_request_retransmission(&self) -> Option<&[u8]> {
        match self.state {
            InviteServerState::Proceeding | InviteServerState::Completed
                if !self.last_response.is_empty() =>
            {
                Some(&self.last_response)
            }
            _ => None,
        }
    }

    /// An ACK for a non-2xx final arrived (same branch).
    pub fn on_ack(&mut self, now: Instant) {
        if self.state == InviteServerState::Completed {
            self.state = InviteServerState::Confirmed;
            self.timers[InvTimer::G as usize] = None;
            self.timers[InvTimer::H as usize] = None;
            let t_i = if self.reliable {
                Duration::ZERO
            } else {
                self.cfg.t4
            };
            self.timers[InvTimer::I as usize] = Some(now + t_i);
        }
    }

    /// The bytes a Retransmit action sends.
    pub fn retransmit_bytes(&self) -> &[u8] {
        &self.last_response
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// Fires every timer that is due; a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) -> TimerAction {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timers[InvTimer::H as usize]) {
            self.state = InviteServerState::Terminated;
            self.timers = [None; 4];
            return TimerAction::TimedOut;
        }
        if due(self.timers[InvTimer::I as usize]) || due(self.timers[InvTimer::L as usize]) {
            self.state = InviteServerState::Terminated;
            self.timers = [None; 4];
            return TimerAction::Terminated;
        }
        if due(self.timers[InvTimer::G as usize]) {
            self.g_interval = (self.g_interval * 2).min(self.cfg.t2);
            self.timers[InvTimer::G as usize] = Some(now + self.g_interval);
            return TimerAction::Retransmit;
        }
        TimerAction::None
    }
}

/// The non-INVITE server transaction (RFC 3261 §17.2.2). rivr answers every
/// non-INVITE request at once, so it goes Trying → Completed.
#[derive(Debug)]
pub struct NonInviteServerTx {
    last_response: Vec<u8>,
    /// Timer J: absorb request retransmissions.
    timer_j: Option<Instant>,
    completed: bool,
}

impl NonInviteServerTx {
    pub fn new() -> Self {
        NonInviteServerTx {
            last_response: Vec::new(),
            timer_j: None,
            completed: false,
        }
    }

    pub fn send_final(&mut self, now: Instant, cfg: &TimerConfig, reliable: bool, bytes: Vec<u8>) {
        self.last_response = bytes;
        self.completed = true;
        let j = if reliable {
            Duration::ZERO
        } else {
            cfg.timeout_64t1()
        };
        self.timer_j = Some(now + j);
    }

    pub fn on_request_retransmission(&self) -> Option<&[u8]> {
        (self.completed && !self.last_response.is_empty()).then_some(&self.last_response[..])
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }

    pub fn handle_timeout(&mut self, now: Instant) -> TimerAction {
        if self.timer_j.is_some_and(|t| t <= now) {
            self.timer_j = None;
            return TimerAction::Terminated;
        }
        TimerAction::None
    }
}

impl Default for NonInviteServerTx {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NictTimer {
    /// Retransmit the request over UDP.
    E = 0,
    /// Give up.
    F = 1,
    /// Absorb response retransmissions in Completed.
    K = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// The non-INVITE client transaction (RFC 3261 §17.1.2), for rivr's BYE.
#[derive(Debug)]
pub struct NonInviteClientTx {
    state: NonInviteClientState,
    reliable: bool,
    timers: [Option<Instant>; 3],
    e_interval: Duration,
    cfg: TimerConfig,
    request: Vec<u8>,
}

impl NonInviteClientTx {
    /// Starts the transaction; the caller sends `request` once now.
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Vec<u8>) -> Self {
        let mut timers = [None; 3];
        if !reliable {
            timers[NictTimer::E as usize] = Some(now + cfg.t1);
        }
        timers[NictTimer::F as usize] = Some(now + cfg.timeout_64t1());
        NonInviteClientTx {
            state: NonInviteClientState::Trying,
            reliable,
            timers,
            e_interval: cfg.t1,
            cfg,
            request,
        }
    }

    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// A response matched this transaction; returns true for the first final.
    pub fn on_response(&mut self, now: Instant, status: u16) -> bool {
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                if status < 200 {
                    self.state = NonInviteClientState::Proceeding;
                    return false;
                }
                self.state = NonInviteClientState::Completed;
                self.timers[NictTimer::E as usize] = None;
                self.timers[NictTimer::F as usize] = None;
                let k = if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                self.timers[NictTimer::K as usize] = Some(now + k);
                true
            }
            _ => false,
        }
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> TimerAction {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timers[NictTimer::F as usize]) {
            self.state = NonInviteClientState::Terminated;
            self.timers = [None; 3];
            return TimerAction::TimedOut;
        }
        if due(self.timers[NictTimer::K as usize]) {
            self.state = NonInviteClientState::Terminated;
            self.timers = [None; 3];
            return TimerAction::Terminated;
        }
        if due(self.timers[NictTimer::E as usize]) {
            // §17.1.2.2: in Proceeding the interval is T2.
            self.e_interval = match self.state {
                NonInviteClientState::Proceeding => self.cfg.t2,
                _ => (self.e_interval * 2).min(self.cfg.t2),
            };
            self.timers[NictTimer::E as usize] = Some(now + self.e_interval);
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

    /// Steps a transaction through every timer until `until`, recording when
    /// each action happened (relative to `t0`).
    fn run<F: FnMut(Instant) -> TimerAction, P: Fn() -> Option<Instant>>(
        t0: Instant,
        until: Duration,
        mut fire: F,
        poll: P,
    ) -> Vec<(u64, TimerAction)> {
        let mut log = Vec::new();
        while let Some(t) = poll() {
            if t > t0 + until {
                break;
            }
            let a = fire(t);
            log.push(((t - t0).as_millis() as u64, a));
            if matches!(a, TimerAction::TimedOut | TimerAction::Terminated) {
                break;
            }
        }
        log
    }

    #[test]
    fn invite_non2xx_retransmits_with_timer_g_until_h() {
        let t0 = Instant::now();
        let cfg = TimerConfig::default();
        let tx = std::cell::RefCell::new(InviteServerTx::new(cfg, false));
        assert!(tx.borrow_mut().send_response(t0, 486, b"486".to_vec()));
        let log = run(
            t0,
            ms(40_000),
            |t| tx.borrow_mut().handle_timeout(t),
            || tx.borrow().poll_timeout(),
        );
        let times: Vec<u64> = log.iter().map(|x| x.0).collect();
        // G: 500, +1000, +2000, +4000, +4000 … ; H at 32 s.
        assert_eq!(&times[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(*log.last().unwrap(), (32_000, TimerAction::TimedOut));
        assert_eq!(tx.borrow().state(), InviteServerState::Terminated);
    }

    #[test]
    fn invite_ack_confirms_then_timer_i_terminates() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(TimerConfig::default(), false);
        assert!(tx.send_response(t0, 100, b"100".to_vec()));
        assert_eq!(tx.on_request_retransmission(), Some(&b"100"[..]));
        assert!(tx.send_response(t0, 487, b"487".to_vec()));
        assert_eq!(tx.on_request_retransmission(), Some(&b"487"[..]));
        tx.on_ack(t0 + ms(100));
        assert_eq!(tx.state(), InviteServerState::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(5100)));
        assert_eq!(tx.handle_timeout(t0 + ms(5000)), TimerAction::None);
        assert_eq!(tx.handle_timeout(t0 + ms(5100)), TimerAction::Terminated);
    }

    #[test]
    fn invite_2xx_goes_to_accepted_and_absorbs_retransmissions() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(TimerConfig::default(), false);
        assert!(tx.send_response(t0, 200, b"200".to_vec()));
        assert_eq!(tx.state(), InviteServerState::Accepted);
        assert_eq!(tx.on_request_retransmission(), None);
        // the TU's own 2xx retransmissions pass; a late non-2xx does not
        assert!(tx.send_response(t0 + ms(500), 200, b"200".to_vec()));
        assert!(!tx.send_response(t0 + ms(500), 500, b"500".to_vec()));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
        assert_eq!(tx.handle_timeout(t0 + ms(32_000)), TimerAction::Terminated);
    }

    #[test]
    fn reliable_transport_has_no_retransmissions() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(TimerConfig::default(), true);
        assert!(tx.send_response(t0, 404, b"404".to_vec()));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
        tx.on_ack(t0 + ms(10));
        assert_eq!(tx.handle_timeout(t0 + ms(10)), TimerAction::Terminated);
    }

    #[test]
    fn non_invite_server_timer_j() {
        let t0 = Instant::now();
        let cfg = TimerConfig::default();
        let mut tx = NonInviteServerTx::new();
        assert_eq!(tx.on_request_retransmission(), None);
        tx.send_final(t0, &cfg, false, b"200".to_vec());
        assert_eq!(tx.on_request_retransmission(), Some(&b"200"[..]));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
        assert_eq!(tx.handle_timeout(t0 + ms(1)), TimerAction::None);
        assert_eq!(tx.handle_timeout(t0 + ms(32_000)), TimerAction::Terminated);
    }

    #[test]
    fn non_invite_client_timers_e_and_f() {
        let t0 = Instant::now();
        let tx = std::cell::RefCell::new(NonInviteClientTx::new(
            t0,
            TimerConfig::default(),
            false,
            b"BYE".to_vec(),
        ));
        let log = run(
            t0,
            ms(40_000),
            |t| tx.borrow_mut().handle_timeout(t),
            || tx.borrow().poll_timeout(),
        );
        let times: Vec<u64> = log.iter().map(|x| x.0).collect();
        assert_eq!(&times[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(*log.last().unwrap(), (32_000, TimerAction::TimedOut));
    }

    #[test]
    fn non_invite_client_completes_on_final_and_uses_t2_in_proceeding() {
        let t0 = Instant::now();
        let mut tx = NonInviteClientTx::new(t0, TimerConfig::default(), false, b"BYE".to_vec());
        assert!(!tx.on_response(t0 + ms(100), 100));
        assert_eq!(tx.handle_timeout(t0 + ms(500)), TimerAction::Retransmit);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(4500)));
        assert!(tx.on_response(t0 + ms(600), 200));
        assert!(
            !tx.on_response(t0 + ms(700), 200),
            "a retransmitted final is absorbed"
        );
        assert_eq!(tx.state(), NonInviteClientState::Completed);
        assert_eq!(tx.handle_timeout(t0 + ms(5600)), TimerAction::Terminated);
    }
}
