//! The inbound side of the `sms_*` tables: mobile-originated SMS, and the
//! parts of concatenated ones until every part has arrived.

use sqlx::Row;

use super::{now_ms, Store, StoreError};

/// A mobile-originated SMS, kept for scripts and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub id: String,
    pub source: String,
    pub destination: String,
    pub body: String,
    pub received_ms: i64,
}

impl Store {
    /// Keeps an inbound SMS; returns its id.
    pub async fn insert_inbound(
        &self,
        source: &str,
        destination: &str,
        body: &str,
    ) -> Result<String, StoreError> {
        // Ids sort in arrival order within a millisecond too (the flows
        // answer one sender's messages by `received_ms, id`).
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let now = now_ms();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff;
        let id = format!("in-{now:011x}{n:04x}{:04x}", rand::random::<u16>());
        sqlx::query("INSERT INTO sms_inbound (id, source, destination, body, received_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(source)
            .bind(destination)
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Keeps one part of a concatenated inbound SMS. When every part of it
    /// has arrived, stores the whole text as one inbound SMS and returns its
    /// id. A part received twice counts once.
    pub async fn insert_inbound_part(
        &self,
        source: &str,
        destination: &str,
        reference: u16,
        total: u8,
        seq: u8,
        body: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query(
            "INSERT INTO sms_inbound_parts (source, destination, reference, total, seq, body, received_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(source)
        .bind(destination)
        .bind(i64::from(reference))
        .bind(i64::from(total))
        .bind(i64::from(seq))
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT body FROM sms_inbound_parts WHERE source = $1 AND reference = $2 AND total = $3 ORDER BY seq",
        )
        .bind(source)
        .bind(i64::from(reference))
        .bind(i64::from(total))
        .fetch_all(&self.pool)
        .await?;
        if rows.len() < usize::from(total) {
            return Ok(None);
        }
        let mut text = String::new();
        for r in &rows {
            text.push_str(r.try_get::<&str, _>(0)?);
        }
        sqlx::query(
            "DELETE FROM sms_inbound_parts WHERE source = $1 AND reference = $2 AND total = $3",
        )
        .bind(source)
        .bind(i64::from(reference))
        .bind(i64::from(total))
        .execute(&self.pool)
        .await?;
        self.insert_inbound(source, destination, &text)
            .await
            .map(Some)
    }

    /// Keeps an inbound SMS an HTTP provider delivered under its own id,
    /// once: `None` when that id was stored before (the provider posted it
    /// again). One transaction, so a crash leaves neither or both.
    pub async fn insert_provider_inbound(
        &self,
        provider_id: &str,
        source: &str,
        destination: &str,
        body: &str,
    ) -> Result<Option<String>, StoreError> {
        let id = format!("in-{:016x}", rand::random::<u64>());
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO sms_provider_inbound (provider_id, inbound_id, received_ms) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(provider_id)
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        sqlx::query("INSERT INTO sms_inbound (id, source, destination, body, received_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(source)
            .bind(destination)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Inbound SMS received at or after `since_ms`, oldest first.
    pub async fn inbound_since(&self, since_ms: i64) -> Result<Vec<InboundSms>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, source, destination, body, received_ms FROM sms_inbound WHERE received_ms >= $1 ORDER BY received_ms, id",
        )
        .bind(since_ms)
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
}
