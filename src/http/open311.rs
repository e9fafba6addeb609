//! The Open311 GeoReport v2 endpoint under `/open311/v2/` (docs/OPEN311.md):
//! discovery, services and their definitions, posting a service request,
//! a token's request, and requests with their status. JSON or XML by the
//! resource's suffix; errors in Open311's format.
//!
//! A POSTed request is not written to the store here: it becomes one
//! message of the connector its api_key is bound to (`web-portal`), is run
//! through the pure stages as the consumer will run it (so a request that
//! would be refused is answered 400 at once), and is published to
//! `<ns>.in` as that connector's message, as the hub's own broker user,
//! with publisher confirms. The client gets a token (the message_id); the
//! consumer opens the case as it does any connector's, and the token then
//! leads to the case number (the inbox row of that message_id).
//!
//! The endpoint faces the public internet: bodies and forms are bounded,
//! each client address has a request budget a minute, and only so many
//! requests are served at once. Reads need no key (as Open311 says); they
//! show only the cases the endpoint's own connectors opened, and never a
//! reporter, an email, a device or account id, or a confidential
//! complainant's description. No form value or api_key is logged.

mod form;
mod render;
mod services;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::carrier::Outcome;
use crate::connector::Registry;
use crate::dlq::Office;
use crate::message::Inbound;
use crate::routing::Routing;
use crate::settings::Open311Settings;
use crate::store::Store;
use crate::store::open311::{CLOSED, RequestFilter, RequestRow, TokenState};

pub use render::{Doc, Format};
pub use services::Services;

/// What discovery names as the specification served.
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";

/// Where the endpoint is mounted.
pub const BASE: &str = "/open311/v2";

/// The message type a bound connector takes a request as.
pub const MESSAGE_TYPE: &str = "request";

/// Open311 lists at most this many requests at once, over at most this span.
const MAX_REQUESTS: i64 = 1000;
const MAX_SPAN: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// One api_key, as the endpoint checks it.
struct BoundKey {
    digest: [u8; 32],
    name: String,
    connector: String,
}

/// Everything the endpoint's handlers share.
pub struct Endpoint {
    keys: Vec<BoundKey>,
    /// The connectors keys are bound to: the only sources whose cases are shown.
    connectors: Vec<String>,
    services: Services,
    routing: Arc<Routing>,
    registry: Arc<Registry>,
    ops: Arc<Office>,
    store: Store,
    exchange: String,
    /// The broker user the endpoint publishes as (the hub's own).
    hub_user: String,
    trusted: Vec<String>,
    public_url: Option<String>,
    max_body: usize,
    limiter: Limiter,
    busy: Arc<Semaphore>,
}

/// What the endpoint is built from.
pub struct Parts {
    pub settings: Open311Settings,
    pub services: Services,
    pub routing: Arc<Routing>,
    pub registry: Arc<Registry>,
    pub ops: Arc<Office>,
    pub store: Store,
    pub hub_user: String,
    pub trusted: Vec<String>,
}

impl Endpoint {
    pub fn new(parts: Parts) -> Endpoint {
        let settings = parts.settings;
        let keys: Vec<BoundKey> = settings
            .api_keys
            .iter()
            .map(|key| BoundKey {
                digest: key.digest(),
                name: key.name.clone(),
                connector: key.connector.clone(),
            })
            .collect();
        let mut connectors: Vec<String> = keys.iter().map(|k| k.connector.clone()).collect();
        connectors.sort();
        connectors.dedup();
        Endpoint {
            keys,
            connectors,
            services: parts.services,
            routing: parts.routing,
            exchange: parts.ops.names().inbound_exchange(),
            registry: parts.registry,
            ops: parts.ops,
            store: parts.store,
            hub_user: parts.hub_user,
            trusted: parts.trusted,
            public_url: settings
                .public_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            max_body: settings.max_body_bytes,
            limiter: Limiter::new(settings.requests_per_minute),
            busy: Arc::new(Semaphore::new(settings.concurrent_requests)),
        }
    }

    /// The connector an api_key is bound to; compared as digests, in
    /// constant time, so neither a key's length nor a prefix leaks.
    fn bound(&self, presented: &str) -> Option<&BoundKey> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            let same = digest
                .iter()
                .zip(key.digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same && found.is_none() {
                found = Some(key);
            }
        }
        found
    }
}

/// The endpoint's routes, with its guard (rate and concurrency) in front.
pub fn router(endpoint: Arc<Endpoint>) -> Router {
    Router::new()
        .route(
            "/open311/v2/{file}",
            get(top).post(post_request).fallback(not_allowed),
        )
        .route("/open311/v2/services/{file}", get(definition))
        .route("/open311/v2/requests/{file}", get(one_request))
        .route("/open311/v2/tokens/{file}", get(token))
        .route("/open311", any(not_found))
        .route("/open311/{*rest}", any(not_found))
        .layer(middleware::from_fn_with_state(endpoint.clone(), guard))
        .with_state(endpoint)
}

/// An answer in Open311's error format.
fn error(format: Format, status: StatusCode, description: &str) -> Response {
    answer(
        format,
        status,
        "errors",
        &render::errors(status.as_u16(), description),
    )
}

fn answer(format: Format, status: StatusCode, root: &'static str, doc: &Doc) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format.render(root, doc),
    )
        .into_response()
}

/// The format a path asks for (JSON when it names none).
fn format_of(path: &str) -> Format {
    path.rsplit('/')
        .next()
        .and_then(Format::split)
        .map_or(Format::Json, |(_, format)| format)
}

/// Requests one address may make in the current minute, and the clock.
struct Limiter {
    per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Addresses the limiter remembers at most; past it, the minute's old
/// entries go, then all (memory stays bounded whatever the clients).
const MAX_ADDRESSES: usize = 10_000;

impl Limiter {
    fn new(per_minute: u32) -> Limiter {
        Limiter {
            per_minute,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `address` may make one more request at `now`.
    fn allow(&self, address: IpAddr, now: Instant) -> bool {
        const MINUTE: Duration = Duration::from_secs(60);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&address) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < MINUTE);
            if seen.len() >= MAX_ADDRESSES {
                seen.clear();
            }
        }
        let (start, count) = seen.entry(address).or_insert((now, 0));
        if now.duration_since(*start) >= MINUTE {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= self.per_minute
    }
}

/// Each client address's budget, and the bound on requests served at once.
async fn guard(State(endpoint): State<Arc<Endpoint>>, request: Request, next: Next) -> Response {
    let format = format_of(request.uri().path());
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(address) = address
        && !endpoint.limiter.allow(address, Instant::now())
    {
        return error(
            format,
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests from this address: try again in a minute",
        );
    }
    let Ok(_permit) = endpoint.busy.clone().try_acquire_owned() else {
        return error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is busy: try again shortly",
        );
    };
    next.run(request).await
}

async fn not_found(request: Request) -> Response {
    error(
        format_of(request.uri().path()),
        StatusCode::NOT_FOUND,
        "no such resource: see discovery.json",
    )
}

async fn not_allowed(request: Request) -> Response {
    error(
        format_of(request.uri().path()),
        StatusCode::METHOD_NOT_ALLOWED,
        "this resource does not take that method",
    )
}

/// The 404 for a resource named without `.json` or `.xml`.
fn unsuffixed() -> Response {
    error(
        Format::Json,
        StatusCode::NOT_FOUND,
        "no such resource: name it with .json or .xml",
    )
}

/// GET discovery, services and requests.
async fn top(
    State(endpoint): State<Arc<Endpoint>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some((name, format)) = Format::split(&file) else {
        return unsuffixed();
    };
    match name {
        "discovery" => {
            let url = endpoint.public_url.clone().unwrap_or_else(|| {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| {
                        h.len() <= 255
                            && h.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                    });
                match host {
                    Some(host) => format!("http://{host}{BASE}"),
                    None => BASE.to_owned(),
                }
            });
            answer(
                format,
                StatusCode::OK,
                "discovery",
                &endpoint.services.discovery(&url),
            )
        }
        "services" => answer(
            format,
            StatusCode::OK,
            "services",
            &endpoint.services.list(),
        ),
        "requests" => {
            let filter = match requests_filter(query.as_deref().unwrap_or(""), Utc::now()) {
                Ok(filter) => filter,
                Err(problem) => return error(format, StatusCode::BAD_REQUEST, &problem),
            };
            list_requests(&endpoint, format, &filter).await
        }
        _ => error(format, StatusCode::NOT_FOUND, "no such resource"),
    }
}

/// GET services/{code}.
async fn definition(State(endpoint): State<Arc<Endpoint>>, Path(file): Path<String>) -> Response {
    let Some((code, format)) = Format::split(&file) else {
        return unsuffixed();
    };
    match endpoint.services.get(code) {
        Some(service) => answer(
            format,
            StatusCode::OK,
            "service_definition",
            &endpoint.services.definition(service),
        ),
        None => error(format, StatusCode::NOT_FOUND, "service_code not found"),
    }
}

/// GET requests/{id}: one request, as a list of one.
async fn one_request(State(endpoint): State<Arc<Endpoint>>, Path(file): Path<String>) -> Response {
    let Some((id, format)) = Format::split(&file) else {
        return unsuffixed();
    };
    if !is_case_no(id) {
        return error(
            format,
            StatusCode::NOT_FOUND,
            "service_request_id not found",
        );
    }
    let filter = RequestFilter {
        ids: vec![id.to_owned()],
        limit: 1,
        ..RequestFilter::default()
    };
    match endpoint
        .store
        .open311_requests(&endpoint.connectors, &filter)
        .await
    {
        Ok(rows) if rows.is_empty() => error(
            format,
            StatusCode::NOT_FOUND,
            "service_request_id not found",
        ),
        Ok(rows) => answer(
            format,
            StatusCode::OK,
            "service_requests",
            &requests_doc(&endpoint, &rows),
        ),
        Err(error) => unavailable(format, &error),
    }
}

/// GET tokens/{token}: the request's id once the hub has opened its case.
async fn token(State(endpoint): State<Arc<Endpoint>>, Path(file): Path<String>) -> Response {
    let Some((token, format)) = Format::split(&file) else {
        return unsuffixed();
    };
    if !is_token(token) {
        return error(format, StatusCode::NOT_FOUND, "token not found");
    }
    match endpoint
        .store
        .open311_token(&endpoint.connectors, token)
        .await
    {
        Ok(Some(TokenState::Case(case_no))) => answer(
            format,
            StatusCode::OK,
            "service_requests",
            &Doc::List(
                "request",
                vec![Doc::Record(vec![
                    ("service_request_id", Doc::text(case_no)),
                    ("token", Doc::text(token)),
                ])],
            ),
        ),
        Ok(Some(TokenState::Refused)) => error(
            format,
            StatusCode::NOT_FOUND,
            "the request under this token was refused: it has no service_request_id",
        ),
        Ok(None) => error(
            format,
            StatusCode::NOT_FOUND,
            "token not found: a request is taken within seconds; ask again shortly",
        ),
        Err(error) => unavailable(format, &error),
    }
}

fn unavailable(format: Format, problem: &crate::store::StoreError) -> Response {
    tracing::warn!(error = %problem, "open311: case store unavailable");
    error(
        format,
        StatusCode::SERVICE_UNAVAILABLE,
        "the service is unavailable: try again shortly",
    )
}

/// POST requests: the form, checked, as the bound connector's message.
async fn post_request(
    State(endpoint): State<Arc<Endpoint>>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    let Some((name, format)) = Format::split(&file) else {
        return unsuffixed();
    };
    if name != "requests" {
        return error(
            format,
            StatusCode::METHOD_NOT_ALLOWED,
            "only requests take a POST",
        );
    }
    let form_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return error(
            format,
            StatusCode::BAD_REQUEST,
            "a service request is posted as application/x-www-form-urlencoded",
        );
    }
    let body = match axum::body::to_bytes(request.into_body(), endpoint.max_body).await {
        Ok(body) => body,
        Err(_) => {
            return error(
                format,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the form is larger than {} bytes", endpoint.max_body),
            );
        }
    };
    let posted = match form::parse(&body) {
        Ok(posted) => posted,
        Err(problem) => return error(format, StatusCode::BAD_REQUEST, &problem.0),
    };
    let Some(key) = posted.api_key.as_deref().and_then(|k| endpoint.bound(k)) else {
        return error(
            format,
            StatusCode::FORBIDDEN,
            "missing or invalid api_key: cannot create the request",
        );
    };
    let Some(code) = posted.service_code.as_deref() else {
        return error(format, StatusCode::BAD_REQUEST, "service_code is required");
    };
    let Some(service) = endpoint.services.get(code) else {
        return error(format, StatusCode::NOT_FOUND, "service_code not found");
    };
    // The token is the message's id: random, so that it cannot be guessed.
    let token = uuid::Uuid::new_v4().simple().to_string();
    let message = match posted.message(service, &token, Utc::now()) {
        Ok(message) => message,
        Err(problem) => return error(format, StatusCode::BAD_REQUEST, &problem.0),
    };
    let inbound = Inbound {
        routing_key: format!("{}.{MESSAGE_TYPE}", key.connector),
        message_id: Some(token.clone()),
        content_type: Some("application/json".to_owned()),
        amqp_type: None,
        user_id: Some(endpoint.hub_user.clone()),
        body: serde_json::to_vec(&message).unwrap_or_default(),
        replays: 0,
    };
    // The consumer runs the same stages: what they refuse is answered now.
    if let Err(refusal) = crate::pipeline::prepare(
        &endpoint.registry,
        &key.connector,
        &inbound,
        &endpoint.trusted,
    ) {
        let said: Vec<String> = refusal
            .violations
            .iter()
            .take(3)
            .map(|v| match v.instance_path.as_str() {
                "" => v.message.clone(),
                path => format!("{}: {}", path.trim_start_matches('/'), v.message),
            })
            .collect();
        let description = match said.is_empty() {
            true => refusal.reason.clone(),
            false => said.join("; "),
        };
        return error(
            format,
            StatusCode::BAD_REQUEST,
            &format!("the request was not accepted: {description}"),
        );
    }
    match publish(&endpoint, &inbound).await {
        Ok(()) => {
            tracing::info!(
                connector = %key.connector,
                api_key = %key.name,
                message_id = %token,
                service_code = %service.code,
                "open311 request published"
            );
            answer(
                format,
                StatusCode::OK,
                "service_requests",
                &Doc::List(
                    "request",
                    vec![Doc::Record(vec![("token", Doc::text(token))])],
                ),
            )
        }
        Err(problem) => {
            tracing::warn!(connector = %key.connector, error = %problem, "open311 request not published");
            error(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the request could not be taken now: post it again shortly",
            )
        }
    }
}

/// Publishes as the connector's message, mandatory and confirmed.
async fn publish(endpoint: &Endpoint, message: &Inbound) -> anyhow::Result<()> {
    let carrier = endpoint.ops.carrier().await?;
    let publisher = carrier.publisher().await?;
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_timestamp(Utc::now().timestamp().max(0) as u64)
        .with_app_id("gridhub-open311".into());
    if let Some(id) = &message.message_id {
        properties = properties.with_message_id(id.as_str().into());
    }
    if let Some(user) = &message.user_id {
        properties = properties.with_user_id(user.as_str().into());
    }
    let sent = publisher
        .publish(
            &endpoint.exchange,
            &message.routing_key,
            properties,
            &message.body,
        )
        .await;
    let outcome = match sent {
        Ok(sent) => sent.outcome().await,
        Err(error) => Err(error),
    };
    publisher.close("published").await;
    match outcome? {
        Outcome::Taken => Ok(()),
        Outcome::Returned => anyhow::bail!("no queue took the message"),
        Outcome::Refused => anyhow::bail!("the broker refused the message"),
    }
}

/// A case number: `TZ` and 13 digits.
fn is_case_no(id: &str) -> bool {
    id.len() == 15 && id.starts_with("TZ") && id[2..].bytes().all(|b| b.is_ascii_digit())
}

/// A token as the endpoint draws them: 32 lowercase hex digits.
fn is_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// GET requests' query, as a filter: Open311's defaults (the last 90 days,
/// 1,000 requests) and bounds (a span of 90 days at most).
pub fn requests_filter(query: &str, now: DateTime<Utc>) -> Result<RequestFilter, String> {
    let mut filter = RequestFilter {
        limit: MAX_REQUESTS,
        ..RequestFilter::default()
    };
    let (mut from, mut to) = (None, None);
    for (n, (name, value)) in form_urlencoded::parse(query.as_bytes()).enumerate() {
        if n >= 64 {
            return Err("more than 64 query parameters".to_owned());
        }
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let list = || {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect::<Vec<String>>()
        };
        match &*name {
            "service_request_id" => {
                filter.ids = list();
                if filter.ids.len() > MAX_REQUESTS as usize {
                    return Err(format!("at most {MAX_REQUESTS} service_request_id"));
                }
                if !filter.ids.iter().all(|id| is_case_no(id)) {
                    return Err(
                        "service_request_id: not a request id (TZ and 13 digits)".to_owned()
                    );
                }
            }
            "service_code" => {
                filter.codes = list();
                let code = |c: &String| {
                    c.len() <= 64
                        && c.bytes()
                            .all(|b| b.is_ascii_lowercase() || b"._".contains(&b))
                };
                if filter.codes.len() > 200 || !filter.codes.iter().all(code) {
                    return Err("service_code: not a list of service codes".to_owned());
                }
            }
            "start_date" | "end_date" => {
                let at = DateTime::parse_from_rfc3339(value)
                    .map_err(|_| {
                        format!(
                            "{name}: not a date and time in w3 format, e.g. 2026-12-01T00:00:00Z"
                        )
                    })?
                    .with_timezone(&Utc);
                match &*name {
                    "start_date" => from = Some(at),
                    _ => to = Some(at),
                }
            }
            "status" => {
                let statuses = list();
                let (open, closed) = (
                    statuses.iter().any(|s| s == "open"),
                    statuses.iter().any(|s| s == "closed"),
                );
                if statuses.iter().any(|s| s != "open" && s != "closed") {
                    return Err("status: open or closed".to_owned());
                }
                filter.open = match (open, closed) {
                    (true, false) => Some(true),
                    (false, true) => Some(false),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) => (from, Some(to)),
        (Some(from), None) => (from, Some(from + MAX_SPAN)),
        (None, Some(to)) => (to - MAX_SPAN, Some(to)),
        (None, None) => (now - MAX_SPAN, None),
    };
    if let Some(to) = to {
        if to < from {
            return Err("end_date is before start_date".to_owned());
        }
        if to - from > MAX_SPAN {
            return Err("start_date to end_date may not span more than 90 days".to_owned());
        }
    }
    filter.from = Some(from);
    filter.to = to;
    Ok(filter)
}

async fn list_requests(endpoint: &Endpoint, format: Format, filter: &RequestFilter) -> Response {
    match endpoint
        .store
        .open311_requests(&endpoint.connectors, filter)
        .await
    {
        Ok(rows) => answer(
            format,
            StatusCode::OK,
            "service_requests",
            &requests_doc(endpoint, &rows),
        ),
        Err(error) => unavailable(format, &error),
    }
}

fn requests_doc(endpoint: &Endpoint, rows: &[RequestRow]) -> Doc {
    Doc::List(
        "request",
        rows.iter().map(|row| request_doc(endpoint, row)).collect(),
    )
}

/// Open311's status of a case: `closed` once the matter is over.
pub fn open311_status(status: &str) -> &'static str {
    match CLOSED.contains(&status) {
        true => "closed",
        false => "open",
    }
}

/// One case as Open311's request. Free text (the description, the latest
/// note) has phone, ID and card numbers masked: the public sees the matter,
/// never how to reach someone.
fn request_doc(endpoint: &Endpoint, row: &RequestRow) -> Doc {
    let service = row
        .category
        .as_deref()
        .and_then(|c| endpoint.services.get(c));
    let agency = row.lead_unit.as_deref().and_then(|id| {
        endpoint
            .routing
            .file
            .units
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.name.clone())
    });
    let status = open311_status(&row.status);
    let notes = match &row.parent_case_no {
        Some(parent) => Some(format!("与 {parent} 为同一事项，合并办理")),
        None => row.note.as_deref().map(crate::privacy::mask_numbers_in),
    };
    let notice = match (row.status.as_str(), &agency) {
        ("answered", _) => "已直接答复".to_owned(),
        ("closed", _) => "已办结".to_owned(),
        ("rejected", _) => "不属于本区受理范围".to_owned(),
        ("registered", _) => "已受理，等待分派".to_owned(),
        (_, Some(agency)) => format!("已派至{agency}办理"),
        (_, None) => "已受理".to_owned(),
    };
    Doc::Record(vec![
        ("service_request_id", Doc::text(&row.case_no)),
        ("status", Doc::text(status)),
        ("status_notes", Doc::maybe(notes)),
        ("service_name", Doc::maybe(service.map(|s| s.name.clone()))),
        ("service_code", Doc::maybe(row.category.clone())),
        (
            "description",
            Doc::maybe(
                row.description
                    .as_deref()
                    .filter(|d| !d.is_empty())
                    .map(crate::privacy::mask_numbers_in),
            ),
        ),
        ("agency_responsible", Doc::maybe(agency)),
        ("service_notice", Doc::text(notice)),
        ("requested_datetime", Doc::text(&row.received_at)),
        ("updated_datetime", Doc::text(&row.updated_at)),
        ("expected_datetime", Doc::maybe(row.due_at.clone())),
        ("address", Doc::maybe(row.address.clone())),
        ("address_id", Doc::Null),
        ("zipcode", Doc::Null),
        ("lat", row.lat.map_or(Doc::Null, Doc::Number)),
        ("long", row.lon.map_or(Doc::Null, Doc::Number)),
        ("media_url", Doc::maybe(row.media_url.clone())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-06T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn requests_default_to_the_last_ninety_days() {
        let filter = requests_filter("", now()).unwrap();
        assert_eq!(filter.from, Some(now() - MAX_SPAN));
        assert_eq!((filter.to, filter.open, filter.limit), (None, None, 1000));
        let filter = requests_filter("jurisdiction_id=tz.example&status=open", now()).unwrap();
        assert_eq!(filter.open, Some(true));
        assert_eq!(
            requests_filter("status=open,closed", now()).unwrap().open,
            None
        );
        let only_start = requests_filter("start_date=2026-01-01T00:00:00%2B08:00", now()).unwrap();
        assert_eq!(
            only_start.from,
            Some("2025-12-31T16:00:00Z".parse().unwrap())
        );
        assert_eq!(only_start.to, Some(only_start.from.unwrap() + MAX_SPAN));
        let ids = requests_filter(
            "service_request_id=TZ2612060000042,+TZ2612060000043&service_code=road.pothole,noise.construction",
            now(),
        )
        .unwrap();
        assert_eq!(ids.ids, ["TZ2612060000042", "TZ2612060000043"]);
        assert_eq!(ids.codes, ["road.pothole", "noise.construction"]);
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        for (query, says) in [
            ("start_date=yesterday", "w3 format"),
            (
                "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
                "90 days",
            ),
            (
                "start_date=2026-02-01T00:00:00Z&end_date=2026-01-01T00:00:00Z",
                "before",
            ),
            ("status=pending", "open or closed"),
            ("service_request_id=1;DROP", "not a request id"),
            ("service_code=%27%20OR%201=1", "service codes"),
        ] {
            let problem = requests_filter(query, now()).unwrap_err();
            assert!(problem.contains(says), "{query}: {problem}");
        }
        let many = "a=1&".repeat(65);
        assert!(requests_filter(&many, now()).is_err());
    }

    #[test]
    fn statuses_map_to_open_and_closed() {
        for status in ["closed", "answered", "rejected"] {
            assert_eq!(open311_status(status), "closed");
        }
        for status in [
            "registered",
            "dispatched",
            "accepted",
            "in_progress",
            "responded",
            "verifying",
            "callback",
            "return_pending",
            "rework",
            "reopened",
            "suspended",
        ] {
            assert_eq!(open311_status(status), "open");
        }
    }

    #[test]
    fn a_limiter_counts_each_address_a_minute() {
        let limiter = Limiter::new(2);
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        assert!(limiter.allow(a, start));
        assert!(limiter.allow(a, start));
        assert!(!limiter.allow(a, start));
        assert!(limiter.allow(b, start));
        assert!(limiter.allow(a, start + Duration::from_secs(61)));
    }

    #[test]
    fn ids_and_tokens_have_one_shape() {
        assert!(is_case_no("TZ2612060000042"));
        assert!(!is_case_no("TZ261206000004"));
        assert!(!is_case_no("TZ26120600000٤2"));
        assert!(is_token("5b1f0c9e2a7d4e6f8a3b1c2d3e4f5a6b"));
        assert!(!is_token("5B1F0C9E2A7D4E6F8A3B1C2D3E4F5A6B"));
        assert!(!is_token("../../etc/passwd"));
    }
}
