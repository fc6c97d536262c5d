//! A campaign's answering-machine detection setting (`campaigns.amd`,
//! migration 0010): every answered attempt runs AMD before the script
//! (`call.answered_by`, the report's `answered_by`). Kept apart from the
//! campaign's other columns, which the create and claim code own.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// Turns AMD on or off for campaign `id`; false when there is none.
    pub async fn set_campaign_amd(&self, id: &str, amd: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE campaigns SET amd = $1 WHERE id = $2")
            .bind(i64::from(amd))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether campaign `id` runs AMD (false when there is no such
    /// campaign).
    pub async fn campaign_amd(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT amd FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)? != 0,
            None => false,
        })
    }
}
