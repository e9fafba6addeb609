//! A dry run: what the hub would make of one message, with nothing
//! published and nothing stored. `POST /api/connectors/{id}/{type}/validate`
//! runs it on the hub's live rules and places; `gridhub validate` runs it
//! offline on the bundled connectors and the district's data. Both call
//! [`judge`], so they answer alike.
//!
//! The message goes through the stages a delivery goes through (decode,
//! schema, mapping, intent: [`pipeline::prepare`]), then through placing
//! and routing as a new case would. Identity is the broker's and the
//! token's business, not the body's: a dry run is judged as the
//! connector's own publisher. What depends on the cases the hub holds when
//! the message arrives (a duplicate merging into an open case, whether a
//! step is allowed in its case's status) is decided then, and said so.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::connector::{Connector, Registry};
use crate::intent::{Intent, OpenCase, ShareRecords, UpdateCase, UpdateGrids};
use crate::message::Inbound;
use crate::pipeline::{self, Refusal};
use crate::places::Locate;
use crate::routing::{Route, Routing, Unit};

/// The user a dry run is judged as, trusted for this run only.
const DRY_RUN_USER: &str = "gridhub-dry-run";

/// What a dry run reads: the connectors, the routing rules and the places.
pub struct Judge<'a> {
    pub registry: &'a Registry,
    pub routing: &'a Routing,
    pub places: &'a dyn Locate,
}

/// One message to judge.
pub struct Trial<'a> {
    pub connector: &'a str,
    pub message_type: &'a str,
    /// The AMQP `type` property it would carry (`v2`), if any.
    pub version: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Vec<u8>,
}

impl Judge<'_> {
    /// The verdict on one message, as JSON: `accepted`, and either what it
    /// becomes (`intent`, `becomes`) or where and why it is refused
    /// (`refused_at`, `reason`, `violations` with their paths). `now`
    /// stands for its arrival: deadlines are counted from it.
    pub fn judge(&self, trial: Trial<'_>, now: DateTime<Utc>) -> Value {
        let message = Inbound {
            routing_key: format!("{}.{}", trial.connector, trial.message_type),
            message_id: Some("dry-run".to_owned()),
            content_type: trial.content_type.map(str::to_owned),
            amqp_type: trial.version.map(str::to_owned),
            user_id: Some(DRY_RUN_USER.to_owned()),
            body: trial.body,
            replays: 0,
        };
        let trusted = [DRY_RUN_USER.to_owned()];
        let mut verdict = json!({
            "connector": trial.connector,
            "type": trial.message_type,
        });
        if let Some((_, version)) = pipeline::version_of(self.registry, trial.connector, &message) {
            verdict["version"] = json!(version.name());
            verdict["deprecated"] = json!(version.deprecated.map(|d| d.to_string()));
        }
        match pipeline::prepare_json(self.registry, trial.connector, &message, &trusted) {
            Ok((prepared, intent)) => {
                verdict["accepted"] = json!(true);
                verdict["intent"] = intent;
                verdict["becomes"] = self.becomes(trial.connector, &prepared.intent, now);
            }
            Err(refusal) => {
                verdict["accepted"] = json!(false);
                refused(&mut verdict, &refusal);
            }
        }
        verdict
    }

    fn becomes(&self, connector: &str, intent: &Intent, now: DateTime<Utc>) -> Value {
        match intent {
            Intent::OpenCase(open) => self.case(open, now),
            Intent::UpdateCase(update) => step(update),
            Intent::ShareRecords(share) => self.shared(connector, share),
            Intent::UpdateGrids(grids) => grid_data(grids),
        }
    }

    /// A new case: placed and routed as the store would.
    fn case(&self, open: &OpenCase, now: DateTime<Utc>) -> Value {
        let location = self.places.locate(&open.place);
        let route = self
            .routing
            .route(open.category.as_deref(), open.nature, location.placed());
        let category_name = open.category.as_deref().and_then(|code| {
            self.routing
                .file
                .catalogue
                .iter()
                .find(|entry| entry.code == code)
                .map(|entry| entry.name.clone())
        });
        let mut case = json!({
            "kind": "case",
            "nature": open.nature.as_str(),
            "category": open.category,
            "category_name": category_name,
            "priority": open.priority.as_str(),
            "place": {
                "grid": location.grid_id,
                "community": location.community,
                "street": location.street,
                "located_by": location.located_by.as_str(),
            },
            "duplicates": "an open case of the same category nearby (or in the same grid) \
                           when it arrives absorbs it as a duplicate",
        });
        match route {
            Route::Answer { rule } => {
                case["status"] = json!("answered");
                case["rule"] = json!(rule);
            }
            Route::Dispatch {
                rule,
                lead,
                assist,
                unplaced,
            } => {
                case["status"] = json!("dispatched");
                case["rule"] = json!(rule);
                case["lead_unit"] = unit(&lead);
                case["assisting_units"] = assist.iter().map(unit).collect();
                case["unplaced"] = json!(unplaced);
                let deadline = self.routing.deadline(open.priority);
                case["deadline"] = json!({
                    "handling": humantime::format_duration(deadline).to_string(),
                    "working_days": self.routing.calendar.is_some()
                        && deadline.as_secs().is_multiple_of(86_400),
                    "due_at_if_now": self.routing.due_at(open.priority, now).to_rfc3339(),
                    "sign_for_within": humantime::format_duration(self.routing.sign_for).to_string(),
                });
            }
        }
        case
    }

    /// Records shared onward: with whom, and how much personal data each gets.
    fn shared(&self, connector: &str, share: &ShareRecords) -> Value {
        let to: Vec<Value> = self
            .registry
            .get(connector)
            .into_iter()
            .flat_map(|c: &Connector| c.config.shares.iter())
            .filter(|s| s.dataset == share.dataset)
            .flat_map(|s| s.to.iter())
            .map(|to| {
                let disclosure = self
                    .registry
                    .get(to)
                    .map(|c| c.config.privacy.records)
                    .unwrap_or_default();
                json!({"connector": to, "personal_data": disclosure})
            })
            .collect();
        json!({
            "kind": "records",
            "dataset": share.dataset,
            "records": share.records.len(),
            "to": to,
        })
    }
}

/// A lifecycle step of an existing case.
fn step(update: &UpdateCase) -> Value {
    json!({
        "kind": "step",
        "action": update.action.as_str(),
        "case": update.case,
        "unit": update.unit,
        "occurred_at": update.occurred_at.to_rfc3339(),
        "applies": "to the case as it is when the message arrives: a case that is not \
                    found, or whose status does not allow the step, is refused then",
    })
}

fn grid_data(grids: &UpdateGrids) -> Value {
    json!({
        "kind": "grids",
        "grids": grids.grids.len(),
        "retired": grids.grids.iter().filter(|g| g.retired).count(),
        "addresses": grids.addresses.len(),
    })
}

fn unit(unit: &Unit) -> Value {
    json!({
        "id": unit.id,
        "name": unit.name,
        "connector": unit.connector,
        "level": unit.level.as_str(),
    })
}

fn refused(verdict: &mut Value, refusal: &Refusal) {
    verdict["refused_at"] = json!(refusal.stage.as_str());
    verdict["reason"] = json!(refusal.reason);
    verdict["schema"] = json!(refusal.schema);
    verdict["violations"] = refusal
        .violations
        .iter()
        .map(|v| {
            json!({
                "path": v.instance_path,
                "schema_path": v.schema_path,
                "message": v.message,
            })
        })
        .collect();
}

/// The verdict without what depends on the moment it was given (the
/// deadline's date): two dry runs of one message compare equal.
pub fn timeless(mut verdict: Value) -> Value {
    if let Some(deadline) = verdict
        .pointer_mut("/becomes/deadline")
        .and_then(Value::as_object_mut)
    {
        deadline.remove("due_at_if_now");
    }
    verdict
}

#[cfg(test)]
mod tests;
