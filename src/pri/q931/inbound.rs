//! Received messages: the checks every one goes through (call reference,
//! §5.8.3.2; message type and state, §5.8.4; elements that must be
//! understood, §5.8.7.1), a peer's SETUP (bearer, channel selection and
//! glare, §5.1.2 / §5.2.3 / Annex D.3), and the answers that move a call
//! we placed toward active. Clearing and STATUS are in `clearing.rs`,
//! RESTART in `restart.rs`.

use std::time::Instant;

use super::call_state::{Call, RefKey, Role, State};
use super::calls::Side;
use super::events::{CallEvent, CallId, IncomingCall};
use super::ie::{self, CallState, CallStateValue, Display, Progress, ProgressDescription};
use super::timers::CallTimer;
use super::{ChannelSel, Ia5, Message, MessageType};
use crate::call::cause::Cause;

/// The first element that must be understood and is not (§5.8.7.1):
/// codeset 0, bits 8–5 zero, not one rivr knows.
fn unknown_mandatory_ie(msg: &Message) -> Option<u8> {
    msg.ies
        .iter()
        .filter(|raw| ie::comprehension_required(raw.codeset, raw.id))
        .map(|raw| raw.id)
        .find(|id| *id != ie::id::BEARER_CAPABILITY && *id != ie::id::CAUSE)
}

/// Whether a progress indicator tells the caller to listen to the
/// B-channel (1: not end-to-end ISDN, 8: in-band information).
pub(super) fn inband(msg: &Message) -> bool {
    msg.ies.all::<Progress>().flatten().any(|p| {
        matches!(
            p.description,
            ProgressDescription::InbandAvailable | ProgressDescription::NotEndToEndIsdn
        )
    })
}

impl super::CallControl {
    /// A layer 3 message from LAPD. Anything malformed is ignored or
    /// answered as Q.931 §5.8 says; nothing here panics.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        // Header errors (§5.8.1–5.8.3.1): ignore the message.
        let Ok(msg) = Message::decode(bytes) else {
            return;
        };
        // The dummy call reference carries supplementary services rivr
        // does not offer.
        if msg.call_ref.is_dummy() {
            return;
        }
        if msg.call_ref.is_global() {
            self.on_global(now, &msg);
            return;
        }
        match self.refs.get(&RefKey::received(msg.call_ref)).copied() {
            Some(id) => self.on_call_message(now, id, &msg),
            None => self.on_unknown_ref(now, &msg),
        }
    }

    /// §5.8.3.2 for a call reference we have no call for.
    fn on_unknown_ref(&mut self, now: Instant, msg: &Message) {
        let reply = msg.call_ref.reply();
        match msg.kind {
            // A SETUP whose flag says we placed the call is ignored (d).
            MessageType::Setup if msg.call_ref.from_originator => self.on_setup(now, msg),
            MessageType::Setup | MessageType::ReleaseComplete => {}
            MessageType::Status => {
                // (§5.8.11 a) the peer has a call we do not; a STATUS
                // saying Null, or unreadable, needs nothing.
                let peer = msg.ies.first::<CallState>().and_then(Result::ok);
                if peer.is_some_and(|s| s.state != CallStateValue::Null) {
                    let ie = self.cause_ie(Cause::WRONG_STATE);
                    self.send(&Message::release_complete(reply, Some(ie)));
                }
            }
            MessageType::StatusEnquiry => {
                let ie = self.cause_ie(Cause::RESPONSE_TO_STATUS_ENQUIRY);
                self.send(&Message::status(reply, ie, CallStateValue::Null));
            }
            _ => {
                let ie = self.cause_ie(Cause::INVALID_CALL_REFERENCE);
                self.send(&Message::release_complete(reply, Some(ie)));
            }
        }
    }

    fn on_call_message(&mut self, now: Instant, id: CallId, msg: &Message) {
        let Some(state) = self.calls.get(&id).map(|c| c.state) else {
            return;
        };
        let unknown_ie = unknown_mandatory_ie(msg);
        let type_diag = [msg.kind.to_u8()];
        match msg.kind {
            // A repeat of the SETUP (the peer's T303) is ignored (e).
            MessageType::Setup => {}
            MessageType::Release => self.on_release(now, id, msg),
            MessageType::ReleaseComplete => self.on_release_complete(id, msg),
            MessageType::Disconnect => self.on_disconnect(now, id, msg),
            MessageType::Status => self.on_status(now, id, msg),
            MessageType::StatusEnquiry => {
                let ie = self.cause_ie(Cause::RESPONSE_TO_STATUS_ENQUIRY);
                self.status_for(id, ie);
            }
            // Anything else crossed our DISCONNECT or RELEASE: moot.
            _ if state.is_clearing() => {}
            // NOTIFY (e.g. "user suspended") needs no answer in any state.
            MessageType::Notify => {}
            _ if unknown_ie.is_some() => {
                let diag: Vec<u8> = unknown_ie.into_iter().collect();
                let ie = self
                    .cause_ie(Cause::MANDATORY_IE_MISSING)
                    .with_diagnostics(&diag);
                self.status_for(id, ie);
            }
            MessageType::SetupAck
            | MessageType::CallProceeding
            | MessageType::Alerting
            | MessageType::Connect
            | MessageType::Progress
            | MessageType::ConnectAck => self.on_establishment(now, id, msg),
            MessageType::Information => self.on_information(now, id, msg),
            // Known types that belong on the global call reference.
            MessageType::Restart | MessageType::RestartAck => {
                let ie = self
                    .cause_ie(Cause::WRONG_STATE)
                    .with_diagnostics(&type_diag);
                self.status_for(id, ie);
            }
            MessageType::Facility | MessageType::Other(_) => {
                let ie = self
                    .cause_ie(Cause::MESSAGE_TYPE_NONEXISTENT)
                    .with_diagnostics(&type_diag);
                self.status_for(id, ie);
            }
        }
    }

    /// A peer's SETUP: checked, given a channel, reported as `Incoming`
    /// — or refused with RELEASE COMPLETE and forgotten.
    fn on_setup(&mut self, _now: Instant, msg: &Message) {
        let reply = msg.call_ref.reply();
        let refuse = |this: &mut Self, cause: Cause, diag: &[u8]| {
            let ie = this.cause_ie(cause).with_diagnostics(diag);
            this.send(&Message::release_complete(reply, Some(ie)));
        };
        if let Some(id) = unknown_mandatory_ie(msg) {
            return refuse(self, Cause::MANDATORY_IE_MISSING, &[id]);
        }
        let bc = ie::id::BEARER_CAPABILITY;
        let bearer = match msg.bearer_capability() {
            None => return refuse(self, Cause::MANDATORY_IE_MISSING, &[bc]),
            Some(Err(_)) => return refuse(self, Cause::INVALID_IE_CONTENTS, &[bc]),
            Some(Ok(b)) if !b.is_voice() => {
                return refuse(self, Cause::BEARER_NOT_IMPLEMENTED, &[bc])
            }
            Some(Ok(b)) => b,
        };
        let called = match msg.called_number() {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return refuse(self, Cause::INVALID_IE_CONTENTS, &[ie::id::CALLED_NUMBER])
            }
        };
        // Without Channel identification any channel will do.
        let sel = match msg.channel_id() {
            None => ChannelSel::Any,
            Some(Err(_)) => return refuse(self, Cause::INVALID_IE_CONTENTS, &[ie::id::CHANNEL_ID]),
            Some(Ok(c)) => match c.sel() {
                Some(sel) => sel,
                // A slot map, several channels, another interface, the
                // D-channel: nothing a voice call can use.
                None => return refuse(self, Cause::CHANNEL_UNACCEPTABLE, &[]),
            },
        };
        let (channel, loser) = match self.pick_incoming_channel(sel) {
            Ok(pick) => pick,
            Err(cause) => return refuse(self, cause, &[]),
        };
        let id = self.new_call_id();
        self.insert_call(Call::new(id, reply, Role::Terminator, State::SetupReceived));
        if let Some(loser) = loser {
            self.set_channel(loser, None);
        }
        self.set_channel(id, Some(channel));
        // Optional elements that do not decode are ignored (§5.8.7.2).
        let incoming = IncomingCall {
            call: id,
            channel,
            bearer,
            called,
            calling: msg.calling_number().and_then(Result::ok),
            calling_name: msg
                .ies
                .first::<Display>()
                .and_then(Result::ok)
                .map(|d| d.text),
            sending_complete: msg.ies.sending_complete(),
            progress: msg.ies.first::<Progress>().and_then(Result::ok),
        };
        self.event(CallEvent::Incoming(Box::new(incoming)));
    }

    /// The channel for a peer's SETUP, and the call of ours that yields
    /// it in a glare; or the cause to refuse the SETUP with.
    fn pick_incoming_channel(&self, sel: ChannelSel) -> Result<(u8, Option<CallId>), Cause> {
        let (n, exclusive) = match sel {
            ChannelSel::Any => {
                return self
                    .channels
                    .hunt()
                    .map(|c| (c, None))
                    .ok_or(Cause::NO_CIRCUIT_AVAILABLE)
            }
            ChannelSel::Preferred(n) => (n, false),
            ChannelSel::Exclusive(n) => (n, true),
        };
        if exclusive && !self.channels.exists(n) {
            return Err(Cause::CHANNEL_DOES_NOT_EXIST);
        }
        if self.channels.is_free(n) {
            return Ok((n, None));
        }
        if let Some(ours) = self.glare_with(n) {
            // Annex D.3: an exclusive request beats a preferred one;
            // between equals the network's SETUP wins.
            let ours_exclusive = matches!(ours.offered, ChannelSel::Exclusive(_));
            let theirs_wins = match (exclusive, ours_exclusive) {
                (true, false) => true,
                (false, true) => false,
                _ => self.side == Side::User,
            };
            if theirs_wins {
                return Ok((n, Some(ours.id)));
            }
            if exclusive {
                return Err(Cause::NO_CIRCUIT_AVAILABLE);
            }
        } else if exclusive {
            return Err(Cause::REQUESTED_CHANNEL_UNAVAILABLE);
        }
        self.channels
            .hunt()
            .map(|c| (c, None))
            .ok_or(Cause::NO_CIRCUIT_AVAILABLE)
    }

    /// Our call holding `ch` on a tentative pick — a SETUP not answered
    /// yet — which a peer's SETUP for `ch` collides with.
    fn glare_with(&self, ch: u8) -> Option<&Call> {
        let c = self.calls.get(&self.channels.holder(ch)?)?;
        (c.role == Role::Originator && c.state == State::SetupSent && !c.confirmed).then_some(c)
    }

    /// SETUP ACKNOWLEDGE, CALL PROCEEDING, ALERTING, CONNECT, PROGRESS
    /// and CONNECT ACKNOWLEDGE.
    fn on_establishment(&mut self, now: Instant, id: CallId, msg: &Message) {
        use MessageType as M;
        use State as S;
        let Some(state) = self.calls.get(&id).map(|c| c.state) else {
            return;
        };
        let next = match (msg.kind, state) {
            (M::SetupAck, S::SetupSent) => S::OverlapSending,
            (M::CallProceeding, S::SetupSent | S::OverlapSending) => S::OutgoingProceeding,
            (M::Alerting, S::SetupSent | S::OverlapSending | S::OutgoingProceeding) => S::Delivered,
            (
                M::Connect,
                S::SetupSent | S::OverlapSending | S::OutgoingProceeding | S::Delivered,
            ) => S::Active,
            (M::Progress, S::OverlapSending | S::OutgoingProceeding | S::Delivered) => state,
            (M::ConnectAck, S::ConnectSent) => S::Active,
            // The user acknowledging the network's CONNECT.
            (M::ConnectAck, S::Active) if self.side == Side::Network => return,
            _ => {
                let ie = self
                    .cause_ie(Cause::WRONG_STATE)
                    .with_diagnostics(&[msg.kind.to_u8()]);
                return self.status_for(id, ie);
            }
        };
        if state == S::SetupSent && !self.take_answer_channel(now, id, msg) {
            return;
        }
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let channel = c.channel;
        if msg.kind == M::Connect && channel.is_none() {
            let ie = self
                .cause_ie(Cause::MANDATORY_IE_MISSING)
                .with_diagnostics(&[ie::id::CHANNEL_ID]);
            return self.status_for(id, ie);
        }
        c.state = next;
        if state == S::SetupSent {
            c.setup = Vec::new();
            c.timers.stop(CallTimer::T303);
        }
        let t = &self.timers;
        let event = match msg.kind {
            M::SetupAck => {
                c.timers.set(CallTimer::T304, now + t.t304);
                CallEvent::SetupAcknowledged { call: id, channel }
            }
            M::CallProceeding => {
                c.timers.stop(CallTimer::T304);
                c.timers.set(CallTimer::T310, now + t.t310);
                CallEvent::Proceeding { call: id, channel }
            }
            M::Alerting => {
                c.timers.stop(CallTimer::T304);
                c.timers.stop(CallTimer::T310);
                if let Some(t301) = t.t301 {
                    c.timers.set(CallTimer::T301, now + t301);
                }
                CallEvent::Alerting {
                    call: id,
                    channel,
                    inband: inband(msg),
                }
            }
            M::Progress => {
                c.timers.stop(CallTimer::T310);
                CallEvent::Progress {
                    call: id,
                    inband: inband(msg),
                }
            }
            _ => {
                for t in [
                    CallTimer::T301,
                    CallTimer::T304,
                    CallTimer::T310,
                    CallTimer::T313,
                ] {
                    c.timers.stop(t);
                }
                let cref = c.cref;
                if msg.kind == M::Connect {
                    self.send(&Message::connect_ack(cref));
                }
                let Some(channel) = channel else {
                    return;
                };
                CallEvent::Connected { call: id, channel }
            }
        };
        self.event(event);
    }

    /// The channel in the peer's first answer to our SETUP (§5.1.2):
    /// settles our tentative pick, or moves the call to the channel the
    /// peer chose. False when the message must go no further — the
    /// channel is unusable (the call is cleared, cause 6 or 100) or
    /// missing (STATUS 96).
    fn take_answer_channel(&mut self, now: Instant, id: CallId, msg: &Message) -> bool {
        let Some((offered, current)) = self.calls.get(&id).map(|c| (c.offered, c.channel)) else {
            return false;
        };
        let named = match msg.channel_id() {
            // Only an exclusive request may go unconfirmed: anything
            // else needs the peer's choice (§5.1.2), and an answer
            // without it means the one that had it was lost.
            None if current.is_some() && matches!(offered, ChannelSel::Exclusive(_)) => None,
            None => {
                let ie = self
                    .cause_ie(Cause::MANDATORY_IE_MISSING)
                    .with_diagnostics(&[ie::id::CHANNEL_ID]);
                self.status_for(id, ie);
                return false;
            }
            Some(Err(_)) => Some(Err(Cause::INVALID_IE_CONTENTS)),
            Some(Ok(c)) => match c.sel() {
                // Q.931 wants "exclusive" in an answer; a "preferred"
                // one is taken as the choice it is.
                Some(ChannelSel::Exclusive(n) | ChannelSel::Preferred(n)) => Some(Ok(n)),
                _ => Some(Err(Cause::CHANNEL_UNACCEPTABLE)),
            },
        };
        let verdict = match named {
            None => Ok(()),
            Some(Err(cause)) => Err(cause),
            Some(Ok(n)) => match offered {
                ChannelSel::Exclusive(want) if want != n => Err(Cause::CHANNEL_UNACCEPTABLE),
                _ if self.set_channel(id, Some(n)) => Ok(()),
                _ => Err(Cause::CHANNEL_UNACCEPTABLE),
            },
        };
        match verdict {
            Ok(()) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.confirmed = true;
                }
                true
            }
            Err(cause) => {
                // The peer does not hold our pick for this call, and we
                // cannot hold theirs: clear without a channel.
                self.set_channel(id, None);
                self.disconnect_internal(now, id, cause);
                false
            }
        }
    }

    /// INFORMATION: more digits in overlap receiving; elsewhere (keypad
    /// during a call, display) nothing rivr acts on.
    fn on_information(&mut self, now: Instant, id: CallId, msg: &Message) {
        let t302 = self.timers.t302;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.state != State::OverlapReceiving {
            return;
        }
        let digits = msg
            .called_number()
            .and_then(Result::ok)
            .map_or_else(Ia5::default, |n| n.digits);
        let complete = msg.ies.sending_complete();
        if complete {
            c.timers.stop(CallTimer::T302);
        } else {
            c.timers.set(CallTimer::T302, now + t302);
        }
        self.event(CallEvent::Digits {
            call: id,
            digits,
            complete,
        });
    }
}
