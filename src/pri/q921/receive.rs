//! What the data link does with each received frame, state by state
//! (Q.921 §5.5–5.8 and the Annex B SDL).
//!
//! Frames for another SAPI or TEI are not ours and are dropped, as are
//! §2.9 invalid frames and frames whose C/R bit contradicts their type (an
//! I frame marked as a response, a UA as a command). XID is not
//! implemented and is ignored. LAPD never sends FRMR: a frame rejection
//! condition in states 7 and 8 re-establishes the link (§5.8.5).

use std::time::Instant;

use super::event::{LinkEvent, MdlError};
use super::frame::{self, Address, FrameError, Kind, Rejection};
use super::link::{Link, State, SAPI, TEI};
use super::procedures::seq_add;
use super::timer::Timer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Supervisory {
    Rr,
    Rnr,
    Rej,
}

fn ours(a: Address) -> bool {
    a.sapi == SAPI && a.tei == TEI
}

impl Link {
    /// A frame from the D-channel (the bytes between the flags, FCS
    /// removed). Anything at all may be passed; bad frames are handled as
    /// Q.921 says, never by panicking.
    pub fn handle_frame(&mut self, now: Instant, bytes: &[u8]) {
        match frame::decode(bytes) {
            Ok(f) if ours(f.address) => self.on_frame(now, f.address.cr, f.kind),
            Ok(_) | Err(FrameError::Invalid(_)) => {}
            Err(FrameError::Rejected { address, reason }) => {
                if ours(address) {
                    let error = match reason {
                        Rejection::UndefinedControl => MdlError::L,
                        Rejection::InfoNotPermitted => MdlError::M,
                        Rejection::WrongLength => MdlError::N,
                    };
                    self.frame_rejected(now, error);
                }
            }
        }
        self.pump(now);
    }

    fn frame_rejected(&mut self, now: Instant, error: MdlError) {
        if self.state.is_established() {
            self.reestablish(now, error);
        }
    }

    fn on_frame(&mut self, now: Instant, cr: bool, kind: Kind) {
        let command = self.is_command(cr);
        match kind {
            Kind::I { ns, nr, p, info } if command => self.on_i(now, ns, nr, p, info),
            Kind::Rr { nr, pf } => self.on_supervisory(now, Supervisory::Rr, command, nr, pf),
            Kind::Rnr { nr, pf } => self.on_supervisory(now, Supervisory::Rnr, command, nr, pf),
            Kind::Rej { nr, pf } => self.on_supervisory(now, Supervisory::Rej, command, nr, pf),
            Kind::Sabme { p } if command => self.on_sabme(now, p),
            Kind::Disc { p } if command => self.on_disc(now, p),
            Kind::Ua { f } if !command => self.on_ua(now, f),
            Kind::Dm { f } if !command => self.on_dm(now, f),
            Kind::Frmr { .. } if !command && self.state.is_established() => {
                self.reestablish(now, MdlError::K);
            }
            Kind::Ui { info, .. } if command && info.len() <= self.cfg.n201 => {
                self.events.push_back(LinkEvent::UnitData(info));
            }
            // XID (not implemented), a type whose C/R bit contradicts it,
            // FRMR outside multiple frame operation, a UI over N201.
            _ => {}
        }
    }

    fn on_sabme(&mut self, now: Instant, p: bool) {
        match self.state {
            State::TeiAssigned => {
                self.send_frame(false, Kind::Ua { f: p });
                self.reset_link(now);
                self.events.push_back(LinkEvent::Established);
                self.l3_up = true;
            }
            // Both sides sent SABME (§5.5.5): each answers UA and goes up
            // when the other's UA arrives.
            State::AwaitingEstablishment => self.send_frame(false, Kind::Ua { f: p }),
            State::AwaitingRelease => self.send_frame(false, Kind::Dm { f: p }),
            State::MultipleFrameEstablished | State::TimerRecovery => {
                self.send_frame(false, Kind::Ua { f: p });
                self.events.push_back(LinkEvent::Error(MdlError::F));
                if self.reset_link(now) {
                    self.events.push_back(LinkEvent::Established);
                }
            }
        }
    }

    fn on_disc(&mut self, now: Instant, p: bool) {
        match self.state {
            State::TeiAssigned | State::AwaitingEstablishment => {
                self.send_frame(false, Kind::Dm { f: p });
            }
            // Both sides sent DISC: each answers UA and is released by the
            // other's UA.
            State::AwaitingRelease => self.send_frame(false, Kind::Ua { f: p }),
            State::MultipleFrameEstablished | State::TimerRecovery => {
                self.send_frame(false, Kind::Ua { f: p });
                self.enter_released(now);
            }
        }
    }

    fn on_ua(&mut self, now: Instant, f: bool) {
        let unsolicited = if f { MdlError::C } else { MdlError::D };
        match self.state {
            State::AwaitingEstablishment if f => {
                let confirm = self.layer3_initiated;
                let lost = self.reset_link(now);
                if confirm || lost || !self.l3_up {
                    self.events.push_back(LinkEvent::Established);
                }
                self.l3_up = true;
                self.layer3_initiated = false;
            }
            State::AwaitingRelease if f => self.enter_released(now),
            _ => self.events.push_back(LinkEvent::Error(unsolicited)),
        }
    }

    fn on_dm(&mut self, now: Instant, f: bool) {
        match self.state {
            // §5.5.4: an unsolicited DM F=0 asks us to establish the link.
            State::TeiAssigned if !f => {
                self.layer3_initiated = false;
                self.establish_data_link(now);
            }
            State::AwaitingEstablishment | State::AwaitingRelease if f => self.enter_released(now),
            State::MultipleFrameEstablished if f => {
                self.events.push_back(LinkEvent::Error(MdlError::B));
            }
            State::MultipleFrameEstablished => self.reestablish(now, MdlError::E),
            // A DM in timer recovery may well answer our enquiry: the
            // peer has lost the link, so re-establish whatever F says.
            State::TimerRecovery => {
                self.reestablish(now, if f { MdlError::B } else { MdlError::E });
            }
            _ => {}
        }
    }

    fn on_i(&mut self, now: Instant, ns: u8, nr: u8, p: bool, info: Vec<u8>) {
        if !self.state.is_established() {
            return;
        }
        if info.len() > self.cfg.n201 {
            self.reestablish(now, MdlError::O);
            return;
        }
        if ns == self.vr {
            self.vr = seq_add(self.vr, 1);
            self.reject_exception = false;
            self.events.push_back(LinkEvent::Data(info));
            if p {
                self.enquiry_response();
            } else {
                self.ack_pending = true;
            }
        } else if self.reject_exception {
            // One REJ per gap (§5.8.1): stay quiet until it is filled,
            // except to answer a poll.
            if p {
                self.enquiry_response();
            }
        } else {
            self.reject_exception = true;
            let vr = self.vr;
            self.send_frame(false, Kind::Rej { nr: vr, pf: p });
            self.ack_pending = false;
        }
        if !self.nr_valid(nr) {
            self.reestablish(now, MdlError::J);
        } else if self.state == State::MultipleFrameEstablished && !self.peer_busy {
            self.acknowledge(now, nr);
        } else {
            self.set_va(nr);
        }
    }

    fn on_supervisory(&mut self, now: Instant, s: Supervisory, command: bool, nr: u8, pf: bool) {
        if !self.state.is_established() {
            return;
        }
        self.peer_busy = s == Supervisory::Rnr;
        if command && pf {
            self.enquiry_response();
        }
        let final_response = !command && pf;
        if self.state == State::MultipleFrameEstablished && final_response {
            self.events.push_back(LinkEvent::Error(MdlError::A));
        }
        if !self.nr_valid(nr) {
            self.reestablish(now, MdlError::J);
            return;
        }
        if self.state == State::TimerRecovery {
            self.set_va(nr);
            if final_response {
                // The answer to our enquiry (§5.6.7): resend from N(R), and
                // keep polling with T200 if the peer is busy.
                if s == Supervisory::Rnr {
                    self.start_t200(now);
                } else {
                    self.timers.stop(Timer::T200);
                    self.start_t203(now);
                }
                self.invoke_retransmission();
                self.state = State::MultipleFrameEstablished;
            }
            return;
        }
        match s {
            Supervisory::Rr => self.acknowledge(now, nr),
            Supervisory::Rej => {
                self.set_va(nr);
                self.timers.stop(Timer::T200);
                self.start_t203(now);
                self.invoke_retransmission();
            }
            // T200 now polls the busy peer (§5.6.5).
            Supervisory::Rnr => {
                self.set_va(nr);
                self.timers.stop(Timer::T203);
                self.start_t200(now);
            }
        }
    }
}
