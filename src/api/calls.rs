//! Live calls (list, hang one up), an outbound call as `rivr call` places
//! it, and the trunks' state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::server::campaigns::Control;
use crate::server::one_call::CallArgs;

pub async fn list(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let calls = s.ask(|reply| Control::Calls { reply }).await?;
    Ok(Json(json!({ "count": calls.len(), "calls": calls })))
}

pub async fn hang_up(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = s
        .ask(|reply| Control::Hangup {
            id: id.clone(),
            reply,
        })
        .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no live call {id:?}")))
    }
}

/// `POST /calls`: the options of `rivr call`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCall {
    number: String,
    trunk: Option<String>,
    /// Relative to the config file's directory.
    script: Option<PathBuf>,
    caller_id: Option<String>,
    ring_timeout_s: Option<u64>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    /// Answering-machine detection before the script.
    #[serde(default)]
    amd: bool,
}

/// Places the call and answers 202 with its id at once; the outcome is in
/// its CDR.
pub async fn originate(
    State(s): State<ApiState>,
    body: Result<Json<NewCall>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(c) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let number = c.number.trim();
    if number.is_empty() {
        return Err(ApiError::field("number", "the number is empty"));
    }
    let args = CallArgs {
        number: number.to_string(),
        trunk: c.trunk,
        script: c.script.map(|p| s.config.base_dir.join(p)),
        caller_id: c.caller_id,
        ring_timeout: c.ring_timeout_s.map(Duration::from_secs),
        vars: c.vars.into_iter().collect(),
        count: 1,
        amd: c.amd,
    };
    let config = s.config.clone();
    let checked = {
        let args = args.clone();
        // Compiling the script reads a file: off the runtime's threads.
        tokio::task::spawn_blocking(move || args.check(&config))
            .await
            .map_err(|e| ApiError::unavailable(format!("check: {e}")))?
    };
    checked.map_err(|e| {
        let field = if e.starts_with("--trunk") || e.starts_with("no [[trunk]]") {
            "trunk"
        } else {
            "script"
        };
        ApiError::field(field, e.trim_start_matches("--trunk ").to_string())
    })?;
    let req = args.request();
    let (_, id) = s.ask(|reply| Control::Originate { req, reply }).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

pub async fn trunks(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let trunks = s.ask(|reply| Control::Trunks { reply }).await?;
    Ok(Json(json!({ "trunks": trunks })))
}
