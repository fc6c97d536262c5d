//! `dial()`: a call's script bridges its caller to a new party. The new
//! leg is placed like any outbound call (trunk, pacing, ring timeout);
//! while it rings the caller hears ringback, or the far end's early media
//! when it sends some; once it answers the two legs are joined both ways
//! (the caller is answered first if the script had not); when the far leg
//! ends the join is undone and the script hears how it went. The caller
//! hanging up ends the far leg (`leg_ended`).

use std::time::Instant;

use super::{cdr, Leg, LegState, Output, Registry};
use crate::call::cause::Cause;
use crate::call::control::{DialRequest, DialResult};
use crate::call::id::{CallId, LegId};
use crate::call::leg::{Direction, EndKind, IncomingLeg, LegCommand, LegEnd, LegEvent};
use crate::call::outcome::Unanswered;

use super::outbound::OriginateRequest;

impl Registry {
    /// The script of `call` dials `req`. The answer comes as
    /// `Output::DialEnded` (at once when the call cannot dial).
    pub fn dial(&mut self, now: Instant, call: CallId, req: DialRequest) {
        let refuse = |r: &mut Registry, outcome: &str| {
            r.outputs.push_back(Output::DialEnded {
                call,
                result: DialResult {
                    outcome: outcome.into(),
                    sip_status: None,
                    q850: None,
                    ring_ms: 0,
                    talk_ms: 0,
                    refined_outcome: outcome.into(),
                    answered_by: None,
                },
            });
        };
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(caller) = c.legs.first().copied() else {
            return;
        };
        if !self.leg_live(caller) {
            return refuse(self, "cancelled");
        }
        // One dial at a time.
        if c.legs.iter().skip(1).any(|l| self.leg_live(*l)) {
            return refuse(self, "failed");
        }
        let index = c.legs.len() as u32;
        let leg = LegId(self.next());
        let request = OriginateRequest {
            amd: false,
            target: req.target.clone(),
            trunk: req.trunk.clone(),
            caller_id: req.caller_id.clone(),
            ring_timeout: req.timeout,
            script: None,
            vars: Vec::new(),
            tag: None,
            pace: None,
        };
        self.legs.insert(
            leg,
            Leg {
                call,
                index,
                direction: Direction::Outbound,
                offer: IncomingLeg {
                    from: req.caller_id.clone().unwrap_or_default(),
                    to: req.target,
                    trunk: req.trunk,
                    external_id: String::new(),
                    transport: "sip",
                    headers: Vec::new(),
                },
                state: LegState::Offered,
                started: now,
                alerted_at: None,
                answered_at: None,
                ended_at: None,
                end: None,
                end_note: None,
                trunk: None,
                ring_deadline: None,
                waiting_until: None,
                request: Some(request),
            },
        );
        if let Some(c) = self.calls.get_mut(&call) {
            c.legs.push(leg);
        }
        if req.amd {
            self.dial_amd_wanted(leg);
        }
        self.place(now, leg);
    }

    /// The caller of `leg`'s call, when `leg` is a dialed party.
    fn dialed_caller(&self, leg: LegId) -> Option<LegId> {
        let l = self.legs.get(&leg)?;
        if l.index == 0 {
            return None;
        }
        self.calls.get(&l.call)?.legs.first().copied()
    }

    /// Progress of a dialed party: ringback, or its early media.
    pub(super) fn dialed_progress(&mut self, leg: LegId, early_media: bool) {
        let Some(a) = self.dialed_caller(leg) else {
            return;
        };
        if early_media {
            self.outputs
                .push_back(Output::Ringback { leg: a, on: false });
            self.outputs.push_back(Output::Join {
                listener: a,
                source: leg,
            });
        } else {
            self.outputs
                .push_back(Output::Ringback { leg: a, on: true });
        }
    }

    /// A dialed party answered: the caller (answered now if need be) and
    /// the party are joined both ways.
    pub(super) fn dialed_answered(&mut self, now: Instant, leg: LegId) {
        let Some(a) = self.dialed_caller(leg) else {
            return;
        };
        if let Some(l) = self.legs.get_mut(&a) {
            if l.state != LegState::Answered && l.state != LegState::Ended {
                l.state = LegState::Answered;
                l.answered_at = Some(now);
                self.outputs.push_back(Output::Leg(a, LegCommand::Answer));
            }
        }
        if self.dial_amd_started(leg) {
            // The caller hears ringback, not the greeting being analysed.
            self.outputs.push_back(Output::Unjoin { listener: a });
            self.outputs
                .push_back(Output::Ringback { leg: a, on: true });
            return;
        }
        self.dialed_join(now, leg);
    }

    /// The caller and the answered party hear each other.
    pub(super) fn dialed_join(&mut self, _now: Instant, leg: LegId) {
        let Some(a) = self.dialed_caller(leg) else {
            return;
        };
        self.outputs
            .push_back(Output::Ringback { leg: a, on: false });
        self.outputs.push_back(Output::Join {
            listener: a,
            source: leg,
        });
        self.outputs.push_back(Output::Join {
            listener: leg,
            source: a,
        });
    }

    /// A dialed party is gone: the caller stops hearing it; the script
    /// learns how it went.
    pub(super) fn dialed_ended(&mut self, now: Instant, leg: LegId) {
        let Some(a) = self.dialed_caller(leg) else {
            return;
        };
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let call = l.call;
        let answered = l.answered_at;
        let end = l.end.clone();
        let ring_ms = ms(answered.unwrap_or(now).saturating_duration_since(l.started));
        let talk_ms = answered.map_or(0, |t| ms(now.saturating_duration_since(t)));
        self.outputs
            .push_back(Output::Ringback { leg: a, on: false });
        self.outputs.push_back(Output::Unjoin { listener: a });
        let kind = end.as_ref().map(|e| e.kind);
        let outcome = cdr::outcome_of(answered.is_some(), kind);
        let refined = crate::call::outcome_refine::refine(outcome, self.early_heard(leg));
        let answered_by = self.dial_amd_result(leg);
        self.outputs.push_back(Output::DialEnded {
            call,
            result: DialResult {
                answered_by,
                refined_outcome: refined.as_string(),
                outcome: outcome.as_str().into(),
                sip_status: end.as_ref().and_then(|e| e.sip_status),
                q850: end.as_ref().map(|e| e.cause.value()),
                ring_ms,
                talk_ms,
            },
        });
    }

    /// The script's `dial()` gave up on the far leg (its own timeout is the
    /// ring timeout; this is for a script ended mid-dial).
    pub fn cancel_dial(&mut self, now: Instant, call: CallId) {
        let legs: Vec<LegId> = self
            .calls
            .get(&call)
            .map(|c| c.legs.iter().skip(1).copied().collect())
            .unwrap_or_default();
        for leg in legs {
            if self.leg_live(leg) {
                self.outputs.push_back(Output::Leg(
                    leg,
                    LegCommand::Hangup {
                        cause: Cause::NORMAL_CLEARING,
                    },
                ));
                let answered = self.legs.get(&leg).map(|l| l.state) == Some(LegState::Answered);
                let kind = if answered {
                    EndKind::LocalHangup
                } else {
                    EndKind::Unanswered(Unanswered::Cancelled)
                };
                self.leg_event(
                    now,
                    leg,
                    LegEvent::Ended(LegEnd::new(kind, Cause::NORMAL_CLEARING)),
                );
            }
        }
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
