//! The CDR record of one leg, built when its call closes. The writers (the
//! JSON-lines file, the store) live outside the registry.

use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::call::control::CallInfo;
use crate::call::leg::{Direction, EndKind, IncomingLeg, LegEnd};
use crate::call::outcome::{classify, Outcome};
use crate::call::outcome_refine::refine;
use crate::media::sit::EarlyMedia;

/// One leg of a finished call. Legs of one call share `call_id`; `leg` is
/// 0 for the caller (or the first party dialed), then 1, 2, … .
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdrRecord {
    pub call_id: String,
    pub leg: u32,
    pub direction: &'static str,
    pub transport: &'static str,
    pub trunk: Option<String>,
    /// The transport's id of the leg: the SIP Call-ID, a PRI span and call
    /// reference.
    pub transport_id: String,
    pub from: String,
    pub to: String,
    pub started_at: String,
    pub answered: bool,
    /// From the offer (or the INVITE sent) to the answer, or to the end of
    /// a leg never answered.
    pub ring_ms: u64,
    /// From the answer to the end.
    pub talk_ms: u64,
    /// Kept for CDR readers of earlier versions: the same as `talk_ms`.
    pub duration_ms: u64,
    /// How the leg ended: `remote-bye`, `local-bye`, `cancelled`,
    /// `rejected`, `ack-timeout`, `shutdown`, `unanswered`, or
    /// `transferred`.
    pub end: &'static str,
    pub outcome: &'static str,
    pub sip_status: Option<u16>,
    pub reason: Option<String>,
    pub q850: Option<u8>,
    pub script: String,
    pub results: serde_json::Map<String, serde_json::Value>,
    /// The campaign attempt that placed the call (`OriginateRequest::tag`),
    /// on every leg of the call; the store finds its campaign by it.
    pub attempt: Option<String>,
    /// `outcome` refined by what the leg's early media said
    /// (`unreachable:sit-vc`, `no_answer:announcement`; else the same as
    /// `outcome`): `call::outcome_refine`.
    pub refined_outcome: String,
    /// The most telling thing heard before the answer (`sit-vc`,
    /// `announcement`, `busy`, `ringback`), when early media was
    /// classified.
    pub early_media: Option<String>,
}

pub(super) struct LegTimes {
    pub started: SystemTime,
    pub start: Instant,
    pub answered: Option<Instant>,
    pub ended: Instant,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    info: &CallInfo,
    offer: &IncomingLeg,
    t: LegTimes,
    index: u32,
    direction: Direction,
    end: Option<&LegEnd>,
    end_note: Option<&'static str>,
    script: &str,
    results: &[(String, String)],
    attempt: Option<&str>,
    early: Option<EarlyMedia>,
) -> CdrRecord {
    let ring_until = t.answered.unwrap_or(t.ended);
    let ring_ms = ms(ring_until.saturating_duration_since(t.start));
    let talk_ms = t
        .answered
        .map(|a| ms(t.ended.saturating_duration_since(a)))
        .unwrap_or(0);
    let kind = end.map(|e| e.kind);
    let end_text = end_note.unwrap_or(match kind {
        Some(EndKind::RemoteHangup) => "remote-bye",
        Some(EndKind::RemoteCancel) => "cancelled",
        Some(EndKind::LocalHangup) => "local-bye",
        Some(EndKind::LocalReject) => "rejected",
        Some(EndKind::NoConfirmation) => "ack-timeout",
        Some(EndKind::Unanswered(_)) => "unanswered",
        None => "unknown",
    });
    let outcome = outcome_of(t.answered.is_some(), kind);
    let mut map = serde_json::Map::new();
    for (k, v) in results {
        map.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    CdrRecord {
        call_id: info.id.clone(),
        leg: index,
        direction: direction.as_str(),
        transport: offer.transport,
        trunk: offer.trunk.clone(),
        transport_id: offer.external_id.clone(),
        from: offer.from.clone(),
        to: offer.to.clone(),
        started_at: crate::script::runner::rfc3339(t.started),
        answered: t.answered.is_some(),
        ring_ms,
        talk_ms,
        duration_ms: talk_ms,
        end: end_text,
        outcome: outcome.as_str(),
        sip_status: end.and_then(|e| e.sip_status),
        reason: end.and_then(|e| e.reason.clone()),
        q850: end.map(|e| e.cause.value()),
        script: script.to_string(),
        results: map,
        attempt: attempt.map(str::to_string),
        refined_outcome: refine(outcome, early).as_string(),
        early_media: early.map(EarlyMedia::as_str),
    }
}

/// The outcome of a leg: answered, or why not.
pub(super) fn outcome_of(answered: bool, kind: Option<EndKind>) -> Outcome {
    match (answered, kind) {
        (true, _) => Outcome::Answered,
        (false, Some(EndKind::Unanswered(u))) => classify(u),
        (false, Some(EndKind::RemoteCancel)) => Outcome::Cancelled,
        (false, Some(EndKind::LocalReject)) => Outcome::Rejected,
        (false, _) => Outcome::Failed,
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
