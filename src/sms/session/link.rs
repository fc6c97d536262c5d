//! The link side of the session: bind outcomes, generic_nack, losing the
//! link (re-queue, reconnect with exponential backoff and jitter) and the
//! end of a session.

use std::time::{Duration, Instant};

use super::timer::Timer;
use super::{Action, Event, Link, Session};
use crate::sms::pdu::CommandStatus;

impl Session {
    pub(super) fn on_bind_resp(
        &mut self,
        seq: u32,
        status: CommandStatus,
        system_id: String,
        now: Instant,
    ) {
        if !matches!(self.link, Link::Binding { sequence } if sequence == seq) {
            self.stats.unexpected_resp += 1;
            return;
        }
        self.timers.stop(Timer::BindResp);
        if status != CommandStatus::OK {
            self.events.push_back(Event::BindFailed { status });
            self.link_lost(now, true);
            return;
        }
        self.link = Link::Bound;
        self.reconnect_attempts = 0;
        self.timers
            .set(Timer::EnquireLink, now + self.cfg.enquire_link_interval);
        self.events.push_back(Event::Bound { system_id });
    }

    pub(super) fn on_generic_nack(&mut self, seq: u32, status: CommandStatus, now: Instant) {
        if matches!(self.link, Link::Binding { sequence } if sequence == seq) {
            self.timers.stop(Timer::BindResp);
            self.events.push_back(Event::BindFailed { status });
            self.link_lost(now, true);
        } else if self.enquire_seq == Some(seq) {
            // The peer got it, even if it disliked it: the link is alive.
            self.enquire_seq = None;
            self.timers.stop(Timer::EnquireLinkResp);
        } else if self.queue.is_outstanding(seq) {
            let st = if status == CommandStatus::OK {
                CommandStatus::RSYSERR
            } else {
                status
            };
            self.on_submit_resp(seq, st, String::new(), now);
        } else {
            self.stats.unexpected_resp += 1;
        }
    }

    /// Tears the link down: requeues unanswered parts, schedules a
    /// reconnect (unless shutting down). `close` asks the driver to close.
    pub(super) fn link_lost(&mut self, now: Instant, close: bool) {
        if close {
            self.actions.push_back(Action::Close);
        }
        self.queue.requeue_outstanding();
        self.timers.clear_link_timers();
        self.enquire_seq = None;
        self.rx.clear();
        // tx is kept: a last unbind_resp must still go out before the close.
        if self.shutting_down {
            self.finish_closed();
            return;
        }
        self.link = Link::Down;
        self.events.push_back(Event::LinkLost);
        let delay = self.reconnect_delay();
        self.timers.set(Timer::Reconnect, now + delay);
    }

    pub(super) fn finish_closed(&mut self) {
        self.link = Link::Closed;
        self.queue.requeue_outstanding();
        self.timers.clear_link_timers();
        self.timers.stop(Timer::Reconnect);
        self.events.push_back(Event::Unbound);
    }

    /// Exponential backoff with "equal jitter": half fixed, half random.
    fn reconnect_delay(&mut self) -> Duration {
        let exp = self.reconnect_attempts.min(20);
        self.reconnect_attempts = self.reconnect_attempts.saturating_add(1);
        let base = self
            .cfg
            .reconnect_min
            .saturating_mul(1u32 << exp)
            .min(self.cfg.reconnect_max);
        // xorshift64: deterministic for a given seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = (self.rng % 1000) as f64 / 1000.0;
        base / 2 + base.mul_f64(frac / 2.0)
    }
}
