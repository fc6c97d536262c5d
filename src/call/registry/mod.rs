//! The call registry: what rivr does with every call, whatever transport
//! carries it. It routes an offered call to its script, admits or refuses
//! it, starts and tracks the script, carries the script's signalling verbs
//! to the call's legs, and closes the call once — every leg ended, the
//! script finished, one CDR record per leg.
//!
//! Sans-IO: inputs are method calls with `now`; decisions come out of
//! `poll_output()` (leg commands for the transports, script starts and
//! wake-ups, CDR records for the writer). It owns no socket, thread or
//! channel; the server's glue holds those, keyed by the ids handed out here.
//! The wall clock is derived from one anchor given at construction, so a
//! virtual clock drives everything in tests.

mod bridge;
mod cdr;
mod dial_amd;
mod early;
#[cfg(test)]
mod early_tests;
mod live;
mod outbound;
#[cfg(test)]
mod outbound_tests;
#[cfg(test)]
mod tests;
mod transfer;
#[cfg(test)]
mod transfer_tests;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

pub use cdr::CdrRecord;
pub use early::SIT_AFTER_ANSWER;
pub use live::{LiveCall, LiveLeg};
pub use outbound::{OriginateRequest, PaceGroup};

use crate::call::admission::{Admission, Decision};
use crate::call::cause::Cause;
use crate::call::control::{CallEnded, CallInfo, DialResult, TransferResult};
use crate::call::id::{CallId, LegId};
use crate::call::leg::{Direction, EndKind, IncomingLeg, LegCommand, LegEnd, LegEvent};
use crate::call::outcome::Unanswered;
use crate::call::trunks::Trunks;
use crate::config::Route;
use crate::rate::LogThrottle;

/// What the registry decided; the glue acts on each in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A command for the transport that carries `LegId`.
    Leg(LegId, LegCommand),
    /// Start the call's script (its media is ready).
    StartScript(ScriptStart),
    /// The call's signalling is over while its script may still run: wake
    /// the script (its next verb ends it).
    CallGone(CallId),
    /// One finished leg, for the CDR file.
    Cdr(CdrRecord),
    /// The call is closed (after its CDR records): forget it.
    Closed(CallId),
    /// Generated ringback to `leg` on or off (a dialed party rings).
    Ringback { leg: LegId, on: bool },
    /// `listener` hears `source` (a bridge is two joins).
    Join { listener: LegId, source: LegId },
    /// `listener` stops hearing whatever it was joined to.
    Unjoin { listener: LegId },
    /// The party the script dialed is gone.
    DialEnded { call: CallId, result: DialResult },
    /// The script's `transfer()` is over.
    TransferEnded {
        call: CallId,
        result: TransferResult,
    },
    /// Classify an outbound leg's early media (SIT, ringback, busy,
    /// announcement), or stop; what is heard comes back by
    /// [`Registry::early_media_heard`].
    ClassifyEarlyMedia { leg: LegId, on: bool },
    /// Run answering-machine detection on a dialed party that answered;
    /// the verdict comes back by [`Registry::dial_amd_verdict`].
    DetectMachine { leg: LegId },
}

/// Everything needed to start a call's script.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStart {
    pub call: CallId,
    /// The leg the script talks to (the caller).
    pub leg: LegId,
    pub script: PathBuf,
    pub info: CallInfo,
}

/// A signalling verb of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptCommand {
    Answer,
    /// 180, or 183 with early media.
    Ring {
        early_media: bool,
    },
    /// `reject(code)`: a SIP-style status a script wrote (486, 603, …).
    Reject {
        status: u16,
    },
    Hangup,
}

/// Counters for metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RegistryStats {
    pub offered: u64,
    /// Refused by admission control (`max_calls`, `max_cps`): 503.
    pub refused_overload: u64,
    pub no_route: u64,
    pub scripts_started: u64,
    pub scripts_not_started: u64,
    pub closed: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum ScriptState {
    /// No script will run; the text goes into the CDR (`none (…)`).
    NotRun(String),
    /// Routed; waits for the leg's media.
    Pending,
    Running,
    Done(String),
}

struct Call {
    legs: Vec<LegId>,
    script_path: Option<PathBuf>,
    script: ScriptState,
    info: CallInfo,
    results: Vec<(String, String)>,
    /// `OriginateRequest::tag` (a campaign attempt), for the CDR.
    tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    Offered,
    Proceeding,
    Alerting { early_media: bool },
    Answered,
    Ended,
}

struct Leg {
    call: CallId,
    index: u32,
    direction: Direction,
    offer: IncomingLeg,
    state: LegState,
    started: Instant,
    alerted_at: Option<Instant>,
    answered_at: Option<Instant>,
    ended_at: Option<Instant>,
    end: Option<LegEnd>,
    /// An end the registry itself decided (shutdown), shown in the CDR in
    /// place of the transport's.
    end_note: Option<&'static str>,
    /// The trunk whose channel an outbound leg holds.
    trunk: Option<String>,
    /// When an outbound leg not yet answered is given up (ring timeout).
    ring_deadline: Option<Instant>,
    /// An outbound leg waiting for its trunk's pacing.
    waiting_until: Option<Instant>,
    /// The originate request, kept until the leg is dialed.
    request: Option<OriginateRequest>,
}

pub struct Registry {
    routes: Vec<Route>,
    /// Makes call ids unique across restarts (and nodes): a random prefix.
    instance: String,
    next_id: u64,
    calls: HashMap<CallId, Call>,
    legs: HashMap<LegId, Leg>,
    outputs: VecDeque<Output>,
    anchor: (Instant, SystemTime),
    stats: RegistryStats,
    /// `[limits] max_calls`/`max_cps`; a call counts until it closes
    /// (a leg up, or its script still running).
    admission: Option<Admission>,
    refusal_log: LogThrottle,
    trunks: Trunks,
    /// `OriginateRequest::pace` groups.
    paces: HashMap<String, crate::rate::SlidingWindow>,
    /// Outbound calls started whose requests the server has not yet said
    /// it sent ([`Registry::starts_sent`]).
    unsent_starts: bool,
    /// Callers' legs being transferred, with the target (for the CDR).
    transfers: HashMap<LegId, String>,
    /// What outbound legs' early media said (`early`).
    early: HashMap<LegId, early::EarlyHeard>,
    /// Dialed parties analysed by AMD before the join, and the verdict
    /// (`dial_amd`).
    dial_amd: HashMap<LegId, Option<String>>,
}

impl Registry {
    /// `now`/`wall` anchor the wall clock; `instance` prefixes call ids.
    pub fn new(routes: Vec<Route>, now: Instant, wall: SystemTime, instance: u32) -> Self {
        Registry {
            admission: None,
            refusal_log: LogThrottle::new(Duration::from_secs(10)),
            trunks: Trunks::default(),
            paces: HashMap::new(),
            unsent_starts: false,
            transfers: HashMap::new(),
            early: HashMap::new(),
            dial_amd: HashMap::new(),
            routes,
            instance: format!("{instance:08x}"),
            next_id: 1,
            calls: HashMap::new(),
            legs: HashMap::new(),
            outputs: VecDeque::new(),
            anchor: (now, wall),
            stats: RegistryStats::default(),
        }
    }

    /// Admission control for offered calls.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = Some(admission);
        self
    }

    pub fn admission(&self) -> Option<&Admission> {
        self.admission.as_ref()
    }

    /// While the server drains, every offered call is refused 503 with
    /// `retry_after` (`None`: calls are taken again). Needs admission
    /// control, which `rivr serve` always has.
    pub fn set_draining(&mut self, retry_after: Option<Duration>) {
        if let Some(a) = self.admission.as_mut() {
            a.set_draining(retry_after);
        }
    }

    /// `Some(retry_after)` while a new call would be refused for more than
    /// the moment: draining, or `max_calls` calls held
    /// (`Admission::unavailable`).
    pub fn unavailable(&self) -> Option<Duration> {
        self.admission
            .as_ref()
            .and_then(|a| a.unavailable(self.calls.len()))
    }

    pub fn stats(&self) -> &RegistryStats {
        &self.stats
    }

    /// Calls with a leg still up.
    pub fn active(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.legs.iter().any(|l| self.leg_live(*l)))
            .count()
    }

    /// Calls not yet closed (a leg up, or the script still running).
    pub fn tracked(&self) -> usize {
        self.calls.len()
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The script's id string for a call (`call.id`, the CDR's `call_id`).
    pub fn call_id_text(&self, call: CallId) -> String {
        format!("{}-{}", self.instance, call.0)
    }

    /// The call a leg belongs to.
    pub fn call_of(&self, leg: LegId) -> Option<CallId> {
        self.legs.get(&leg).map(|l| l.call)
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.anchor.1 + now.saturating_duration_since(self.anchor.0)
    }

    fn next(&mut self) -> u64 {
        let n = self.next_id;
        self.next_id += 1;
        n
    }

    fn leg_live(&self, leg: LegId) -> bool {
        self.legs
            .get(&leg)
            .is_some_and(|l| l.state != LegState::Ended)
    }

    /// A transport offers a new call. Returns the leg's id; the decision
    /// (`Proceed`, or `Reject` with a cause) comes out of `poll_output`.
    pub fn incoming(&mut self, now: Instant, offer: IncomingLeg) -> LegId {
        self.stats.offered += 1;
        let call = CallId(self.next());
        let leg = LegId(self.next());
        let in_progress = self.calls.len();
        if let Some(Decision::Refuse { why, retry_after }) =
            self.admission.as_mut().map(|a| a.decide(now, in_progress))
        {
            // Before routing, so a refusal says nothing about the number,
            // and with no CDR: a flood must not become disk writes.
            self.stats.refused_overload += 1;
            if let Some(held_back) = self.refusal_log.event(now) {
                tracing::warn!(
                    why = ?why,
                    retry_after_s = crate::rate::retry_after_secs(retry_after),
                    in_progress,
                    more_since_last_line = held_back,
                    "call refused by admission control: 503"
                );
            }
            self.outputs.push_back(Output::Leg(
                leg,
                LegCommand::Reject {
                    cause: Cause::SWITCHING_CONGESTION,
                    sip_status: Some(503),
                    retry_after: Some(retry_after),
                },
            ));
            return leg;
        }
        let info = CallInfo {
            amd: false,
            id: self.call_id_text(call),
            from: offer.from.clone(),
            to: offer.to.clone(),
            direction: Direction::Inbound.as_str(),
            started_at: self.wall(now),
            trunk: offer.trunk.clone(),
            vars: Vec::new(),
            headers: offer.headers.clone(),
            lang: String::new(),
        };
        let route = self
            .routes
            .iter()
            .find(|r| r.number.as_deref() == Some(offer.to.as_str()))
            .or_else(|| self.routes.iter().find(|r| r.number.is_none()));
        let info = CallInfo {
            lang: route.and_then(|r| r.lang.clone()).unwrap_or_default(),
            ..info
        };
        let route = route.map(|r| r.script.clone());
        self.legs.insert(
            leg,
            Leg {
                call,
                index: 0,
                direction: Direction::Inbound,
                offer,
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
                request: None,
            },
        );
        let script = match &route {
            Some(_) => ScriptState::Pending,
            None => ScriptState::NotRun("none (no route)".into()),
        };
        self.calls.insert(
            call,
            Call {
                legs: vec![leg],
                script_path: route,
                script,
                info,
                results: Vec::new(),
                tag: None,
            },
        );
        if self
            .calls
            .get(&call)
            .is_some_and(|c| c.script_path.is_none())
        {
            self.stats.no_route += 1;
            self.refuse(now, leg, Cause::UNALLOCATED_NUMBER, None, None);
        } else {
            if let Some(l) = self.legs.get_mut(&leg) {
                l.state = LegState::Proceeding;
            }
            self.outputs
                .push_back(Output::Leg(leg, LegCommand::Proceed));
        }
        leg
    }

    /// Refuses an unanswered leg and records why no script runs.
    fn refuse(
        &mut self,
        now: Instant,
        leg: LegId,
        cause: Cause,
        sip_status: Option<u16>,
        retry_after: Option<Duration>,
    ) {
        if !self.leg_live(leg) {
            return;
        }
        if self
            .legs
            .get(&leg)
            .is_some_and(|l| l.direction == Direction::Outbound)
        {
            // rivr withdraws its own attempt: CANCEL, not a refusal.
            self.outputs
                .push_back(Output::Leg(leg, LegCommand::Hangup { cause }));
            let end = LegEnd::new(EndKind::Unanswered(Unanswered::Cancelled), cause);
            self.leg_ended(now, leg, end);
            return;
        }
        self.outputs.push_back(Output::Leg(
            leg,
            LegCommand::Reject {
                cause,
                sip_status,
                retry_after,
            },
        ));
        let status = sip_status.unwrap_or_else(|| cause.to_sip_status());
        let end = LegEnd {
            kind: EndKind::LocalReject,
            cause,
            sip_status: Some(status),
            reason: Some(cause.text().to_string()),
        };
        self.leg_ended(now, leg, end);
    }

    /// The call cannot run its script (no thread slot, no RTP port, no
    /// common codec): refuse it with `cause` (and `sip_status` when the
    /// cause's own status would be wrong, e.g. 488) and say why in the CDR.
    pub fn script_not_started(
        &mut self,
        now: Instant,
        call: CallId,
        cause: Cause,
        sip_status: Option<u16>,
        why: &str,
    ) {
        self.stats.scripts_not_started += 1;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.script = ScriptState::NotRun(format!("none ({why})"));
        let legs = c.legs.clone();
        for leg in legs {
            self.refuse(now, leg, cause, sip_status, None);
        }
        self.maybe_close(now, call);
    }

    /// An event from a leg's transport.
    pub fn leg_event(&mut self, now: Instant, leg: LegId, ev: LegEvent) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        if l.state == LegState::Ended {
            return;
        }
        let call = l.call;
        match ev {
            LegEvent::MediaReady if l.direction == Direction::Outbound => {}
            LegEvent::Placed {
                transport_id,
                transport,
            } => {
                l.offer.external_id = transport_id;
                l.offer.transport = transport;
            }
            LegEvent::MediaReady => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.script != ScriptState::Pending {
                    return;
                }
                let Some(script) = c.script_path.clone() else {
                    return;
                };
                c.script = ScriptState::Running;
                self.stats.scripts_started += 1;
                self.outputs.push_back(Output::StartScript(ScriptStart {
                    call,
                    leg,
                    script,
                    info: c.info.clone(),
                }));
            }
            LegEvent::Progress { early_media } => {
                l.alerted_at.get_or_insert(now);
                if l.state != LegState::Answered {
                    l.state = LegState::Alerting { early_media };
                }
                self.dialed_progress(leg, early_media);
                if early_media {
                    self.early_media_started(leg);
                }
            }
            LegEvent::Answered => {
                l.answered_at.get_or_insert(now);
                l.state = LegState::Answered;
                l.ring_deadline = None;
                if l.direction == Direction::Outbound {
                    // A call rivr placed (campaign, `rivr call`) listens
                    // for a SIT after the answer; a dialed party is heard
                    // by its caller from then on.
                    let placed = l.index == 0;
                    if !placed {
                        self.early_media_answered(now, leg, false);
                    }
                    self.outbound_answered(now, leg);
                    self.dialed_answered(now, leg);
                    if placed {
                        let live = self.leg_live(leg);
                        self.early_media_answered(now, leg, live);
                    }
                }
            }
            LegEvent::Ended(end) => self.leg_ended(now, leg, end),
            LegEvent::TransferEnded { ok, status, reason } => {
                self.transfer_ended(now, leg, ok, status, reason)
            }
        }
    }

    fn leg_ended(&mut self, now: Instant, leg: LegId, end: LegEnd) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        if l.state == LegState::Ended {
            return;
        }
        l.state = LegState::Ended;
        l.ended_at = Some(now);
        l.end = Some(end);
        self.transfers.remove(&leg);
        l.ring_deadline = None;
        l.waiting_until = None;
        if let Some(t) = l.trunk.take() {
            self.trunks.release(&t);
        }
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let call = l.call;
        let index = l.index;
        let kind = l.end.as_ref().map(|e| e.kind);
        if index > 0 {
            self.dialed_ended(now, leg);
        }
        if index == 0 {
            let active = self.active();
            let id = self.call_id_text(call);
            tracing::info!(id = %id, end = ?kind, active, "call ended active={active}");
        }
        // The caller's leg gone ends the call: its other legs are hung up
        // and the script is woken.
        if index == 0 {
            let others: Vec<LegId> = self
                .calls
                .get(&call)
                .map(|c| c.legs.iter().copied().filter(|x| *x != leg).collect())
                .unwrap_or_default();
            for other in others {
                if self.leg_live(other) {
                    self.outputs.push_back(Output::Leg(
                        other,
                        LegCommand::Hangup {
                            cause: Cause::NORMAL_CLEARING,
                        },
                    ));
                }
            }
            if let Some(c) = self.calls.get_mut(&call) {
                match c.script {
                    ScriptState::Running => self.outputs.push_back(Output::CallGone(call)),
                    ScriptState::Pending => {
                        c.script =
                            ScriptState::NotRun("none (ended before its script started)".into())
                    }
                    _ => {}
                }
            }
        }
        self.maybe_close(now, call);
    }

    /// A signalling verb from the call's script, for the caller's leg.
    pub fn script_command(
        &mut self,
        now: Instant,
        call: CallId,
        cmd: ScriptCommand,
    ) -> Result<(), CallEnded> {
        let leg = self
            .calls
            .get(&call)
            .and_then(|c| c.legs.first().copied())
            .ok_or(CallEnded)?;
        let state = self.legs.get(&leg).map(|l| l.state).ok_or(CallEnded)?;
        if state == LegState::Ended {
            return Err(CallEnded);
        }
        match cmd {
            ScriptCommand::Answer => {
                if state != LegState::Answered {
                    if let Some(l) = self.legs.get_mut(&leg) {
                        l.state = LegState::Answered;
                        l.answered_at = Some(now);
                    }
                    self.outputs.push_back(Output::Leg(leg, LegCommand::Answer));
                }
            }
            ScriptCommand::Ring { early_media } => {
                if state == LegState::Answered {
                    return Ok(());
                }
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.alerted_at.get_or_insert(now);
                    l.state = LegState::Alerting { early_media };
                }
                self.outputs
                    .push_back(Output::Leg(leg, LegCommand::Alert { early_media }));
            }
            ScriptCommand::Reject { status } => {
                if state == LegState::Answered || !(300..700).contains(&status) {
                    return Err(CallEnded);
                }
                self.refuse(now, leg, Cause::from_sip_status(status), Some(status), None);
            }
            ScriptCommand::Hangup => {
                let answered = state == LegState::Answered;
                self.outputs.push_back(Output::Leg(
                    leg,
                    LegCommand::Hangup {
                        cause: Cause::NORMAL_CLEARING,
                    },
                ));
                let kind = if answered {
                    EndKind::LocalHangup
                } else {
                    EndKind::LocalReject
                };
                let mut end = LegEnd::new(kind, Cause::NORMAL_CLEARING);
                if !answered {
                    end.sip_status = Some(480);
                    end.reason = Some("Temporarily Unavailable".into());
                }
                self.leg_ended(now, leg, end);
            }
        }
        Ok(())
    }

    /// The script finished (`outcome` is its CDR text), with its results.
    pub fn script_done(
        &mut self,
        now: Instant,
        call: CallId,
        outcome: String,
        results: Vec<(String, String)>,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.script = ScriptState::Done(outcome);
        c.results = results;
        // A script never leaves a leg behind: whatever it did, its end
        // ends the call.
        let live: Vec<LegId> = c.legs.clone();
        for leg in live {
            let state = self.legs.get(&leg).map(|l| l.state);
            match state {
                Some(LegState::Ended) | None => {}
                Some(LegState::Answered) => {
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
                Some(_) => self.refuse(now, leg, Cause::NORMAL_UNSPECIFIED, Some(480), None),
            }
        }
        self.maybe_close(now, call);
    }

    /// Whether the call's first leg (the caller) is still up.
    pub fn caller_live(&self, call: CallId) -> bool {
        self.calls
            .get(&call)
            .and_then(|c| c.legs.first())
            .is_some_and(|l| self.leg_live(*l))
    }

    /// Ends every live leg of `call` at once: BYE (or the transport's
    /// equivalent) once answered, else a refusal with `cause` (and
    /// `sip_status`). `note` replaces the end in its CDR records
    /// (`shutdown`, `signalling-panic`, `media-failed`).
    pub fn abort_call(
        &mut self,
        now: Instant,
        call: CallId,
        cause: Cause,
        sip_status: Option<u16>,
        note: &'static str,
    ) {
        let legs: Vec<LegId> = self
            .calls
            .get(&call)
            .map(|c| c.legs.clone())
            .unwrap_or_default();
        for leg in legs {
            if !self.leg_live(leg) {
                continue;
            }
            if let Some(l) = self.legs.get_mut(&leg) {
                l.end_note = Some(note);
            }
            let answered = self.legs.get(&leg).map(|l| l.state) == Some(LegState::Answered);
            if answered {
                self.outputs
                    .push_back(Output::Leg(leg, LegCommand::Hangup { cause }));
                self.leg_ended(now, leg, LegEnd::new(EndKind::LocalHangup, cause));
            } else {
                self.refuse(now, leg, cause, sip_status, None);
            }
        }
    }

    /// Shutdown: every live leg is hung up; CDRs say `shutdown`.
    pub fn hangup_all(&mut self, now: Instant) {
        let live: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.legs.iter().any(|l| self.leg_live(*l)))
            .map(|(id, _)| *id)
            .collect();
        for call in live {
            self.abort_call(now, call, Cause::NORMAL_CLEARING, Some(480), "shutdown");
        }
    }

    /// End of shutdown: closes every call whose script did not finish.
    pub fn flush_unfinished(&mut self, now: Instant) {
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for call in calls {
            if let Some(c) = self.calls.get_mut(&call) {
                if matches!(c.script, ScriptState::Running | ScriptState::Pending) {
                    c.script = ScriptState::Done("unfinished at shutdown".into());
                }
            }
            let legs: Vec<LegId> = self
                .calls
                .get(&call)
                .map(|c| c.legs.clone())
                .unwrap_or_default();
            for leg in legs {
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.end_note.get_or_insert("shutdown");
                }
                if self.leg_live(leg) {
                    self.leg_ended(
                        now,
                        leg,
                        LegEnd::new(EndKind::LocalHangup, Cause::NORMAL_CLEARING),
                    );
                }
            }
            self.maybe_close(now, call);
        }
    }

    /// Writes the CDR records and forgets the call once every leg ended
    /// and the script (if any) is done.
    fn maybe_close(&mut self, now: Instant, call: CallId) {
        let ready = self.calls.get(&call).is_some_and(|c| {
            !matches!(c.script, ScriptState::Pending | ScriptState::Running)
                && c.legs.iter().all(|l| !self.leg_live(*l))
        });
        if !ready {
            return;
        }
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.stats.closed += 1;
        let script = match &c.script {
            ScriptState::NotRun(t) | ScriptState::Done(t) => t.clone(),
            _ => String::new(),
        };
        for leg in &c.legs {
            let Some(l) = self.legs.remove(leg) else {
                continue;
            };
            let early = self.early_verdict(*leg);
            let record = cdr::record(
                &c.info,
                &l.offer,
                cdr::LegTimes {
                    started: self.wall(l.started),
                    start: l.started,
                    answered: l.answered_at,
                    ended: l.ended_at.unwrap_or(now),
                },
                l.index,
                l.direction,
                l.end.as_ref(),
                l.end_note,
                &script,
                &c.results,
                c.tag.as_deref(),
                early,
            );
            self.outputs.push_back(Output::Cdr(record));
        }
        self.outputs.push_back(Output::Closed(call));
    }
}
