//! After a crash: attempts a dead process left in flight, and the calls
//! it may have left ringing or up at the carrier ("ghosts"), which hold a
//! trunk channel until released or until their deadline. What to do with
//! each is the caller's decision; the store applies it in one transaction.
//! docs/campaigns.md, "The crash rule".

use sqlx::{AnyConnection, Row};

use super::attempt::{close_contact, info_of, INFO};
use super::campaign::{bad, fields_of};
use super::{AttemptInfo, AttemptState, Recovery, Store, StoreError};
use crate::campaign::AttemptOutcome;

/// A done contact still owed its SMS fallback ([`Store::owed_sms`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedSms {
    pub contact_id: i64,
    pub phone: String,
    pub fields: Vec<(String, String)>,
    pub outcome: AttemptOutcome,
}

/// Ends the attempts in flight that `which` (SQL over `attempts`; `$2` is
/// `node`) selects by the crash rule, in the caller's transaction, and
/// moves their contacts as `decide` says. The attempts as they were, with
/// the decisions, oldest claim first.
pub(super) async fn resolve_in_flight(
    conn: &mut AnyConnection,
    which: &str,
    node: Option<&str>,
    now: i64,
    mut decide: impl FnMut(&AttemptInfo) -> Recovery,
) -> Result<Vec<(AttemptInfo, Recovery)>, StoreError> {
    // A write first: the transaction holds the write lock from here.
    let sql = format!(
        "UPDATE attempts SET state = 'done', outcome = 'unknown', ended_at = $1 \
         WHERE state IN ('claimed', 'dialing') AND ({which}) RETURNING id"
    );
    let mut q = sqlx::query(&sql).bind(now);
    if let Some(node) = node {
        q = q.bind(node);
    }
    let ids: Vec<String> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let row = sqlx::query(&format!("{INFO} WHERE a.id = $1"))
            .bind(&id)
            .fetch_one(&mut *conn)
            .await?;
        let mut info = info_of(&row)?;
        // As it was before this transaction.
        info.state = if info.dialed_at.is_some() {
            AttemptState::Dialing
        } else {
            AttemptState::Claimed
        };
        info.outcome = None;
        info.ended_at = None;
        let r = decide(&info);
        sqlx::query("UPDATE attempts SET ghost_until = $1, outcome = $2 WHERE id = $3")
            .bind(r.ghost_until)
            .bind(r.outcome.as_str())
            .bind(&id)
            .execute(&mut *conn)
            .await?;
        info.ghost_until = r.ghost_until;
        close_contact(conn, info.contact_id, r.outcome, r.then).await?;
        out.push((info, r));
    }
    out.sort_by(|a, b| (a.0.claimed_at, &a.0.id).cmp(&(b.0.claimed_at, &b.0.id)));
    Ok(out)
}

impl Store {
    /// At start, before this process claims anything: every attempt left
    /// `claimed` or `dialing` by a dead process ends (it counts; a retry
    /// is a new attempt), and `decide` says per attempt with which outcome
    /// (`unknown`, or `answered` when its answer was stored), what follows
    /// for its contact and whether its call may still hold a channel. One
    /// transaction. Returns the attempts as they were, with the decisions.
    /// For a store with one node; with several, [`Store::recover_own`].
    pub async fn recover_in_flight(
        &self,
        now: i64,
        decide: impl FnMut(&AttemptInfo) -> Recovery,
    ) -> Result<Vec<(AttemptInfo, Recovery)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let out = resolve_in_flight(&mut tx, "1 = 1", None, now, decide).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// [`Store::recover_in_flight`] for the attempts node `node`'s previous
    /// process left (and those of a store from before nodes, which name
    /// none); other nodes' attempts are theirs until their lease runs out
    /// ([`Store::take_over_node`]).
    pub async fn recover_own(
        &self,
        node: &str,
        now: i64,
        decide: impl FnMut(&AttemptInfo) -> Recovery,
    ) -> Result<Vec<(AttemptInfo, Recovery)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let out = resolve_in_flight(
            &mut tx,
            "node IS NULL OR node = $2",
            Some(node),
            now,
            decide,
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// When the latest attempt was dialed (its INVITE left just after).
    pub async fn last_dialed_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query("SELECT MAX(dialed_at) FROM attempts")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// When node `node` (or a process from before nodes) last dialed.
    pub async fn last_dialed_by(&self, node: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query("SELECT MAX(dialed_at) FROM attempts WHERE node IS NULL OR node = $1")
                .bind(node)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// Contacts of campaign `campaign_id` that are done, have no SMS yet,
    /// and whose final outcome is one of `outcomes`: the SMS fallback owes
    /// them a text a dead process did not get to send (it died between the
    /// contact's end and the claim of its SMS, or the crash rule ended it).
    /// Each: contact id, phone, fields (in list order), outcome.
    pub async fn owed_sms(
        &self,
        campaign_id: &str,
        outcomes: &[AttemptOutcome],
    ) -> Result<Vec<OwedSms>, StoreError> {
        let columns: Option<String> =
            sqlx::query("SELECT field_names FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        let Some(columns) = columns else {
            return Ok(Vec::new());
        };
        let columns: Vec<String> = serde_json::from_str(&columns)
            .map_err(|e| bad("campaigns", format!("field_names: {e}")))?;
        let rows = sqlx::query(
            "SELECT id, phone, fields, outcome FROM contacts \
             WHERE campaign_id = $1 AND state = 'done' AND sms_id IS NULL AND outcome IS NOT NULL \
             ORDER BY id",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let outcome: String = r.try_get("outcome")?;
            let Some(outcome) = AttemptOutcome::parse(&outcome) else {
                continue;
            };
            if !outcomes.contains(&outcome) {
                continue;
            }
            let fields: String = r.try_get("fields")?;
            out.push(OwedSms {
                contact_id: r.try_get("id")?,
                phone: r.try_get("phone")?,
                fields: fields_of(&fields, &columns)?,
                outcome,
            });
        }
        Ok(out)
    }

    /// Calls node `node`'s previous process (or one from before nodes)
    /// left that still hold a channel at `now`.
    pub async fn own_ghost_channels(
        &self,
        node: &str,
        now: i64,
    ) -> Result<Vec<AttemptInfo>, StoreError> {
        sqlx::query(&format!(
            "{INFO} WHERE a.ghost_until > $1 AND (a.node IS NULL OR a.node = $2) ORDER BY a.ghost_until, a.id"
        ))
        .bind(now)
        .bind(node)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(info_of)
        .collect()
    }

    /// Calls left by a dead process that still hold a channel at `now`.
    pub async fn ghost_channels(&self, now: i64) -> Result<Vec<AttemptInfo>, StoreError> {
        sqlx::query(&format!(
            "{INFO} WHERE a.ghost_until > $1 ORDER BY a.ghost_until, a.id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(info_of)
        .collect()
    }

    /// The ghost call of an attempt is gone (its BYE or CANCEL was
    /// answered): it holds no channel any more.
    pub async fn release_ghost(&self, attempt_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE attempts SET ghost_until = NULL WHERE id = $1 AND ghost_until IS NOT NULL",
        )
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The attempt `id`, if there is one.
    pub async fn attempt(&self, id: &str) -> Result<Option<AttemptInfo>, StoreError> {
        sqlx::query(&format!("{INFO} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(info_of)
            .transpose()
    }

    /// The latest attempt whose dialog has this Call-ID (a request for a
    /// call a dead process placed).
    pub async fn attempt_by_call_id(
        &self,
        call_id: &str,
    ) -> Result<Option<AttemptInfo>, StoreError> {
        sqlx::query(&format!(
            "{INFO} WHERE a.call_id = $1 ORDER BY a.claimed_at DESC LIMIT 1"
        ))
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(info_of)
        .transpose()
    }
}
