//! `GET /api/connectors` and `GET /api/connectors/{id}`: each connector's
//! contract (src/contract.rs). A department's scoped token reads its own
//! connectors only; the centre's tokens read all.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
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
