//! The `contacts` and `attempts` tables in motion: a due contact is
//! claimed with a new attempt (`claimed`), the attempt is marked `dialing`
//! before its INVITE goes out, and it ends `done` with exactly one outcome,
//! the contact going back to `waiting` (a retry time) or to `done`. Each
//! step is one transaction with a guard on the current state, so a contact
//! is never claimed twice and an attempt never ends twice. What the next
//! step should be (when to retry, whether an outcome is final) is decided
//! by the caller and passed in. docs/campaigns.md, "State of an
//! attempt".

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::campaign::{bad, fields_of, u32_of};
use super::sms::{insert_message_on, NewMessage};
use super::{dialect, Store, StoreError};
use crate::campaign::AttemptOutcome;

/// Where a contact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactState {
    /// To be called from `next_at`.
    Waiting,
    /// An attempt is in flight.
    Dialing,
    /// Nothing more to do: its outcome is final.
    Done,
}

impl ContactState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Waiting => "waiting",
            ContactState::Dialing => "dialing",
            ContactState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<ContactState> {
        Some(match s {
            "waiting" => ContactState::Waiting,
            "dialing" => ContactState::Dialing,
            "done" => ContactState::Done,
            _ => return None,
        })
    }
}

/// Where an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptState {
    /// Stored; no INVITE has gone out.
    Claimed,
    /// Its INVITE may have gone out.
    Dialing,
    /// Ended, with its one outcome.
    Done,
}

impl AttemptState {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Claimed => "claimed",
            AttemptState::Dialing => "dialing",
            AttemptState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptState> {
        Some(match s {
            "claimed" => AttemptState::Claimed,
            "dialing" => AttemptState::Dialing,
            "done" => AttemptState::Done,
            _ => return None,
        })
    }
}

/// A contact claimed for a new attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The attempt's id: it travels in the call.
    pub attempt_id: String,
    pub campaign_id: String,
    pub contact_id: i64,
    /// 1 for the contact's first attempt.
    pub n: u32,
    pub phone: String,
    pub tz: Option<String>,
    /// The contact's CSV fields, in the list's column order.
    pub fields: Vec<(String, String)>,
    /// The number was on the do-not-call list at the claim.
    pub dnc: bool,
}

/// What is known of an attempt's SIP dialog; `None` is "not known (yet)".
/// The route set is kept as the text of its Route header values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: Option<String>,
    pub local_tag: Option<String>,
    pub remote_tag: Option<String>,
    pub remote_target: Option<String>,
    pub route_set: Option<String>,
    pub cseq: Option<u32>,
    /// The whole dialog as the SIP layer describes it (opaque text), for
    /// ending the call from another process.
    pub sip: Option<String>,
}

/// What follows an attempt for its contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Back to waiting, due at `next_at` (Unix ms).
    Retry { next_at: i64 },
    /// The contact is done; this outcome is its final one.
    Final,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub outcome: AttemptOutcome,
    pub sip_status: Option<u16>,
    pub q850: Option<u8>,
    pub ring_ms: Option<u64>,
    pub talk_ms: Option<u64>,
    /// The script's `set_result` values.
    pub results: Option<serde_json::Map<String, serde_json::Value>>,
    pub then: Then,
}

impl Finish {
    /// An outcome and what follows, with nothing else known.
    pub fn new(outcome: AttemptOutcome, then: Then) -> Finish {
        Finish {
            outcome,
            sip_status: None,
            q850: None,
            ring_ms: None,
            talk_ms: None,
            results: None,
            then,
        }
    }
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptInfo {
    pub id: String,
    pub campaign_id: String,
    pub contact_id: i64,
    pub phone: String,
    pub n: u32,
    pub state: AttemptState,
    pub outcome: Option<AttemptOutcome>,
    pub trunk: Option<String>,
    pub claimed_at: i64,
    pub dialed_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub dialog: Dialog,
    /// Until when a call a dead process left up still holds a channel.
    pub ghost_until: Option<i64>,
}

/// The caller's decision for an attempt found in flight at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// `unknown`, or what is known to have happened (`answered`).
    pub outcome: AttemptOutcome,
    pub then: Then,
    /// Count the call as holding a channel of its trunk until then (Unix
    /// ms), unless released earlier; `None` for none.
    pub ghost_until: Option<i64>,
}

const T: &str = "attempts";

fn opt_u32(v: Option<i64>, what: &str) -> Result<Option<u32>, StoreError> {
    v.map(|v| u32_of(T, what, v)).transpose()
}

/// An [`AttemptInfo`] from a row of `attempts` plus the contact's `phone`.
pub(super) fn info_of(r: &AnyRow) -> Result<AttemptInfo, StoreError> {
    let state: String = r.try_get("state")?;
    let outcome: Option<String> = r.try_get("outcome")?;
    Ok(AttemptInfo {
        id: r.try_get("id")?,
        campaign_id: r.try_get("campaign_id")?,
        contact_id: r.try_get("contact_id")?,
        phone: r.try_get("phone")?,
        n: u32_of(T, "n", r.try_get("n")?)?,
        state: AttemptState::parse(&state).ok_or_else(|| bad(T, format!("state {state:?}")))?,
        outcome: outcome
            .map(|o| AttemptOutcome::parse(&o).ok_or_else(|| bad(T, format!("outcome {o:?}"))))
            .transpose()?,
        trunk: r.try_get("trunk")?,
        claimed_at: r.try_get("claimed_at")?,
        dialed_at: r.try_get("dialed_at")?,
        answered_at: r.try_get("answered_at")?,
        ended_at: r.try_get("ended_at")?,
        dialog: Dialog {
            call_id: r.try_get("call_id")?,
            local_tag: r.try_get("local_tag")?,
            remote_tag: r.try_get("remote_tag")?,
            remote_target: r.try_get("remote_target")?,
            route_set: r.try_get("route_set")?,
            cseq: opt_u32(r.try_get("cseq")?, "cseq")?,
            sip: r.try_get("sip_dialog")?,
        },
        ghost_until: r.try_get("ghost_until")?,
    })
}

pub(super) const INFO: &str =
    "SELECT a.*, c.phone FROM attempts a JOIN contacts c ON c.id = a.contact_id";

fn ms(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// The contact of a just-ended attempt: back to waiting or done.
pub(super) async fn close_contact(
    conn: &mut AnyConnection,
    contact_id: i64,
    outcome: AttemptOutcome,
    then: Then,
) -> Result<(), StoreError> {
    let (state, next_at) = match then {
        Then::Retry { next_at } => (ContactState::Waiting, Some(next_at)),
        Then::Final => (ContactState::Done, None),
    };
    sqlx::query(
        "UPDATE contacts SET state = $1, next_at = COALESCE($2, next_at), outcome = $3 WHERE id = $4",
    )
    .bind(state.as_str())
    .bind(next_at)
    .bind(outcome.as_str())
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` contacts of campaign `campaign_id` that are
    /// waiting and due at `now` (earliest due first, then list order),
    /// each with a new attempt in `claimed`. One transaction: two callers
    /// never claim the same contact. Claims nothing unless the campaign is
    /// `running`, so a pause stops claims at once.
    pub async fn claim_next_due(
        &self,
        campaign_id: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.claim_due_as(None, campaign_id, now, limit).await
    }

    /// [`Store::claim_next_due`] by node `node`: each attempt is stamped
    /// with it, and nothing is claimed unless the node's lease runs past
    /// `now` (a node that lost its lease, or whose renewals stalled,
    /// claims nothing that another node could be resolving).
    pub async fn claim_due_as(
        &self,
        node: Option<&str>,
        campaign_id: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The due rows are picked once (MATERIALIZED: a subquery under
        // IN may be re-run, and with row locks a re-run picks more rows);
        // the skip clause makes claimers pass over each other's rows
        // instead of queueing on them (PostgreSQL), and the outer state
        // guard is re-checked on a row another claimer changed meanwhile.
        let rows = sqlx::query(&format!(
            "WITH due AS MATERIALIZED (SELECT id FROM contacts \
                 WHERE campaign_id = $1 AND state = 'waiting' AND next_at <= $2 \
                 AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND state = 'running') \
                 AND ($4 IS NULL OR EXISTS (SELECT 1 FROM nodes WHERE nodes.id = $4 \
                     AND nodes.lease_until > $2 AND nodes.reserved_until IS NULL)) \
                 ORDER BY next_at, id LIMIT $3{}) \
             UPDATE contacts SET state = 'dialing', attempts = attempts + 1 \
             WHERE state = 'waiting' AND id IN (SELECT id FROM due) \
             RETURNING id, attempts, phone, tz, fields, next_at, \
                 CASE WHEN EXISTS (SELECT 1 FROM dnc WHERE dnc.phone = contacts.phone) THEN 1 ELSE 0 END AS dnc",
            dialect::skip_locked(self.backend)
        ))
        .bind(campaign_id)
        .bind(now)
        .bind(i64::from(limit))
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let columns: String = sqlx::query("SELECT field_names FROM campaigns WHERE id = $1")
            .bind(campaign_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let columns: Vec<String> = serde_json::from_str(&columns)
            .map_err(|e| bad("campaigns", format!("field_names: {e}")))?;
        let mut due = Vec::with_capacity(rows.len());
        for r in &rows {
            let next_at: i64 = r.try_get("next_at")?;
            let fields: String = r.try_get("fields")?;
            let c = Claimed {
                attempt_id: format!("a{:016x}", rand::random::<u64>()),
                campaign_id: campaign_id.to_string(),
                contact_id: r.try_get("id")?,
                n: u32_of("contacts", "attempts", r.try_get("attempts")?)?,
                phone: r.try_get("phone")?,
                tz: r.try_get("tz")?,
                fields: fields_of(&fields, &columns)?,
                dnc: r.try_get::<i64, _>("dnc")? != 0,
            };
            due.push((next_at, c));
        }
        // RETURNING gives no order.
        due.sort_by_key(|(next_at, c)| (*next_at, c.contact_id));
        for (_, c) in &due {
            sqlx::query(
                "INSERT INTO attempts (id, campaign_id, contact_id, n, state, claimed_at, node) \
                 VALUES ($1, $2, $3, $4, 'claimed', $5, $6)",
            )
            .bind(&c.attempt_id)
            .bind(campaign_id)
            .bind(c.contact_id)
            .bind(i64::from(c.n))
            .bind(now)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(due.into_iter().map(|(_, c)| c).collect())
    }

    /// Gives back a claim that was never dialed (the contact is outside
    /// its calling hours after all, no channel is free): the attempt is
    /// forgotten, not counted, and the contact waits again from `next_at`.
    /// False if the attempt is not `claimed`.
    pub async fn unclaim(&self, attempt_id: &str, next_at: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM attempts WHERE id = $1 AND state = 'claimed' RETURNING contact_id",
        )
        .bind(attempt_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE contacts SET state = 'waiting', attempts = attempts - 1, next_at = $1 WHERE id = $2",
        )
        .bind(next_at)
        .bind(row.try_get::<i64, _>(0)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a claimed attempt `dialing` on `trunk`, with what is known of
    /// its dialog, before its INVITE goes out. False if the attempt is not
    /// `claimed` (already ended, or resolved by a restart): then the
    /// INVITE must not be sent.
    pub async fn mark_dialing(
        &self,
        attempt_id: &str,
        trunk: &str,
        dialog: &Dialog,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE attempts SET state = 'dialing', trunk = $1, dialed_at = $2, \
             call_id = $3, local_tag = $4, remote_tag = $5, remote_target = $6, route_set = $7, cseq = $8, \
             sip_dialog = $9 WHERE id = $10 AND state = 'claimed'",
        )
        .bind(trunk)
        .bind(now)
        .bind(&dialog.call_id)
        .bind(&dialog.local_tag)
        .bind(&dialog.remote_tag)
        .bind(&dialog.remote_target)
        .bind(&dialog.route_set)
        .bind(dialog.cseq.map(i64::from))
        .bind(&dialog.sip)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds what became known of an attempt's dialog (a remote tag, the
    /// Contact, the route set, a new CSeq); `None` fields keep their value.
    pub async fn update_dialog(
        &self,
        attempt_id: &str,
        dialog: &Dialog,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE attempts SET call_id = COALESCE($1, call_id), local_tag = COALESCE($2, local_tag), \
             remote_tag = COALESCE($3, remote_tag), remote_target = COALESCE($4, remote_target), \
             route_set = COALESCE($5, route_set), cseq = COALESCE($6, cseq), \
             sip_dialog = COALESCE($7, sip_dialog) WHERE id = $8",
        )
        .bind(&dialog.call_id)
        .bind(&dialog.local_tag)
        .bind(&dialog.remote_tag)
        .bind(&dialog.remote_target)
        .bind(&dialog.route_set)
        .bind(dialog.cseq.map(i64::from))
        .bind(&dialog.sip)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes when a dialing attempt was answered (the first time only).
    pub async fn mark_answered(&self, attempt_id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE attempts SET answered_at = COALESCE(answered_at, $1) WHERE id = $2 AND state = 'dialing'",
        )
        .bind(now)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends an attempt with its one outcome and moves its contact as
    /// `f.then` says, in one transaction. False (and nothing changed) if
    /// the attempt had already ended.
    pub async fn finish_attempt(
        &self,
        attempt_id: &str,
        f: &Finish,
        now: i64,
    ) -> Result<bool, StoreError> {
        let results = f
            .results
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE attempts SET state = 'done', outcome = $1, sip_status = $2, q850 = $3, ring_ms = $4, \
             talk_ms = $5, results = $6, ended_at = $7 \
             WHERE id = $8 AND state IN ('claimed', 'dialing') RETURNING contact_id",
        )
        .bind(f.outcome.as_str())
        .bind(f.sip_status.map(i64::from))
        .bind(f.q850.map(i64::from))
        .bind(ms(f.ring_ms))
        .bind(ms(f.talk_ms))
        .bind(results)
        .bind(now)
        .bind(attempt_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        close_contact(&mut tx, row.try_get(0)?, f.outcome, f.then).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves a waiting contact's due time (calling hours: no attempt is
    /// counted). False if the contact is not waiting.
    pub async fn reschedule(&self, contact_id: i64, next_at: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE contacts SET next_at = $1 WHERE id = $2 AND state = 'waiting'")
                .bind(next_at)
                .bind(contact_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// When the next waiting contact of a campaign is due, if any waits.
    pub async fn next_due_at(&self, campaign_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query(
            "SELECT MIN(next_at) FROM contacts WHERE campaign_id = $1 AND state = 'waiting'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// How many contacts of a campaign have an attempt in flight, on any
    /// node (a campaign is done only when none has).
    pub async fn dialing_contacts(&self, campaign_id: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contacts WHERE campaign_id = $1 AND state = 'dialing'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Claims the contact's one SMS: stores `m` (queued) as its SMS in the
    /// same transaction, if it has none yet. True if this caller won and
    /// must hand `m` to the SMS driver; false (nothing stored) if the
    /// contact already has an SMS or does not exist.
    pub async fn claim_sms(&self, contact_id: i64, m: &NewMessage) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Before any row lock: insert_message_on numbers the message.
        dialect::lock_counters(self.backend, &mut tx).await?;
        let won = sqlx::query("UPDATE contacts SET sms_id = $1 WHERE id = $2 AND sms_id IS NULL")
            .bind(&m.id)
            .bind(contact_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !won {
            return Ok(false);
        }
        insert_message_on(&mut tx, m).await?;
        tx.commit().await?;
        Ok(true)
    }
}
