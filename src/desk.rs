//! The district centre's desk: lifecycle steps entered by hand, for cases
//! led inside the grid system.
//!
//! Departments whose systems are not connected yet have their matters
//! coordinated by the district centre (`deploy/routing.toml`, rule
//! `unconnected-departments`): the centre works with the department offline
//! and records its response at the desk, naming the department. A desk step
//! becomes an ordinary `update_case` intent, checked against
//! `schemas/hub/intent.v1.json` like any mapping's output, and runs through
//! the same lifecycle; its case event names who acted and the unit acted for.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connector::{INTENT_SCHEMA, Registry};
use crate::intent::UpdateCase;
use crate::pipeline::{Refusal, Stage};

/// A response (办结反馈) recorded for a unit with no system of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The unit that did the work, by name (区水务局, say).
    pub unit: String,
    /// What was done.
    pub note: String,
    /// Photo addresses (https), at most 16.
    #[serde(default)]
    pub photos: Vec<String>,
}

/// The intent a desk response stands for, checked against the intent
/// schema; `now` is when it is recorded.
pub fn response(
    registry: &Registry,
    case_no: &str,
    response: &Response,
    now: DateTime<Utc>,
) -> Result<UpdateCase, Refusal> {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let mut intent = json!({
        "kind": "update_case",
        "case": {"case_no": case_no},
        "action": "respond",
        "occurred_at": now.with_timezone(&beijing).to_rfc3339(),
        "unit": response.unit.trim(),
        "note": response.note.trim(),
    });
    if response.unit.trim().is_empty() || response.note.trim().is_empty() {
        return Err(Refusal::new(
            Stage::Intent,
            "a desk response names its unit and says what was done",
        ));
    }
    if !response.photos.is_empty() {
        if let Some(bad) = response
            .photos
            .iter()
            .position(|p| !p.starts_with("https://"))
        {
            return Err(Refusal::new(
                Stage::Intent,
                format!("photo {} is not an https address", bad + 1),
            ));
        }
        intent["media"] = Value::from(
            response
                .photos
                .iter()
                .map(|url| json!({"url": url, "kind": "photo"}))
                .collect::<Vec<_>>(),
        );
    }
    let violations = registry.intent.violations(&intent);
    if !violations.is_empty() {
        return Err(Refusal::from_violations(
            Stage::Intent,
            INTENT_SCHEMA,
            violations,
        ));
    }
    serde_json::from_value(intent).map_err(|_| {
        Refusal::new(
            Stage::Intent,
            "a desk response does not fit the hub's types",
        )
    })
}
