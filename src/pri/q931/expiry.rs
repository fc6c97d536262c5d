//! What each call timer does when it runs out (Q.931 Tables 9-1/9-2).
//! Supervision timers of a call's progress clear it with DISCONNECT;
//! the retransmission timers (T303, T308, T322) send their message a
//! second time before giving up.

use std::time::Instant;

use super::calls::Side;
use super::events::{CallEvent, CallId};
use super::restart::Target;
use super::timers::CallTimer;
use super::{Ia5, Message};
use crate::call::cause::Cause;

impl super::CallControl {
    pub(super) fn on_call_timer(&mut self, now: Instant, id: CallId, t: CallTimer) {
        match t {
            // Ringing too long: "no answer" is exactly what 19 means.
            CallTimer::T301 => self.disconnect_internal(now, id, Cause::NO_ANSWER),
            // The caller stopped dialling: the layer above decides
            // whether what it has is a number.
            CallTimer::T302 => self.event(CallEvent::Digits {
                call: id,
                digits: Ia5::default(),
                complete: true,
            }),
            CallTimer::T303 => self.t303_expired(now, id),
            CallTimer::T304 | CallTimer::T310 | CallTimer::T313 => {
                self.disconnect_internal(now, id, Cause::RECOVERY_ON_TIMER_EXPIRY)
            }
            // The DISCONNECT went unanswered: RELEASE with its cause.
            CallTimer::T305 => {
                let cause = self.calls.get(&id).and_then(|c| c.cause);
                self.release_internal(now, id, cause);
            }
            CallTimer::T308 => self.t308_expired(now, id),
            // The link did not come back (§5.8.9).
            CallTimer::T309 => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.cause.get_or_insert(Cause::DESTINATION_OUT_OF_ORDER);
                }
                self.finish(id);
            }
            CallTimer::T322 => {
                let Some(c) = self.calls.get(&id) else {
                    return;
                };
                if c.enquiries < 2 {
                    self.enquire_call(now, id);
                } else if !c.state.is_clearing() {
                    // The peer never says what it thinks of the call.
                    self.release_internal(now, id, Some(Cause::TEMPORARY_FAILURE));
                }
            }
        }
    }

    /// SETUP unanswered: once more, then give up with RELEASE COMPLETE
    /// 102. The layer above hears 102 on the user side; the network side
    /// reports 18 (no user responding), what it tells its caller.
    fn t303_expired(&mut self, now: Instant, id: CallId) {
        let t303 = self.timers.t303;
        let side = self.side;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.setup_sends < 2 && !c.setup.is_empty() {
            c.setup_sends += 1;
            c.timers.set(CallTimer::T303, now + t303);
            let bytes = c.setup.clone();
            self.send_bytes(bytes);
            return;
        }
        c.cause.get_or_insert(match side {
            Side::User => Cause::RECOVERY_ON_TIMER_EXPIRY,
            Side::Network => Cause::NO_USER_RESPONSE,
        });
        let cref = c.cref;
        let ie = self.cause_ie(Cause::RECOVERY_ON_TIMER_EXPIRY);
        self.send(&Message::release_complete(cref, Some(ie)));
        self.finish(id);
    }

    /// RELEASE unanswered: once more, then the call is over and its
    /// channel, in a state nobody knows, is restarted (Q.931 puts it "in
    /// maintenance"; a RESTART is how it comes back).
    fn t308_expired(&mut self, now: Instant, id: CallId) {
        let t308 = self.timers.t308;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.release_sends < 2 {
            c.release_sends += 1;
            c.timers.set(CallTimer::T308, now + t308);
            self.send_release(id);
            return;
        }
        let channel = c.channel;
        self.finish(id);
        if let Some(ch) = channel {
            self.begin_restart(now, Target::Channels(vec![ch]));
        }
    }
}
