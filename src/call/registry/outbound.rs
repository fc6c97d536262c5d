//! Calls rivr places: `originate` creates the call and its first leg, a
//! trunk is picked (channels, pacing, up/down — `call::trunks`), the leg is
//! dialed with a ring deadline, and when it answers the call's script
//! starts. Every attempt ends with one outcome in its CDR.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Call, Leg, LegState, Output, Registry, ScriptStart, ScriptState};
use crate::call::cause::Cause;
use crate::call::control::CallInfo;
use crate::call::id::{CallId, LegId};
use crate::call::leg::{Direction, EndKind, IncomingLeg, LegCommand, LegEnd};
use crate::call::outcome::Unanswered;
use crate::call::trunks::{NoTrunk, Trunks};
use crate::rate::SlidingWindow;

/// How long an outbound call rings when neither the request nor its trunk
/// says.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(45);

/// A call to place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginateRequest {
    /// A number (dialed on a trunk) or a `sip:` URI.
    pub target: String,
    /// Only this trunk (else the first that takes the call).
    pub trunk: Option<String>,
    /// The caller id (else the trunk's).
    pub caller_id: Option<String>,
    pub ring_timeout: Option<Duration>,
    /// The script to run once answered (`None`: hang up at once).
    pub script: Option<PathBuf>,
    /// `call.vars`.
    pub vars: Vec<(String, String)>,
    /// The caller's own id for this attempt (a campaign's attempt id),
    /// carried in the call where the transport can (SIP: the Call-ID and
    /// `X-Rivr-Attempt`), so a restarted rivr recognises what it meets.
    pub tag: Option<String>,
    /// Calls sharing a group start no more than `cps` in any second, on
    /// top of their trunk's own limits: checked where the call is handed
    /// to its transport, so the far end sees the same (a campaign's
    /// `--cps`).
    pub pace: Option<PaceGroup>,
    /// Answering-machine detection once answered, before the script
    /// (`call.answered_by`).
    pub amd: bool,
}

/// A named rate several calls share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceGroup {
    pub name: String,
    pub cps: u32,
}

impl Registry {
    /// The trunks outbound calls may use.
    pub fn with_trunks(mut self, trunks: Trunks) -> Self {
        self.trunks = trunks;
        self
    }

    pub fn trunks(&self) -> &Trunks {
        &self.trunks
    }

    /// The transport says whether a trunk is up.
    pub fn set_trunk_up(&mut self, name: &str, up: bool) {
        self.trunks.set_up(name, up);
    }

    /// Places a call. The call always exists afterwards; if it cannot be
    /// dialed it ends at once with its outcome (CDR).
    pub fn originate(&mut self, now: Instant, req: OriginateRequest) -> CallId {
        let call = CallId(self.next());
        let leg = LegId(self.next());
        let info = CallInfo {
            amd: req.amd,
            id: self.call_id_text(call),
            from: req.caller_id.clone().unwrap_or_default(),
            to: req.target.clone(),
            direction: Direction::Outbound.as_str(),
            started_at: self.wall(now),
            trunk: req.trunk.clone(),
            vars: req.vars.clone(),
            headers: Vec::new(),
            // A contact's `lang` column (or `--var lang=…`), if it names one.
            lang: req
                .vars
                .iter()
                .find(|(k, _)| k == "lang")
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| crate::script::lang::check_tag(v).is_ok())
                .unwrap_or_default(),
        };
        let script = match &req.script {
            Some(_) => ScriptState::Pending,
            None => ScriptState::NotRun("none (no script)".into()),
        };
        self.calls.insert(
            call,
            Call {
                legs: vec![leg],
                script_path: req.script.clone(),
                script,
                info,
                results: Vec::new(),
                tag: req.tag.clone(),
            },
        );
        self.legs.insert(
            leg,
            Leg {
                call,
                index: 0,
                direction: Direction::Outbound,
                offer: IncomingLeg {
                    from: req.caller_id.clone().unwrap_or_default(),
                    to: req.target.clone(),
                    trunk: req.trunk.clone(),
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
                request: Some(req),
            },
        );
        self.place(now, leg);
        call
    }

    /// New caps for a trunk, keeping its calls up and its pace's
    /// history ([`crate::call::trunks::Trunks::set_caps`]).
    pub fn set_trunk_caps(&mut self, name: &str, max_channels: u32, cps: u32) {
        self.trunks.set_caps(name, max_channels, cps);
    }

    /// The server handed the requests of the calls started since the
    /// last call to their transports at `at`: the cps windows count them
    /// from then, not from when they were decided (a slow turn of the
    /// loop between the two would otherwise let a peer count `cps + 1`).
    pub fn starts_sent(&mut self, at: Instant) {
        if !std::mem::take(&mut self.unsent_starts) {
            return;
        }
        self.trunks.confirm_sent(at);
        for w in self.paces.values_mut() {
            w.confirm(at);
        }
    }

    /// Picks a trunk and dials, or waits for pacing, or ends the leg.
    pub(super) fn place(&mut self, now: Instant, leg: LegId) {
        let Some(req) = self.legs.get(&leg).and_then(|l| l.request.clone()) else {
            return;
        };
        let direct = req.trunk.is_none() && req.target.starts_with("sip:");
        if let Some(g) = &req.pace {
            let w = self
                .paces
                .entry(g.name.clone())
                .or_insert_with(|| SlidingWindow::per_second_on_the_wire(g.cps));
            if w.limit() != g.cps.clamp(1, SlidingWindow::MAX_EVENTS) {
                *w = SlidingWindow::per_second_on_the_wire(g.cps);
            }
            if let Err(at) = w.check(now) {
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.waiting_until = Some(at);
                }
                return;
            }
        }
        let trunk = if direct {
            None
        } else {
            match self.trunks.pick(now, req.trunk.as_deref()) {
                Ok(t) => Some(t),
                Err(NoTrunk::Wait(at)) => {
                    if let Some(l) = self.legs.get_mut(&leg) {
                        l.waiting_until = Some(at);
                    }
                    return;
                }
                Err(NoTrunk::Refused(cause)) => {
                    tracing::info!(target = ?req.target, trunk = ?req.trunk, %cause, "no trunk takes the call");
                    let end = LegEnd::new(EndKind::Unanswered(Unanswered::Local(cause)), cause);
                    self.leg_ended(now, leg, end);
                    return;
                }
            }
        };
        if let Some(w) = req.pace.as_ref().and_then(|g| self.paces.get_mut(&g.name)) {
            w.record(now);
        }
        self.unsent_starts = true;
        let limits = trunk
            .as_deref()
            .and_then(|t| self.trunks.limits(t))
            .cloned();
        let ring = req
            .ring_timeout
            .or(limits.as_ref().map(|l| l.ring_timeout))
            .unwrap_or(DEFAULT_RING_TIMEOUT);
        let caller_id = req
            .caller_id
            .clone()
            .or(limits.as_ref().and_then(|l| l.caller_id.clone()));
        let call = match self.legs.get_mut(&leg) {
            Some(l) => {
                l.waiting_until = None;
                l.ring_deadline = Some(now + ring);
                l.state = LegState::Proceeding;
                l.trunk = trunk.clone();
                l.offer.trunk = trunk.clone();
                l.offer.from = caller_id.clone().unwrap_or_default();
                l.call
            }
            None => return,
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.info.trunk = trunk.clone();
            c.info.from = caller_id.clone().unwrap_or_default();
        }
        self.outputs.push_back(Output::Leg(
            leg,
            LegCommand::Originate {
                target: req.target,
                trunk,
                caller_id,
                tag: req.tag,
            },
        ));
    }

    /// An outbound leg answered: the call's script starts (or, with no
    /// script, the call is hung up at once: a reachability test).
    pub(super) fn outbound_answered(&mut self, now: Instant, leg: LegId) {
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        if l.index != 0 {
            return;
        }
        let call = l.call;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match (&c.script, c.script_path.clone()) {
            (ScriptState::Pending, Some(script)) => {
                c.script = ScriptState::Running;
                self.stats.scripts_started += 1;
                self.outputs.push_back(Output::StartScript(ScriptStart {
                    call,
                    leg,
                    script,
                    info: c.info.clone(),
                }));
            }
            _ => {
                self.outputs.push_back(Output::Leg(
                    leg,
                    LegCommand::Hangup {
                        cause: Cause::NORMAL_CLEARING,
                    },
                ));
                self.leg_ended(
                    now,
                    leg,
                    LegEnd::new(EndKind::LocalHangup, Cause::NORMAL_CLEARING),
                );
            }
        }
    }

    /// Outbound timers: legs waiting for pacing, and ring deadlines.
    pub(super) fn outbound_timeout(&mut self, now: Instant) {
        let due: Vec<(LegId, bool)> = self
            .legs
            .iter()
            .filter_map(|(id, l)| {
                if l.waiting_until.is_some_and(|t| t <= now) {
                    Some((*id, true))
                } else if l.ring_deadline.is_some_and(|t| t <= now) {
                    Some((*id, false))
                } else {
                    None
                }
            })
            .collect();
        for (leg, waiting) in due {
            if waiting {
                self.place(now, leg);
                continue;
            }
            // Ring timeout: the transport withdraws the attempt (CANCEL).
            self.outputs.push_back(Output::Leg(
                leg,
                LegCommand::Hangup {
                    cause: Cause::NO_ANSWER,
                },
            ));
            let end = LegEnd::new(
                EndKind::Unanswered(Unanswered::RingTimeout),
                Cause::NO_ANSWER,
            );
            self.leg_ended(now, leg, end);
        }
    }

    pub(super) fn outbound_next_timeout(&self) -> Option<Instant> {
        self.legs
            .values()
            .filter_map(|l| l.waiting_until.or(l.ring_deadline))
            .min()
    }

    /// Runs the registry's due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.outbound_timeout(now);
        self.early_timeout(now);
    }

    /// When the registry next wants `handle_timeout`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let early = self.early_next_timeout();
        match (self.outbound_next_timeout(), early) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
