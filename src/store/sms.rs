//! The `sms_*` tables: messages and their parts, receipts matched to parts
//! (also when they come before the submit_sm_resp), inbound SMS.
//!
//! A message's state follows from its parts: failed if any part failed,
//! else expired, else unknown, else delivered once every part is, else
//! submitted once every part was accepted, else queued.

use sqlx::{AnyConnection, Row};

use super::{dialect, now_ms, Store, StoreError};
use crate::sms::receipt::{IdForms, Receipt, ReceiptStat};

/// The state of a message (or of one part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    Queued,
    Submitted,
    Delivered,
    Failed,
    Expired,
    Unknown,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Submitted => "submitted",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<MessageState> {
        Some(match s {
            "queued" => MessageState::Queued,
            "submitted" => MessageState::Submitted,
            "delivered" => MessageState::Delivered,
            "failed" => MessageState::Failed,
            "expired" => MessageState::Expired,
            "unknown" => MessageState::Unknown,
            _ => return None,
        })
    }

    /// True for delivered, failed, expired and unknown.
    pub fn is_final(self) -> bool {
        !matches!(self, MessageState::Queued | MessageState::Submitted)
    }

    fn of_parts(parts: &[MessageState]) -> MessageState {
        use MessageState::*;
        let any = |s| parts.contains(&s);
        if any(Failed) {
            Failed
        } else if any(Expired) {
            Expired
        } else if any(Unknown) {
            Unknown
        } else if !parts.is_empty() && parts.iter().all(|p| *p == Delivered) {
            Delivered
        } else if any(Queued) || parts.is_empty() {
            Queued
        } else {
            Submitted
        }
    }

    fn of_receipt(stat: ReceiptStat) -> Option<MessageState> {
        match stat {
            ReceiptStat::Delivered => Some(MessageState::Delivered),
            ReceiptStat::Expired => Some(MessageState::Expired),
            ReceiptStat::Failed => Some(MessageState::Failed),
            ReceiptStat::Unknown => Some(MessageState::Unknown),
            ReceiptStat::Pending => None,
        }
    }
}

impl std::fmt::Display for MessageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One part to store with a new message.
#[derive(Debug, Clone)]
pub struct NewPart {
    pub esm_class: u8,
    pub data_coding: u8,
    pub payload: bool,
    pub short_message: Vec<u8>,
}

/// A message to store before anything is sent.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub source: String,
    pub destination: String,
    pub body: String,
    pub parts: Vec<NewPart>,
    pub sending: Sending,
}

/// How a message is to be sent, beyond its text: sender type, schedule,
/// validity, a forced route. Stored with the message so a restart sends it
/// the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sending {
    /// The sender's TON/NPI; `None` uses the route's configured ones.
    pub source_ton: Option<u8>,
    pub source_npi: Option<u8>,
    /// Not to leave before this instant (unix ms).
    pub not_before_ms: Option<i64>,
    /// Validity period asked for.
    pub valid_for_ms: Option<i64>,
    /// The route the sender forced (`--via`).
    pub via: Option<String>,
    /// The route the parts were encoded for when the message was made;
    /// not stored (`None` after a restart: the router encodes the text
    /// again when the parts go to a route of another kind).
    pub encoded_for: Option<String>,
}

/// A part not yet accepted by the SMSC, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub message_id: String,
    pub part: u8,
    pub idempotency_key: String,
    pub source: String,
    pub destination: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub payload: bool,
    pub short_message: Vec<u8>,
    pub sending: Sending,
    /// The route the part is claimed for, if any yet.
    pub route: Option<String>,
}

/// The error of a part [`Store::end_interrupted_sends`] ended.
pub const INTERRUPTED: &str =
    "submit written by a process that stopped before its answer was stored (not sent again)";

fn u8_of(v: i64, what: &str) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| StoreError::BadRow {
        table: "sms_parts",
        what: format!("{what} = {v}"),
    })
}

fn state_of(s: &str) -> Result<MessageState, StoreError> {
    MessageState::parse(s).ok_or_else(|| StoreError::BadRow {
        table: "sms_parts",
        what: format!("state = {s:?}"),
    })
}

impl Store {
    /// Stores a message and its parts (state queued) in one transaction.
    pub async fn insert_message(&self, m: &NewMessage) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        dialect::lock_counters(self.backend, &mut tx).await?;
        insert_message_on(&mut tx, m).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Parts never accepted by the SMSC, oldest message first: what a
    /// restarted driver must (re)submit.
    pub async fn unsent_parts(&self) -> Result<Vec<StoredPart>, StoreError> {
        self.queued_parts("").await
    }

    /// Queued parts no route has taken and none is being sent: what
    /// another node stored for the SMS owner to send (docs/scaling.md,
    /// "SMS across nodes"); a part the owner claimed is not among them.
    pub async fn unclaimed_parts(&self) -> Result<Vec<StoredPart>, StoreError> {
        self.queued_parts("AND p.route IS NULL AND p.sending_ms IS NULL")
            .await
    }

    async fn queued_parts(&self, and: &'static str) -> Result<Vec<StoredPart>, StoreError> {
        let sql = format!(
            "SELECT p.message_id, p.part, p.idempotency_key, m.source, m.destination, p.esm_class, \
                    p.data_coding, p.payload, p.short_message, m.source_ton, m.source_npi, \
                    m.not_before_ms, m.valid_for_ms, m.via, p.route \
             FROM sms_parts p JOIN sms_messages m ON m.id = p.message_id \
             WHERE p.state = 'queued' {and} ORDER BY m.seq, p.part"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(StoredPart {
                    message_id: r.try_get(0)?,
                    part: u8_of(r.try_get(1)?, "part")?,
                    idempotency_key: r.try_get(2)?,
                    source: r.try_get(3)?,
                    destination: r.try_get(4)?,
                    esm_class: u8_of(r.try_get(5)?, "esm_class")?,
                    data_coding: u8_of(r.try_get(6)?, "data_coding")?,
                    payload: r.try_get::<i64, _>(7)? != 0,
                    short_message: r.try_get(8)?,
                    sending: Sending {
                        source_ton: r
                            .try_get::<Option<i64>, _>(9)?
                            .map(|v| u8_of(v, "source_ton"))
                            .transpose()?,
                        source_npi: r
                            .try_get::<Option<i64>, _>(10)?
                            .map(|v| u8_of(v, "source_npi"))
                            .transpose()?,
                        not_before_ms: r.try_get(11)?,
                        valid_for_ms: r.try_get(12)?,
                        via: r.try_get(13)?,
                        encoded_for: None,
                    },
                    route: r.try_get(14)?,
                })
            })
            .collect()
    }

    /// Records that the submits of these parts are about to be written, in
    /// one transaction, before the bytes leave. A part already marked keeps
    /// its first mark.
    pub async fn mark_sending(&self, parts: &[(&str, u8)]) -> Result<(), StoreError> {
        if parts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        for (message_id, part) in parts {
            sqlx::query(
                "UPDATE sms_parts SET sending_ms = $1 \
                 WHERE message_id = $2 AND part = $3 AND state = 'queued' AND sending_ms IS NULL",
            )
            .bind(now)
            .bind(*message_id)
            .bind(i64::from(*part))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes back [`Self::mark_sending`] for a part known never to have
    /// reached the peer (the HTTP request could not be sent at all).
    pub async fn clear_sending(&self, message_id: &str, part: u8) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sms_parts SET sending_ms = NULL WHERE message_id = $1 AND part = $2 AND state = 'queued'",
        )
        .bind(message_id)
        .bind(i64::from(part))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// At start, before [`Self::unsent_parts`]: parts an earlier process
    /// was writing, with no answer stored, may have reached the SMSC, so
    /// they end `unknown` instead of being sent again (at most once, as a
    /// call in flight at a crash). Returns the ids of the messages changed.
    pub async fn end_interrupted_sends(&self) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query(
            "SELECT DISTINCT message_id FROM sms_parts WHERE state = 'queued' AND sending_ms IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        sqlx::query(
            "UPDATE sms_parts SET state = 'unknown', error = $1 \
             WHERE state = 'queued' AND sending_ms IS NOT NULL",
        )
        .bind(INTERRUPTED)
        .execute(&mut *tx)
        .await?;
        for id in &ids {
            refresh_message(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Records the submit_sm_resp of a part, then applies any receipt that
    /// came for it earlier. A part is never moved back to queued.
    pub async fn mark_accepted(
        &self,
        message_id: &str,
        part: u8,
        smsc_id: &str,
    ) -> Result<(), StoreError> {
        self.mark_accepted_many(&[(message_id.to_string(), part, smsc_id.to_string())])
            .await
    }

    /// [`Self::mark_accepted`] for several parts in one transaction: the
    /// driver batches the responses that arrived together.
    pub async fn mark_accepted_many(
        &self,
        parts: &[(String, u8, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let mut touched: Vec<&str> = Vec::new();
        let mut applied: Vec<String> = Vec::new();
        for (message_id, part, smsc_id) in parts {
            let f = IdForms::of(smsc_id);
            sqlx::query(
                "UPDATE sms_parts SET state = CASE WHEN state = 'queued' THEN 'submitted' ELSE state END, \
                 smsc_id = $1, smsc_id_dec = $2, smsc_id_hex = $3, submitted_ms = $4 \
                 WHERE message_id = $5 AND part = $6",
            )
            .bind(&f.raw)
            .bind(&f.as_dec)
            .bind(&f.as_hex)
            .bind(now)
            .bind(message_id)
            .bind(i64::from(*part))
            .execute(&mut *tx)
            .await?;
            if !f.raw.is_empty() {
                let early = sqlx::query(
                    "SELECT smsc_id, state, error FROM sms_early_receipts \
                     WHERE smsc_id = $1 OR ($2 IS NOT NULL AND smsc_id_dec = $2) OR ($3 IS NOT NULL AND smsc_id_hex = $3)",
                )
                .bind(&f.raw)
                .bind(&f.as_hex)
                .bind(&f.as_dec)
                .fetch_all(&mut *tx)
                .await?;
                for r in &early {
                    let state = state_of(r.try_get::<&str, _>(1)?)?;
                    let err: Option<String> = r.try_get(2)?;
                    set_part_state(&mut tx, message_id, *part, state, err.as_deref()).await?;
                    // Deleted after every part: parts may share the id.
                    applied.push(r.try_get::<String, _>(0)?);
                }
            }
            if !touched.contains(&message_id.as_str()) {
                touched.push(message_id);
            }
        }
        for smsc_id in applied {
            sqlx::query("DELETE FROM sms_early_receipts WHERE smsc_id = $1")
                .bind(smsc_id)
                .execute(&mut *tx)
                .await?;
        }
        for id in touched {
            refresh_message(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The SMSC refused a part for good.
    pub async fn mark_rejected(
        &self,
        message_id: &str,
        part: u8,
        error: &str,
    ) -> Result<(), StoreError> {
        set_part_state(
            &mut *self.pool.acquire().await?,
            message_id,
            part,
            MessageState::Failed,
            Some(error),
        )
        .await?;
        refresh_message(&mut *self.pool.acquire().await?, message_id).await
    }

    /// Matches a receipt to its parts (hex or decimal ids alike; every part
    /// with that id, as an HTTP provider that split a text itself reports
    /// on all of it once). Returns the message id, or `None` when no part
    /// has that SMSC id yet (the receipt is kept and applied when the
    /// submit_sm_resp arrives).
    pub async fn apply_receipt(&self, r: &Receipt) -> Result<Option<String>, StoreError> {
        let Some(state) = MessageState::of_receipt(r.stat) else {
            return Ok(None);
        };
        let f = IdForms::of(&r.smsc_id);
        let rows = sqlx::query(
            "SELECT message_id, part FROM sms_parts \
             WHERE smsc_id = $1 OR ($2 IS NOT NULL AND smsc_id_hex = $2) OR ($3 IS NOT NULL AND smsc_id_dec = $3) \
             ORDER BY message_id, part",
        )
        .bind(&f.raw)
        .bind(&f.as_dec)
        .bind(&f.as_hex)
        .fetch_all(&self.pool)
        .await?;
        let err = (!r.err.is_empty()).then(|| format!("stat {} err {}", r.stat_text, r.err));
        match rows.first() {
            Some(first) => {
                let id: String = first.try_get(0)?;
                let mut conn = self.pool.acquire().await?;
                for row in &rows {
                    let mid: String = row.try_get(0)?;
                    let part = u8_of(row.try_get(1)?, "part")?;
                    set_part_state(&mut conn, &mid, part, state, err.as_deref()).await?;
                    if mid != id {
                        refresh_message(&mut conn, &mid).await?;
                    }
                }
                refresh_message(&mut conn, &id).await?;
                Ok(Some(id))
            }
            None => {
                sqlx::query(
                    "INSERT INTO sms_early_receipts (smsc_id, smsc_id_dec, smsc_id_hex, state, error, received_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&f.raw)
                .bind(&f.as_dec)
                .bind(&f.as_hex)
                .bind(state.as_str())
                .bind(err)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
                Ok(None)
            }
        }
    }

    /// Parts submitted before `cutoff_ms` with no receipt become unknown.
    /// Returns the ids of the messages that changed.
    pub async fn expire_receipts(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query(
            "SELECT DISTINCT message_id FROM sms_parts WHERE state = 'submitted' AND submitted_ms < $1",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        sqlx::query("UPDATE sms_parts SET state = 'unknown', error = 'no receipt in time' WHERE state = 'submitted' AND submitted_ms < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        for id in &ids {
            refresh_message(&mut *self.pool.acquire().await?, id).await?;
        }
        // Parts of an inbound text that never completed.
        sqlx::query("DELETE FROM sms_inbound_parts WHERE received_ms < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        // A provider does not post an inbound SMS again this late.
        sqlx::query("DELETE FROM sms_provider_inbound WHERE received_ms < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        // A receipt that never found its part will not find it now.
        sqlx::query("DELETE FROM sms_early_receipts WHERE received_ms < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        Ok(ids)
    }

    /// The state of a message, or `None` if there is no such message.
    pub async fn message_state(&self, id: &str) -> Result<Option<MessageState>, StoreError> {
        let row = sqlx::query("SELECT state FROM sms_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| state_of(r.try_get::<&str, _>(0)?)).transpose()
    }

    /// The states of every part of a message, in part order.
    pub async fn part_states(&self, id: &str) -> Result<Vec<MessageState>, StoreError> {
        let rows = sqlx::query("SELECT state FROM sms_parts WHERE message_id = $1 ORDER BY part")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| state_of(r.try_get::<&str, _>(0)?))
            .collect()
    }

    /// The SMSC (or HTTP provider) id of every part, in part order.
    pub async fn part_smsc_ids(&self, id: &str) -> Result<Vec<Option<String>>, StoreError> {
        let rows = sqlx::query("SELECT smsc_id FROM sms_parts WHERE message_id = $1 ORDER BY part")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// The error text of every part of a message, in part order.
    pub async fn part_errors(&self, id: &str) -> Result<Vec<Option<String>>, StoreError> {
        let rows = sqlx::query("SELECT error FROM sms_parts WHERE message_id = $1 ORDER BY part")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

/// Inserts a message and its parts (state queued) on `conn`, inside the
/// caller's transaction. Its first statement writes, so a transaction that
/// starts with it holds the write lock from its start (a read first could
/// fail to upgrade in WAL).
pub(super) async fn insert_message_on(
    conn: &mut AnyConnection,
    m: &NewMessage,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sms_messages (id, seq, source, destination, body, parts, state, created_ms, updated_ms, \
                                   source_ton, source_npi, not_before_ms, valid_for_ms, via) \
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sms_messages), $2, $3, $4, $5, 'queued', $6, $6, \
                 $7, $8, $9, $10, $11)",
    )
    .bind(&m.id)
    .bind(&m.source)
    .bind(&m.destination)
    .bind(&m.body)
    .bind(i64::try_from(m.parts.len()).unwrap_or(i64::MAX))
    .bind(now)
    .bind(m.sending.source_ton.map(i64::from))
    .bind(m.sending.source_npi.map(i64::from))
    .bind(m.sending.not_before_ms)
    .bind(m.sending.valid_for_ms)
    .bind(m.sending.via.as_deref())
    .execute(&mut *conn)
    .await?;
    for (i, p) in m.parts.iter().enumerate() {
        let part = i64::try_from(i + 1).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO sms_parts (message_id, part, idempotency_key, state, esm_class, data_coding, payload, short_message) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7)",
        )
        .bind(&m.id)
        .bind(part)
        .bind(format!("{}.{}", m.id, part))
        .bind(i64::from(p.esm_class))
        .bind(i64::from(p.data_coding))
        .bind(i64::from(p.payload))
        .bind(&p.short_message)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn set_part_state(
    conn: &mut AnyConnection,
    message_id: &str,
    part: u8,
    state: MessageState,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sms_parts SET state = $1, error = COALESCE($2, error) WHERE message_id = $3 AND part = $4")
        .bind(state.as_str())
        .bind(error)
        .bind(message_id)
        .bind(i64::from(part))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn refresh_message(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT state FROM sms_parts WHERE message_id = $1 ORDER BY part")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let parts = rows
        .iter()
        .map(|r| state_of(r.try_get::<&str, _>(0)?))
        .collect::<Result<Vec<_>, _>>()?;
    let state = MessageState::of_parts(&parts);
    sqlx::query("UPDATE sms_messages SET state = $1, updated_ms = $2 WHERE id = $3")
        .bind(state.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
#[path = "sms_tests.rs"]
mod tests;
