//! An attempt's refined outcome (`unreachable:sit-vc`,
//! `no_answer:announcement`: docs/campaigns.md, "Refined outcomes"),
//! written beside the attempt's row apart from the claim and finish
//! statements, before the attempt is finished.

use super::{Store, StoreError};

impl Store {
    /// Notes `refined` on attempt `attempt_id` while it is still in
    /// flight (the finish that follows gives it its outcome and its
    /// contact's next step). False when the attempt has already ended.
    pub async fn note_refined_outcome(
        &self,
        attempt_id: &str,
        refined: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE attempts SET refined_outcome = $1 WHERE id = $2 AND state <> 'done'",
        )
        .bind(refined)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
#[path = "refined_tests.rs"]
mod tests;
