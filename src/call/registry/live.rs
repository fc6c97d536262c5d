//! What is live now, as the admin API and the dashboard show it: each call
//! not yet closed, its legs and their state, read from the registry at one
//! instant. Values only; the registry keeps no history for this.

use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::{LegState, Registry};
use crate::call::id::CallId;

/// One call not yet closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCall {
    /// The id of `call.id` and the CDRs.
    pub id: String,
    pub direction: &'static str,
    pub from: String,
    pub to: String,
    pub trunk: Option<String>,
    pub script: Option<String>,
    /// `ringing`, `answered`, or `ending` (no leg up, its script finishing).
    pub state: &'static str,
    /// Since the first leg was offered or placed.
    pub duration_ms: u64,
    /// Since the first answer.
    pub talk_ms: u64,
    pub started_at_unix_ms: u64,
    pub legs: Vec<LiveLeg>,
}

/// One leg of a live call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveLeg {
    pub leg: u32,
    pub direction: &'static str,
    pub transport: &'static str,
    /// The SIP Call-ID, or a PRI span/timeslot.
    pub transport_id: String,
    pub from: String,
    pub to: String,
    pub trunk: Option<String>,
    /// `offered`, `proceeding`, `ringing`, `answered`, `ended`.
    pub state: &'static str,
    /// The codec, jitter and loss now, filled in by the server from the
    /// media workers (`None`: no media yet, or it has closed).
    pub media: Option<crate::media::worker::live::LiveMedia>,
    /// The registry's id of the leg, for whoever fills in `media`.
    #[serde(skip)]
    pub id: crate::call::id::LegId,
}

fn leg_state(s: LegState) -> &'static str {
    match s {
        LegState::Offered => "offered",
        LegState::Proceeding => "proceeding",
        LegState::Alerting { .. } => "ringing",
        LegState::Answered => "answered",
        LegState::Ended => "ended",
    }
}

impl Registry {
    /// Every call not yet closed, oldest first.
    pub fn live_calls(&self, now: Instant) -> Vec<LiveCall> {
        let mut ids: Vec<&CallId> = self.calls.keys().collect();
        ids.sort_by_key(|c| c.0);
        ids.into_iter()
            .filter_map(|id| self.live_call(now, *id))
            .collect()
    }

    fn live_call(&self, now: Instant, id: CallId) -> Option<LiveCall> {
        let call = self.calls.get(&id)?;
        let legs: Vec<(&super::Leg, LiveLeg)> = call
            .legs
            .iter()
            .filter_map(|l| self.legs.get(l).map(|leg| (*l, leg)))
            .map(|(id, l)| {
                (
                    l,
                    LiveLeg {
                        id,
                        media: None,
                        leg: l.index,
                        direction: l.direction.as_str(),
                        transport: l.offer.transport,
                        transport_id: l.offer.external_id.clone(),
                        from: l.offer.from.clone(),
                        to: l.offer.to.clone(),
                        trunk: l.trunk.clone().or_else(|| l.offer.trunk.clone()),
                        state: leg_state(l.state),
                    },
                )
            })
            .collect();
        let started = legs.iter().map(|(l, _)| l.started).min();
        let answered = legs.iter().filter_map(|(l, _)| l.answered_at).min();
        let state = if legs.iter().any(|(l, _)| l.state == LegState::Answered) {
            "answered"
        } else if legs.iter().any(|(l, _)| l.state != LegState::Ended) {
            "ringing"
        } else {
            "ending"
        };
        let since = |t: Option<Instant>| {
            t.map_or(0, |t| {
                u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
            })
        };
        let started_at_unix_ms = started
            .map(|t| self.wall(t))
            .and_then(|w| w.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Some(LiveCall {
            id: self.call_id_text(id),
            direction: call.info.direction,
            from: call.info.from.clone(),
            to: call.info.to.clone(),
            trunk: call.info.trunk.clone(),
            script: call.script_path.as_ref().map(|p| p.display().to_string()),
            state,
            duration_ms: since(started),
            talk_ms: since(answered),
            started_at_unix_ms,
            legs: legs.into_iter().map(|(_, l)| l).collect(),
        })
    }

    /// The call whose id text (`call.id`, the CDRs' `call_id`) is `text`.
    pub fn call_by_text(&self, text: &str) -> Option<CallId> {
        let n = text
            .strip_prefix(self.instance.as_str())?
            .strip_prefix('-')?
            .parse()
            .ok()?;
        let id = CallId(n);
        self.calls.contains_key(&id).then_some(id)
    }
}
