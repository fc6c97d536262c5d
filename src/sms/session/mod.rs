//! The sans-IO SMPP 3.4 ESME session: bind, enquire_link both ways, unbind,
//! generic_nack, a window of outstanding submit_sm, a messages-per-second
//! throttle, ESME_RTHROTTLED / ESME_RMSGQFUL backoff that keeps the order,
//! and reconnection with exponential backoff and jitter.
//!
//! It owns no socket and reads no clock. The driver feeds it
//! [`Session::handle_connected`], [`Session::handle_bytes`],
//! [`Session::handle_disconnected`] and [`Session::handle_timeout`] with
//! `now`, and drains [`Session::take_transmit`] (write these bytes before
//! acting on a `Close`; [`Session::take_sent_parts`] names the parts whose
//! submit_sm are in them), [`Session::poll_action`] and
//! [`Session::poll_event`]; [`Session::poll_timeout`] says when to call again.
//!
//! Nothing is sent twice: a part leaves the session when a submit_sm_resp
//! (or generic_nack) for it is seen, and only parts still waiting for one are
//! re-queued after a lost connection, ahead of everything not yet sent.

mod link;
mod submit;
mod timer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::pdu::{self, Bind, BindMode, Body, CommandStatus, Pdu, ShortMessage};
use timer::{Timer, Timers};

/// Settings of one session (from `[smpp]`).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub mode: BindMode,
    pub bind: Bind,
    /// Outstanding submit_sm at most.
    pub window: usize,
    /// Messages per second at most; 0 means unlimited.
    pub tps: f64,
    pub enquire_link_interval: Duration,
    /// How long bind_resp, enquire_link_resp and submit_sm_resp may take
    /// before the link is judged dead and rebuilt.
    pub response_timeout: Duration,
    pub unbind_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub backpressure_min: Duration,
    pub backpressure_max: Duration,
    /// Seed of the reconnect jitter, so simulations are repeatable.
    pub seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            mode: BindMode::Transceiver,
            bind: Bind {
                interface_version: 0x34,
                ..Bind::default()
            },
            window: 10,
            tps: 0.0,
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            unbind_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(60),
            backpressure_min: Duration::from_millis(200),
            backpressure_max: Duration::from_secs(10),
            seed: 0x5eed,
        }
    }
}

/// Identifies one part of one rivr message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    pub message_id: String,
    pub part: u8,
}

/// One submit_sm waiting to be sent.
#[derive(Debug, Clone)]
pub struct Submission {
    pub key: PartKey,
    pub sm: ShortMessage,
}

/// What the driver must do with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection, then call `handle_connected` (or
    /// `handle_disconnected` if it fails).
    Connect,
    /// Close the connection; the session already treats the link as down.
    Close,
}

/// What happened, for the driver and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Bound {
        system_id: String,
    },
    BindFailed {
        status: CommandStatus,
    },
    /// The link went down; unanswered parts were re-queued in order.
    LinkLost,
    /// The SMSC accepted the part (submit_sm_resp with ESME_ROK).
    Accepted {
        key: PartKey,
        smsc_id: String,
    },
    /// The SMSC refused the part for good.
    Rejected {
        key: PartKey,
        status: CommandStatus,
    },
    /// The SMSC asked us to slow down; the part will be sent again.
    Backpressure {
        key: PartKey,
        status: CommandStatus,
    },
    /// A deliver_sm (receipt or inbound SMS). Store it, then call
    /// [`Session::ack_deliver`] with its sequence number.
    Deliver {
        sequence: u32,
        sm: ShortMessage,
    },
    /// The session ended after `unbind` (answered or not).
    Unbound,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub malformed: u64,
    pub unexpected_resp: u64,
    pub submits_sent: u64,
    pub accepted: u64,
    pub backpressure: u64,
    pub connects: u64,
    pub max_outstanding: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    Connecting,
    Binding { sequence: u32 },
    Bound,
    Unbinding { sequence: u32 },
    Closed,
}

/// The ESME side of an SMPP session. See the module docs.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    link: Link,
    next_seq: u32,
    tx: Vec<u8>,
    /// Parts whose submit_sm are in `tx`, in order.
    tx_parts: Vec<PartKey>,
    rx: Vec<u8>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    timers: Timers,
    enquire_seq: Option<u32>,
    shutting_down: bool,
    reconnect_attempts: u32,
    rng: u64,
    queue: submit::Queue,
    stats: Stats,
}

impl Session {
    /// A session that asks to connect at `now`.
    pub fn new(cfg: SessionConfig, now: Instant) -> Session {
        let mut timers = Timers::default();
        timers.set(Timer::Reconnect, now);
        let rng = cfg.seed | 1;
        Session {
            queue: submit::Queue::new(&cfg),
            cfg,
            link: Link::Down,
            next_seq: 1,
            tx: Vec::with_capacity(4096),
            tx_parts: Vec::new(),
            rx: Vec::with_capacity(4096),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            timers,
            enquire_seq: None,
            shutting_down: false,
            reconnect_attempts: 0,
            rng,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True once bound and able to submit.
    pub fn is_bound(&self) -> bool {
        self.link == Link::Bound
    }

    /// Parts waiting to be sent plus parts awaiting their submit_sm_resp.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Parts sent and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.queue.outstanding()
    }

    /// Queues a part; it is sent after every part queued before it. A part
    /// whose key is already queued or outstanding is ignored (returns false).
    pub fn submit(&mut self, sub: Submission, now: Instant) -> bool {
        let fresh = self.queue.push(sub);
        self.pump(now);
        fresh
    }

    /// Takes the parts `take` chooses among those waiting to be sent (not
    /// those awaiting an answer) out of the session, in queue order: a
    /// route that is down hands them to another.
    pub fn take_waiting(&mut self, take: impl Fn(&PartKey) -> bool) -> Vec<Submission> {
        self.queue.take_waiting(take)
    }

    /// Starts a graceful end: outstanding parts are answered first, queued
    /// ones are not sent, then unbind; `Event::Unbound` follows.
    pub fn unbind(&mut self, now: Instant) {
        self.shutting_down = true;
        self.timers.stop(Timer::Reconnect);
        match self.link {
            Link::Bound | Link::Binding { .. } => self.pump(now),
            Link::Unbinding { .. } | Link::Closed => {}
            Link::Down | Link::Connecting => {
                if self.link == Link::Connecting {
                    self.actions.push_back(Action::Close);
                }
                self.finish_closed();
            }
        }
    }

    /// The TCP connection is up: bind.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.link != Link::Connecting {
            return;
        }
        self.rx.clear();
        // Nothing left over from the last connection belongs on this one.
        self.tx.clear();
        self.tx_parts.clear();
        self.stats.connects += 1;
        let sequence = self.seq();
        self.send(Pdu::new(
            sequence,
            Body::Bind(self.cfg.mode, self.cfg.bind.clone()),
        ));
        self.link = Link::Binding { sequence };
        self.timers
            .set(Timer::BindResp, now + self.cfg.response_timeout);
    }

    /// The connection closed or could not be opened.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if matches!(self.link, Link::Down | Link::Closed) {
            return;
        }
        self.link_lost(now, false);
    }

    /// Bytes read from the connection, in order.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.link, Link::Down | Link::Closed | Link::Connecting) {
            return;
        }
        self.rx.extend_from_slice(bytes);
        let mut consumed = 0;
        loop {
            let rest = self.rx.get(consumed..).unwrap_or(&[]);
            match pdu::frame_len(rest) {
                Ok(Some(n)) => {
                    let frame = rest.get(..n).unwrap_or(&[]).to_vec();
                    consumed += n;
                    self.handle_frame(&frame, now);
                    if matches!(self.link, Link::Down | Link::Closed) {
                        self.rx.clear();
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    // Framing is lost: nothing after this can be trusted.
                    self.stats.malformed += 1;
                    self.rx.clear();
                    self.link_lost(now, true);
                    return;
                }
            }
        }
        self.rx.drain(..consumed);
        self.pump(now);
    }

    /// Answers a deliver_sm reported in `Event::Deliver` once it is stored.
    pub fn ack_deliver(&mut self, sequence: u32, status: CommandStatus) {
        if matches!(self.link, Link::Down | Link::Closed | Link::Connecting) {
            return;
        }
        let mut p = Pdu::new(sequence, Body::DeliverSmResp);
        p.status = status;
        self.send(p);
    }

    /// Runs every timer due at `now`; a spurious call is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expired(Timer::Reconnect, now) && self.link == Link::Down {
            self.link = Link::Connecting;
            self.actions.push_back(Action::Connect);
        }
        if self.timers.expired(Timer::BindResp, now) && matches!(self.link, Link::Binding { .. }) {
            self.link_lost(now, true);
        }
        if self.timers.expired(Timer::EnquireLinkResp, now) && self.enquire_seq.is_some() {
            // The peer stopped answering: rebuild the link.
            self.link_lost(now, true);
        }
        if self.timers.expired(Timer::EnquireLink, now) && self.link == Link::Bound {
            let sequence = self.seq();
            self.send(Pdu::new(sequence, Body::EnquireLink));
            self.enquire_seq = Some(sequence);
            self.timers
                .set(Timer::EnquireLinkResp, now + self.cfg.response_timeout);
            self.timers
                .set(Timer::EnquireLink, now + self.cfg.enquire_link_interval);
        }
        if self.timers.expired(Timer::UnbindResp, now)
            && matches!(self.link, Link::Unbinding { .. })
        {
            // The peer closed (or sat) without answering unbind.
            self.actions.push_back(Action::Close);
            self.finish_closed();
        }
        if self.timers.expired(Timer::SubmitResp, now) {
            match self.queue.oldest_deadline() {
                // An unanswered submit_sm: the link is not trustworthy.
                Some(d) if d <= now => self.link_lost(now, true),
                Some(d) => self.timers.set(Timer::SubmitResp, d),
                None => {}
            }
        }
        self.timers.expired(Timer::Backpressure, now);
        self.timers.expired(Timer::NextSend, now);
        self.pump(now);
    }

    /// Moves the bytes to send into `out` (cleared first); buffers swap so
    /// neither side allocates in steady state.
    pub fn take_transmit(&mut self, out: &mut Vec<u8>) {
        out.clear();
        std::mem::swap(out, &mut self.tx);
    }

    /// Moves into `out` (cleared first) the keys of the parts whose submit_sm
    /// are in the bytes [`Self::take_transmit`] hands over next (or just
    /// handed over), in order. A driver that must never submit a part twice
    /// across a crash stores these as being sent before it writes the bytes.
    pub fn take_sent_parts(&mut self, out: &mut Vec<PartKey>) {
        out.clear();
        std::mem::swap(out, &mut self.tx_parts);
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        // Sequence numbers run 1..=0x7FFFFFFF (section 3.2).
        self.next_seq = if s >= 0x7FFF_FFFF { 1 } else { s + 1 };
        s
    }

    fn send(&mut self, p: Pdu) {
        if p.encode(&mut self.tx).is_err() {
            self.stats.malformed += 1;
        }
    }

    fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        let Some((command_id, status, sequence)) = pdu::peek_header(frame) else {
            return;
        };
        let pdu = match Pdu::decode(frame) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                if command_id & pdu::cmd::RESP == 0 {
                    let mut nack = Pdu::new(sequence, Body::GenericNack);
                    nack.status = CommandStatus::RINVCMDLEN;
                    self.send(nack);
                } else if command_id == pdu::cmd::SUBMIT_SM | pdu::cmd::RESP {
                    // Its id is unreadable, but it was answered: never resend.
                    self.on_submit_resp(sequence, status, String::new(), now);
                }
                return;
            }
        };
        match pdu.body {
            Body::BindResp(_, system_id) => {
                self.on_bind_resp(pdu.sequence, pdu.status, system_id, now)
            }
            Body::SubmitSmResp { message_id } => {
                self.on_submit_resp(pdu.sequence, pdu.status, message_id, now)
            }
            Body::DeliverSm(sm) => self.events.push_back(Event::Deliver {
                sequence: pdu.sequence,
                sm,
            }),
            Body::EnquireLink => self.send(Pdu::new(pdu.sequence, Body::EnquireLinkResp)),
            Body::EnquireLinkResp => {
                if self.enquire_seq == Some(pdu.sequence) {
                    self.enquire_seq = None;
                    self.timers.stop(Timer::EnquireLinkResp);
                }
            }
            Body::Unbind => {
                self.send(Pdu::new(pdu.sequence, Body::UnbindResp));
                self.actions.push_back(Action::Close);
                if self.shutting_down {
                    self.finish_closed();
                } else {
                    self.link_lost(now, false);
                }
            }
            Body::UnbindResp => {
                if matches!(self.link, Link::Unbinding { sequence } if sequence == pdu.sequence) {
                    self.actions.push_back(Action::Close);
                    self.finish_closed();
                }
            }
            Body::GenericNack => self.on_generic_nack(pdu.sequence, pdu.status, now),
            Body::Bind(..) | Body::SubmitSm(_) | Body::Other { .. } => {
                let mut nack = Pdu::new(pdu.sequence, Body::GenericNack);
                nack.status = CommandStatus::RINVCMDID;
                self.send(nack);
            }
            Body::DeliverSmResp => self.stats.unexpected_resp += 1,
        }
    }
}

#[cfg(test)]
mod tests;
