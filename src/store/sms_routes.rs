//! Which route a part of an SMS is with: claimed in the store before the
//! part is handed to that route's driver, so a part is never with two
//! routes, and a part already written to an SMSC never moves.

use sqlx::Row;

use super::{now_ms, NewPart, Store, StoreError};

/// The route of one part, as `rivr sms status` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRoute {
    pub part: u8,
    /// The route the part is with now.
    pub route: Option<String>,
    /// Every route it was claimed for, in order.
    pub routes: Vec<String>,
    pub attempts: u32,
}

impl Store {
    /// Claims parts for `route` in one transaction. A part moves only while
    /// it is queued, was never written to a peer (`sending_ms` unset) and is
    /// still with `from` (the route the caller took it from; `None`: no
    /// route yet). Returns, per part, whether it is now `route`'s.
    pub async fn claim_parts(
        &self,
        parts: &[(&str, u8, Option<&str>)],
        route: &str,
    ) -> Result<Vec<bool>, StoreError> {
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(parts.len());
        for (message_id, part, from) in parts {
            let n = sqlx::query(
                "UPDATE sms_parts SET route = $1, attempts = attempts + 1, \
                 routes = CASE WHEN routes IS NULL THEN $1 ELSE routes || ',' || $1 END \
                 WHERE message_id = $2 AND part = $3 AND state = 'queued' AND sending_ms IS NULL \
                 AND (route IS NULL AND $4 IS NULL OR route = $4)",
            )
            .bind(route)
            .bind(*message_id)
            .bind(i64::from(*part))
            .bind(*from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            out.push(n == 1);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The text of message `id`, as stored.
    pub async fn message_body(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM sms_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Replaces the parts of message `id` by `parts` (its text encoded for
    /// another kind of route), claimed for `route`, in one transaction —
    /// only while every part of it is queued, was never written and is
    /// with `from` (`None`: no route yet). Returns whether it did.
    pub async fn reclaim_encoded(
        &self,
        id: &str,
        from: Option<&str>,
        route: &str,
        parts: &[NewPart],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A write first: the transaction holds the write lock from its start.
        let n = sqlx::query("UPDATE sms_messages SET parts = $1, updated_ms = $2 WHERE id = $3")
            .bind(i64::try_from(parts.len()).unwrap_or(i64::MAX))
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let all: i64 = sqlx::query("SELECT COUNT(*) FROM sms_parts WHERE message_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let free: i64 = sqlx::query(
            "SELECT COUNT(*) FROM sms_parts WHERE message_id = $1 AND state = 'queued'              AND sending_ms IS NULL AND (route IS NULL AND $2 IS NULL OR route = $2)",
        )
        .bind(id)
        .bind(from)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if n != 1 || all == 0 || free != all || parts.is_empty() {
            tx.rollback().await?;
            return Ok(false);
        }
        let before = sqlx::query(
            "SELECT routes, attempts FROM sms_parts WHERE message_id = $1 ORDER BY part LIMIT 1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let routes: Option<String> = before.try_get(0)?;
        let attempts: i64 = before.try_get(1)?;
        let routes = match routes {
            Some(r) => format!("{r},{route}"),
            None => route.to_string(),
        };
        sqlx::query("DELETE FROM sms_parts WHERE message_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for (i, p) in parts.iter().enumerate() {
            let part = i64::try_from(i + 1).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO sms_parts (message_id, part, idempotency_key, state, esm_class, data_coding,                                         payload, short_message, route, routes, attempts)                  VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(part)
            .bind(format!("{id}.{part}"))
            .bind(i64::from(p.esm_class))
            .bind(i64::from(p.data_coding))
            .bind(i64::from(p.payload))
            .bind(&p.short_message)
            .bind(route)
            .bind(&routes)
            .bind(attempts + 1)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The route of every part of a message, in part order.
    pub async fn part_routes(&self, id: &str) -> Result<Vec<PartRoute>, StoreError> {
        let rows = sqlx::query(
            "SELECT part, route, routes, attempts FROM sms_parts WHERE message_id = $1 ORDER BY part",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let routes: Option<String> = r.try_get(2)?;
                Ok(PartRoute {
                    part: u8::try_from(r.try_get::<i64, _>(0)?).unwrap_or(u8::MAX),
                    route: r.try_get(1)?,
                    routes: routes
                        .map(|s| s.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    attempts: u32::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// When a message is to leave and how long it stays valid (unix ms,
    /// ms), as stored.
    pub async fn message_schedule(
        &self,
        id: &str,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let row = sqlx::query("SELECT not_before_ms, valid_for_ms FROM sms_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok((r.try_get(0)?, r.try_get(1)?)),
            None => Ok((None, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::backends_test::{fresh, on_both};
    use crate::store::{NewMessage, NewPart, Sending};

    async fn a_part_is_claimed_by_one_route_and_never_moves_once_written() {
        let s = fresh().await;
        let part = NewPart {
            esm_class: 0,
            data_coding: 0,
            payload: false,
            short_message: b"hi".to_vec(),
        };
        s.insert_message(&NewMessage {
            id: "m".into(),
            source: "R".into(),
            destination: "1".into(),
            body: "hi".into(),
            parts: vec![part.clone(), part],
            sending: Default::default(),
        })
        .await
        .unwrap();
        let p = |n| ("m", n, None);
        assert_eq!(
            s.claim_parts(&[p(1), p(2)], "a").await.unwrap(),
            [true, true]
        );
        // a second claimer who thinks the parts are free gets nothing
        assert_eq!(s.claim_parts(&[p(1)], "b").await.unwrap(), [false]);
        // part 1 was written by route a: it stays with a
        s.mark_sending(&[("m", 1)]).await.unwrap();
        let from_a = |n| ("m", n, Some("a"));
        assert_eq!(
            s.claim_parts(&[from_a(1), from_a(2)], "b").await.unwrap(),
            [false, true]
        );
        let r = s.part_routes("m").await.unwrap();
        assert_eq!(r[0].route.as_deref(), Some("a"));
        assert_eq!((r[1].route.as_deref(), r[1].attempts), (Some("b"), 2));
        assert_eq!(r[1].routes, ["a", "b"]);
    }

    async fn a_message_keeps_how_it_is_to_be_sent() {
        let s = fresh().await;
        let part = NewPart {
            esm_class: 0,
            data_coding: 0,
            payload: false,
            short_message: b"hi".to_vec(),
        };
        let sending = Sending {
            source_ton: Some(5),
            source_npi: Some(0),
            not_before_ms: Some(1_900_000_000_123),
            valid_for_ms: Some(86_400_000),
            via: Some("b".into()),
            // Not stored: how the parts in memory were encoded.
            encoded_for: None,
        };
        s.insert_message(&NewMessage {
            id: "m".into(),
            source: "CLINIC".into(),
            destination: "1".into(),
            body: "hi".into(),
            parts: vec![part.clone()],
            sending: sending.clone(),
        })
        .await
        .unwrap();
        s.insert_message(&NewMessage {
            id: "n".into(),
            source: "2001".into(),
            destination: "1".into(),
            body: "hi".into(),
            parts: vec![part],
            sending: Sending::default(),
        })
        .await
        .unwrap();
        assert_eq!(
            s.message_schedule("m").await.unwrap(),
            (Some(1_900_000_000_123), Some(86_400_000))
        );
        assert_eq!(s.message_schedule("n").await.unwrap(), (None, None));
        assert_eq!(s.message_schedule("none").await.unwrap(), (None, None));
        let unsent = s.unsent_parts().await.unwrap();
        assert_eq!(unsent.len(), 2);
        assert_eq!((&unsent[0].sending, &unsent[0].route), (&sending, &None));
        assert_eq!(unsent[1].sending, Sending::default());
        assert_eq!(s.claim_parts(&[("m", 1, None)], "b").await.unwrap(), [true]);
        let r = s.part_routes("m").await.unwrap();
        assert_eq!(
            (r[0].routes.as_slice(), r[0].attempts),
            (&["b".to_string()][..], 1)
        );
        assert_eq!(
            s.unsent_parts().await.unwrap()[0].route.as_deref(),
            Some("b")
        );
        assert!(s.part_routes("none").await.unwrap().is_empty());
    }

    async fn a_message_is_encoded_again_for_another_route_only_while_nothing_of_it_was_written() {
        let s = fresh().await;
        let part = |b: &[u8]| NewPart {
            esm_class: 0x40,
            data_coding: 0,
            payload: false,
            short_message: b.to_vec(),
        };
        for id in ["m", "w"] {
            s.insert_message(&NewMessage {
                id: id.into(),
                source: "R".into(),
                destination: "1".into(),
                body: "hello there".into(),
                parts: vec![part(b"hello "), part(b"there")],
                sending: Default::default(),
            })
            .await
            .unwrap();
            let free = |n| (id, n, None);
            s.claim_parts(&[free(1), free(2)], "a").await.unwrap();
        }
        let whole = NewPart {
            esm_class: 0,
            data_coding: 0,
            payload: false,
            short_message: b"hello there".to_vec(),
        };
        assert_eq!(
            s.message_body("m").await.unwrap().as_deref(),
            Some("hello there")
        );
        // not with "b": not moved
        let one = [whole.clone()];
        assert!(!s
            .reclaim_encoded("m", Some("b"), "http", &one)
            .await
            .unwrap());
        assert!(s
            .reclaim_encoded("m", Some("a"), "http", &one)
            .await
            .unwrap());
        let r = s.part_routes("m").await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].route.as_deref(), r[0].attempts), (Some("http"), 2));
        assert_eq!(r[0].routes, ["a", "http"]);
        let unsent = s.unsent_parts().await.unwrap();
        let m: Vec<_> = unsent.iter().filter(|p| p.message_id == "m").collect();
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].short_message.as_slice(), m[0].esm_class),
            (&b"hello there"[..], 0)
        );
        // a part of "w" went out on route a: "w" stays whole with a
        s.mark_sending(&[("w", 1)]).await.unwrap();
        assert!(!s
            .reclaim_encoded("w", Some("a"), "http", &[whole])
            .await
            .unwrap());
        assert_eq!(s.part_routes("w").await.unwrap().len(), 2);
        assert_eq!(s.part_states("w").await.unwrap().len(), 2);
    }

    on_both!(
        a_part_is_claimed_by_one_route_and_never_moves_once_written,
        a_message_keeps_how_it_is_to_be_sent,
        a_message_is_encoded_again_for_another_route_only_while_nothing_of_it_was_written,
    );
}
