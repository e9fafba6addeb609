//! The JSON API handlers, `/metrics` and `/readyz`.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::authorize;
use super::{ApiError, AppState, PURGE_CONFIRMATION, PendingPurge};
use crate::carrier::Carrier;
use crate::dlq::{Edited, Filter};
use crate::metrics::{EscalationLabels, Metrics, OverdueLabels, StatusLabel};
use crate::settings::Role;
use crate::store::Applied;
use crate::store::audit::AuditRecord;
use crate::store::query::CaseQuery;

type Shared = State<Arc<AppState>>;
type ApiResult = Result<Response, ApiError>;

fn ok(value: Value) -> ApiResult {
    Ok(Json(value).into_response())
}

/// Per connector: (inbound depth, DLQ depth), where the broker answers.
async fn depths(state: &AppState) -> BTreeMap<String, (Option<u32>, Option<u32>)> {
    let mut depths = BTreeMap::new();
    let carrier = state.ops.carrier().await.ok();
    let names = state.ops.names();
    // Dead letters wait in the store (the hub records every DLQ there).
    let waiting = state.ops.store().waiting_dead_letter_counts().await.ok();
    for id in state.ops.registry().connectors.keys() {
        let inbound = match &carrier {
            Some(carrier) => carrier.depth(&names.inbound_queue(id)).await,
            None => None,
        };
        let dead = waiting
            .as_ref()
            .map(|counts| counts.get(id).copied().unwrap_or(0));
        depths.insert(id.clone(), (inbound, dead));
    }
    depths
}

/// How long a scrape waits for the broker, and for the database, before it
/// reports it down: well within Prometheus' default scrape timeout (10 s).
const SCRAPE_BOUND: Duration = Duration::from_secs(4);

pub async fn metrics(State(state): Shared) -> Response {
    let metrics = &state.metrics;
    let _scrape = metrics.scrape.lock().await;
    // Every connector has its counters at 0 from the first scrape on: a
    // connector that receives nothing shows a rate of 0 rather than none,
    // and a counter's first increase is seen as one.
    for id in state.ops.registry().connectors.keys() {
        let label = Metrics::label(id);
        for family in [
            &metrics.received,
            &metrics.processed,
            &metrics.retried,
            &metrics.redelivered,
            &metrics.replayed,
            &metrics.purged,
            &metrics.unroutable,
            &metrics.stalled,
            &metrics.unreadable,
        ] {
            drop(family.get_or_create(&label));
        }
    }
    let (broker, database) = tokio::join!(
        tokio::time::timeout(SCRAPE_BOUND, broker_figures(&state)),
        tokio::time::timeout(SCRAPE_BOUND, store_figures(&state)),
    );
    metrics.up("broker", matches!(broker, Ok(true)));
    metrics.up("database", matches!(database, Ok(true)));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// Reads the inbound queues' depths; whether the broker answered.
async fn broker_figures(state: &AppState) -> bool {
    let Ok(carrier) = state.ops.carrier().await else {
        return false;
    };
    // A connection the broker dropped can still look open: ask it.
    if let Some(exchange) = state.topology.exchanges.first()
        && carrier.has_exchange(exchange).await.is_none()
    {
        return false;
    }
    let names = state.ops.names();
    for id in state.ops.registry().connectors.keys() {
        if let Some(n) = carrier.depth(&names.inbound_queue(id)).await {
            state
                .metrics
                .inbound_depth
                .get_or_create(&Metrics::label(id))
                .set(i64::from(n));
        }
    }
    true
}

/// Reads the store's figures; whether the database answered.
async fn store_figures(state: &AppState) -> bool {
    let (metrics, store) = (&state.metrics, state.ops.store());
    if store.ping().await.is_err() {
        return false;
    }
    // Dead letters wait in the store (the hub records every DLQ there).
    if let Ok(waiting) = store.waiting_dead_letter_counts().await {
        for id in state.ops.registry().connectors.keys() {
            let n = waiting.get(id).copied().unwrap_or(0);
            metrics
                .dlq_depth
                .get_or_create(&Metrics::label(id))
                .set(i64::from(n));
        }
    }
    if let Ok(backlog) = store.outbox_backlog().await {
        metrics.outbox_backlog.set(backlog);
    }
    if let Ok(age) = store.outbox_oldest_unsent_secs().await {
        metrics.outbox_oldest.set(age);
    }
    if let Ok(overdue) = store.overdue_cases().await {
        metrics.overdue.clear();
        for (unit, level, count) in overdue {
            metrics
                .overdue
                .get_or_create(&OverdueLabels { unit, level })
                .set(count);
        }
    }
    if let Ok(statuses) = store.cases_by_status().await {
        metrics.cases.clear();
        for (status, count) in statuses {
            metrics
                .cases
                .get_or_create(&StatusLabel { status })
                .set(count);
        }
    }
    if let Ok(escalations) = store.escalations_last_hour().await {
        metrics.escalations.clear();
        for (kind, unit, count) in escalations {
            metrics
                .escalations
                .get_or_create(&EscalationLabels { kind, unit })
                .set(count);
        }
    }
    true
}

/// Ready when the database answers, the broker accepts a connection and
/// every exchange and queue of the topology exists.
pub async fn readyz(State(state): Shared) -> Response {
    let check = async {
        let database = match state.ops.store().ping().await {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        let (broker, topology) = match state.ops.carrier().await {
            Err(error) => (format!("unreachable: {error}"), "unknown".to_owned()),
            Ok(carrier) => ("ok".to_owned(), topology_missing(&state, &carrier).await),
        };
        (database, broker, topology)
    };
    let (database, broker, topology) =
        match tokio::time::timeout(Duration::from_secs(5), check).await {
            Ok(found) => found,
            Err(_) => (
                "timed out".to_owned(),
                "timed out".to_owned(),
                "timed out".to_owned(),
            ),
        };
    // A connection that does not answer (its node hangs, or is cut off):
    // the next check connects again, to the next node that answers.
    if broker == "timed out" || topology == "cannot open a channel" {
        state.ops.reconnect().await;
    }
    let ready = database == "ok" && broker == "ok" && topology == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ready, "database": database, "broker": broker, "topology": topology})),
    )
        .into_response()
}

/// "ok", or what is missing.
async fn topology_missing(state: &AppState, carrier: &Carrier) -> String {
    let mut missing = Vec::new();
    for exchange in &state.topology.exchanges {
        match carrier.has_exchange(exchange).await {
            None => return "cannot open a channel".to_owned(),
            Some(false) => missing.push(format!("exchange {exchange}")),
            Some(true) => {}
        }
    }
    for queue in &state.topology.queues {
        if carrier.depth(&queue.name).await.is_none() {
            missing.push(format!("queue {}", queue.name));
        }
    }
    if missing.is_empty() {
        "ok".to_owned()
    } else {
        format!("missing: {}", missing.join(", "))
    }
}

pub async fn overview(State(state): Shared, headers: HeaderMap) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let registry = state.ops.registry();
    let ids: Vec<String> = registry.connectors.keys().cloned().collect();
    let rates = state.metrics.rates(&ids);
    let depths = depths(&state).await;
    let mut connectors = Vec::new();
    let mut dlq_total = 0u64;
    for (id, connector) in &registry.connectors {
        if !caller.sees(id) {
            continue;
        }
        let label = Metrics::label(id);
        let (inbound, dead) = depths.get(id).copied().unwrap_or((None, None));
        dlq_total += u64::from(dead.unwrap_or(0));
        let (received_rate, processed_rate) = rates.get(id).copied().unwrap_or((0.0, 0.0));
        connectors.push(json!({
            "id": id,
            "name": connector.config.name,
            "kind": connector.config.kind,
            "inbound_depth": inbound,
            "dlq_depth": dead,
            "received_total": state.metrics.received.get_or_create(&label).get(),
            "processed_total": state.metrics.processed.get_or_create(&label).get(),
            "received_per_second": (received_rate * 10.0).round() / 10.0,
            "processed_per_second": (processed_rate * 10.0).round() / 10.0,
        }));
    }
    let store = state.ops.store();
    // The district's totals are not a department's to see.
    let (cases, backlog) = match caller.scope {
        None => {
            let cases: BTreeMap<String, i64> = store.cases_by_status().await?.into_iter().collect();
            (json!(cases), json!(store.outbox_backlog().await?))
        }
        Some(_) => (Value::Null, Value::Null),
    };
    ok(json!({
        "connectors": connectors,
        "dlq_total": dlq_total,
        "outbox_backlog": backlog,
        "cases_by_status": cases,
        "you": {"name": caller.name, "role": caller.role.as_str(), "connectors": caller.scope},
    }))
}

pub async fn list(
    State(state): Shared,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let listing = state.ops.list(&caller.narrow(filter)?).await?;
    ok(json!(listing))
}

pub async fn groups(
    State(state): Shared,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let (groups, truncated) = state.ops.groups(&caller.narrow(filter)?).await?;
    ok(json!({"groups": groups, "truncated": truncated}))
}

pub async fn show(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((connector, id)): Path<(String, String)>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    caller.may_see(&connector)?;
    // Bodies are personal data: only the centre's ops read them, and each
    // read is audited. A department holds its own in its system.
    let found = match caller.role >= Role::Ops && caller.scope.is_none() {
        true => {
            state
                .ops
                .read(&connector, &id, &caller.actor(peer, &headers))
                .await?
        }
        false => state.ops.show(&connector, &id, false).await?,
    };
    match found {
        Some(detail) => ok(json!(detail)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dead letter {id} in {connector}'s DLQ"),
        )),
    }
}

/// Replaying, editing and purging dead letters are the district centre's
/// operators' to do: a department's token (even with the ops role) reads
/// its refusals and fixes its own system.
fn centre_only(caller: &super::Caller, what: &str) -> Result<(), ApiError> {
    match caller.scope {
        None => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{what} is for the district centre's operators: a department's token reads its \
                 refusals (GET /api/connectors/{{id}}/refusals) and fixes them at their source"
            ),
        )),
    }
}

fn require_filter(filter: &Filter) -> Result<(), ApiError> {
    if filter.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give a filter (connector, stage, reason, since, until, group, id or message_id); \
             {\"connector\": \"ID\"} means that connector's whole DLQ",
        ));
    }
    Ok(())
}

pub async fn replay(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(filter): Json<Filter>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Ops)?;
    centre_only(&caller, "replaying dead letters")?;
    require_filter(&filter)?;
    let report = state
        .ops
        .replay(&caller.narrow(filter)?, &caller.actor(peer, &headers))
        .await?;
    ok(json!(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// The fixed message, as JSON.
    #[serde(default)]
    body: Option<Value>,
    /// Or the fixed message as text, sent as is (for non-JSON messages).
    #[serde(default)]
    raw: Option<String>,
    /// Replay even if the pure stages would refuse the new body.
    #[serde(default)]
    force: bool,
}

pub async fn edit(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((connector, id)): Path<(String, String)>,
    Json(request): Json<EditRequest>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Ops)?;
    caller.may_see(&connector)?;
    centre_only(&caller, "editing and replaying a dead letter")?;
    let body = match (request.body, request.raw) {
        (Some(value), None) => serde_json::to_vec(&value).unwrap_or_default(),
        (None, Some(raw)) => raw.into_bytes(),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give exactly one of body (JSON) or raw (text)",
            ));
        }
    };
    let edited = state
        .ops
        .edit(
            &connector,
            &id,
            body,
            request.force,
            &caller.actor(peer, &headers),
        )
        .await?;
    let status = match &edited {
        Edited::Replayed { .. } => StatusCode::OK,
        Edited::WouldBeRefused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Edited::NotFound => StatusCode::NOT_FOUND,
    };
    Ok((status, Json(json!(edited))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    #[serde(default)]
    filter: Filter,
    /// The confirmation token the first call returned.
    #[serde(default)]
    confirm: Option<String>,
}

/// Purging takes two calls: the first (no `confirm`) lists what would go and
/// returns a confirmation token; the second, with that token, removes
/// exactly those dead letters (not newer ones that match the filter since).
pub async fn purge(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(request): Json<PurgeRequest>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Ops)?;
    centre_only(&caller, "purging dead letters")?;
    require_filter(&request.filter)?;
    let request = PurgeRequest {
        filter: caller.narrow(request.filter)?,
        confirm: request.confirm,
    };
    let Some(confirm) = request.confirm else {
        let listing = state.ops.list(&request.filter).await?;
        let ids: HashSet<String> = listing.letters.iter().map(|l| l.id.clone()).collect();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let count = listing.letters.len();
        {
            let mut purges = state.purges.lock().expect("purges lock");
            let now = Instant::now();
            purges.retain(|_, p| p.expires > now);
            purges.insert(
                token.clone(),
                PendingPurge {
                    filter: request.filter.clone(),
                    ids,
                    expires: now + PURGE_CONFIRMATION,
                },
            );
        }
        state
            .ops
            .audit_request(&caller.actor(peer, &headers), &request.filter, count)
            .await;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "count": count,
                "confirm": token,
                "expires_in_seconds": PURGE_CONFIRMATION.as_secs(),
                "truncated": listing.truncated,
            })),
        )
            .into_response());
    };
    let pending = {
        let mut purges = state.purges.lock().expect("purges lock");
        purges.remove(&confirm)
    };
    let pending = match pending {
        Some(p) if p.expires > Instant::now() && p.filter == request.filter => p,
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "unknown or expired confirmation, or a different filter: ask again",
            ));
        }
    };
    let report = state
        .ops
        .purge(
            &pending.filter,
            Some(&pending.ids),
            &caller.actor(peer, &headers),
        )
        .await?;
    ok(json!(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

/// `GET /api/cases`: the newest cases the filters find (status, street,
/// community, grid, lead_unit, channel, category, overdue, received_from,
/// received_to, text, ticket; limit and offset page), headlines only. A
/// phone is not taken here, where URLs are logged: `POST /api/cases/find`.
pub async fn cases(
    State(state): Shared,
    headers: HeaderMap,
    Query(query): Query<CaseQuery>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    if query.phone.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "send a phone in the body of POST /api/cases/find: addresses are logged",
        ));
    }
    let cases = state
        .ops
        .store()
        .find_cases(&query, caller.scope.as_deref())
        .await?;
    ok(json!(cases.iter().map(headline).collect::<Vec<_>>()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackQuery {
    /// One hotline's callbacks; all of them when left out.
    hotline: Option<String>,
    #[serde(default = "default_callback_limit")]
    limit: i64,
}

fn default_callback_limit() -> i64 {
    500
}

/// `GET /api/callbacks?hotline=ID`: the callbacks (回访) hotlines still
/// owe, the most pressing first: each case waiting at `callback` with the
/// hotline's own ticket id, the deadline and whether it passed. A
/// department's token sees only its own connectors'.
pub async fn callbacks(
    State(state): Shared,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let hotline = query.hotline.as_deref();
    let is_hotline = |id: &str| state.ops.registry().is(id, crate::connector::Kind::Hotline);
    if let Some(id) = hotline
        && !is_hotline(id)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such hotline: see GET /api/overview for the connectors",
        ));
    }
    let owed = state
        .ops
        .store()
        .callbacks_owed(hotline, query.limit.clamp(1, 5000))
        .await?;
    let visible = |connector: &str| {
        caller
            .scope
            .as_ref()
            .is_none_or(|scope| scope.iter().any(|s| s == connector))
    };
    let owed: Vec<_> = owed
        .into_iter()
        .filter(|c| is_hotline(&c.connector) && visible(&c.connector))
        .collect();
    ok(json!(owed))
}

/// `POST /api/cases/find`: the same filters as `GET /api/cases` in a JSON
/// body, and `phone`, matched through its keyed hash. A search by phone is
/// audited (without the phone).
pub async fn find_cases(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(query): Json<CaseQuery>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let store = state.ops.store();
    if query.phone.is_some() && !store.finds_phones() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "finding by phone needs data keys (data_keys_file)",
        ));
    }
    let cases = store.find_cases(&query, caller.scope.as_deref()).await?;
    if query.phone.is_some() {
        store
            .audit(&AuditRecord {
                actor: &caller.actor(peer, &headers),
                action: "find-by-phone",
                filter: json!(query),
                affected: cases.len(),
                failed: 0,
                message_ids: Vec::new(),
                note: None,
            })
            .await?;
    }
    ok(json!(cases.iter().map(headline).collect::<Vec<_>>()))
}

/// `GET /api/cases/{case_no}`: one case whole, with its sources, place,
/// routing, deadlines and timeline. Its description can be a caller's own
/// words: the read is audited.
pub async fn case(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(case_no): Path<String>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let store = state.ops.store();
    let case = store
        .case_detail(&case_no, caller.scope.as_deref())
        .await?
        .ok_or_else(|| no_case(&case_no))?;
    store
        .audit(&AuditRecord {
            actor: &caller.actor(peer, &headers),
            action: "read-case",
            filter: json!({"case_no": case_no}),
            affected: 1,
            failed: 0,
            message_ids: Vec::new(),
            note: None,
        })
        .await?;
    ok(case)
}

/// `GET /api/cases/{case_no}/map`: the case's place among the grids around
/// it: the grids of its community (or, without one, of its street), the
/// case's own grid, and its point. No personal data: not audited.
pub async fn case_map(
    State(state): Shared,
    headers: HeaderMap,
    Path(case_no): Path<String>,
) -> ApiResult {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let store = state.ops.store();
    let case = store
        .case(&case_no, caller.scope.as_deref())
        .await?
        .ok_or_else(|| no_case(&case_no))?;
    let community = case["community"].as_str();
    let street = case["street"].as_str();
    let grids: Vec<Value> = match street {
        Some(street) => store
            .grids_of(street, community)
            .await?
            .into_iter()
            .map(|g| json!({"grid_id": g.grid_id, "polygon": g.polygon}))
            .collect(),
        None => Vec::new(),
    };
    let point = match (case["place"]["lon"].as_f64(), case["place"]["lat"].as_f64()) {
        (Some(lon), Some(lat)) => json!([lon, lat]),
        _ => Value::Null,
    };
    ok(json!({
        "grid_id": case["grid_id"],
        "community": community,
        "street": street,
        "grids": grids,
        "point": point,
    }))
}

/// 404 for a case that does not exist or is outside the caller's scope.
fn no_case(case_no: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no case {}", crate::message::printable(case_no)),
    )
}

/// What a list shows of a case: the headline, not the description or
/// attributes.
fn headline(c: &Value) -> Value {
    json!({
        "case_no": c["case_no"], "status": c["status"], "channel": c["channel"],
        "nature": c["nature"], "category": c["category"], "priority": c["priority"],
        "title": c["title"], "overdue": c["overdue"],
        "grid_id": c["grid_id"], "community": c["community"], "street": c["street"],
        "lead_unit": c["lead_unit"], "due_at": c["due_at"],
        "received_at": c["received_at"], "sources": c["sources"],
    })
}

/// `POST /api/cases/{case_no}/respond`: the desk records a response for the
/// unit named, on a case led inside the grid system (see [`crate::desk`]).
/// 409 with the reason when the lifecycle or the desk's rule refuses it.
pub async fn desk_response(
    State(state): Shared,
    headers: HeaderMap,
    Path(case_no): Path<String>,
    Json(response): Json<crate::desk::Response>,
) -> ApiResult {
    let (caller, rules) = desk(&state, &headers)?;
    let update = crate::desk::response(&rules.registry, &case_no, &response, chrono::Utc::now())
        .map_err(|refusal| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.reason))?;
    let applied = state
        .ops
        .store()
        .desk_update(&update, &format!("token:{}", caller.name), rules)
        .await?;
    let case_no = desk_applied(applied)?;
    ok(json!({"case_no": case_no, "recorded": "respond"}))
}

/// A dispatcher (or ops) at the desk, and what the desk's steps run by.
fn desk<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
) -> Result<(super::Caller, &'s crate::store::Rules), ApiError> {
    let caller = authorize(state, headers, Role::Dispatcher)?;
    caller.district_wide("the desk")?;
    let rules = state
        .desk
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the desk is off"))?;
    Ok((caller, rules))
}

/// The case a desk step was recorded on; a refusal is 409 with its reason.
fn desk_applied(applied: Applied) -> Result<String, ApiError> {
    match applied {
        Applied::CaseUpdated { case_no } => Ok(case_no),
        Applied::Refused(refusal) => Err(ApiError::new(StatusCode::CONFLICT, refusal.reason)),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected outcome",
        )),
    }
}

/// `POST /api/cases/{case_no}/act`: a dispatcher's action on a case
/// (`crate::desk::Act`): dispatch or re-dispatch to a chosen unit with
/// assisting units, approve or reject a unit's return, remind, supervise,
/// close, reopen. The timeline names the token; the units and hotlines
/// concerned hear it as they hear any step.
pub async fn desk_act(
    State(state): Shared,
    headers: HeaderMap,
    Path(case_no): Path<String>,
    Json(act): Json<crate::desk::Act>,
) -> ApiResult {
    let (caller, rules) = desk(&state, &headers)?;
    let update = crate::desk::act(&rules.registry, &case_no, &act, chrono::Utc::now())
        .map_err(|refusal| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.reason))?;
    let store = state.ops.store();
    let applied = store
        .centre_update(&update, &format!("token:{}", caller.name), rules)
        .await?;
    let case_no = desk_applied(applied)?;
    let status = store
        .case(&case_no, None)
        .await?
        .map(|case| case["status"].clone())
        .unwrap_or_default();
    ok(json!({"case_no": case_no, "recorded": act.action.as_str(), "status": status}))
}

pub async fn audit(
    State(state): Shared,
    headers: HeaderMap,
    Query(limit): Query<Limit>,
) -> ApiResult {
    authorize(&state, &headers, Role::Viewer)?.district_wide("the audit trail")?;
    let entries = state
        .ops
        .store()
        .audit_trail(limit.limit.clamp(1, 1000))
        .await?;
    ok(json!(entries))
}
