//! PRI legs: the glue between the spans' Q.931 call control (`pri::span`,
//! one task per span) and the call layer (`call::registry`), beside
//! `sip_legs`. It turns the registry's leg commands into span commands and
//! the spans' call events into leg events, picks the span of an outbound
//! call by its trunk's hunting order, and gives each leg its B-channel
//! media (`Env::media_add_bchannel`: the timeslot's socket or DAHDI
//! channel, by the span's transport, in the span's law). Sans-IO: span commands come out of [`PriLegs::poll_command`] for
//! the server loop to send, events go in with `now`.
//!
//! A leg's `transport_id` (and so its CDR's) is `span/timeslot`.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use super::env::Env;
use crate::call::cause::Cause;
use crate::call::id::{CallId, LegId};
use crate::call::leg::{Direction, EndKind, IncomingLeg, LegCommand, LegEnd, LegEvent};
use crate::call::outcome::Unanswered;
use crate::call::registry::Registry;
use crate::codec::{Codec, Law};
use crate::config::{Hunt, PriTrunkConfig, SpanConfig, SpanTransport};
use crate::media::worker::BChannelKind;
use crate::pri::q931::ie::{CalledNumber, CallingNumber, NumberingPlan, TypeOfNumber};
use crate::pri::q931::{self, CallEvent, IncomingCall, OutgoingCall, SetupError};
use crate::pri::span::{SpanCommand, SpanEvent};

/// One span as the glue sees it.
struct Span {
    cfg: SpanConfig,
    /// The PRI trunk it belongs to.
    trunk: Option<String>,
    up: bool,
    /// Calls holding (or about to hold) one of its channels.
    busy: usize,
}

/// Where a leg is with its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// A SETUP was asked for; the span has not said yet.
    Placing(u64),
    /// Q.931 knows the call.
    Up(q931::CallId),
}

struct PriLeg {
    call: CallId,
    span: usize,
    stage: Stage,
    direction: Direction,
    channel: Option<u8>,
    law: Law,
    /// The media is set up on `channel`.
    media: bool,
    answered: bool,
    /// The far end said something (SETUP ACK, proceeding, alerting).
    responded: bool,
    /// The call layer ended the leg; only the span's release is awaited.
    ended: bool,
    /// An outbound leg's request, kept to try the trunk's next span.
    outgoing: Option<Box<OutgoingCall>>,
    /// Spans tried for an outbound leg.
    tried: Vec<usize>,
}

pub struct PriLegs {
    spans: Vec<Span>,
    trunks: Vec<PriTrunkConfig>,
    /// Round-robin position per trunk.
    rr: HashMap<String, usize>,
    legs: HashMap<LegId, PriLeg>,
    by_call: HashMap<(usize, q931::CallId), LegId>,
    by_token: HashMap<u64, LegId>,
    /// Q.931 calls the call layer is done with, until they are released.
    lingering: HashMap<(usize, q931::CallId), ()>,
    next_token: u64,
    commands: VecDeque<(usize, SpanCommand)>,
}

impl PriLegs {
    pub fn new(spans: Vec<SpanConfig>, trunks: Vec<PriTrunkConfig>) -> Self {
        let spans = spans
            .into_iter()
            .map(|cfg| Span {
                trunk: trunks
                    .iter()
                    .find(|t| t.spans.contains(&cfg.name))
                    .map(|t| t.name.clone()),
                cfg,
                up: false,
                busy: 0,
            })
            .collect();
        PriLegs {
            spans,
            trunks,
            rr: HashMap::new(),
            legs: HashMap::new(),
            by_call: HashMap::new(),
            by_token: HashMap::new(),
            lingering: HashMap::new(),
            next_token: 0,
            commands: VecDeque::new(),
        }
    }

    /// The next command for span number `.0` (in config order).
    #[must_use]
    pub fn poll_command(&mut self) -> Option<(usize, SpanCommand)> {
        self.commands.pop_front()
    }

    /// PRI calls not yet released (legs, and calls clearing).
    pub fn pending(&self) -> usize {
        self.legs.len() + self.lingering.len()
    }

    /// Whether `leg` is a PRI leg.
    pub fn owns(&self, leg: LegId) -> bool {
        self.legs.contains_key(&leg)
    }

    /// Whether `trunk` names a PRI trunk.
    pub fn is_pri_trunk(&self, trunk: &str) -> bool {
        self.trunks.iter().any(|t| t.name == trunk)
    }

    /// Calls on a span's channels, and whether its link is up (tests,
    /// metrics).
    pub fn span_state(&self, name: &str) -> Option<(usize, bool)> {
        self.spans
            .iter()
            .find(|s| s.cfg.name == name)
            .map(|s| (s.busy, s.up))
    }

    fn transport_id(&self, span: usize, channel: Option<u8>) -> String {
        let name = self.spans.get(span).map_or("?", |s| s.cfg.name.as_str());
        match channel {
            Some(ch) => format!("{name}/{ch}"),
            None => name.to_string(),
        }
    }

    /// The timeslot's channel and how to reach it.
    fn bchannel(&self, span: usize, channel: u8) -> Option<(PathBuf, BChannelKind)> {
        self.spans.get(span).map(|s| {
            let kind = match s.cfg.transport {
                SpanTransport::Socket => BChannelKind::Socket,
                SpanTransport::Dahdi => BChannelKind::Dahdi,
            };
            (s.cfg.bchannel_path(channel), kind)
        })
    }

    /// A command of the call layer for one of the PRI legs (or an
    /// `Originate` on a PRI trunk).
    pub fn apply(
        &mut self,
        now: Instant,
        leg: LegId,
        cmd: LegCommand,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        if let LegCommand::Originate {
            target,
            trunk,
            caller_id,
            ..
        } = cmd
        {
            self.originate(now, leg, &target, trunk.as_deref(), caller_id, reg);
            return;
        }
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let span = l.span;
        let stage = l.stage;
        match cmd {
            LegCommand::Originate { .. } => {}
            LegCommand::Proceed => self.proceed(now, leg, reg, env),
            LegCommand::Alert { early_media } => {
                if let Stage::Up(q) = stage {
                    let c = if early_media {
                        SpanCommand::AlertingInband(q)
                    } else {
                        SpanCommand::Alerting(q)
                    };
                    self.commands.push_back((span, c));
                    if early_media {
                        start_media(env, leg, true);
                    }
                }
            }
            LegCommand::Answer => {
                if let Stage::Up(q) = stage {
                    self.commands.push_back((span, SpanCommand::Connect(q)));
                    start_media(env, leg, false);
                    if let Some(l) = self.legs.get_mut(&leg) {
                        l.answered = true;
                    }
                }
            }
            LegCommand::Reject { cause, .. } => {
                if let Stage::Up(q) = stage {
                    self.commands
                        .push_back((span, SpanCommand::Reject(q, cause)));
                }
                self.forget(leg, env);
            }
            LegCommand::Hangup { cause } => {
                if let Stage::Up(q) = stage {
                    self.commands
                        .push_back((span, SpanCommand::Disconnect(q, cause)));
                }
                // A SETUP still to be answered is cleared when it is.
                self.forget(leg, env);
            }
            // Q.931 explicit call transfer is not implemented.
            LegCommand::Transfer { .. } => reg.leg_event(
                now,
                leg,
                crate::call::leg::LegEvent::TransferEnded {
                    ok: false,
                    status: 501,
                    reason: "transfer is not supported on PRI".into(),
                },
            ),
        }
    }

    /// The call layer is done with `leg`: its media goes; its Q.931 call
    /// lingers until the span releases it.
    fn forget(&mut self, leg: LegId, env: &mut dyn Env) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        l.ended = true;
        if l.media {
            l.media = false;
            env.media_remove(leg);
        }
        if let Stage::Up(q) = l.stage {
            let key = (l.span, q);
            self.by_call.remove(&key);
            self.lingering.insert(key, ());
            self.legs.remove(&leg);
        }
    }

    /// The registry took an offered call: CALL PROCEEDING, the B-channel's
    /// media, and the leg is ready for its script.
    fn proceed(&mut self, now: Instant, leg: LegId, reg: &mut Registry, env: &mut dyn Env) {
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let (span, call, channel, law) = (l.span, l.call, l.channel, l.law);
        let Stage::Up(q) = l.stage else {
            return;
        };
        self.commands.push_back((span, SpanCommand::Proceeding(q)));
        let added = channel
            .and_then(|ch| self.bchannel(span, ch))
            .ok_or_else(|| "no B-channel".to_string())
            .and_then(|(path, kind)| env.media_add_bchannel(call, leg, path, kind, codec_of(law)));
        match added {
            Ok(()) => {
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.media = true;
                }
                reg.leg_event(now, leg, LegEvent::MediaReady);
            }
            Err(e) => {
                tracing::warn!(leg = %leg, error = %e, "no media for the B-channel: refused with 47");
                reg.script_not_started(
                    now,
                    call,
                    Cause::RESOURCE_UNAVAILABLE,
                    None,
                    "no B-channel media",
                );
            }
        }
    }

    /// Places an outbound leg on the trunk's next span with a free channel.
    fn originate(
        &mut self,
        now: Instant,
        leg: LegId,
        target: &str,
        trunk: Option<&str>,
        caller_id: Option<String>,
        reg: &mut Registry,
    ) {
        let Some(call) = reg.call_of(leg) else {
            return;
        };
        let fail = |reg: &mut Registry, cause: Cause, why: &str| {
            tracing::info!(leg = %leg, target = ?target, why, "cannot place the call");
            let end = LegEnd::new(EndKind::Unanswered(Unanswered::Local(cause)), cause);
            reg.leg_event(now, leg, LegEvent::Ended(end));
        };
        let Some(t) = trunk.and_then(|n| self.trunks.iter().find(|t| t.name == n)) else {
            return fail(reg, Cause::NO_ROUTE_DESTINATION, "no such PRI trunk");
        };
        let (ton, digits) = match target.strip_prefix('+') {
            Some(d) => (TypeOfNumber::International, d),
            None => (TypeOfNumber::Unknown, target),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return fail(
                reg,
                Cause::INVALID_NUMBER_FORMAT,
                "a PRI trunk dials digits",
            );
        }
        let Ok(called) = CalledNumber::new(ton, NumberingPlan::Isdn, digits) else {
            return fail(reg, Cause::INVALID_NUMBER_FORMAT, "not a number");
        };
        let mut req = OutgoingCall::new(called);
        let caller = caller_id.or_else(|| t.caller_id.clone());
        if let Some(c) = caller.as_deref() {
            let (ton, digits) = match c.strip_prefix('+') {
                Some(d) => (TypeOfNumber::International, d),
                None => (TypeOfNumber::Unknown, c),
            };
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                req.calling = CallingNumber::new(ton, NumberingPlan::Isdn, None, digits).ok();
            }
        }
        let trunk_name = t.name.clone();
        self.legs.insert(
            leg,
            PriLeg {
                call,
                span: usize::MAX,
                stage: Stage::Placing(0),
                direction: Direction::Outbound,
                channel: None,
                law: Law::Alaw,
                media: false,
                answered: false,
                responded: false,
                ended: false,
                outgoing: Some(Box::new(req)),
                tried: Vec::new(),
            },
        );
        if !self.try_next_span(leg, &trunk_name) {
            self.legs.remove(&leg);
            let cause = Cause::NO_CIRCUIT_AVAILABLE;
            fail(reg, cause, "no span of the trunk is up with a free channel");
        }
    }

    /// Sends the leg's SETUP on the trunk's next span (by its hunting
    /// order) that is up, has a free channel and was not tried; false if
    /// none is left.
    fn try_next_span(&mut self, leg: LegId, trunk: &str) -> bool {
        let Some(t) = self.trunks.iter().find(|t| t.name == trunk) else {
            return false;
        };
        let Some(l) = self.legs.get(&leg) else {
            return false;
        };
        let order: Vec<usize> = t
            .spans
            .iter()
            .filter_map(|n| self.spans.iter().position(|s| &s.cfg.name == n))
            .collect();
        let n = order.len();
        if n == 0 {
            return false;
        }
        let start = match t.hunt {
            Hunt::Lowest | Hunt::Highest => 0,
            Hunt::RoundRobin => self.rr.get(trunk).copied().unwrap_or(0) % n,
        };
        let pick = (0..n)
            .filter_map(|i| match t.hunt {
                Hunt::Highest => order.get(n - 1 - i).copied(),
                _ => order.get((start + i) % n).copied(),
            })
            .find(|&s| {
                !l.tried.contains(&s)
                    && self
                        .spans
                        .get(s)
                        .is_some_and(|sp| sp.up && sp.busy < sp.cfg.channels.len())
            });
        let Some(span) = pick else {
            return false;
        };
        if t.hunt == Hunt::RoundRobin {
            let next = order.iter().position(|&s| s == span).unwrap_or(0) + 1;
            self.rr.insert(trunk.to_string(), next);
        }
        let Some(req) = self.legs.get(&leg).and_then(|l| l.outgoing.clone()) else {
            return false;
        };
        self.next_token += 1;
        let token = self.next_token;
        let Some(sp) = self.spans.get_mut(span) else {
            return false;
        };
        sp.busy += 1;
        let law = sp.cfg.law;
        if let Some(l) = self.legs.get_mut(&leg) {
            l.span = span;
            l.stage = Stage::Placing(token);
            l.tried.push(span);
            l.law = law;
        }
        self.by_token.insert(token, leg);
        self.commands
            .push_back((span, SpanCommand::Setup { token, call: req }));
        true
    }

    /// An event of span number `span`.
    pub fn on_span_event(
        &mut self,
        now: Instant,
        span: usize,
        ev: SpanEvent,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        match ev {
            SpanEvent::LinkUp | SpanEvent::LinkDown => {
                let up = ev == SpanEvent::LinkUp;
                let Some(s) = self.spans.get_mut(span) else {
                    return;
                };
                s.up = up;
                tracing::info!(span = %s.cfg.name, up, "PRI span's D-channel link");
                if let Some(t) = s.trunk.clone() {
                    let any_up = self
                        .spans
                        .iter()
                        .any(|s| s.up && s.trunk.as_deref() == Some(t.as_str()));
                    reg.set_trunk_up(&t, any_up);
                }
            }
            SpanEvent::Placed {
                token,
                result,
                channel,
            } => self.placed(now, span, token, result, channel, reg, env),
            SpanEvent::Refused(q, e) => {
                tracing::debug!(span, call = %q, error = %e, "span refused a request");
            }
            SpanEvent::Call(ev) => self.call_event(now, span, ev, reg, env),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn placed(
        &mut self,
        now: Instant,
        span: usize,
        token: u64,
        result: Result<q931::CallId, SetupError>,
        channel: Option<u8>,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        let Some(leg) = self.by_token.remove(&token) else {
            return;
        };
        let q = match result {
            Ok(q) => q,
            Err(e) => {
                if let Some(s) = self.spans.get_mut(span) {
                    s.busy = s.busy.saturating_sub(1);
                }
                let trunk = self.spans.get(span).and_then(|s| s.trunk.clone());
                let ended = self.legs.get(&leg).is_none_or(|l| l.ended);
                let retry = matches!(e, SetupError::NoChannel | SetupError::LinkDown);
                if !ended && retry && trunk.is_some_and(|t| self.try_next_span(leg, &t)) {
                    return;
                }
                self.legs.remove(&leg);
                if !ended {
                    let cause = e.cause();
                    tracing::info!(leg = %leg, error = %e, "no SETUP sent");
                    let end = LegEnd::new(EndKind::Unanswered(Unanswered::Local(cause)), cause);
                    reg.leg_event(now, leg, LegEvent::Ended(end));
                }
                return;
            }
        };
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        l.stage = Stage::Up(q);
        if l.ended {
            // Hung up while the SETUP was on its way: clear it now.
            self.commands
                .push_back((span, SpanCommand::Disconnect(q, Cause::NORMAL_CLEARING)));
            self.lingering.insert((span, q), ());
            self.legs.remove(&leg);
            return;
        }
        self.by_call.insert((span, q), leg);
        match channel {
            // Media from the start: in-band tones of the network (ringback,
            // announcements) are heard before the answer.
            Some(ch) => self.media_on(now, leg, ch, reg, env),
            None => reg.leg_event(
                now,
                leg,
                LegEvent::Placed {
                    transport_id: self.transport_id(span, None),
                    transport: "pri",
                },
            ),
        }
    }

    /// Sets up (or moves) an outbound leg's media to `channel`.
    fn media_on(
        &mut self,
        now: Instant,
        leg: LegId,
        channel: u8,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        if l.media && l.channel == Some(channel) {
            return;
        }
        let (span, call, law, had) = (l.span, l.call, l.law, l.media);
        if had {
            env.media_remove(leg);
        }
        let Some((path, kind)) = self.bchannel(span, channel) else {
            return;
        };
        let ok = env
            .media_add_bchannel(call, leg, path, kind, codec_of(law))
            .is_ok();
        if let Some(l) = self.legs.get_mut(&leg) {
            l.channel = Some(channel);
            l.media = ok;
        }
        reg.leg_event(
            now,
            leg,
            LegEvent::Placed {
                transport_id: self.transport_id(span, Some(channel)),
                transport: "pri",
            },
        );
        if !ok {
            tracing::warn!(leg = %leg, "no media for the B-channel");
        }
    }

    fn call_event(
        &mut self,
        now: Instant,
        span: usize,
        ev: CallEvent,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        if let CallEvent::Incoming(inc) = ev {
            self.incoming(now, span, *inc, reg);
            return;
        }
        let Some(q) = ev.call() else {
            return;
        };
        if let CallEvent::Released { .. } = ev {
            if let Some(s) = self.spans.get_mut(span) {
                s.busy = s.busy.saturating_sub(1);
            }
        }
        if self.lingering.contains_key(&(span, q)) {
            if let CallEvent::Released { .. } = ev {
                self.lingering.remove(&(span, q));
            }
            return;
        }
        let Some(&leg) = self.by_call.get(&(span, q)) else {
            return;
        };
        match ev {
            CallEvent::SetupAcknowledged { channel, .. }
            | CallEvent::Proceeding { channel, .. } => {
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.responded = true;
                }
                if let Some(ch) = channel.or_else(|| self.offered(leg)) {
                    self.media_on(now, leg, ch, reg, env);
                }
            }
            CallEvent::Alerting {
                channel, inband, ..
            } => {
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.responded = true;
                }
                if let Some(ch) = channel.or_else(|| self.offered(leg)) {
                    self.media_on(now, leg, ch, reg, env);
                }
                reg.leg_event(
                    now,
                    leg,
                    LegEvent::Progress {
                        early_media: inband,
                    },
                );
            }
            CallEvent::Progress { inband, .. } => {
                if inband {
                    reg.leg_event(now, leg, LegEvent::Progress { early_media: true });
                }
            }
            CallEvent::Connected { channel, .. } => {
                let outbound = self
                    .legs
                    .get(&leg)
                    .is_some_and(|l| l.direction == Direction::Outbound);
                if outbound {
                    self.media_on(now, leg, channel, reg, env);
                    start_media(env, leg, false);
                    if let Some(l) = self.legs.get_mut(&leg) {
                        l.answered = true;
                        l.responded = true;
                    }
                    reg.leg_event(now, leg, LegEvent::Answered);
                }
                // Active in Q.931's sense (an answered incoming call on the
                // user side once CONNECT ACKNOWLEDGE came): from now on a
                // data-link failure keeps it until T309.
                let span_name = self.spans.get(span).map_or("?", |s| s.cfg.name.as_str());
                tracing::info!(leg = %leg, span = %span_name, channel, "PRI call active");
            }
            CallEvent::Disconnected { .. } => {
                // The media stops now; the end is reported with Released.
                if let Some(l) = self.legs.get_mut(&leg) {
                    if l.media {
                        l.media = false;
                        env.media_remove(leg);
                    }
                }
            }
            CallEvent::Released { cause, .. } => {
                self.by_call.remove(&(span, q));
                let Some(l) = self.legs.remove(&leg) else {
                    return;
                };
                if l.media {
                    env.media_remove(leg);
                }
                if l.ended {
                    return;
                }
                let kind = match (l.answered, l.direction) {
                    (true, _) => EndKind::RemoteHangup,
                    (false, Direction::Inbound) => EndKind::RemoteCancel,
                    (false, Direction::Outbound)
                        if !l.responded && cause == Cause::RECOVERY_ON_TIMER_EXPIRY =>
                    {
                        EndKind::Unanswered(Unanswered::NoResponse)
                    }
                    (false, Direction::Outbound) => EndKind::Unanswered(Unanswered::Refused {
                        cause,
                        sip_status: None,
                    }),
                };
                let mut end = LegEnd::new(kind, cause);
                end.reason = Some(cause.text().to_string());
                reg.leg_event(now, leg, LegEvent::Ended(end));
            }
            CallEvent::Digits { .. }
            | CallEvent::Incoming(_)
            | CallEvent::ChannelsRestarted { .. }
            | CallEvent::RestartFailed { .. } => {}
        }
    }

    /// The channel an outbound leg's SETUP offered (its span's pick).
    fn offered(&self, leg: LegId) -> Option<u8> {
        self.legs.get(&leg).and_then(|l| l.channel)
    }

    /// A SETUP from the network: the call layer routes it by the called
    /// number like a SIP INVITE.
    fn incoming(&mut self, now: Instant, span: usize, inc: IncomingCall, reg: &mut Registry) {
        let Some(s) = self.spans.get_mut(span) else {
            return;
        };
        s.busy += 1;
        let law = inc.bearer.law().unwrap_or(s.cfg.law);
        let offer = IncomingLeg {
            from: inc
                .calling
                .as_ref()
                .filter(|c| c.presentation_allowed())
                .map(|c| c.digits.as_str().to_string())
                .unwrap_or_else(|| "anonymous".into()),
            to: inc
                .called
                .as_ref()
                .map(|c| c.digits.as_str().to_string())
                .unwrap_or_default(),
            trunk: s.trunk.clone(),
            external_id: format!("{}/{}", s.cfg.name, inc.channel),
            transport: "pri",
            headers: Vec::new(),
        };
        let leg = reg.incoming(now, offer);
        // A call refused at once (admission) has no call in the registry,
        // but its refusal still comes here to be sent.
        let call = reg.call_of(leg).unwrap_or(CallId(0));
        self.by_call.insert((span, inc.call), leg);
        self.legs.insert(
            leg,
            PriLeg {
                call,
                span,
                stage: Stage::Up(inc.call),
                direction: Direction::Inbound,
                channel: Some(inc.channel),
                law,
                media: false,
                answered: false,
                responded: true,
                ended: false,
                outgoing: None,
                tried: vec![span],
            },
        );
    }
}

fn codec_of(law: Law) -> Codec {
    match law {
        Law::Alaw => Codec::Pcma,
        Law::Ulaw => Codec::Pcmu,
    }
}

fn start_media(env: &mut dyn Env, leg: LegId, early: bool) {
    env.media(
        leg,
        crate::media::worker::MediaCommand::Start {
            call: crate::media::events::MediaId(leg.0),
            early,
        },
    );
}

#[cfg(test)]
#[path = "pri_legs_tests.rs"]
mod tests;
