//! The HTTP side of the hub: the ops console (`/`), the JSON API under
//! `/api`, `/metrics` (Prometheus), `/healthz` and `/readyz`.
//!
//! The console and the API need a bearer token from the settings; `viewer`
//! tokens read, `dispatcher` tokens also record steps at the desk, `ops`
//! tokens also replay, edit and purge. A department's token (scoped to its
//! connectors) reads only what concerns them, and never replays, edits or
//! purges: it fixes what it sends (`department`), the centre replays. `/metrics`,
//! `/healthz` and `/readyz` are open: they carry counts and names, never
//! message contents. No request line, header or body is logged.
//!
//! `/open311/v2/` is the Open311 GeoReport v2 endpoint (`open311`), when
//! the settings give it api_keys.

mod api;
mod assessment;
mod auth;
mod connectors;
mod department;
pub mod markup;
pub mod open311;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::amqp::topology::Topology;
use crate::dlq::{Filter, Office};
use crate::metrics::Metrics;
use crate::settings::Token;
use crate::store::Rules;

pub use auth::Caller;

/// A purge shown to an operator and waiting for their confirmation.
struct PendingPurge {
    filter: Filter,
    ids: std::collections::HashSet<String>,
    expires: Instant,
}

/// Everything the handlers share.
pub struct AppState {
    pub ops: Arc<Office>,
    pub metrics: Arc<Metrics>,
    pub tokens: Vec<Token>,
    pub topology: Topology,
    /// What the desk's steps need to run through the lifecycle; `None`
    /// turns the desk off.
    pub desk: Option<Rules>,
    /// The Open311 endpoint, if on.
    pub open311: Option<Arc<open311::Endpoint>>,
    /// How the assessment judges; `None` turns `/api/assessment` off.
    pub assessment: Option<Arc<crate::assessment::Config>>,
    /// The district's places as they are now, for dry runs.
    pub places: Option<crate::places::Current>,
    purges: Mutex<HashMap<String, PendingPurge>>,
}

impl AppState {
    pub fn new(
        ops: Arc<Office>,
        metrics: Arc<Metrics>,
        tokens: Vec<Token>,
        topology: Topology,
    ) -> AppState {
        AppState {
            ops,
            metrics,
            tokens,
            topology,
            desk: None,
            open311: None,
            assessment: None,
            places: None,
            purges: Mutex::new(HashMap::new()),
        }
    }

    /// Turns the desk on: its steps run with these rules (the routing, the
    /// registry and the centre; places are not used by an update).
    pub fn with_desk(mut self, rules: Rules) -> AppState {
        self.desk = Some(rules);
        self
    }

    /// Turns the Open311 endpoint on.
    pub fn with_open311(mut self, endpoint: open311::Endpoint) -> AppState {
        self.open311 = Some(Arc::new(endpoint));
        self
    }

    /// Turns the assessment on (it names units from the desk's routing).
    pub fn with_places(mut self, places: crate::places::Current) -> AppState {
        self.places = Some(places);
        self
    }

    pub fn with_assessment(mut self, config: Arc<crate::assessment::Config>) -> AppState {
        self.assessment = Some(config);
        self
    }
}

/// How long a purge confirmation stays valid.
const PURGE_CONFIRMATION: Duration = Duration::from_secs(300);

/// The whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    let open311 = state.open311.clone();
    let router = Router::new()
        .route("/", get(console))
        .route("/vendor/chart.umd.min.js", get(chart_js))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/overview", get(api::overview))
        .route("/api/dlq", get(api::list))
        .route("/api/dlq/groups", get(api::groups))
        .route("/api/dlq/replay", post(api::replay))
        .route("/api/dlq/purge", post(api::purge))
        .route("/api/dlq/{connector}/{id}", get(api::show))
        .route("/api/dlq/{connector}/{id}/edit", post(api::edit))
        .route("/api/cases", get(api::cases))
        .route("/api/cases/find", post(api::find_cases))
        .route("/api/cases/{case_no}", get(api::case))
        .route("/api/cases/{case_no}/map", get(api::case_map))
        .route("/api/cases/{case_no}/respond", post(api::desk_response))
        .route("/api/cases/{case_no}/act", post(api::desk_act))
        .route("/api/callbacks", get(api::callbacks))
        .route("/api/assessment", get(assessment::assessment))
        .route("/api/assessment/report", get(assessment::assessment_report))
        .route("/api/hotspots", get(assessment::hotspots))
        .route("/api/connectors", get(connectors::list))
        .route("/api/connectors/{id}", get(connectors::show))
        .route("/api/connectors/{id}/refusals", get(department::refusals))
        .route(
            "/api/connectors/{id}/{message_type}/validate",
            post(connectors::validate).layer(axum::extract::DefaultBodyLimit::max(
                crate::pipeline::MAX_BODY + 1,
            )),
        )
        .route("/api/audit", get(api::audit))
        .with_state(state);
    match open311 {
        Some(endpoint) => router.merge(open311::router(endpoint)),
        None => router,
    }
}

async fn console() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(include_str!("console.html")),
    )
        .into_response()
}

/// Chart.js, vendored (src/http/vendor, `deploy/dev/vendor.sh`): the
/// console reaches nothing but the hub. The console asks for it with the
/// version in the query (`?v=4.6.2`), so browsers may keep it for good.
async fn chart_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        include_bytes!("vendor/chart.umd.min.js").as_slice(),
    )
        .into_response()
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(address = %address, tokens = state.tokens.len(), "ops console and API listening");
    }
    // The peer's address goes into the audit trail.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// A JSON error answer: `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(json!({"error": self.message}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"gridhub\""),
            );
        }
        response
    }
}

impl From<crate::dlq::OfficeError> for ApiError {
    fn from(error: crate::dlq::OfficeError) -> Self {
        match error {
            crate::dlq::OfficeError::UnknownConnector(_) => {
                ApiError::new(StatusCode::NOT_FOUND, error.to_string())
            }
            crate::dlq::OfficeError::Broker(_) | crate::dlq::OfficeError::Store(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}
