//! The `dnc` table: numbers (E.164) never to be called, whatever the
//! campaign. The dialer checks it when a contact's turn comes
//! ([`super::Claimed::dnc`]), so a number added mid-campaign is honoured.

use sqlx::Row;

use super::{now_ms, Store, StoreError};

/// One number on the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DncEntry {
    pub phone: String,
    pub added_at: i64,
    /// Who put it there: `cli`, `import:FILE`, `script`, …
    pub source: String,
}

impl Store {
    /// Adds numbers (E.164); returns how many were not already listed.
    pub async fn dnc_add(&self, phones: &[String], source: &str) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut added = 0;
        let mut tx = self.pool.begin().await?;
        for p in phones {
            added += sqlx::query(
                "INSERT INTO dnc (phone, added_at, source) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(p)
            .bind(now)
            .bind(source)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes numbers; returns how many were listed.
    pub async fn dnc_remove(&self, phones: &[String]) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut tx = self.pool.begin().await?;
        for p in phones {
            removed += sqlx::query("DELETE FROM dnc WHERE phone = $1")
                .bind(p)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Takes `phone` off the list if an SMS opt-out put it there (`sms:…`
    /// source): an SMS opt-in undoes the sender's own opt-out, never an
    /// entry the operator made. Returns how many rows went.
    pub async fn dnc_remove_sms_opt_out(&self, phone: &str) -> Result<u64, StoreError> {
        // Not `LIKE 'sms:%'`: case-blind on SQLite, not on PostgreSQL.
        Ok(
            sqlx::query("DELETE FROM dnc WHERE phone = $1 AND SUBSTR(source, 1, 4) = 'sms:'")
                .bind(phone)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Whether `phone` (E.164) is listed.
    pub async fn dnc_contains(&self, phone: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM dnc WHERE phone = $1")
            .bind(phone)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Up to `limit` entries after `after` in number order (`""` for the
    /// first page; page on with the last phone).
    pub async fn dnc_list(&self, after: &str, limit: u32) -> Result<Vec<DncEntry>, StoreError> {
        sqlx::query(
            "SELECT phone, added_at, source FROM dnc WHERE phone > $1 ORDER BY phone LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(DncEntry {
                phone: r.try_get(0)?,
                added_at: r.try_get(1)?,
                source: r.try_get(2)?,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::backends_test::{fresh, on_both};

    async fn an_sms_opt_in_undoes_only_an_sms_opt_out() {
        let s = fresh().await;
        let n = |p: &str| vec![p.to_string()];
        s.dnc_add(&n("+1"), "sms:STOP").await.unwrap();
        s.dnc_add(&n("+2"), "cli").await.unwrap();
        s.dnc_add(&n("+3"), "SMS:operator-import").await.unwrap();
        assert_eq!(s.dnc_remove_sms_opt_out("+1").await.unwrap(), 1);
        assert_eq!(s.dnc_remove_sms_opt_out("+2").await.unwrap(), 0);
        assert_eq!(s.dnc_remove_sms_opt_out("+3").await.unwrap(), 0);
        assert_eq!(s.dnc_remove_sms_opt_out("+4").await.unwrap(), 0);
        let left: Vec<_> = s
            .dnc_list("", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.phone, e.source))
            .collect();
        assert_eq!(
            left,
            [
                ("+2".to_string(), "cli".to_string()),
                ("+3".to_string(), "SMS:operator-import".to_string())
            ]
        );
        assert!(!s.dnc_contains("+1").await.unwrap());
    }

    on_both!(an_sms_opt_in_undoes_only_an_sms_opt_out);
}
