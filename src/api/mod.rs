//! The admin HTTP API, `/metrics` and the dashboard (`[http]`, docs/api.md).
//!
//! It owns the HTTP side only: every route calls an operation the CLI uses
//! too (the store's queries, `SmsService`, the server loop's `Control`
//! requests), so there is one implementation of each. It knows neither SIP
//! nor media; live state comes from the server loop as values.

mod auth;
mod calls;
mod campaigns;
mod cdrs;
mod dashboard;
mod error;
mod health;
mod metrics;
mod sms;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

pub use dashboard::errors::RecentErrors;
pub use error::ApiError;

use crate::config::{Config, Token};
use crate::server::campaigns::Control;
use crate::server::drain::Drain;
use crate::sms::SmsService;
use crate::store::Store;

/// What every route may reach. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    tokens: Arc<[Token]>,
    control: mpsc::UnboundedSender<Control>,
    store: Store,
    sms: Option<SmsService>,
    config: Arc<Config>,
    started: Instant,
    /// `POST /drain` starts it; `/ready` reads it.
    drain: Drain,
    /// The `/metrics` recorder, kept across scrapes.
    metrics: Arc<metrics_exporter_prometheus::PrometheusRecorder>,
    /// The dashboard's snapshots, shared by every open page.
    dashboard: dashboard::Feed,
}

impl ApiState {
    pub fn new(
        config: Arc<Config>,
        control: mpsc::UnboundedSender<Control>,
        store: Store,
        sms: Option<SmsService>,
        drain: Drain,
    ) -> ApiState {
        let tokens = config
            .http
            .as_ref()
            .map(|h| h.tokens.clone())
            .unwrap_or_default();
        ApiState {
            tokens: tokens.into(),
            control,
            store,
            sms,
            config,
            started: Instant::now(),
            drain,
            metrics: Arc::new(metrics::recorder()),
            dashboard: dashboard::Feed::default(),
        }
    }

    /// Asks the server loop something and waits (5 s at most) for the
    /// answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(make(tx))
            .map_err(|_| ApiError::unavailable("the server is stopping"))?;
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ApiError::unavailable("the server is stopping")),
            Err(_) => Err(ApiError::unavailable(
                "the server loop did not answer within 5 s",
            )),
        }
    }
}

/// Every route. `/health` and `/ready` are open (load balancers probe
/// them), and so is the dashboard's page (it shows a sign-in form without a
/// token); the rest need a token.
pub fn router(state: ApiState, max_body: usize) -> Router {
    let guarded = Router::new()
        .route("/calls", get(calls::list).post(calls::originate))
        .route("/calls/{id}", delete(calls::hang_up))
        .route("/trunks", get(calls::trunks))
        .route("/cdrs", get(cdrs::list))
        .route("/sms", axum::routing::post(sms::send))
        .route("/sms/inbound", get(sms::inbound))
        .route("/sms/results", get(sms::results))
        .route("/sms/link", get(sms::link))
        .route("/sms/routes", get(sms::routes))
        .route("/sms/{id}", get(sms::status))
        .route("/metrics", get(metrics::scrape))
        .route("/drain", axum::routing::post(health::drain))
        .route("/events", get(dashboard::events))
        .merge(campaigns::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .merge(dashboard::routes())
        // Providers' webhooks: checked by signature or shared secret.
        .merge(webhooks::routes())
        .merge(guarded)
        .fallback(|| async { ApiError::not_found("no such route (docs/api.md)") })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Binds `[http] listen` and serves until the runtime ends. The error
/// names the key.
pub async fn start(state: ApiState) -> Result<std::net::SocketAddr, String> {
    let Some(http) = state.config.http.clone() else {
        return Err("http: no [http] table".into());
    };
    let listener = tokio::net::TcpListener::bind(http.listen)
        .await
        .map_err(|e| format!("http.listen {}: {e}", http.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("http.listen {}: {e}", http.listen))?;
    if state.tokens.is_empty() {
        tracing::warn!(%addr, "HTTP API has no [[http.token]]: only /health, /ready and the SMS webhooks answer");
    }
    let app = router(state, http.max_body_bytes);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    tracing::info!(%addr, "HTTP API listening");
    Ok(addr)
}
