//! The `cdrs` table: one row per call leg, written when the call closes
//! (the server's CDR writer), and the one paged query that `rivr cdr list`
//! and the HTTP API both call. A row links to the campaign attempt that
//! placed its call, so CDRs can be filtered by campaign.
//!
//! Paging is by keyset on the row id, which is the write order: a page
//! never repeats or skips a row, however many rows are written between two
//! pages, and a reader that keeps the last cursor sees every later row.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::campaign::bad;
use super::{dialect, now_ms, Store, StoreError};
use crate::call::outcome::Outcome;
use crate::call::registry::CdrRecord;

/// The most rows one page may hold.
pub const MAX_LIMIT: u32 = 1000;
/// Rows per page when the caller names no limit.
pub const DEFAULT_LIMIT: u32 = 100;

/// Where the next page starts: after the row with this id. Shown as text;
/// readers should treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdrCursor(i64);

impl fmt::Display for CdrCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for CdrCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(CdrCursor)
            .ok_or_else(|| format!("{s:?} is not a cursor this query gave"))
    }
}

/// Which rows, and how many. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CdrQuery {
    /// Legs started at or after this (Unix ms).
    pub since: Option<i64>,
    /// Legs started before this (Unix ms).
    pub until: Option<i64>,
    /// The leg's `from` or its `to` is this number (a SIP URI's user part
    /// counts as its number, on either side).
    pub number: Option<String>,
    /// Calls placed by this campaign.
    pub campaign: Option<String>,
    pub outcome: Option<Outcome>,
    /// At most this many rows (1..=[`MAX_LIMIT`]; `None`: [`DEFAULT_LIMIT`]).
    pub limit: Option<u32>,
    /// Rows after this cursor (a previous page's `next`).
    pub after: Option<CdrCursor>,
}

/// One page: rows in write order, and the cursor of the next page when
/// more rows matched.
#[derive(Debug, Clone, PartialEq)]
pub struct CdrPage {
    pub rows: Vec<CdrRow>,
    pub next: Option<CdrCursor>,
}

/// A stored CDR: the fields of a line of the CDR file, plus the row's id
/// and the campaign attempt that placed the call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdrRow {
    pub id: i64,
    pub call_id: String,
    pub leg: u32,
    pub direction: String,
    pub transport: String,
    pub trunk: Option<String>,
    pub transport_id: String,
    pub from: String,
    pub to: String,
    pub started_at: String,
    pub answered: bool,
    pub ring_ms: u64,
    pub talk_ms: u64,
    pub end: String,
    pub outcome: String,
    pub sip_status: Option<u16>,
    pub reason: Option<String>,
    pub q850: Option<u8>,
    pub script: String,
    pub results: serde_json::Map<String, serde_json::Value>,
    pub campaign: Option<String>,
    pub attempt: Option<String>,
    /// `call::outcome_refine`: `unreachable:sit-vc`, … (rows written
    /// before migration 0010 have none).
    pub refined_outcome: Option<String>,
    pub early_media: Option<String>,
}

const COLUMNS: &str = "id, call_id, leg, direction, transport, trunk, transport_id, \
     from_number, to_number, started_at, answered, ring_ms, talk_ms, end_kind, outcome, \
     sip_status, reason, q850, script, results, campaign_id, attempt_id, refined_outcome, \
     early_media";

/// `started_at` (RFC 3339) in Unix ms.
fn started_ms(r: &CdrRecord) -> Result<i64, StoreError> {
    chrono::DateTime::parse_from_rfc3339(&r.started_at)
        .map(|t| t.timestamp_millis())
        .map_err(|e| StoreError::Value {
            what: "cdr started_at",
            why: format!("{:?} of call {}: {e}", r.started_at, r.call_id),
        })
}

/// The number in a party's text: a SIP or tel URI's user part
/// (`sip:1001@host:5060;transport=tcp` → `1001`), else the text itself.
pub(super) fn user_part(party: &str) -> &str {
    let Some((scheme, rest)) = party.split_once(':') else {
        return party;
    };
    if !["sip", "sips", "tel"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return party;
    }
    let user = match rest.split_once('@') {
        Some((user, _)) => user,
        None if scheme.eq_ignore_ascii_case("tel") => rest,
        None => return party,
    };
    user.split(';').next().unwrap_or(user)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Stores the CDR records of one call (one per leg) in one
    /// transaction: every leg or none. A record with an attempt id is
    /// linked to that attempt's campaign.
    pub async fn insert_cdrs(&self, records: &[CdrRecord]) -> Result<(), StoreError> {
        let written = now_ms();
        let mut tx = self.pool.begin().await?;
        dialect::lock_counters(self.backend, &mut tx).await?;
        for r in records {
            let results = serde_json::to_string(&r.results).map_err(|e| StoreError::Value {
                what: "cdr results",
                why: e.to_string(),
            })?;
            // One statement takes the write lock before it reads MAX(id),
            // so two writers never pick the same id.
            sqlx::query(
                "INSERT INTO cdrs (id, call_id, leg, direction, transport, trunk, transport_id, \
                   from_number, to_number, started_at, started_ms, answered, ring_ms, talk_ms, \
                   end_kind, outcome, sip_status, reason, q850, script, results, attempt_id, \
                   campaign_id, written_ms, from_user, to_user, refined_outcome, early_media) \
                 SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                   $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
                   (SELECT campaign_id FROM attempts WHERE id = $21), $22, $23, $24, $25, $26 \
                 FROM cdrs",
            )
            .bind(&r.call_id)
            .bind(i64::from(r.leg))
            .bind(r.direction)
            .bind(r.transport)
            .bind(&r.trunk)
            .bind(&r.transport_id)
            .bind(&r.from)
            .bind(&r.to)
            .bind(&r.started_at)
            .bind(started_ms(r)?)
            .bind(i64::from(r.answered))
            .bind(int(r.ring_ms))
            .bind(int(r.talk_ms))
            .bind(r.end)
            .bind(r.outcome)
            .bind(r.sip_status.map(i64::from))
            .bind(&r.reason)
            .bind(r.q850.map(i64::from))
            .bind(&r.script)
            .bind(results)
            .bind(&r.attempt)
            .bind(written)
            .bind(user_part(&r.from))
            .bind(user_part(&r.to))
            .bind(&r.refined_outcome)
            .bind(&r.early_media)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One page of CDRs matching `q`, in write order.
    pub async fn query_cdrs(&self, q: &CdrQuery) -> Result<CdrPage, StoreError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(StoreError::Value {
                what: "limit",
                why: format!("{limit} is out of range (1 to {MAX_LIMIT})"),
            });
        }
        // The SQL is built from fixed fragments only; every value is bound.
        let mut sql = format!("SELECT {COLUMNS} FROM cdrs WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if q.since.is_some() {
            sql.push_str(&format!(" AND started_ms >= ${}", next()));
        }
        if q.until.is_some() {
            sql.push_str(&format!(" AND started_ms < ${}", next()));
        }
        if q.number.is_some() {
            let (a, b) = (next(), next());
            sql.push_str(&format!(" AND (from_user = ${a} OR to_user = ${b})"));
        }
        if q.campaign.is_some() {
            sql.push_str(&format!(" AND campaign_id = ${}", next()));
        }
        if q.outcome.is_some() {
            sql.push_str(&format!(" AND outcome = ${}", next()));
        }
        if q.after.is_some() {
            sql.push_str(&format!(" AND id > ${}", next()));
        }
        // One more row than asked says whether a next page exists.
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", next()));
        let mut query = sqlx::query(&sql);
        if let Some(v) = q.since {
            query = query.bind(v);
        }
        if let Some(v) = q.until {
            query = query.bind(v);
        }
        if let Some(v) = &q.number {
            let user = user_part(v).to_string();
            query = query.bind(user.clone()).bind(user);
        }
        if let Some(v) = &q.campaign {
            query = query.bind(v.clone());
        }
        if let Some(v) = q.outcome {
            query = query.bind(v.as_str());
        }
        if let Some(v) = q.after {
            query = query.bind(v.0);
        }
        query = query.bind(i64::from(limit) + 1);
        let found = query.fetch_all(&self.pool).await?;
        let mut rows = found.iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|r| CdrCursor(r.id))
        } else {
            None
        };
        Ok(CdrPage { rows, next })
    }
}

fn row_of(r: &AnyRow) -> Result<CdrRow, StoreError> {
    let t = "cdrs";
    let results: String = r.try_get("results")?;
    let results = match serde_json::from_str(&results) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(bad(t, format!("results {results:?}"))),
    };
    let unsigned = |name: &str| -> Result<u64, StoreError> {
        let v: i64 = r.try_get(name)?;
        u64::try_from(v).map_err(|_| bad(t, format!("{name} = {v}")))
    };
    let sip_status: Option<i64> = r.try_get("sip_status")?;
    let q850: Option<i64> = r.try_get("q850")?;
    let leg: i64 = r.try_get("leg")?;
    let answered: i64 = r.try_get("answered")?;
    Ok(CdrRow {
        id: r.try_get("id")?,
        call_id: r.try_get("call_id")?,
        leg: u32::try_from(leg).map_err(|_| bad(t, format!("leg = {leg}")))?,
        direction: r.try_get("direction")?,
        transport: r.try_get("transport")?,
        trunk: r.try_get("trunk")?,
        transport_id: r.try_get("transport_id")?,
        from: r.try_get("from_number")?,
        to: r.try_get("to_number")?,
        started_at: r.try_get("started_at")?,
        answered: answered != 0,
        ring_ms: unsigned("ring_ms")?,
        talk_ms: unsigned("talk_ms")?,
        end: r.try_get("end_kind")?,
        outcome: r.try_get("outcome")?,
        sip_status: sip_status
            .map(|v| u16::try_from(v).map_err(|_| bad(t, format!("sip_status = {v}"))))
            .transpose()?,
        reason: r.try_get("reason")?,
        q850: q850
            .map(|v| u8::try_from(v).map_err(|_| bad(t, format!("q850 = {v}"))))
            .transpose()?,
        script: r.try_get("script")?,
        results,
        campaign: r.try_get("campaign_id")?,
        attempt: r.try_get("attempt_id")?,
        refined_outcome: r.try_get("refined_outcome")?,
        early_media: r.try_get("early_media")?,
    })
}

#[cfg(test)]
#[path = "cdr_tests.rs"]
mod tests;
