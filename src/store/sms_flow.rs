//! The two-way SMS tables (`sms_flow`, `sms_sessions`, `sms_results`):
//! which inbound SMS a flow has taken (claimed before its script runs, so
//! a crash never answers one twice), the conversation state a script keeps
//! per sender and route, and the answers it stored. What the states mean
//! is `sms::flow`'s business; the times are given, never read here, so the
//! expiry is testable on a virtual clock.

use sqlx::Row;

use super::{InboundSms, Store, StoreError};

/// What a flow did with one inbound SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRow {
    pub inbound_id: String,
    /// `running`, `done`, `failed`, `no_route`, `opted_out`, `opted_in`,
    /// `interrupted`, `before_flows`.
    pub state: String,
    pub route: Option<String>,
    pub error: Option<String>,
}

/// One `set_result` of an SMS script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsResult {
    pub inbound_id: String,
    pub sender: String,
    pub route: String,
    pub name: String,
    pub value: String,
    pub at_ms: i64,
}

/// How a flow ends one message, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct FlowEnd {
    pub inbound_id: String,
    pub state: String,
    pub route: Option<String>,
    pub error: Option<String>,
    /// The sender's session to keep: `(sender, route, json, expires_ms)`.
    pub session: Option<(String, String, String, i64)>,
    /// `(name, value)` in the order the script set them; a name set twice
    /// keeps its last value.
    pub results: Vec<(String, String)>,
    pub sender: String,
    pub now_ms: i64,
}

impl Store {
    /// Ends `running` claims a stopped process left: their scripts may
    /// have replied already, so they are not run again. Returns their ids.
    pub async fn flow_end_interrupted(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> =
            sqlx::query("SELECT inbound_id FROM sms_flow WHERE state = 'running'")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
        sqlx::query(
            "UPDATE sms_flow SET state = 'interrupted', error = $1, updated_ms = $2 WHERE state = 'running'",
        )
        .bind("its script was running when the last process stopped")
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(ids)
    }

    /// Inbound SMS received at or after `since_ms` that no flow has taken
    /// yet, oldest first.
    pub async fn flow_pending(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<InboundSms>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, source, destination, body, received_ms FROM sms_inbound i \
             WHERE received_ms >= $1 \
             AND NOT EXISTS (SELECT 1 FROM sms_flow f WHERE f.inbound_id = i.id) \
             ORDER BY received_ms, id LIMIT $2",
        )
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InboundSms {
                    id: r.try_get(0)?,
                    source: r.try_get(1)?,
                    destination: r.try_get(2)?,
                    body: r.try_get(3)?,
                    received_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Takes an inbound SMS for a flow (`running`); false when something
    /// already took it.
    pub async fn flow_claim(
        &self,
        inbound_id: &str,
        route: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO sms_flow (inbound_id, state, route, updated_ms) VALUES ($1, 'running', $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(inbound_id)
        .bind(route)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The end of a claimed message: its state, the session and results.
    pub async fn flow_finish(&self, end: &FlowEnd) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sms_flow SET state = $1, route = $2, error = $3, updated_ms = $4 WHERE inbound_id = $5",
        )
        .bind(&end.state)
        .bind(&end.route)
        .bind(&end.error)
        .bind(end.now_ms)
        .bind(&end.inbound_id)
        .execute(&mut *tx)
        .await?;
        if let Some((sender, route, _, _)) = &end.session.as_ref().filter(|s| s.2 == "{}") {
            // An emptied session is a conversation over.
            sqlx::query("DELETE FROM sms_sessions WHERE sender = $1 AND route = $2")
                .bind(sender)
                .bind(route)
                .execute(&mut *tx)
                .await?;
        } else if let Some((sender, route, data, expires)) = &end.session {
            sqlx::query(
                "INSERT INTO sms_sessions (sender, route, data, updated_ms, expires_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (sender, route) DO UPDATE SET data = excluded.data, \
                 updated_ms = excluded.updated_ms, expires_ms = excluded.expires_ms",
            )
            .bind(sender)
            .bind(route)
            .bind(data)
            .bind(end.now_ms)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(route) = &end.route {
            for (name, value) in &end.results {
                sqlx::query(
                    "INSERT INTO sms_results (inbound_id, sender, route, name, value, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (inbound_id, name) DO UPDATE SET value = excluded.value",
                )
                .bind(&end.inbound_id)
                .bind(&end.sender)
                .bind(route)
                .bind(name)
                .bind(value)
                .bind(end.now_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// What the flow did with one inbound SMS, if anything yet.
    pub async fn flow_row(&self, inbound_id: &str) -> Result<Option<FlowRow>, StoreError> {
        let r = sqlx::query(
            "SELECT inbound_id, state, route, error FROM sms_flow WHERE inbound_id = $1",
        )
        .bind(inbound_id)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok(FlowRow {
                inbound_id: r.try_get(0)?,
                state: r.try_get(1)?,
                route: r.try_get(2)?,
                error: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// The session of `sender` on `route` (its JSON) unless it expired by
    /// `now_ms`.
    pub async fn sms_session(
        &self,
        sender: &str,
        route: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(
            "SELECT data FROM sms_sessions WHERE sender = $1 AND route = $2 AND expires_ms > $3",
        )
        .bind(sender)
        .bind(route)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| r.try_get(0)).transpose()?)
    }

    /// The routes `sender` has a live session on at `now_ms`, the most
    /// recently used first.
    pub async fn sms_live_routes(
        &self,
        sender: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "SELECT route FROM sms_sessions WHERE sender = $1 AND expires_ms > $2 ORDER BY updated_ms DESC",
        )
        .bind(sender)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    /// Forgets sessions that expired by `now_ms`; returns how many.
    pub async fn sms_sessions_expire(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sms_sessions WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Results stored by SMS scripts, oldest first; `route` filters.
    pub async fn sms_results(
        &self,
        route: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<SmsResult>, StoreError> {
        // Two texts rather than `$1 IS NULL OR …`, whose parameter type
        // PostgreSQL cannot infer.
        const COLS: &str = "SELECT inbound_id, sender, route, name, value, at_ms FROM sms_results";
        const ORDER: &str = "ORDER BY at_ms, inbound_id, name";
        let rows = match route {
            Some(r) => {
                sqlx::query(&format!("{COLS} WHERE route = $1 AND at_ms >= $2 {ORDER}"))
                    .bind(r)
                    .bind(since_ms)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{COLS} WHERE at_ms >= $1 {ORDER}"))
                    .bind(since_ms)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(SmsResult {
                    inbound_id: r.try_get(0)?,
                    sender: r.try_get(1)?,
                    route: r.try_get(2)?,
                    name: r.try_get(3)?,
                    value: r.try_get(4)?,
                    at_ms: r.try_get(5)?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The texts of the messages sent to `destination`, oldest first.
    pub async fn bodies_sent_to(&self, destination: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT body FROM sms_messages WHERE destination = $1 ORDER BY seq")
            .bind(destination)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }
}

#[cfg(test)]
#[path = "sms_flow_tests.rs"]
mod tests;
