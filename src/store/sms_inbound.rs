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

/// A new inbound SMS id for one received at `now`. Ids sort in arrival
/// order within a millisecond too, whichever way the SMS came (the flows
/// answer one sender's messages by `received_ms, id`).
fn inbound_id(now: i64) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff;
    format!("in-{now:011x}{n:04x}{:04x}", rand::random::<u16>())
}

impl Store {
    /// Keeps an inbound SMS; returns its id.
    pub async fn insert_inbound(
        &self,
        source: &str,
        destination: &str,
        body: &str,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let id = inbound_id(now);
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
        let now = now_ms();
        let id = inbound_id(now);
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

#[cfg(test)]
mod tests {
    use crate::store::backends_test::{fresh, on_both};

    async fn a_provider_inbound_sms_is_stored_once_and_in_arrival_order() {
        let s = fresh().await;
        let first = s
            .insert_provider_inbound("ib-1", "+254700000001", "2001", "SURVEY")
            .await
            .unwrap()
            .expect("a new provider id is stored");
        assert_eq!(
            s.insert_provider_inbound("ib-1", "+254700000001", "2001", "SURVEY again")
                .await
                .unwrap(),
            None,
            "posted again: stored once"
        );
        let mut ids = vec![first];
        for i in 2..=20 {
            let id = s
                .insert_provider_inbound(
                    &format!("ib-{i}"),
                    "+254700000001",
                    "2001",
                    &format!("{i}"),
                )
                .await
                .unwrap()
                .unwrap();
            ids.push(id);
        }
        let mut stored = s.inbound_since(0).await.unwrap();
        assert_eq!(
            stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ids.iter().map(String::as_str).collect::<Vec<_>>(),
            "read back in the order they arrived, within a millisecond too"
        );
        let m = stored.remove(0);
        assert_eq!(
            (m.source.as_str(), m.destination.as_str(), m.body.as_str()),
            ("+254700000001", "2001", "SURVEY")
        );
        // What the flows will answer: every one of them, in that order.
        let pending = s.flow_pending(0, 100).await.unwrap();
        assert_eq!(pending.len(), 20);
        assert_eq!(pending[0].id, ids[0]);
    }

    async fn a_provider_id_is_forgotten_with_old_rows() {
        let s = fresh().await;
        s.insert_provider_inbound("v-1", "+1", "2001", "a")
            .await
            .unwrap()
            .unwrap();
        let later = crate::store::now_ms() + 1;
        s.expire_receipts(later).await.unwrap();
        assert!(
            s.insert_provider_inbound("v-1", "+1", "2001", "a")
                .await
                .unwrap()
                .is_some(),
            "pruned: the id is new again"
        );
    }

    on_both!(
        a_provider_inbound_sms_is_stored_once_and_in_arrival_order,
        a_provider_id_is_forgotten_with_old_rows,
    );
}
