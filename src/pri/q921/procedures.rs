//! The procedures the Q.921 SDL (Annex B) calls from many states:
//! establishing and resetting the link, enquiry and its response, N(R)
//! checking and acknowledgement, retransmission, the timer expiries, and
//! the transmission of queued I frames within the window.
//!
//! On a re-establishment started by the data link itself (N(R) error, FRMR,
//! DM, a failed enquiry, a frame error), the SDL's rule is kept: if I
//! frames were outstanding when the new link comes up, they and everything
//! queued are dropped and layer 3 is told (`Established` again); if none
//! were, queued messages survive and go out on the new link.

use std::time::Instant;

use super::event::{LinkEvent, MdlError};
use super::frame::Kind;
use super::link::{Link, State};
use super::timer::Timer;

/// `a + b` modulo 128.
pub(super) fn seq_add(a: u8, b: u8) -> u8 {
    a.wrapping_add(b) & 0x7F
}

/// `a - b` modulo 128.
pub(super) fn seq_sub(a: u8, b: u8) -> u8 {
    a.wrapping_sub(b) & 0x7F
}

impl Link {
    pub(super) fn start_t200(&mut self, now: Instant) {
        self.timers
            .start(Timer::T200, now.checked_add(self.cfg.t200));
    }

    pub(super) fn start_t203(&mut self, now: Instant) {
        self.timers
            .start(Timer::T203, now.checked_add(self.cfg.t203));
    }

    /// "Establish data link": SABME P=1 and wait for UA in state 5.
    pub(super) fn establish_data_link(&mut self, now: Instant) {
        self.clear_exceptions();
        self.rc = 0;
        self.send_frame(true, Kind::Sabme { p: true });
        self.start_t200(now);
        self.timers.stop(Timer::T203);
        self.state = State::AwaitingEstablishment;
    }

    /// Re-establishment started by the data link after `error` (§5.7).
    pub(super) fn reestablish(&mut self, now: Instant, error: MdlError) {
        self.events.push_back(LinkEvent::Error(error));
        self.layer3_initiated = false;
        self.establish_data_link(now);
    }

    fn clear_exceptions(&mut self) {
        self.peer_busy = false;
        self.reject_exception = false;
        self.ack_pending = false;
    }

    /// Enters state 7 on a new link (UA received, or SABME accepted):
    /// returns whether I frames of the old link were lost.
    pub(super) fn reset_link(&mut self, now: Instant) -> bool {
        let lost = self.vs != self.va;
        if lost {
            self.discard_queue();
        } else {
            // V(S) = V(A): whatever `sent` holds was rewound and not yet
            // sent again, i.e. it is back in the I queue in the SDL's terms.
            while let Some(m) = self.sent.pop_back() {
                self.queue.push_front(m);
            }
        }
        self.clear_exceptions();
        self.vs = 0;
        self.va = 0;
        self.vr = 0;
        self.rc = 0;
        self.timers.stop(Timer::T200);
        self.start_t203(now);
        self.state = State::MultipleFrameEstablished;
        lost
    }

    /// Enters state 4, telling layer 3 if it believed the link up or was
    /// waiting for an answer.
    pub(super) fn enter_released(&mut self, now: Instant) {
        let notify = self.l3_up || self.layer3_initiated || self.state == State::AwaitingRelease;
        self.discard_queue();
        self.clear_exceptions();
        self.vs = 0;
        self.va = 0;
        self.vr = 0;
        self.rc = 0;
        self.timers.stop(Timer::T200);
        self.timers.stop(Timer::T203);
        self.state = State::TeiAssigned;
        self.l3_up = false;
        self.layer3_initiated = false;
        if notify {
            self.events.push_back(LinkEvent::Released);
        }
        if std::mem::take(&mut self.establish_after_release) {
            self.layer3_initiated = true;
            self.establish_data_link(now);
        }
    }

    pub(super) fn discard_queue(&mut self) {
        self.queue.clear();
        self.sent.clear();
        // Nothing is left to retransmit, so nothing is outstanding either.
        self.vs = self.va;
    }

    /// "Transmit enquiry": RR command P=1, then T200.
    pub(super) fn transmit_enquiry(&mut self, now: Instant) {
        let nr = self.vr;
        self.send_frame(true, Kind::Rr { nr, pf: true });
        self.ack_pending = false;
        self.start_t200(now);
    }

    /// "Enquiry response": RR response F=1.
    pub(super) fn enquiry_response(&mut self) {
        let nr = self.vr;
        self.send_frame(false, Kind::Rr { nr, pf: true });
        self.ack_pending = false;
    }

    /// V(A) ≤ N(R) ≤ V(S), modulo 128.
    pub(super) fn nr_valid(&self, nr: u8) -> bool {
        seq_sub(nr, self.va) <= seq_sub(self.vs, self.va)
    }

    /// V(A) := N(R) (already checked valid), releasing acknowledged frames.
    pub(super) fn set_va(&mut self, nr: u8) {
        let acked = usize::from(seq_sub(nr, self.va)).min(self.sent.len());
        self.sent.drain(..acked);
        self.va = nr;
    }

    /// A valid N(R) in state 7 with the peer not busy: all acknowledged
    /// stops T200 and rearms T203, progress restarts T200.
    pub(super) fn acknowledge(&mut self, now: Instant, nr: u8) {
        if nr == self.vs {
            self.set_va(nr);
            self.timers.stop(Timer::T200);
            self.start_t203(now);
        } else if nr != self.va {
            self.set_va(nr);
            self.start_t200(now);
        }
    }

    /// "Invoke retransmission": V(S) back to V(A) (= the N(R) just
    /// taken), so `pump` sends those frames again.
    pub(super) fn invoke_retransmission(&mut self) {
        self.vs = self.va;
    }

    pub(super) fn t200_expired(&mut self, now: Instant) {
        let exhausted = self.rc >= self.cfg.n200;
        match self.state {
            State::TeiAssigned => {}
            State::AwaitingEstablishment if exhausted => {
                self.events.push_back(LinkEvent::Error(MdlError::G));
                self.enter_released(now);
            }
            State::AwaitingEstablishment => {
                self.rc += 1;
                self.send_frame(true, Kind::Sabme { p: true });
                self.start_t200(now);
            }
            State::AwaitingRelease if exhausted => {
                self.events.push_back(LinkEvent::Error(MdlError::H));
                self.enter_released(now);
            }
            State::AwaitingRelease => {
                self.rc += 1;
                self.send_frame(true, Kind::Disc { p: true });
                self.start_t200(now);
            }
            // §5.6.7 lets us either resend the last I frame with P=1 or
            // poll with a supervisory command; we always poll: one rule
            // for the busy and the idle peer, and the answer's N(R) says
            // exactly what to resend.
            State::MultipleFrameEstablished => {
                self.rc = 0;
                self.transmit_enquiry(now);
                self.rc = 1;
                self.state = State::TimerRecovery;
            }
            State::TimerRecovery if exhausted => self.reestablish(now, MdlError::I),
            State::TimerRecovery => {
                self.transmit_enquiry(now);
                self.rc = self.rc.saturating_add(1);
            }
        }
    }

    pub(super) fn t203_expired(&mut self, now: Instant) {
        if self.state == State::MultipleFrameEstablished {
            self.rc = 0;
            self.transmit_enquiry(now);
            self.state = State::TimerRecovery;
        }
    }

    /// Sends queued (or rewound) I frames while the window allows, then a
    /// pending acknowledgement if no I frame carried it.
    pub(super) fn pump(&mut self, now: Instant) {
        if self.state == State::MultipleFrameEstablished && !self.peer_busy {
            loop {
                let outstanding = seq_sub(self.vs, self.va);
                let index = usize::from(outstanding);
                if outstanding >= self.cfg.k || index > self.sent.len() {
                    break;
                }
                let info = match self.sent.get(index) {
                    Some(again) => again.clone(),
                    None => match self.queue.pop_front() {
                        Some(m) => {
                            self.sent.push_back(m.clone());
                            m
                        }
                        None => break,
                    },
                };
                let (ns, nr) = (self.vs, self.vr);
                self.send_frame(
                    true,
                    Kind::I {
                        ns,
                        nr,
                        p: false,
                        info,
                    },
                );
                self.vs = seq_add(self.vs, 1);
                self.ack_pending = false;
                if !self.timers.running(Timer::T200) {
                    self.timers.stop(Timer::T203);
                    self.start_t200(now);
                }
            }
        }
        if self.ack_pending && self.state.is_established() {
            let nr = self.vr;
            self.send_frame(false, Kind::Rr { nr, pf: false });
            self.ack_pending = false;
        }
    }
}
