//! The district centre's desk: lifecycle steps entered by hand. A
//! dispatcher acts on any case ([`act`]: dispatch, review a return, grant
//! or decline an extension or a suspension, resume, remind, supervise,
//! close, reopen), and records responses for the units of cases
//! led inside the grid system ([`response`]).
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
use crate::intent::{Action, UpdateCase};
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
    checked(registry, intent, "a desk response")
}

/// A desk step's intent, checked against the intent schema like any
/// mapping's output.
fn checked(registry: &Registry, intent: Value, what: &str) -> Result<UpdateCase, Refusal> {
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
            format!("{what} does not fit the hub's types"),
        )
    })
}

/// A dispatcher's action on a case.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Act {
    /// `dispatch` (派单/改派), `approve_return` or `reject_return` (退单审核),
    /// `extend` (延期), `suspend` (挂起), `resume` (恢复), `reject_request`
    /// (an extension or suspension asked for, declined), `merge` (并单),
    /// `split` (拆单), `remind` (催办),
    /// `supervise` (督办), `close` (结案), `reopen` (重启).
    pub action: Action,
    /// dispatch, approve_return, split: the unit the case goes to, by id
    /// (deploy/routing.toml); left out, for an approved return the rule's
    /// `on_return`, for a split its lead unit or the rules' choice.
    #[serde(default)]
    pub unit: Option<String>,
    /// dispatch, approve_return: assisting units (协办), by id.
    #[serde(default)]
    pub assist: Vec<String>,
    /// merge: the case number of the open case it becomes part of.
    #[serde(default)]
    pub into: Option<String>,
    /// extend: the days the deadline moves; left out, the days the unit
    /// asked for.
    #[serde(default)]
    pub days: Option<u16>,
    /// Why; required but for remind, supervise, extend and resume.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The actions whose reason may be left out.
const REASON_OPTIONAL: [Action; 4] = [
    Action::Remind,
    Action::Supervise,
    Action::Extend,
    Action::Resume,
];

/// The intent a dispatcher's action stands for, checked against the intent
/// schema; `now` is when it is taken.
pub fn act(
    registry: &Registry,
    case_no: &str,
    act: &Act,
    now: DateTime<Utc>,
) -> Result<UpdateCase, Refusal> {
    if !(act.action.is_centres() || matches!(act.action, Action::Close | Action::Reopen)) {
        return Err(Refusal::new(
            Stage::Intent,
            format!(
                "{} is not a dispatcher's action: dispatch, approve_return, reject_return, \
                 extend, suspend, resume, reject_request, merge, split, remind, supervise, close \
                 or reopen",
                act.action.as_str()
            ),
        ));
    }
    let reason = act
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_none() && !REASON_OPTIONAL.contains(&act.action) {
        return Err(Refusal::new(
            Stage::Intent,
            format!("{} needs a reason", act.action.as_str()),
        ));
    }
    let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let mut intent = json!({
        "kind": "update_case",
        "case": {"case_no": case_no},
        "action": act.action.as_str(),
        "occurred_at": now.with_timezone(&beijing).to_rfc3339(),
    });
    if let Some(unit) = act.unit.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        intent["unit"] = json!(unit);
    }
    if !act.assist.is_empty() {
        intent["assist"] = json!(act.assist);
    }
    if let Some(reason) = reason {
        intent["reason"] = json!(reason);
    }
    if let Some(days) = act.days {
        intent["days"] = json!(days);
    }
    if let Some(into) = act.into.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        intent["into"] = json!(into);
    }
    checked(registry, intent, "a desk action")
}
