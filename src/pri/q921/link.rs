//! The data link entity of one D-channel: point-to-point LAPD on SAPI 0,
//! TEI 0 (Q.921 §5), sans-IO. This file owns the configuration, the state
//! and the layer-3 facing API; `procedures.rs` holds the shared procedures
//! of the SDL (establish data link, enquiry, acknowledgement, I-frame
//! transmission) and `receive.rs` the handling of each received frame.
//!
//! The driver feeds [`Link::handle_frame`], [`Link::handle_timeout`] and
//! the layer-3 requests with `now`, then drains [`Link::poll_transmit`]
//! (frames for the D-channel, in order) and [`Link::poll_event`];
//! [`Link::poll_timeout`] says when to call `handle_timeout` next.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::{LinkEvent, SendError};
use super::frame::{Address, Frame, Kind};
use super::timer::Timers;

/// The SAPI of call control (Q.931), the only one this link serves.
pub const SAPI: u8 = 0;
/// The TEI of a point-to-point PRI.
pub const TEI: u8 = 0;

/// Which end of the user-network interface this link is; it decides the
/// C/R bit (Q.921 §3.3.3, Table 1): the user sends commands with C/R=0 and
/// responses with C/R=1, the network the opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    User,
    Network,
}

/// The system parameters of §5.9, with the PRI defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    pub side: Side,
    /// Window: I frames outstanding at most (7 for SAPI 0 on a PRI),
    /// clamped to 1–127.
    pub k: u8,
    /// Acknowledgement and retransmission timer (1 s).
    pub t200: Duration,
    /// Longest idle time before the link is polled (10 s).
    pub t203: Duration,
    /// Retransmissions of SABME, DISC or an enquiry before giving up (3).
    pub n200: u8,
    /// Longest information field, octets (260).
    pub n201: usize,
    /// Messages [`Link::send`] queues at most (not from Q.921: bounds the
    /// memory a layer 3 can pin while the link is down).
    pub queue_limit: usize,
}

impl LinkConfig {
    /// The Q.921 defaults for a PRI, on `side`.
    pub fn new(side: Side) -> Self {
        LinkConfig {
            side,
            k: 7,
            t200: Duration::from_secs(1),
            t203: Duration::from_secs(10),
            n200: 3,
            n201: 260,
            queue_limit: 1024,
        }
    }
}

impl Default for LinkConfig {
    /// rivr is the user side unless told otherwise.
    fn default() -> Self {
        Self::new(Side::User)
    }
}

/// The point-to-point states of Q.921 Annex B (1–3, TEI assignment, do not
/// arise with the fixed TEI 0 of a PRI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// 4: TEI assigned, link released.
    TeiAssigned,
    /// 5: SABME sent, waiting for UA.
    AwaitingEstablishment,
    /// 6: DISC sent, waiting for UA.
    AwaitingRelease,
    /// 7: multiple frame established.
    MultipleFrameEstablished,
    /// 8: timer recovery: an enquiry is outstanding.
    TimerRecovery,
}

impl State {
    /// The state's number in Q.921.
    pub fn number(self) -> u8 {
        match self {
            State::TeiAssigned => 4,
            State::AwaitingEstablishment => 5,
            State::AwaitingRelease => 6,
            State::MultipleFrameEstablished => 7,
            State::TimerRecovery => 8,
        }
    }

    /// States 7 and 8, where I frames flow.
    pub fn is_established(self) -> bool {
        matches!(self, State::MultipleFrameEstablished | State::TimerRecovery)
    }
}

/// The link's variables, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// V(S), V(A), V(R), modulo 128.
    pub vs: u8,
    pub va: u8,
    pub vr: u8,
    /// Retransmission count.
    pub rc: u8,
    pub peer_busy: bool,
    /// I frames sent and not yet acknowledged, kept for retransmission.
    pub unacked: usize,
    /// Messages waiting to be sent for the first time.
    pub queued: usize,
}

/// One data link (see the module docs).
#[derive(Debug)]
pub struct Link {
    pub(super) cfg: LinkConfig,
    pub(super) state: State,
    pub(super) vs: u8,
    pub(super) va: u8,
    pub(super) vr: u8,
    pub(super) rc: u8,
    pub(super) peer_busy: bool,
    pub(super) reject_exception: bool,
    pub(super) ack_pending: bool,
    /// The establishment in progress was asked for by layer 3, which then
    /// gets a confirm whatever happened to the old link.
    pub(super) layer3_initiated: bool,
    /// Layer 3 was told the link is up (and not since that it is down).
    pub(super) l3_up: bool,
    /// Layer 3 asked to establish while a release was in progress.
    pub(super) establish_after_release: bool,
    /// I frames N(S) = V(A), V(A)+1, …: those below V(S) are outstanding,
    /// those from V(S) on are waiting to be sent again after a REJ or a
    /// timer recovery rewound V(S).
    pub(super) sent: VecDeque<Vec<u8>>,
    /// Messages never sent.
    pub(super) queue: VecDeque<Vec<u8>>,
    pub(super) timers: Timers,
    pub(super) transmit: VecDeque<Vec<u8>>,
    pub(super) events: VecDeque<LinkEvent>,
}

impl Link {
    /// A released link (state 4).
    pub fn new(mut cfg: LinkConfig) -> Self {
        cfg.k = cfg.k.clamp(1, 127);
        Link {
            cfg,
            state: State::TeiAssigned,
            vs: 0,
            va: 0,
            vr: 0,
            rc: 0,
            peer_busy: false,
            reject_exception: false,
            ack_pending: false,
            layer3_initiated: false,
            l3_up: false,
            establish_after_release: false,
            sent: VecDeque::new(),
            queue: VecDeque::new(),
            timers: Timers::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            vs: self.vs,
            va: self.va,
            vr: self.vr,
            rc: self.rc,
            peer_busy: self.peer_busy,
            unacked: self.sent.len(),
            queued: self.queue.len(),
        }
    }

    /// DL-ESTABLISH request. Asked while up, it resets the link and drops
    /// what was queued (as the Annex B SDL does in states 7 and 8); asked
    /// during a release, the link is established once the release
    /// completes.
    pub fn establish(&mut self, now: Instant) {
        match self.state {
            State::TeiAssigned => {
                self.layer3_initiated = true;
                self.establish_data_link(now);
            }
            // Already under way (perhaps a re-establishment by the data
            // link itself): layer 3 now awaits the confirm. Q.921 would
            // drop the queue here; we keep it, so `send` then `establish`
            // and `establish` then `send` behave alike.
            State::AwaitingEstablishment => self.layer3_initiated = true,
            State::AwaitingRelease => self.establish_after_release = true,
            State::MultipleFrameEstablished | State::TimerRecovery => {
                self.discard_queue();
                self.layer3_initiated = true;
                self.establish_data_link(now);
            }
        }
        self.pump(now);
    }

    /// DL-RELEASE request: DISC, then `Released` when the peer answers or
    /// N200 retransmissions go unanswered. Queued messages are dropped.
    pub fn release(&mut self, now: Instant) {
        self.establish_after_release = false;
        match self.state {
            State::TeiAssigned => self.events.push_back(LinkEvent::Released),
            State::AwaitingRelease => {}
            // In state 5 too: the peer may already have answered our SABME
            // and be up, and a DISC settles it either way.
            State::AwaitingEstablishment
            | State::MultipleFrameEstablished
            | State::TimerRecovery => {
                self.discard_queue();
                self.rc = 0;
                self.send_frame(true, Kind::Disc { p: true });
                self.timers.stop(super::timer::Timer::T203);
                self.start_t200(now);
                self.state = State::AwaitingRelease;
            }
        }
    }

    /// DL-DATA request: queues a layer-3 message for an I frame. It goes
    /// out when the link is up and the window has room; on a released link
    /// it also starts establishment (as a layer 3 must before sending).
    pub fn send(&mut self, now: Instant, message: Vec<u8>) -> Result<(), SendError> {
        if message.len() > self.cfg.n201 {
            return Err(SendError::TooLong);
        }
        if self.state == State::AwaitingRelease {
            return Err(SendError::Releasing);
        }
        if self.queue.len() >= self.cfg.queue_limit {
            return Err(SendError::QueueFull);
        }
        self.queue.push_back(message);
        if self.state == State::TeiAssigned {
            self.layer3_initiated = true;
            self.establish_data_link(now);
        }
        self.pump(now);
        Ok(())
    }

    /// DL-UNIT DATA request: sends a message in a UI frame at once, in any
    /// state; nothing acknowledges or repeats it.
    pub fn send_unit_data(&mut self, message: Vec<u8>) -> Result<(), SendError> {
        if message.len() > self.cfg.n201 {
            return Err(SendError::TooLong);
        }
        self.send_frame(
            true,
            Kind::Ui {
                p: false,
                info: message,
            },
        );
        Ok(())
    }

    /// Runs the timers due at `now`; early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        use super::timer::Timer;
        if self.timers.expired(Timer::T200, now) {
            self.t200_expired(now);
        }
        if self.timers.expired(Timer::T203, now) {
            self.t203_expired(now);
        }
        self.pump(now);
    }

    /// The next frame to put on the D-channel.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next indication for layer 3 or management.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// When [`Link::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Queues `kind` as a command or a response, with our C/R bit.
    pub(super) fn send_frame(&mut self, command: bool, kind: Kind) {
        let cr = match self.cfg.side {
            Side::User => !command,
            Side::Network => command,
        };
        let frame = Frame {
            address: Address {
                sapi: SAPI,
                cr,
                tei: TEI,
            },
            kind,
        };
        self.transmit.push_back(frame.to_bytes());
    }

    /// Whether a received frame with this C/R bit is a command: the peer
    /// is the other side, so its commands carry the opposite bit to ours.
    pub(super) fn is_command(&self, cr: bool) -> bool {
        match self.cfg.side {
            Side::User => cr,
            Side::Network => !cr,
        }
    }
}
