//! How many SMS messages stand in each state, for the dashboard.

use sqlx::Row;

use super::{MessageState, Store, StoreError};

impl Store {
    /// Messages by state (every state, zeros included, in
    /// [`MessageState`] order). The `(state, seq)` index answers it without
    /// reading the messages themselves.
    pub async fn sms_counts(&self) -> Result<Vec<(MessageState, u64)>, StoreError> {
        use MessageState::*;
        let mut counts: Vec<(MessageState, u64)> =
            [Queued, Submitted, Delivered, Failed, Expired, Unknown]
                .into_iter()
                .map(|s| (s, 0))
                .collect();
        let rows = sqlx::query("SELECT state, COUNT(*) FROM sms_messages GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let name: &str = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            let state = MessageState::parse(name).ok_or_else(|| StoreError::BadRow {
                table: "sms_messages",
                what: format!("state = {name:?}"),
            })?;
            if let Some(c) = counts.iter_mut().find(|(s, _)| *s == state) {
                c.1 = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backends_test::{fresh, on_both};
    use crate::store::{NewMessage, NewPart};

    async fn counts_every_state_with_zeros() {
        let s = fresh().await;
        let part = NewPart {
            esm_class: 0,
            data_coding: 0,
            payload: false,
            short_message: b"hi".to_vec(),
        };
        for id in ["a", "b"] {
            s.insert_message(&NewMessage {
                id: id.into(),
                source: "1".into(),
                destination: "2".into(),
                body: "hi".into(),
                parts: vec![part.clone()],
                sending: Default::default(),
            })
            .await
            .unwrap();
        }
        let counts = s.sms_counts().await.unwrap();
        assert_eq!(counts.len(), 6);
        assert_eq!(counts[0], (MessageState::Queued, 2));
        assert!(counts[1..].iter().all(|(_, n)| *n == 0), "{counts:?}");
    }

    on_both!(counts_every_state_with_zeros);
}
