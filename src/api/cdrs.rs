//! `GET /cdrs`: call detail records and script results from the store,
//! filtered and paged by the same checked query `rivr cdr list` uses
//! (`store::CdrParams`).

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::store::CdrParams;

/// `?since=&until=` (RFC 3339), `number`, `campaign`, `outcome`, `limit`,
/// `after` (the previous page's `next`).
pub async fn list(
    State(s): State<ApiState>,
    q: Result<Query<CdrParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = q.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let query = params
        .to_query()
        .map_err(|e| ApiError::field(e.field, e.message))?;
    let page = s.store.query_cdrs(&query).await?;
    Ok(Json(json!({
        "count": page.rows.len(),
        "cdrs": page.rows,
        "next": page.next.map(|c| c.to_string()),
    })))
}
