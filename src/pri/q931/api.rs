//! The requests of the layer above: place a call, answer one step by
//! step, clear, collect or send overlap digits, check a call's state.
//! A request that fails sends nothing and changes nothing.

use std::time::Instant;

use super::call_state::{Call, Role, State};
use super::calls::Side;
use super::events::{ApiError, CallEvent, CallId, OutgoingCall, SetupError};
use super::ie::{BearerCapability, CalledNumber, Progress, ProgressDescription};
use super::timers::CallTimer;
use super::{CallRef, ChannelSel, Message, SetupParams};
use crate::call::cause::Cause;

impl super::CallControl {
    /// Places a call: picks the channel, sends SETUP and starts T303.
    pub fn setup(&mut self, now: Instant, req: OutgoingCall) -> Result<CallId, SetupError> {
        if !self.link_up {
            return Err(SetupError::LinkDown);
        }
        let (channel, offer) = self.pick_outgoing_channel(req.channel)?;
        let value = self.new_call_ref().ok_or(SetupError::NoChannel)?;
        let cref = CallRef::new(value, true);
        let params = SetupParams {
            variant: self.variant,
            bearer: BearerCapability::g711(req.capability, self.law),
            channel: offer,
            called: req.called,
            calling: req.calling,
            calling_name: req.calling_name,
            sending_complete: req.sending_complete,
            progress: req.progress,
        };
        let bytes = Message::setup(cref, &params)
            .to_bytes()
            .map_err(|_| SetupError::TooLong)?;
        let id = self.new_call_id();
        let mut call = Call::new(id, cref, Role::Originator, State::SetupSent);
        call.offered = offer;
        call.setup = bytes.clone();
        call.setup_sends = 1;
        call.timers.set(CallTimer::T303, now + self.timers.t303);
        self.insert_call(call);
        // Free (checked by the pick), so the claim holds.
        self.set_channel(id, Some(channel));
        self.send_bytes(bytes);
        Ok(id)
    }

    /// The channel for a call we place, and how the SETUP names it.
    fn pick_outgoing_channel(&self, want: ChannelSel) -> Result<(u8, ChannelSel), SetupError> {
        let hunted = || self.channels.hunt().ok_or(SetupError::NoChannel);
        match want {
            ChannelSel::Exclusive(n) if !self.channels.exists(n) => {
                Err(SetupError::NoSuchChannel(n))
            }
            ChannelSel::Exclusive(n) if !self.channels.is_free(n) => {
                Err(SetupError::ChannelBusy(n))
            }
            ChannelSel::Exclusive(n) => Ok((n, want)),
            ChannelSel::Preferred(n) if !self.channels.exists(n) => {
                Err(SetupError::NoSuchChannel(n))
            }
            ChannelSel::Preferred(n) if self.channels.is_free(n) => Ok((n, want)),
            ChannelSel::Preferred(_) => hunted().map(|c| (c, ChannelSel::Preferred(c))),
            // The network decides the channel, so it names it outright;
            // the user proposes and lets the network override.
            ChannelSel::Any => hunted().map(|c| match self.side {
                Side::Network => (c, ChannelSel::Exclusive(c)),
                Side::User => (c, ChannelSel::Preferred(c)),
            }),
        }
    }

    /// Asks the caller for more digits (SETUP ACKNOWLEDGE, T302).
    pub fn setup_ack(&mut self, now: Instant, call: CallId) -> Result<(), ApiError> {
        self.answer_step(call, &[State::SetupReceived])?;
        let (cref, ch) = self.first_answer(call)?;
        self.send(&Message::setup_ack(cref, ch, None));
        self.advance_answer(call, State::OverlapReceiving);
        if let Some(c) = self.calls.get_mut(&call) {
            c.timers.set(CallTimer::T302, now + self.timers.t302);
        }
        Ok(())
    }

    /// CALL PROCEEDING: the number is complete, the call goes on.
    pub fn proceeding(&mut self, _now: Instant, call: CallId) -> Result<(), ApiError> {
        self.answer_step(call, &[State::SetupReceived, State::OverlapReceiving])?;
        let (cref, ch) = self.first_answer(call)?;
        self.send(&Message::call_proceeding(cref, ch));
        self.advance_answer(call, State::IncomingProceeding);
        Ok(())
    }

    /// ALERTING; `inband` adds progress 8 (we play ringback).
    pub fn alerting(&mut self, _now: Instant, call: CallId, inband: bool) -> Result<(), ApiError> {
        self.answer_step(
            call,
            &[
                State::SetupReceived,
                State::OverlapReceiving,
                State::IncomingProceeding,
            ],
        )?;
        let (cref, ch) = self.first_answer(call)?;
        let progress = inband.then(|| self.inband_progress());
        self.send(&Message::alerting(cref, ch, progress));
        self.advance_answer(call, State::Received);
        Ok(())
    }

    /// PROGRESS on a call we are answering (e.g. an announcement plays
    /// before answer).
    pub fn progress(
        &mut self,
        _now: Instant,
        call: CallId,
        description: ProgressDescription,
    ) -> Result<(), ApiError> {
        self.answer_step(
            call,
            &[
                State::OverlapReceiving,
                State::IncomingProceeding,
                State::Received,
            ],
        )?;
        let cref = self.send_call_ref(call).ok_or(ApiError::UnknownCall)?;
        let progress = Progress::new(self.location(), description);
        self.send(&Message::progress(cref, None, progress));
        Ok(())
    }

    /// CONNECT. The user side waits for CONNECT ACKNOWLEDGE (T313)
    /// before reporting `Connected`; the network side is active at once.
    pub fn connect(&mut self, now: Instant, call: CallId) -> Result<(), ApiError> {
        self.answer_step(
            call,
            &[
                State::SetupReceived,
                State::OverlapReceiving,
                State::IncomingProceeding,
                State::Received,
            ],
        )?;
        let (cref, ch) = self.first_answer(call)?;
        self.send(&Message::connect(cref, ch));
        match self.side {
            Side::User => {
                self.advance_answer(call, State::ConnectSent);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.timers.set(CallTimer::T313, now + self.timers.t313);
                }
            }
            Side::Network => {
                self.advance_answer(call, State::Active);
                if let Some(channel) = self.channel(call) {
                    self.event(CallEvent::Connected { call, channel });
                }
            }
        }
        Ok(())
    }

    /// Clears a call with `cause` (DISCONNECT, T305). A SETUP not yet
    /// answered is refused with RELEASE COMPLETE instead, as Q.931 wants
    /// (see [`CallControl::reject`]). Clearing a call already clearing
    /// does nothing.
    ///
    /// [`CallControl::reject`]: super::CallControl::reject
    pub fn disconnect(&mut self, now: Instant, call: CallId, cause: Cause) -> Result<(), ApiError> {
        let state = self.calls.get(&call).ok_or(ApiError::UnknownCall)?.state;
        match state {
            State::SetupReceived => self.reject(now, call, cause),
            s if s.is_clearing() => Ok(()),
            _ => {
                self.disconnect_internal(now, call, cause);
                Ok(())
            }
        }
    }

    /// Refuses a SETUP not yet answered: RELEASE COMPLETE with `cause`,
    /// and the call is released at once. On a call past that point this
    /// is [`CallControl::disconnect`].
    ///
    /// [`CallControl::disconnect`]: super::CallControl::disconnect
    pub fn reject(&mut self, now: Instant, call: CallId, cause: Cause) -> Result<(), ApiError> {
        let c = self.calls.get_mut(&call).ok_or(ApiError::UnknownCall)?;
        if c.state != State::SetupReceived {
            return self.disconnect(now, call, cause);
        }
        c.cause.get_or_insert(cause);
        let cref = c.cref;
        let ie = self.cause_ie(cause);
        self.send(&Message::release_complete(cref, Some(ie)));
        self.finish(call);
        Ok(())
    }

    /// INFORMATION with more called digits, after the peer answered our
    /// SETUP with SETUP ACKNOWLEDGE (overlap sending; T304 restarts).
    pub fn information(
        &mut self,
        now: Instant,
        call: CallId,
        digits: &CalledNumber,
        complete: bool,
    ) -> Result<(), ApiError> {
        let c = self.calls.get(&call).ok_or(ApiError::UnknownCall)?;
        if c.state != State::OverlapSending {
            return Err(ApiError::WrongState(c.state.wire(self.side)));
        }
        let msg = Message::information(c.cref, self.variant, digits, complete);
        let bytes = msg.to_bytes().map_err(|_| ApiError::TooLong)?;
        self.send_bytes(bytes);
        if let Some(c) = self.calls.get_mut(&call) {
            c.timers.set(CallTimer::T304, now + self.timers.t304);
        }
        Ok(())
    }

    /// STATUS ENQUIRY: asks the peer for its state of the call (T322);
    /// an incompatible answer clears the call (§5.8.11).
    pub fn enquire(&mut self, now: Instant, call: CallId) -> Result<(), ApiError> {
        let c = self.calls.get_mut(&call).ok_or(ApiError::UnknownCall)?;
        if c.timers.is_running(CallTimer::T322) {
            return Ok(());
        }
        c.enquiries = 0;
        self.enquire_call(now, call);
        Ok(())
    }

    /// Checks that `call` is a peer's call in one of `states`.
    fn answer_step(&self, call: CallId, states: &[State]) -> Result<(), ApiError> {
        let c = self.calls.get(&call).ok_or(ApiError::UnknownCall)?;
        if c.role != Role::Terminator || !states.contains(&c.state) {
            return Err(ApiError::WrongState(c.state.wire(self.side)));
        }
        Ok(())
    }

    /// The call reference, and the channel if this is our first answer
    /// (Q.931 §5.2.3: the first answer names the channel, exclusively).
    fn first_answer(&mut self, call: CallId) -> Result<(CallRef, Option<ChannelSel>), ApiError> {
        let c = self.calls.get_mut(&call).ok_or(ApiError::UnknownCall)?;
        let ch = if c.channel_sent {
            None
        } else {
            c.channel_sent = true;
            c.channel.map(ChannelSel::Exclusive)
        };
        Ok((c.cref, ch))
    }

    fn advance_answer(&mut self, call: CallId, state: State) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.state = state;
            if state != State::OverlapReceiving {
                c.timers.stop(CallTimer::T302);
            }
        }
    }

    fn inband_progress(&self) -> Progress {
        Progress::new(self.location(), ProgressDescription::InbandAvailable)
    }
}
