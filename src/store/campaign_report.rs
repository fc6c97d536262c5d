//! What a campaign has done so far: its counters for `rivr campaign
//! status` and the dashboard, and one report row per contact.

use std::collections::BTreeMap;

use sqlx::Row;

use super::attempt::ContactState;
use super::campaign::{bad, fields_of, u32_of};
use super::{MessageState, Store, StoreError};
use crate::campaign::AttemptOutcome;

/// A campaign's counters. Attempt counters count attempts (a contact
/// called three times is dialed three times); contact counters count
/// contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Contacts in the campaign.
    pub contacts: u64,
    /// Attempts whose INVITE went out (or may have).
    pub dialed: u64,
    pub answered: u64,
    pub busy: u64,
    pub no_answer: u64,
    /// Attempts ended with any other call outcome (rejected, unreachable,
    /// congestion, auth_failed, cancelled, failed).
    pub failed: u64,
    /// Attempts in flight at a crash.
    pub unknown: u64,
    /// Contacts not called: on the do-not-call list at their turn.
    pub dnc: u64,
    /// Contacts sent their SMS.
    pub texted: u64,
    /// Contacts done.
    pub done: u64,
    /// Contacts not done.
    pub remaining: u64,
    /// Contacts with an attempt in flight.
    pub in_progress: u64,
    /// Contacts waiting and due now.
    pub due: u64,
    /// Contacts waiting for a later time (calling hours, a retry time).
    pub waiting: u64,
    /// Ended attempts by outcome name.
    pub outcomes: BTreeMap<String, u64>,
    /// Ended attempts whose early media refined their outcome, by refined
    /// outcome (`unreachable:sit-vc`, `no_answer:announcement`).
    pub refined: BTreeMap<String, u64>,
}

/// One contact in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub contact_id: i64,
    pub line: u64,
    pub phone: String,
    /// Its CSV fields, in the list's column order.
    pub fields: Vec<(String, String)>,
    pub tz: Option<String>,
    pub state: ContactState,
    pub attempts: u32,
    /// Of the last attempt; the final outcome once `state` is done.
    pub outcome: Option<AttemptOutcome>,
    /// The last attempt's outcome refined by its early media
    /// (`unreachable:sit-vc`, `no_answer:announcement`), or the outcome.
    pub refined_outcome: Option<String>,
    /// Of the last attempt.
    pub sip_status: Option<u16>,
    pub q850: Option<u8>,
    /// Over all its attempts.
    pub talk_ms: u64,
    /// The `set_result` values of its latest attempt that had any.
    pub results: Option<serde_json::Map<String, serde_json::Value>>,
    pub sms_id: Option<String>,
    pub sms_state: Option<MessageState>,
}

fn count(v: Option<i64>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

impl Store {
    /// The counters of campaign `id` at `now`.
    pub async fn campaign_status(&self, id: &str, now: i64) -> Result<Status, StoreError> {
        let c = sqlx::query(
            "SELECT COUNT(*), \
               SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN state = 'dialing' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN state = 'waiting' AND next_at <= $2 THEN 1 ELSE 0 END), \
               SUM(CASE WHEN state = 'waiting' AND next_at > $2 THEN 1 ELSE 0 END), \
               SUM(CASE WHEN sms_id IS NOT NULL THEN 1 ELSE 0 END), \
               SUM(CASE WHEN state = 'done' AND outcome = 'dnc' THEN 1 ELSE 0 END) \
             FROM contacts WHERE campaign_id = $1",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let mut s = Status {
            contacts: count(c.try_get(0)?),
            done: count(c.try_get(1)?),
            in_progress: count(c.try_get(2)?),
            due: count(c.try_get(3)?),
            waiting: count(c.try_get(4)?),
            texted: count(c.try_get(5)?),
            dnc: count(c.try_get(6)?),
            ..Status::default()
        };
        s.remaining = s.contacts - s.done.min(s.contacts);
        let rows = sqlx::query(
            "SELECT outcome, COUNT(*), SUM(CASE WHEN dialed_at IS NOT NULL THEN 1 ELSE 0 END) \
             FROM attempts WHERE campaign_id = $1 GROUP BY outcome",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let outcome: Option<String> = r.try_get(0)?;
            let n = count(r.try_get(1)?);
            s.dialed += count(r.try_get(2)?);
            let Some(name) = outcome else {
                continue; // in flight
            };
            let o = AttemptOutcome::parse(&name)
                .ok_or_else(|| bad("attempts", format!("outcome {name:?}")))?;
            use crate::call::outcome::Outcome as C;
            match o {
                AttemptOutcome::Call(C::Answered) => s.answered += n,
                AttemptOutcome::Call(C::Busy) => s.busy += n,
                AttemptOutcome::Call(C::NoAnswer) => s.no_answer += n,
                AttemptOutcome::Call(_) => s.failed += n,
                AttemptOutcome::Unknown => s.unknown += n,
                AttemptOutcome::Dnc => {}
            }
            s.outcomes.insert(name, n);
        }
        let rows = sqlx::query(
            "SELECT refined_outcome, COUNT(*) FROM attempts \
             WHERE campaign_id = $1 AND refined_outcome IS NOT NULL GROUP BY refined_outcome",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let name: String = r.try_get(0)?;
            s.refined.insert(name, count(r.try_get(1)?));
        }
        Ok(s)
    }

    /// The `set_result` keys of campaign `id`'s report, in the order first
    /// seen going down the list (each contact's latest attempt that set
    /// any, as in [`Store::campaign_report`]): the result columns of a CSV
    /// report, the same on every page.
    pub async fn campaign_result_keys(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT (SELECT r.results FROM attempts r WHERE r.contact_id = c.id \
                       AND r.results IS NOT NULL ORDER BY r.n DESC LIMIT 1) AS results \
             FROM contacts c WHERE c.campaign_id = $1 ORDER BY c.line",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut keys: Vec<String> = Vec::new();
        for r in &rows {
            let Some(json) = r.try_get::<Option<String>, _>("results")? else {
                continue;
            };
            let serde_json::Value::Object(m) = serde_json::from_str(&json)
                .map_err(|e| bad("attempts", format!("results: {e}")))?
            else {
                return Err(bad("attempts", "results is not a JSON object"));
            };
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        Ok(keys)
    }

    /// Report rows of campaign `id` after CSV line `after_line`, at most
    /// `limit`, in list order. Page with the last row's `line`.
    pub async fn campaign_report(
        &self,
        id: &str,
        after_line: u64,
        limit: u32,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let columns: Vec<String> = match self.campaign(id).await? {
            Some(c) => c.settings.columns,
            None => return Ok(Vec::new()),
        };
        let rows = sqlx::query(
            "SELECT c.id, c.line, c.phone, c.fields, c.tz, c.state, c.attempts, c.outcome, \
               a.sip_status, a.q850, a.refined_outcome, \
               (SELECT CAST(COALESCE(SUM(t.talk_ms), 0) AS BIGINT) FROM attempts t WHERE t.contact_id = c.id) AS talk_ms, \
               (SELECT r.results FROM attempts r WHERE r.contact_id = c.id AND r.results IS NOT NULL \
                  ORDER BY r.n DESC LIMIT 1) AS results, \
               c.sms_id, m.state AS sms_state \
             FROM contacts c \
             LEFT JOIN attempts a ON a.contact_id = c.id AND a.n = c.attempts \
             LEFT JOIN sms_messages m ON m.id = c.sms_id \
             WHERE c.campaign_id = $1 AND c.line > $2 ORDER BY c.line LIMIT $3",
        )
        .bind(id)
        .bind(i64::try_from(after_line).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let t = "contacts";
        rows.iter()
            .map(|r| {
                let fields: String = r.try_get("fields")?;
                let state: String = r.try_get("state")?;
                let outcome: Option<String> = r.try_get("outcome")?;
                let refined: Option<String> = r
                    .try_get::<Option<String>, _>("refined_outcome")?
                    .or_else(|| outcome.clone());
                let results: Option<String> = r.try_get("results")?;
                let sms_state: Option<String> = r.try_get("sms_state")?;
                let line: i64 = r.try_get("line")?;
                Ok(ReportRow {
                    contact_id: r.try_get("id")?,
                    line: u64::try_from(line).map_err(|_| bad(t, format!("line {line}")))?,
                    phone: r.try_get("phone")?,
                    fields: fields_of(&fields, &columns)?,
                    tz: r.try_get("tz")?,
                    state: ContactState::parse(&state)
                        .ok_or_else(|| bad(t, format!("state {state:?}")))?,
                    attempts: u32_of(t, "attempts", r.try_get("attempts")?)?,
                    outcome: outcome
                        .map(|o| {
                            AttemptOutcome::parse(&o)
                                .ok_or_else(|| bad(t, format!("outcome {o:?}")))
                        })
                        .transpose()?,
                    refined_outcome: refined,
                    sip_status: r
                        .try_get::<Option<i64>, _>("sip_status")?
                        .map(|v| {
                            u16::try_from(v).map_err(|_| bad("attempts", format!("sip_status {v}")))
                        })
                        .transpose()?,
                    q850: r
                        .try_get::<Option<i64>, _>("q850")?
                        .map(|v| u8::try_from(v).map_err(|_| bad("attempts", format!("q850 {v}"))))
                        .transpose()?,
                    talk_ms: count(r.try_get("talk_ms")?),
                    results: results
                        .map(|j| match serde_json::from_str(&j) {
                            Ok(serde_json::Value::Object(m)) => Ok(m),
                            _ => Err(bad("attempts", "results is not a JSON object")),
                        })
                        .transpose()?,
                    sms_id: r.try_get("sms_id")?,
                    sms_state: sms_state
                        .map(|s| {
                            MessageState::parse(&s)
                                .ok_or_else(|| bad("sms_messages", format!("state {s:?}")))
                        })
                        .transpose()?,
                })
            })
            .collect()
    }
}
