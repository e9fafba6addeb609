//! `GET /api/connectors/{id}/refusals`: what a department needs to fix what
//! it sends and to keep up with what it receives. Its own refusals grouped
//! by cause, each with a hint drawn from the schema (`hints`) and the value
//! a valid sample of the contract has at the same place; and its out queue:
//! how many events wait there and how long the oldest has waited.
//!
//! A department's scoped token reads its own connectors only (another's is
//! as unknown as a missing one: 404); the centre's tokens read every one.
//! Nothing here reads a refused message: groups come from the refusal
//! records (stage, reason, schema, violations), paths show only the names
//! the schema declares, and examples come from the contract's samples.
//! Replaying stays with the centre's operators.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::authorize;
use super::{ApiError, AppState};
use crate::check::{Expectation, samples};
use crate::connector::{Connector, INTENT_SCHEMA};
use crate::hints;
use crate::pipeline::Stage;
use crate::schema::Violation;
use crate::settings::Role;
use crate::store::department::CauseRow;

/// The period a department's refusals are counted over, unless it asks.
const DEFAULT_DAYS: i64 = 30;
/// The longest period it may ask for.
const MAX_DAYS: i64 = 366;
/// Groups returned at most, the largest first.
const MAX_GROUPS: i64 = 200;
/// An out queue whose oldest event has waited this long is backed up: the
/// department's consumer is stopped or slower than the events.
pub const BACKED_UP_AFTER_SECONDS: i64 = 15 * 60;
/// A sample's value shown whole up to this size (JSON text); a larger one
/// is left out.
const EXAMPLE_BYTES: usize = 2048;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalsQuery {
    /// Refusals of the last `days` days (default 30, at most 366).
    #[serde(default)]
    days: Option<i64>,
}

pub async fn refusals(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RefusalsQuery>,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, Role::Viewer)?;
    let registry = state.ops.registry();
    // Another department's connector is as unknown as a missing one.
    let connector = registry
        .get(&id)
        .filter(|c| caller.sees(c.id()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such connector: GET /api/connectors lists those this token reads",
            )
        })?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("days is from 1 to {MAX_DAYS}"),
        ));
    }
    let now = Utc::now();
    let since = now - chrono::Duration::days(days);
    let id = connector.id();
    let routing_keys: Vec<String> = connector
        .messages
        .keys()
        .map(|t| format!("{id}.{t}"))
        .collect();
    let store = state.ops.store();
    let causes = store
        .refusal_causes(id, since, &routing_keys, MAX_GROUPS)
        .await?;
    let dlq_waiting = store.waiting_dead_letter_count(id).await?;
    let contract = Contract::of(connector, &registry.schemas_dir);
    let groups: Vec<Value> = causes
        .groups
        .iter()
        .map(|row| group(connector, &contract, row))
        .collect();
    let out_queue = out_queue(&state, id, now).await?;
    let formats = formats(&state, connector);
    let samples: serde_json::Map<String, Value> = contract
        .valid
        .iter()
        .filter_map(|(message_type, found)| {
            let first = found.first()?;
            Some((
                message_type.clone(),
                json!({"name": first.name, "body": first.body}),
            ))
        })
        .collect();
    Ok(Json(json!({
        "connector": {"id": id, "name": connector.config.name, "kind": connector.config.kind},
        "period": {"days": days, "since": since, "until": now},
        "refused": causes.refused,
        "dlq_waiting": dlq_waiting,
        "groups": groups,
        "truncated": causes.truncated,
        "samples": samples,
        "out_queue": out_queue,
        "formats": formats,
    }))
    .into_response())
}

/// The versions of each message type's format, each deprecated one with
/// its date and how many messages this hub has read in it since it
/// started (`gridhub_deprecated_messages_total`): a department still
/// sending it sees so before the version goes.
fn formats(state: &AppState, connector: &Connector) -> Vec<Value> {
    let mut formats = Vec::new();
    for (message_type, versions) in &connector.messages {
        for version in &versions.versions {
            let mut format = json!({
                "type": message_type,
                "version": version.name(),
                "amqp_type": (version.number != 1).then(|| version.name()),
                "deprecated": version.deprecated.map(|d| d.to_string()),
            });
            if version.deprecated.is_some() {
                let labels = crate::metrics::VersionLabels {
                    connector: connector.id().to_owned(),
                    message_type: message_type.clone(),
                    version: version.name(),
                };
                // Read, not created: a view read is not a message counted.
                let counted = state.metrics.deprecated.get(&labels).map_or(0, |c| c.get());
                format["messages_since_start"] = json!(counted);
            }
            formats.push(format);
        }
    }
    formats
}

/// One valid sample of the contract: its file's name, the schema of its
/// version of the format, its body and the intent it becomes.
struct ValidSample {
    name: String,
    schema: Option<String>,
    body: Value,
    intent: Value,
}

/// What the hints and examples of one connector draw on: its valid samples
/// by message type and the schemas its refusals name, read once a request.
struct Contract {
    valid: HashMap<String, Vec<ValidSample>>,
    schemas: HashMap<String, Value>,
}

impl Contract {
    fn of(connector: &Connector, schemas_dir: &std::path::Path) -> Contract {
        let schema_of = |message_type: &str, version: u32| {
            connector
                .config
                .messages
                .iter()
                .find(|m| m.message_type == message_type && m.version == version)
                .map(|m| m.schema.clone())
        };
        let mut valid: HashMap<String, Vec<ValidSample>> = HashMap::new();
        for sample in samples(connector).0 {
            let Expectation::Intent(intent) = sample.expect else {
                continue;
            };
            let Some(body) = std::fs::read(&sample.path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            else {
                continue;
            };
            let name = sample
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let schema = schema_of(&sample.message_type, sample.version);
            valid
                .entry(sample.message_type)
                .or_default()
                .push(ValidSample {
                    name,
                    schema,
                    body,
                    intent,
                });
        }
        // Only the schemas the connector's contract names, and the intent's:
        // a stored file name never leads anywhere else.
        let mut schemas = HashMap::new();
        let files = connector
            .config
            .messages
            .iter()
            .map(|m| m.schema.as_str())
            .chain([INTENT_SCHEMA]);
        for file in files {
            if let Some(schema) = std::fs::read(schemas_dir.join(file))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            {
                schemas.insert(file.to_owned(), schema);
            }
        }
        Contract { valid, schemas }
    }
}

/// One group as the department reads it.
fn group(connector: &Connector, contract: &Contract, row: &CauseRow) -> Value {
    let message_type = row
        .routing_key
        .as_deref()
        .and_then(|key| key.strip_prefix(connector.id()))
        .and_then(|key| key.strip_prefix('.'));
    let stage = Stage::parse(&row.stage).unwrap_or(Stage::Decode);
    let schema = row
        .schema_file
        .as_deref()
        .and_then(|file| contract.schemas.get(file));
    let violation = (!row.schema_path.is_empty()).then(|| Violation {
        instance_path: row.instance_path.clone().unwrap_or_default(),
        schema_path: row.schema_path.clone(),
        message: row.message.clone(),
    });
    let hint = hints::hint(stage, connector.id(), schema, violation.as_ref());
    let path = violation
        .as_ref()
        .map(|v| hints::shown_path(schema, &v.instance_path));
    let reason = match &path {
        Some(path) => format!(
            "{}: {}",
            if path.is_empty() { "/" } else { path },
            row.message
        ),
        None => row.message.clone(),
    };
    let example = message_type.and_then(|t| example(contract, t, row, stage, &hint));
    // The version of the format the message was read as, from its schema.
    let version = message_type.and_then(|t| {
        connector
            .config
            .messages
            .iter()
            .find(|m| m.message_type == t && Some(&m.schema) == row.schema_file.as_ref())
            .map(|m| m.version)
    });
    json!({
        "stage": row.stage,
        "message_type": message_type,
        "version": version,
        "schema_file": row.schema_file,
        "path": path,
        "rule": violation.as_ref().map(|v| v.schema_path.clone()),
        "count": row.refusals,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "reason": reason,
        "hint": hint.text,
        "expected": hint.expected,
        "example": example,
    })
}

/// What a valid sample of the message type has where the group's rule
/// failed: in the message (a sample of the same version of the format
/// first), or at stage `intent` in the intent it becomes.
fn example(
    contract: &Contract,
    message_type: &str,
    row: &CauseRow,
    stage: Stage,
    hint: &hints::Hint,
) -> Option<Value> {
    let of_type = contract.valid.get(message_type)?;
    let same_version = |s: &&ValidSample| s.schema.is_some() && s.schema == row.schema_file;
    let found: Vec<&ValidSample> = of_type
        .iter()
        .filter(same_version)
        .chain(of_type.iter().filter(|s| !same_version(s)))
        .collect();
    let of = if stage == Stage::Intent {
        "intent"
    } else {
        "message"
    };
    let document = |sample: &ValidSample| match stage {
        Stage::Intent => sample.intent.clone(),
        _ => sample.body.clone(),
    };
    let Some(path) = hint.example_path.as_deref() else {
        let first = found.first()?;
        return Some(
            json!({"sample": first.name, "of": of, "path": Value::Null, "value_at_path": Value::Null}),
        );
    };
    // The first sample that has the place: an optional field may be in
    // only some of them.
    let (sample, value) = found.iter().find_map(|sample| {
        let document = document(sample);
        hints::value_at(&document, path)
            .cloned()
            .map(|value| (sample, value))
    })?;
    let small = serde_json::to_string(&value).is_ok_and(|text| text.len() <= EXAMPLE_BYTES);
    Some(json!({
        "sample": sample.name,
        "of": of,
        "path": path,
        "value_at_path": if small { value } else { Value::Null },
        "value_too_large": !small,
    }))
}

/// The connector's out queue: the events waiting there (ready, not yet
/// delivered: a passive declare, which is no delivery) and how long the
/// oldest has waited, from when the outbox sent it. `null` for a connector
/// that receives nothing.
async fn out_queue(state: &AppState, id: &str, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let queue = state.ops.names().outbound_queue(id);
    if !state.topology.queues.iter().any(|q| q.name == queue) {
        return Ok(Value::Null);
    }
    let depth = match state.ops.carrier().await {
        Ok(carrier) => carrier.depth(&queue).await,
        Err(_) => None,
    };
    let oldest = match depth {
        Some(waiting) if waiting > 0 => state.ops.store().oldest_waiting(id, waiting).await?,
        _ => None,
    };
    let age = oldest.map(|o| (now - o.sent_at).num_seconds().max(0));
    // Events wait and the outbox keeps none it sent there: they are older
    // than its retention.
    let unknown_but_old = depth.is_some_and(|n| n > 0) && oldest.is_none();
    let backed_up = age.is_some_and(|age| age >= BACKED_UP_AFTER_SECONDS) || unknown_but_old;
    Ok(json!({
        "queue": queue,
        "depth": depth,
        "oldest_sent_at": oldest.map(|o| o.sent_at),
        "oldest_age_seconds": age,
        "age_at_least": oldest.is_some_and(|o| o.at_most) || unknown_but_old,
        "backed_up": backed_up,
        "backed_up_after_seconds": BACKED_UP_AFTER_SECONDS,
    }))
}
