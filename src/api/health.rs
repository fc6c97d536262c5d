//! `/health` (the process answers), `/ready` (it can take work: not
//! draining, the store answers, the server loop runs) and `POST /drain`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::ApiState;

pub async fn health(State(s): State<ApiState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
    }))
}

/// 200 when ready; 503 with the reasons otherwise.
pub async fn ready(State(s): State<ApiState>) -> (StatusCode, Json<Value>) {
    let mut problems: Vec<String> = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), s.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("store: {e}")),
        Err(_) => problems.push("store: no answer within 2 s".into()),
    }
    if s.drain.is_draining() {
        problems.push("draining: no new calls are taken".into());
    }
    if s.control.is_closed() {
        problems.push("the server loop has stopped".into());
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "problems": problems })),
        )
    }
}

/// `POST /drain`: as SIGTERM — new calls refused, calls in progress end on
/// their own up to `[server] drain_timeout_s`, then rivr exits. 202 when
/// this request started it, 200 when a drain was already running.
pub async fn drain(State(s): State<ApiState>) -> (StatusCode, Json<Value>) {
    let started = s.drain.start();
    let status = if started {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({ "draining": true, "started_now": started })),
    )
}
