//! `GET /api/connectors` and `GET /api/connectors/{id}`: each connector's
//! contract (src/contract.rs); `POST /api/connectors/{id}/{type}/validate`:
//! a dry run of one message (src/dryrun.rs). A department's scoped token
//! reads and tries its own connectors only; the centre's tokens all.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::{Caller, authorize};
use super::{ApiError, AppState};
use crate::settings::Role;

fn readable(caller: &Caller, id: &str) -> bool {
    caller
        .scope
        .as_ref()
        .is_none_or(|own| own.iter().any(|c| c == id))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let connectors: Vec<Value> = state
        .ops
        .registry()
        .connectors
        .values()
        .filter(|c| readable(&caller, c.id()))
        .map(crate::contract::summary)
        .collect();
    Ok(Json(connectors).into_response())
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let registry = state.ops.registry();
    // Another department's connector is as unknown as a missing one.
    match registry.get(&id).filter(|c| readable(&caller, c.id())) {
        Some(connector) => Ok(Json(crate::contract::contract(connector, registry)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such connector: GET /api/connectors lists those this token reads",
        )),
    }
}

#[derive(serde::Deserialize)]
pub struct ValidateQuery {
    /// The AMQP `type` property the message would carry: `v2`.
    version: Option<String>,
    /// The AMQP `content_type` it would carry; default none (JSON).
    content_type: Option<String>,
}

/// A dry run: the body is judged as the connector's message of this type,
/// on the hub's live rules and places; nothing is published or stored.
/// 200 with the verdict whether accepted or refused: the refusal is the
/// answer asked for.
pub async fn validate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, message_type)): Path<(String, String)>,
    Query(query): Query<ValidateQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let (Some(rules), Some(places)) = (&state.desk, &state.places) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this hub has no routing rules loaded",
        ));
    };
    let known = rules
        .registry
        .get(&id)
        .filter(|c| readable(&caller, c.id()))
        .is_some();
    if !known {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such connector: GET /api/connectors lists those this token reads",
        ));
    }
    let places = places.get();
    let judge = crate::dryrun::Judge {
        registry: &rules.registry,
        routing: &rules.routing,
        places: places.as_ref(),
    };
    let verdict = judge.judge(
        crate::dryrun::Trial {
            connector: &id,
            message_type: &message_type,
            version: query.version.as_deref(),
            content_type: query.content_type.as_deref(),
            body: body.to_vec(),
        },
        chrono::Utc::now(),
    );
    Ok(Json(verdict).into_response())
}
