//! SMS: send one, read its state, list inbound texts — through the same
//! `SmsService` and store queries `rivr sms` uses.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::sms::options::{self, OptionError};
use crate::sms::{SendOptions, SmsError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSms {
    to: String,
    text: String,
    /// Sender ID (alphanumeric, short code, +E.164, national).
    from: Option<String>,
    /// RFC 3339 delivery time.
    at: Option<String>,
    /// Validity: "10m", "2h", "1d", … or a number of seconds.
    valid_for: Option<Value>,
    /// A route name: send through it only.
    via: Option<String>,
}

impl NewSms {
    fn options(&self) -> Result<SendOptions, ApiError> {
        let field = |e: OptionError| ApiError::field(e.name, e.to_string());
        let valid_for = match &self.valid_for {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(options::parse_duration("valid_for", v).map_err(field)?),
            Some(Value::Number(n)) => {
                Some(options::parse_duration("valid_for", &n.to_string()).map_err(field)?)
            }
            Some(_) => {
                return Err(ApiError::field(
                    "valid_for",
                    "valid_for: a duration like \"10m\" or a number of seconds",
                ))
            }
        };
        Ok(SendOptions {
            from: self.from.clone(),
            at_ms: self
                .at
                .as_deref()
                .map(options::parse_at)
                .transpose()
                .map_err(field)?,
            valid_for,
            via: self.via.clone(),
        })
    }
}

fn service(s: &ApiState) -> Result<&crate::sms::SmsService, ApiError> {
    s.sms.as_ref().ok_or_else(|| {
        ApiError::conflict("SMS is not configured: add [smpp] or [sms_http] to the config")
    })
}

pub async fn send(
    State(s): State<ApiState>,
    body: Result<Json<NewSms>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(m) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let opts = m.options()?;
    let id = service(&s)?
        .submit_with(&m.to, &m.text, &opts)
        .await
        .map_err(|e| match e {
            SmsError::BadNumber(_) | SmsError::NoRoute(_) => ApiError::field("to", e.to_string()),
            SmsError::Encode(_) => ApiError::field("text", e.to_string()),
            SmsError::Option(o) => ApiError::field(o.name, o.to_string()),
            other => ApiError::unavailable(other.to_string()),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "state": "queued" })),
    ))
}

pub async fn status(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let state = s
        .store
        .message_state(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no SMS {id:?}")))?;
    let parts = s.store.part_states(&id).await?;
    let errors = s.store.part_errors(&id).await?;
    let routes = s.store.part_routes(&id).await?;
    let parts: Vec<Value> = parts
        .iter()
        .zip(errors)
        .enumerate()
        .map(|(i, (p, e))| {
            let r = routes.get(i);
            json!({
                "part": i + 1,
                "state": p.as_str(),
                "error": e,
                "route": r.and_then(|r| r.route.clone()),
                "routes": r.map(|r| r.routes.clone()).unwrap_or_default(),
                "attempts": r.map_or(0, |r| r.attempts),
            })
        })
        .collect();
    let (at, valid) = s.store.message_schedule(&id).await?;
    let at = at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    Ok(Json(json!({
        "id": id,
        "state": state.as_str(),
        "at": at,
        "valid_for_s": valid.map(|v| v / 1000),
        "parts": parts,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundQuery {
    /// Unix milliseconds; the default is the last 24 hours.
    since_ms: Option<i64>,
}

pub async fn inbound(
    State(s): State<ApiState>,
    q: Result<Query<InboundQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::field("since_ms", e.body_text()))?;
    let since = q
        .since_ms
        .unwrap_or_else(|| crate::store::now_ms().saturating_sub(24 * 3600 * 1000));
    let list: Vec<Value> = s
        .store
        .inbound_since(since)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "from": m.source,
                "to": m.destination,
                "text": m.body,
                "received_ms": m.received_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "count": list.len(), "messages": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// An `[[sms_route]]` name; every route when absent.
    route: Option<String>,
    /// Unix milliseconds; the default is everything.
    since_ms: Option<i64>,
}

/// `GET /sms/results`: the answers SMS scripts stored with `set_result`
/// (`rivr sms results`), oldest first.
pub async fn results(
    State(s): State<ApiState>,
    q: Result<Query<ResultsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::field("query", e.body_text()))?;
    let list: Vec<Value> = s
        .store
        .sms_results(q.route.as_deref(), q.since_ms.unwrap_or(0))
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "sms": r.inbound_id,
                "from": r.sender,
                "route": r.route,
                "name": r.name,
                "value": r.value,
                "at_ms": r.at_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "count": list.len(), "results": list })))
}

/// `GET /sms/routes`: every route, whether it takes messages now (and why
/// not), and its link.
pub async fn routes(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let routes = service(&s)?.routes();
    Ok(Json(json!({ "routes": routes })))
}

/// `GET /sms/link`: the SMPP bind (or the HTTP transport) now.
pub async fn link(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let status = service(&s)?.link_status();
    Ok(Json(json!(status)))
}
