//! The `nodes` table: each `rivr serve` on a shared database keeps a row
//! whose lease it renews every second, with the calls it has up per trunk;
//! a node whose lease ran out is taken over by one live node, which ends
//! its attempts in flight by the crash rule and reserves its share of the
//! trunks' caps until its calls can no longer be up at the carrier. The
//! rules (lease length, what a share is, how long a dead node's share is
//! held) are the caller's (`crate::cluster`); the store keeps the rows
//! and makes each step one guarded transaction. docs/scaling.md.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::recovery::resolve_in_flight;
use super::{AttemptInfo, Recovery, Store, StoreError};

/// One node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    /// Random per process: tells a restarted node from the one before.
    pub incarnation: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Alive until then (Unix ms).
    pub lease_until: i64,
    /// Set when another node took it over: its share of the caps stays
    /// reserved until then.
    pub reserved_until: Option<i64>,
    /// Calls it had up per trunk at its last renewal.
    pub channels: BTreeMap<String, u32>,
}

/// What taking over a dead node did.
#[derive(Debug, Clone, PartialEq)]
pub struct Takeover {
    pub node: String,
    pub heartbeat_at: i64,
    pub reserved_until: i64,
    /// Its attempts that were in flight, as they were, with the decisions.
    pub attempts: Vec<(AttemptInfo, Recovery)>,
}

fn row_of(r: &AnyRow) -> Result<NodeRow, StoreError> {
    let channels: String = r.try_get("channels")?;
    // A row another version wrote badly costs its counts, not the node.
    let channels = serde_json::from_str(&channels).unwrap_or_default();
    Ok(NodeRow {
        id: r.try_get("id")?,
        incarnation: r.try_get("incarnation")?,
        started_at: r.try_get("started_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        lease_until: r.try_get("lease_until")?,
        reserved_until: r.try_get("reserved_until")?,
        channels,
    })
}

fn channels_json(channels: &BTreeMap<String, u32>) -> String {
    serde_json::to_string(channels).unwrap_or_else(|_| "{}".into())
}

impl Store {
    /// Writes this process's row for node `id` (a new one, or the row of
    /// the node's previous process, replaced): alive until `now + lease_ms`.
    pub async fn join_node(
        &self,
        id: &str,
        incarnation: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, incarnation, started_at, heartbeat_at, lease_until, reserved_until, channels) \
             VALUES ($1, $2, $3, $3, $4, NULL, '{}') \
             ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             lease_until = excluded.lease_until, reserved_until = NULL, channels = '{}'",
        )
        .bind(id)
        .bind(incarnation)
        .bind(now)
        .bind(now.saturating_add(lease_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Renews the lease of this process's row and reports its calls up.
    /// False when the row is no longer this process's or another node has
    /// taken it over: the lease is lost for good, and the node must claim
    /// nothing more (its attempts were, or are being, resolved).
    pub async fn renew_node(
        &self,
        id: &str,
        incarnation: &str,
        now: i64,
        lease_ms: i64,
        channels: &BTreeMap<String, u32>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE nodes SET heartbeat_at = $1, lease_until = $2, channels = $3 \
             WHERE id = $4 AND incarnation = $5 AND reserved_until IS NULL",
        )
        .bind(now)
        .bind(now.saturating_add(lease_ms))
        .bind(channels_json(channels))
        .bind(id)
        .bind(incarnation)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A clean stop: the row goes, so its share of the caps is free at
    /// once — unless an attempt of it is still in flight, in which case
    /// the lease runs out and another node takes it over. True if removed.
    pub async fn leave_node(&self, id: &str, incarnation: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM nodes WHERE id = $1 AND incarnation = $2 AND NOT EXISTS \
             (SELECT 1 FROM attempts WHERE node = $1 AND state IN ('claimed', 'dialing'))",
        )
        .bind(id)
        .bind(incarnation)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every node row, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        sqlx::query("SELECT * FROM nodes ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(row_of)
            .collect()
    }

    /// Removes dead nodes whose reservation is over and who left nothing
    /// in flight; how many.
    pub async fn forget_nodes(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM nodes WHERE reserved_until IS NOT NULL AND reserved_until <= $1 AND NOT EXISTS \
             (SELECT 1 FROM attempts WHERE attempts.node = nodes.id AND attempts.state IN ('claimed', 'dialing'))",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Takes over node `dead` if its lease ran out before `now` and no
    /// other node took it over: every attempt it left in flight ends by
    /// the crash rule (`decide`, as [`Store::recover_in_flight`]), and its
    /// share stays reserved until `reserve(last heartbeat, attempts)`. One
    /// transaction; of several nodes trying at once exactly one gets
    /// `Some` (the row's guard), so no attempt is resolved twice.
    pub async fn take_over_node(
        &self,
        dead: &str,
        now: i64,
        decide: impl FnMut(&AttemptInfo) -> Recovery,
        reserve: impl FnOnce(i64, &[(AttemptInfo, Recovery)]) -> i64,
    ) -> Result<Option<Takeover>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The guard and a placeholder reservation first: a second taker
        // waits on this row lock, then finds it taken.
        let row = sqlx::query(
            "UPDATE nodes SET reserved_until = heartbeat_at \
             WHERE id = $1 AND lease_until < $2 AND reserved_until IS NULL RETURNING heartbeat_at",
        )
        .bind(dead)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let heartbeat_at: i64 = row.try_get(0)?;
        let attempts = resolve_in_flight(&mut tx, "node = $2", Some(dead), now, decide).await?;
        let reserved_until = reserve(heartbeat_at, &attempts);
        sqlx::query("UPDATE nodes SET reserved_until = $1 WHERE id = $2")
            .bind(reserved_until)
            .bind(dead)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Takeover {
            node: dead.to_string(),
            heartbeat_at,
            reserved_until,
            attempts,
        }))
    }
}

#[cfg(test)]
#[path = "nodes_tests.rs"]
mod tests;
