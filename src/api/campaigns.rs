//! Campaigns over HTTP: list, create (the contact list is the `text/csv`
//! body, the settings are the query), start/pause/resume/cancel, status
//! and the paged report. Every route runs the `campaign::ops` operation
//! `rivr campaign …` runs; this file only maps HTTP to it and back.

use std::path::PathBuf;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::campaign::ops::{self, Action, CreateRequest, OpError};
use crate::store::{now_ms, CampaignState};

/// How the uploaded list is named in errors about its content.
const BODY: &str = "the request body";

fn op_error(e: OpError) -> Response {
    match e {
        OpError::Invalid(i) => ApiError::field(i.field.name(), i.describe(i.field.name())),
        OpError::NotFound(id) => ApiError::not_found(format!("no campaign {id:?}")),
        // The current state is a field of its own, so a client can act on
        // it without parsing the message.
        e @ OpError::State { current, .. } => {
            let body = json!({ "error": e.to_string(), "state": current.as_str() });
            return (StatusCode::CONFLICT, Json(body)).into_response();
        }
        OpError::Store(e) => ApiError::from(e),
    }
    .into_response()
}

/// A query parameter as a number, or a 400 naming it.
fn number<T: FromStr>(field: &str, v: Option<String>) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    v.map(|s| {
        s.trim()
            .parse::<T>()
            .map_err(|e| ApiError::field(field, format!("{field} {s:?}: {e}")))
    })
    .transpose()
}

fn required(field: &str, v: Option<String>) -> Result<String, ApiError> {
    v.ok_or_else(|| ApiError::field(field, format!("{field} is required")))
}

/// A comma-separated list, blanks dropped.
fn list(v: Option<String>) -> Vec<String> {
    v.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `GET /campaigns?state=S&offset=N&limit=N`: a page of the campaigns in
/// `rivr campaign list`'s order (default limit 100, at most 1000), those in
/// state `S` only when given; `total` counts them all and `next_offset`
/// starts the next page (absent on the last).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

pub async fn list_all(
    State(s): State<ApiState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let Query(q) = q.map_err(|e| ApiError::new(e.status(), e.body_text()).into_response())?;
    let state = match q.state.as_deref() {
        None => None,
        Some(name) => Some(CampaignState::parse(name).ok_or_else(|| {
            ApiError::field(
                "state",
                format!("state {name:?}: created, running, paused, done or cancelled"),
            )
            .into_response()
        })?),
    };
    let offset = number::<u64>("offset", q.offset)
        .map_err(IntoResponse::into_response)?
        .unwrap_or(0);
    let limit = number::<u32>("limit", q.limit)
        .map_err(IntoResponse::into_response)?
        .unwrap_or(100);
    if !(1..=ops::MAX_PAGE).contains(&limit) {
        return Err(
            ApiError::field("limit", format!("limit {limit}: 1 to {}", ops::MAX_PAGE))
                .into_response(),
        );
    }
    let page = ops::list_page(&s.store, now_ms(), state, offset, limit)
        .await
        .map_err(op_error)?;
    let list: Vec<Value> = page.views.iter().map(|v| v.to_json()).collect();
    Ok(Json(json!({
        "count": list.len(),
        "total": page.total,
        "next_offset": page.next_offset,
        "campaigns": list,
    }))
    .into_response())
}

/// `POST /campaigns?name=…&script=…&trunk=…`: the options of `rivr campaign
/// create`, with `_` for `-` (docs/api.md). Strings, so that a bad number
/// is refused by its own name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    name: Option<String>,
    /// Relative to the config file's directory.
    script: Option<String>,
    trunk: Option<String>,
    cps: Option<String>,
    max_channels: Option<String>,
    attempts: Option<String>,
    retry: Option<String>,
    hours: Option<String>,
    days: Option<String>,
    tz: Option<String>,
    country: Option<String>,
    sms_fallback: Option<String>,
    sms_on: Option<String>,
    ends: Option<String>,
    priority: Option<String>,
    /// `true` or `false`.
    amd: Option<String>,
}

impl CreateQuery {
    fn request(self, base_dir: &std::path::Path) -> Result<CreateRequest, ApiError> {
        let script = PathBuf::from(required("script", self.script)?);
        let mut r = CreateRequest::new(
            required("name", self.name)?,
            base_dir.join(script),
            list(Some(required("trunk", self.trunk)?)),
        );
        r.cps = number("cps", self.cps)?;
        r.max_channels = number("max_channels", self.max_channels)?;
        if let Some(a) = number("attempts", self.attempts)? {
            r.attempts = a;
        }
        r.retry = self.retry;
        r.hours = self.hours.unwrap_or(r.hours);
        r.days = self.days.unwrap_or(r.days);
        r.tz = self.tz.unwrap_or(r.tz);
        r.country = self.country;
        r.sms_fallback = self.sms_fallback;
        r.sms_on = list(self.sms_on);
        r.ends = self.ends;
        if let Some(p) = number("priority", self.priority)? {
            r.priority = p;
        }
        r.amd = match self.amd.as_deref().map(str::trim) {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(ApiError::field(
                    "amd",
                    format!("amd {other:?}: want true or false"),
                ))
            }
        };
        Ok(r)
    }
}

fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
}

pub async fn create(
    State(s): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<CreateQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Response> {
    // Too big first: nothing else about such a request matters.
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()).into_response())?;
    if !is_csv(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body is the contact list: send it as Content-Type: text/csv",
        )
        .into_response());
    }
    let Query(q) = q.map_err(|e| ApiError::new(e.status(), e.body_text()).into_response())?;
    let req = q
        .request(&s.config.base_dir)
        .map_err(IntoResponse::into_response)?;
    let config = s.config.clone();
    // Compiling the script and parsing a list of up to `max_body_bytes`
    // block: off the runtime's threads.
    let prepared = tokio::task::spawn_blocking(move || ops::prepare(&config, &req, BODY, &body))
        .await
        .map_err(|e| ApiError::unavailable(format!("create: {e}")).into_response())?
        .map_err(|e| op_error(e.into()))?;
    let created = ops::create(&s.store, prepared).await.map_err(op_error)?;
    let i = &created.import;
    let rejected: Vec<Value> = i
        .rejected
        .iter()
        .map(|r| json!({ "line": r.line, "value": r.value, "why": r.why.to_string() }))
        .collect();
    let body = json!({
        "id": created.id,
        "state": "created",
        "summary": i.summary(),
        "contacts": i.contacts.len(),
        "invalid": i.rejected.len() - i.duplicates(),
        "duplicates": i.duplicates(),
        "rejected": rejected,
    });
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/campaigns/{}", created.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

pub async fn status(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    match ops::status(&s.store, &id, now_ms()).await {
        Ok(v) => Json(v.to_json()).into_response(),
        Err(e) => op_error(e),
    }
}

/// The routes, for `super::router` to put behind the token check.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/campaigns", get(list_all).post(create))
        .route("/campaigns/{id}", get(status))
        .route("/campaigns/{id}/report", get(report))
        .route("/campaigns/{id}/{action}", post(transition))
}

/// `POST /campaigns/{id}/start|pause|resume|cancel`: 200 with the new
/// state, 409 with the current one when the change is not allowed from it.
pub async fn transition(
    State(s): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return ApiError::not_found(format!(
            "no action {action:?}: start, pause, resume or cancel"
        ))
        .into_response();
    };
    match ops::transition(&s.store, &id, action).await {
        Ok(state) => Json(json!({ "id": id, "state": state.as_str() })).into_response(),
        Err(e) => op_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    format: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /campaigns/{id}/report?format=json|csv&after=LINE&limit=N`: rows
/// after CSV line `after` (0: from the start), at most `limit` (default
/// 100, at most 1000). The next page's `after` is `next_after` in JSON and
/// the `X-Next-After` header of a CSV page; neither is there on the last.
pub async fn report(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let Query(q) = q.map_err(|e| ApiError::new(e.status(), e.body_text()).into_response())?;
    let csv = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" => true,
        other => {
            return Err(
                ApiError::field("format", format!("format {other:?}: json or csv")).into_response(),
            )
        }
    };
    let after = number::<u64>("after", q.after)
        .map_err(IntoResponse::into_response)?
        .unwrap_or(0);
    let limit = number::<u32>("limit", q.limit)
        .map_err(IntoResponse::into_response)?
        .unwrap_or(100);
    if !(1..=ops::MAX_PAGE).contains(&limit) {
        return Err(
            ApiError::field("limit", format!("limit {limit}: 1 to {}", ops::MAX_PAGE))
                .into_response(),
        );
    }
    let page = ops::report_page(&s.store, &id, after, limit)
        .await
        .map_err(op_error)?;
    if !csv {
        let rows: Vec<Value> = page.rows.iter().map(ops::row_json).collect();
        return Ok(Json(json!({
            "id": id,
            "count": rows.len(),
            "rows": rows,
            "next_after": page.next_after,
        }))
        .into_response());
    }
    let layout = ops::report_layout(&s.store, &page.campaign)
        .await
        .map_err(op_error)?;
    let text = layout
        .csv(&page.rows)
        .map_err(|e| ApiError::unavailable(format!("report: {e}")).into_response())?;
    let mut r = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response();
    if let Some(next) = page.next_after {
        r.headers_mut()
            .insert("x-next-after", HeaderValue::from(next));
    }
    Ok(r)
}
