//! `/webhooks/sms/infobip` and `/webhooks/sms/vonage`: delivery reports
//! and inbound SMS pushed by the HTTP SMS providers (docs/sms.md). Not
//! behind the bearer token: the provider's signature or the shared
//! `webhook_secret` is checked instead (`sms::http::webhook`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use super::error::ApiError;
use super::ApiState;
use crate::sms::config::Provider;
use crate::sms::http::webhook::{self, Refusal, WebhookRequest};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/webhooks/sms/infobip", post(infobip))
        // Vonage sends GET or POST, as set on its dashboard.
        .route("/webhooks/sms/vonage", post(vonage).get(vonage))
}

async fn infobip(
    State(s): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    take(s, Provider::Infobip, q, headers, body).await
}

async fn vonage(
    State(s): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    take(s, Provider::Vonage, q, headers, body).await
}

async fn take(
    s: ApiState,
    provider: Provider,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let req = WebhookRequest {
        query: query.as_deref(),
        content_type: header("content-type").unwrap_or(""),
        secret_header: header("x-webhook-secret"),
        body: &body,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let events = match webhook::read(s.config.sms_http.as_ref(), provider, &req, now) {
        Ok(e) => e,
        Err(Refusal::NotConfigured(why)) => return Err(ApiError::not_found(why)),
        Err(Refusal::Forbidden(why)) => {
            tracing::warn!(provider = provider.name(), "sms webhook refused: {why}");
            return Err(ApiError::new(StatusCode::FORBIDDEN, why));
        }
    };
    let sms = s
        .sms
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("the SMS service is not running"))?;
    let n = events.len();
    let (matched, inbound) = sms
        .apply_provider_events(events)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    tracing::debug!(
        provider = provider.name(),
        n,
        matched,
        inbound,
        "sms webhook"
    );
    // 200 (not 204): Infobip and Vonage both retry on anything else.
    Ok(StatusCode::OK)
}
