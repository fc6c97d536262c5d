//! The submit side of the session: the ordered queue, the window of
//! outstanding submit_sm, the messages-per-second throttle and the
//! ESME_RTHROTTLED / ESME_RMSGQFUL backoff.
//!
//! Order: every part has a queue position fixed when it is submitted. A part
//! that is pushed back (backpressure, lost link) returns to its position, so
//! it goes out again before any part queued after it that was not yet sent.
//! While a pushed-back part waits, the window shrinks to one, so it can only
//! have been overtaken by the parts that were in flight with it: its
//! position moves by less than the window, and never more with retries.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::timer::Timer;
use super::{Event, Link, PartKey, Session, SessionConfig, Submission};
use crate::sms::pdu::{cmd, Body, CommandStatus, Pdu};

#[derive(Debug)]
struct Queued {
    order: u64,
    sub: Submission,
}

#[derive(Debug)]
struct Outstanding {
    sequence: u32,
    order: u64,
    sub: Submission,
    sent_at: Instant,
    deadline: Instant,
}

#[derive(Debug)]
pub(super) struct Queue {
    waiting: VecDeque<Queued>,
    outstanding: Vec<Outstanding>,
    next_order: u64,
    /// Keys of every part queued or outstanding, so a part handed over twice
    /// (e.g. from the store at start and again by its submitter) is sent once.
    keys: HashSet<PartKey>,
    /// Queue positions of parts pushed back by backpressure, not yet accepted.
    retrying: BTreeSet<u64>,
    interval: Option<Duration>,
    next_send: Option<Instant>,
    bp_delay: Duration,
    bp_until: Option<Instant>,
    bp_started: Option<Instant>,
}

impl Queue {
    pub(super) fn new(cfg: &SessionConfig) -> Queue {
        let interval =
            (cfg.tps > 0.0 && cfg.tps.is_finite()).then(|| Duration::from_secs_f64(1.0 / cfg.tps));
        Queue {
            waiting: VecDeque::new(),
            outstanding: Vec::with_capacity(cfg.window),
            next_order: 0,
            keys: HashSet::new(),
            retrying: BTreeSet::new(),
            interval,
            next_send: None,
            bp_delay: cfg.backpressure_min,
            bp_until: None,
            bp_started: None,
        }
    }

    /// Queues a part; false if a part with that key is already pending.
    pub(super) fn push(&mut self, sub: Submission) -> bool {
        if !self.keys.insert(sub.key.clone()) {
            return false;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.waiting.push_back(Queued { order, sub });
        true
    }

    pub(super) fn len(&self) -> usize {
        self.waiting.len() + self.outstanding.len()
    }

    pub(super) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    pub(super) fn is_outstanding(&self, sequence: u32) -> bool {
        self.outstanding.iter().any(|o| o.sequence == sequence)
    }

    pub(super) fn oldest_deadline(&self) -> Option<Instant> {
        self.outstanding.iter().map(|o| o.deadline).min()
    }

    fn requeue(&mut self, order: u64, sub: Submission) {
        let at = self.waiting.partition_point(|q| q.order < order);
        self.waiting.insert(at, Queued { order, sub });
    }

    /// Takes the waiting parts `take` chooses out of the queue (they will not
    /// be sent by this session); outstanding ones stay.
    pub(super) fn take_waiting(&mut self, take: impl Fn(&PartKey) -> bool) -> Vec<Submission> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.waiting.len());
        for q in self.waiting.drain(..) {
            if take(&q.sub.key) {
                self.keys.remove(&q.sub.key);
                self.retrying.remove(&q.order);
                out.push(q.sub);
            } else {
                keep.push_back(q);
            }
        }
        self.waiting = keep;
        out
    }

    /// Puts every unanswered part back at its place in the queue.
    pub(super) fn requeue_outstanding(&mut self) {
        let mut all: Vec<Outstanding> = self.outstanding.drain(..).collect();
        all.sort_by_key(|o| o.order);
        for o in all {
            self.requeue(o.order, o.sub);
        }
    }
}

impl Session {
    /// Sends as many queued parts as the window, throttle and backoff allow;
    /// when shutting down, unbinds once nothing is outstanding.
    pub(super) fn pump(&mut self, now: Instant) {
        if self.link != Link::Bound {
            return;
        }
        if self.shutting_down {
            if self.queue.outstanding.is_empty() {
                let sequence = self.seq();
                self.send(Pdu::new(sequence, Body::Unbind));
                self.link = Link::Unbinding { sequence };
                self.timers
                    .set(Timer::UnbindResp, now + self.cfg.unbind_timeout);
            }
            return;
        }
        if !self.cfg.mode.can_submit() {
            return;
        }
        loop {
            let window = if self.queue.retrying.is_empty() {
                self.cfg.window.max(1)
            } else {
                1
            };
            if self.queue.outstanding.len() >= window {
                break;
            }
            if let Some(until) = self.queue.bp_until {
                if now < until {
                    self.timers.set(Timer::Backpressure, until);
                    break;
                }
                self.queue.bp_until = None;
            }
            if let Some(next) = self.queue.next_send {
                if now < next {
                    self.timers.set(Timer::NextSend, next);
                    break;
                }
            }
            let Some(q) = self.queue.waiting.pop_front() else {
                break;
            };
            let sequence = self.seq();
            let start = self.tx.len();
            if crate::sms::pdu::encode_short_message(
                cmd::SUBMIT_SM,
                sequence,
                &q.sub.sm,
                &mut self.tx,
            )
            .is_err()
            {
                self.tx.truncate(start);
                self.queue.keys.remove(&q.sub.key);
                self.events.push_back(Event::Rejected {
                    key: q.sub.key,
                    status: CommandStatus::RINVMSGLEN,
                });
                continue;
            }
            self.stats.submits_sent += 1;
            self.tx_parts.push(q.sub.key.clone());
            let deadline = now + self.cfg.response_timeout;
            self.queue.outstanding.push(Outstanding {
                sequence,
                order: q.order,
                sub: q.sub,
                sent_at: now,
                deadline,
            });
            self.stats.max_outstanding =
                self.stats.max_outstanding.max(self.queue.outstanding.len());
            if self.timers.get(Timer::SubmitResp).is_none() {
                self.timers.set(Timer::SubmitResp, deadline);
            }
            if let Some(interval) = self.queue.interval {
                // Keep the schedule when a wake-up was a little late, but do
                // not bank credit across idle time.
                let base = match self.queue.next_send {
                    Some(n) if now.saturating_duration_since(n) < interval => n,
                    _ => now,
                };
                self.queue.next_send = Some(base + interval);
            }
        }
    }

    pub(super) fn on_submit_resp(
        &mut self,
        sequence: u32,
        status: CommandStatus,
        smsc_id: String,
        now: Instant,
    ) {
        let Some(i) = self
            .queue
            .outstanding
            .iter()
            .position(|o| o.sequence == sequence)
        else {
            self.stats.unexpected_resp += 1;
            return;
        };
        let o = self.queue.outstanding.swap_remove(i);
        if !status.is_backpressure() {
            self.queue.retrying.remove(&o.order);
            self.queue.keys.remove(&o.sub.key);
        }
        match self.queue.oldest_deadline() {
            Some(d) => self.timers.set(Timer::SubmitResp, d),
            None => self.timers.stop(Timer::SubmitResp),
        }
        if status == CommandStatus::OK {
            self.stats.accepted += 1;
            self.queue.bp_delay = self.cfg.backpressure_min;
            self.events.push_back(Event::Accepted {
                key: o.sub.key,
                smsc_id,
            });
        } else if status.is_backpressure() {
            self.stats.backpressure += 1;
            // Only a part sent after the current backoff began may lengthen
            // it; the rest of that window was already on its way.
            let fresh = self.queue.bp_started.is_none_or(|s| o.sent_at >= s);
            if fresh {
                self.queue.bp_until = Some(now + self.queue.bp_delay);
                self.queue.bp_started = Some(now);
                self.queue.bp_delay = (self.queue.bp_delay * 2).min(self.cfg.backpressure_max);
            }
            self.events.push_back(Event::Backpressure {
                key: o.sub.key.clone(),
                status,
            });
            self.queue.retrying.insert(o.order);
            self.queue.requeue(o.order, o.sub);
        } else {
            self.events.push_back(Event::Rejected {
                key: o.sub.key,
                status,
            });
        }
    }
}
