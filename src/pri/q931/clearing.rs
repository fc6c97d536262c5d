//! Clearing (Q.931 §5.3, §5.8.6 for clearing messages with a bad or
//! missing cause) and the status procedures (§5.8.10 STATUS ENQUIRY,
//! §5.8.11 STATUS). The first clearing cause of a call, sent or
//! received, is what its `Released` event reports.

use std::time::Instant;

use super::call_state::{compat, Compat, State};
use super::events::{CallEvent, CallId};
use super::ie::CallState;
use super::inbound::inband;
use super::timers::CallTimer;
use super::Message;
use crate::call::cause::Cause;

impl super::CallControl {
    /// Starts clearing: DISCONNECT with `cause`, T305.
    pub(super) fn disconnect_internal(&mut self, now: Instant, id: CallId, cause: Cause) {
        let t305 = self.timers.t305;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.cause.get_or_insert(cause);
        c.timers.stop_all();
        c.timers.set(CallTimer::T305, now + t305);
        c.state = State::DisconnectSent;
        let cref = c.cref;
        let ie = self.cause_ie(cause);
        self.send(&Message::disconnect(cref, ie, None));
    }

    /// RELEASE (with `cause` if given), T308. A cause is recorded only if
    /// the call has none yet.
    pub(super) fn release_internal(&mut self, now: Instant, id: CallId, cause: Option<Cause>) {
        let t308 = self.timers.t308;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(cause) = cause {
            c.cause.get_or_insert(cause);
        }
        c.timers.stop_all();
        c.timers.set(CallTimer::T308, now + t308);
        c.state = State::ReleaseSent;
        c.release_cause = cause;
        c.release_sends = 1;
        self.send_release(id);
    }

    /// (Re)sends the call's RELEASE.
    pub(super) fn send_release(&mut self, id: CallId) {
        let Some((cref, cause)) = self.calls.get(&id).map(|c| (c.cref, c.release_cause)) else {
            return;
        };
        let ie = cause.map(|c| self.cause_ie(c));
        self.send(&Message::release(cref, ie));
    }

    /// DISCONNECT from the peer: reported, then answered with RELEASE at
    /// once (§5.3.4; in-band tones after it are not waited for). Without
    /// a readable cause it counts as cause 31 and our RELEASE says what
    /// was wrong (96 or 100, §5.8.6).
    pub(super) fn on_disconnect(&mut self, now: Instant, id: CallId, msg: &Message) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let (cause, ours) = match msg.cause() {
            Some(Ok(ie)) => (ie.cause, None),
            None => (Cause::NORMAL_UNSPECIFIED, Some(Cause::MANDATORY_IE_MISSING)),
            Some(Err(_)) => (Cause::NORMAL_UNSPECIFIED, Some(Cause::INVALID_IE_CONTENTS)),
        };
        match c.state {
            State::ReleaseSent => {}
            // Both sent DISCONNECT (§5.3.5): go on to RELEASE.
            State::DisconnectSent => self.release_internal(now, id, ours),
            _ => {
                c.cause.get_or_insert(cause);
                self.event(CallEvent::Disconnected {
                    call: id,
                    cause,
                    inband: inband(msg),
                });
                self.release_internal(now, id, ours);
            }
        }
    }

    /// RELEASE from the peer: RELEASE COMPLETE and the call is over; if
    /// we had sent RELEASE too (§5.3.5) the call is over without one.
    pub(super) fn on_release(&mut self, _now: Instant, id: CallId, msg: &Message) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        // RELEASE as the first clearing message must carry a cause.
        let first = !c.state.is_clearing();
        let (cause, ours) = match msg.cause() {
            Some(Ok(ie)) => (ie.cause, None),
            None if first => (Cause::NORMAL_UNSPECIFIED, Some(Cause::MANDATORY_IE_MISSING)),
            None => (Cause::NORMAL_UNSPECIFIED, None),
            Some(Err(_)) => (Cause::NORMAL_UNSPECIFIED, Some(Cause::INVALID_IE_CONTENTS)),
        };
        c.cause.get_or_insert(cause);
        if c.state != State::ReleaseSent {
            let cref = c.cref;
            let ie = ours.map(|c| self.cause_ie(c));
            self.send(&Message::release_complete(cref, ie));
        }
        self.finish(id);
    }

    /// RELEASE COMPLETE: the call is over, whatever its state.
    pub(super) fn on_release_complete(&mut self, id: CallId, msg: &Message) {
        if let Some(c) = self.calls.get_mut(&id) {
            let cause = msg
                .cause()
                .and_then(Result::ok)
                .map_or(Cause::NORMAL_UNSPECIFIED, |ie| ie.cause);
            c.cause.get_or_insert(cause);
        }
        self.finish(id);
    }

    /// STATUS ENQUIRY for a call, T322.
    pub(super) fn enquire_call(&mut self, now: Instant, id: CallId) {
        let t322 = self.timers.t322;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.enquiries = c.enquiries.saturating_add(1);
        c.timers.set(CallTimer::T322, now + t322);
        let cref = c.cref;
        self.send(&Message::status_enquiry(cref));
    }

    /// STATUS from the peer (§5.8.11). A STATUS is never answered with a
    /// STATUS, so two confused ends cannot ping-pong; an unreadable one
    /// is ignored.
    pub(super) fn on_status(&mut self, now: Instant, id: CallId, msg: &Message) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.timers.stop(CallTimer::T322);
        let Some(Ok(peer)) = msg.ies.first::<CallState>() else {
            return;
        };
        match compat(self.side, c, peer.state) {
            Compat::Compatible => {}
            Compat::PeerNull => {
                // The peer lost the call: release everything (c); a call
                // we were already releasing keeps its own cause.
                c.cause.get_or_insert(Cause::TEMPORARY_FAILURE);
                self.finish(id);
            }
            // (b): in Release request the RELEASE is on its way anyway.
            Compat::Incompatible if c.state == State::ReleaseSent => {}
            Compat::Incompatible => {
                self.release_internal(now, id, Some(Cause::WRONG_STATE));
            }
        }
    }
}
