//! The global call reference (Q.931 §5.5, §5.8.3.2 f): RESTART and
//! RESTART ACKNOWLEDGE, both ways. A RESTART returns channels to idle:
//! their calls are released without a message (each side clears its own
//! when it sends or receives the RESTART). Ours are sent one at a time
//! (the acknowledgement names no transaction, only the channels) with
//! T316, and the channels stay out of service until acknowledged.

use std::collections::VecDeque;
use std::time::Instant;

use super::events::{ApiError, CallEvent, CallId};
use super::ie::{self, CallStateValue, RestartClass, RestartIndicator};
use super::{Message, MessageType};
use crate::call::cause::Cause;

/// What a RESTART covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Channels(Vec<u8>),
    /// Every channel (and call) of the interface.
    All,
}

#[derive(Debug, Clone)]
struct Pending {
    target: Target,
    sends: u8,
}

/// Our RESTART in flight and the ones waiting behind it.
#[derive(Debug, Default)]
pub(crate) struct Restarts {
    pub(crate) t316: Option<Instant>,
    in_flight: Option<Pending>,
    queue: VecDeque<Target>,
}

impl super::CallControl {
    /// Restarts one B-channel: its call (if any) is released with cause
    /// 41 and the channel is out of service until the peer acknowledges.
    pub fn restart_channel(&mut self, now: Instant, channel: u8) -> Result<(), ApiError> {
        if !self.channels.exists(channel) {
            return Err(ApiError::NoSuchChannel(channel));
        }
        self.begin_restart(now, Target::Channels(vec![channel]));
        Ok(())
    }

    /// Restarts the whole interface (restart class "all interfaces"):
    /// every call is released with cause 41.
    pub fn restart_all(&mut self, now: Instant) {
        self.begin_restart(now, Target::All);
    }

    pub(super) fn begin_restart(&mut self, now: Instant, target: Target) {
        let pending = self.restart.in_flight.iter().map(|p| &p.target);
        if pending.chain(&self.restart.queue).any(|t| *t == target) {
            return;
        }
        self.quiesce(&target);
        if self.restart.in_flight.is_none() {
            self.send_restart(now, target, 1);
        } else {
            self.restart.queue.push_back(target);
        }
    }

    fn target_channels(&self, target: &Target) -> Vec<u8> {
        match target {
            Target::All => self.channels.all().collect(),
            Target::Channels(list) => list.clone(),
        }
    }

    /// Releases the calls a restart covers and takes its channels out of
    /// service. Done again when a queued RESTART finally goes out, since
    /// a channel may have come back meanwhile.
    fn quiesce(&mut self, target: &Target) {
        let channels = self.target_channels(target);
        self.clear_calls_of(target, &channels);
        for ch in channels {
            self.channels.set_restarting(ch);
        }
    }

    fn clear_calls_of(&mut self, target: &Target, channels: &[u8]) {
        let victims: Vec<CallId> = match target {
            Target::All => self.calls.keys().copied().collect(),
            Target::Channels(_) => channels
                .iter()
                .filter_map(|ch| self.channels.holder(*ch))
                .collect(),
        };
        for id in victims {
            if let Some(c) = self.calls.get_mut(&id) {
                c.cause.get_or_insert(Cause::TEMPORARY_FAILURE);
            }
            self.finish(id);
        }
    }

    fn send_restart(&mut self, now: Instant, target: Target, sends: u8) {
        let msg = match &target {
            Target::All => Message::restart(RestartClass::AllInterfaces, &[]),
            Target::Channels(list) => Message::restart(RestartClass::Indicated, list),
        };
        self.send(&msg);
        self.restart.in_flight = Some(Pending { target, sends });
        self.restart.t316 = Some(now + self.timers.t316);
    }

    fn next_restart(&mut self, now: Instant) {
        if let Some(target) = self.restart.queue.pop_front() {
            self.quiesce(&target);
            self.send_restart(now, target, 1);
        }
    }

    /// T316: RESTART again, or give up and put the channels back.
    pub(super) fn restart_timeout(&mut self, now: Instant) {
        if self.restart.t316.is_none_or(|at| at > now) {
            return;
        }
        self.restart.t316 = None;
        let Some(p) = self.restart.in_flight.take() else {
            return;
        };
        if p.sends < self.timers.n316 {
            self.send_restart(now, p.target, p.sends + 1);
            return;
        }
        let channels = self.target_channels(&p.target);
        for ch in &channels {
            self.channels.clear_restarting(*ch);
        }
        self.event(CallEvent::RestartFailed { channels });
        self.next_restart(now);
    }

    /// The state of the global call reference, for STATUS.
    fn global_state(&self) -> CallStateValue {
        if self.restart.in_flight.is_some() {
            CallStateValue::RestartRequest
        } else {
            CallStateValue::Null
        }
    }

    /// A message on the global call reference.
    pub(super) fn on_global(&mut self, now: Instant, msg: &Message) {
        match msg.kind {
            MessageType::Restart => self.on_restart(msg),
            MessageType::RestartAck => self.on_restart_ack(now, msg),
            // Perhaps the peer's complaint about our RESTART: T316 will
            // tell.
            MessageType::Status => {}
            _ => self.global_status(msg, Cause::INVALID_CALL_REFERENCE, &[]),
        }
    }

    fn global_status(&mut self, msg: &Message, cause: Cause, diag: &[u8]) {
        let ie = self.cause_ie(cause).with_diagnostics(diag);
        let state = self.global_state();
        self.send(&Message::status(msg.call_ref.reply(), ie, state));
    }

    /// The peer's RESTART: release the calls, acknowledge with its own
    /// elements echoed.
    fn on_restart(&mut self, msg: &Message) {
        let ri = ie::id::RESTART_INDICATOR;
        let class = match msg.ies.first::<RestartIndicator>() {
            None => return self.global_status(msg, Cause::MANDATORY_IE_MISSING, &[ri]),
            Some(Err(_)) => return self.global_status(msg, Cause::INVALID_IE_CONTENTS, &[ri]),
            Some(Ok(r)) => r.class,
        };
        let (target, channels) = match class {
            RestartClass::Indicated => match self.indicated_channels(msg) {
                Ok(list) => (Target::Channels(list.clone()), list),
                Err((cause, diag)) => return self.global_status(msg, cause, &[diag]),
            },
            RestartClass::SingleInterface | RestartClass::AllInterfaces => {
                (Target::All, self.channels.all().collect())
            }
            RestartClass::Other(_) => {
                return self.global_status(msg, Cause::INVALID_IE_CONTENTS, &[ri])
            }
        };
        self.clear_calls_of(&target, &channels);
        let mut ack = Message::new(msg.call_ref.reply(), MessageType::RestartAck);
        for id in [ie::id::CHANNEL_ID, ri] {
            if let Some(raw) = msg.ies.find(id) {
                ack.ies.push_raw(raw.clone());
            }
        }
        self.send(&ack);
        let channels = channels
            .into_iter()
            .filter(|c| self.channels.exists(*c))
            .collect();
        self.event(CallEvent::ChannelsRestarted { channels });
    }

    /// The channels a class "indicated" RESTART names, or the STATUS
    /// cause and diagnostic to refuse it with.
    fn indicated_channels(&self, msg: &Message) -> Result<Vec<u8>, (Cause, u8)> {
        let ci = ie::id::CHANNEL_ID;
        let c = match msg.channel_id() {
            None => return Err((Cause::MANDATORY_IE_MISSING, ci)),
            Some(Err(_)) => return Err((Cause::INVALID_IE_CONTENTS, ci)),
            Some(Ok(c)) => c,
        };
        let list = c.numbers();
        if list.is_empty() || c.d_channel || !c.interface_id.is_empty() {
            return Err((Cause::INVALID_IE_CONTENTS, ci));
        }
        if !list.iter().all(|n| self.variant.is_b_channel(*n)) {
            return Err((Cause::CHANNEL_DOES_NOT_EXIST, ci));
        }
        let mut list = list.to_vec();
        list.sort_unstable();
        list.dedup();
        Ok(list)
    }

    /// RESTART ACKNOWLEDGE: if it answers our RESTART in flight, its
    /// channels are back in service.
    fn on_restart_ack(&mut self, now: Instant, msg: &Message) {
        let Some(p) = &self.restart.in_flight else {
            return;
        };
        let class = msg
            .ies
            .first::<RestartIndicator>()
            .and_then(Result::ok)
            .map(|r| r.class);
        let answers = match &p.target {
            Target::All => matches!(
                class,
                Some(RestartClass::AllInterfaces | RestartClass::SingleInterface)
            ),
            // Q.931 wants the channels echoed; a peer that leaves them
            // out is taken at its word.
            Target::Channels(list) => {
                class == Some(RestartClass::Indicated)
                    && match msg.channel_id().and_then(Result::ok) {
                        None => true,
                        Some(c) => {
                            let mut got = c.numbers().to_vec();
                            got.sort_unstable();
                            let mut want = list.clone();
                            want.sort_unstable();
                            got == want
                        }
                    }
            }
        };
        if !answers {
            return;
        }
        let Some(p) = self.restart.in_flight.take() else {
            return;
        };
        self.restart.t316 = None;
        let channels = self.target_channels(&p.target);
        for ch in &channels {
            self.channels.clear_restarting(*ch);
        }
        self.event(CallEvent::ChannelsRestarted { channels });
        self.next_restart(now);
    }
}
