//! Lifecycle updates: sign-for, return, progress, respond, verify, callback,
//! close, reopen. One case at a time, locked for the transaction.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::events::Events;
use super::seal::Seal;
use super::statements::{CaseEvent, CaseKey, CaseRow, Response};
use super::{Applied, Rules, StoreError, Tx};
use crate::connector::Kind;
use crate::intent::{Action, Priority, UpdateCase};
use crate::lifecycle::{self, CaseState, Effect, Outcome, Sender, Status};
use crate::pipeline::{Refusal, Stage};
use crate::routing::{Level, Unit};

/// Loads a case row with its parent's case number, its description opened
/// (a confidential complainant's is sealed at rest). One that does not open
/// is left out and the failure logged: the case goes on without it.
pub(super) async fn load_case(
    tx: &mut Tx,
    key: CaseKey<'_>,
    seal: &Seal,
) -> Result<Option<CaseRow>, StoreError> {
    let Some(mut row) = tx.case_row(key).await? else {
        return Ok(None);
    };
    if !Seal::is_sealed(&row.description) {
        return Ok(Some(row));
    }
    row.description = match seal.open(row.id, "description", Some(&row.description)) {
        Ok(description) => description.unwrap_or_default(),
        Err(error) => {
            tracing::error!(case_id = %row.id, error = %error, "cannot open a case's description");
            String::new()
        }
    };
    Ok(Some(row))
}

fn refuse(reason: String) -> Applied {
    Applied::Refused(Refusal::new(Stage::Apply, reason))
}

/// The event a status is announced as.
fn announced(status: Status) -> &'static str {
    match status {
        Status::InProgress => "progress",
        other => other.as_str(),
    }
}

/// Who reports an update.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    /// A connector's message.
    Message {
        connector: &'a str,
        message_id: &'a str,
    },
    /// The district centre's desk, for a case led inside the grid system: it
    /// records the step for the unit the update names (a department whose
    /// own system is not connected, which the centre coordinates offline).
    /// `actor` is who acted at the desk.
    Desk { actor: &'a str },
}

/// Applies one update to the case it names.
pub(super) async fn update_case(
    tx: &mut Tx,
    by: By<'_>,
    update: &UpdateCase,
    rules: &Rules,
    seal: &Seal,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    // A desk update names no connector of its own: it stands for the case's
    // lead unit, checked below once the case is loaded.
    let (connector, message_id) = match by {
        By::Message {
            connector,
            message_id,
        } => (connector, Some(message_id)),
        By::Desk { .. } => ("", None),
    };
    let (key, named) = match (&update.case.case_no, &update.case.source_ref) {
        (Some(case_no), _) => (CaseKey::Number(case_no), format!("case {case_no}")),
        (None, Some(source_ref)) => {
            let source = update.case.connector.as_deref().unwrap_or(connector);
            (
                CaseKey::Source(source, source_ref),
                format!("ticket {source_ref} of {source}"),
            )
        }
        (None, None) => return Ok(refuse("update names no case".to_owned())),
    };
    let row = load_case(tx, key, seal).await?;
    let Some(row) = row else {
        return Ok(refuse(format!("unknown case: no {named}")));
    };
    // A status the lifecycle does not know is a corrupt row: refused with
    // the row named, never read as some default.
    let current = Status::parse(&row.status).ok_or_else(|| StoreError::Permanent {
        code: format!(
            "corrupt row: case {} has status {:?}",
            row.case_no,
            crate::message::printable(&row.status)
        ),
    })?;
    let (sender, unit, actor, on_behalf_of) = match by {
        By::Message { .. } => {
            let own_sources = tx.own_sources(row.id).await?;
            let sender = Sender {
                lead_unit: row.lead_connector.as_deref() == Some(connector),
                grid_platform: is_grid(rules, connector),
                source: own_sources.iter().any(|(c, _)| c == connector),
            };
            let unit = update.unit.as_deref().unwrap_or(connector);
            (sender, unit, unit, None)
        }
        By::Desk { actor } => {
            let led_in_grid = row
                .lead_connector
                .as_deref()
                .is_some_and(|c| is_grid(rules, c));
            if !led_in_grid {
                return Ok(refuse(format!(
                    "case {}: the desk records steps only for cases led inside the grid system; \
                     lead unit {} reports on its own queue",
                    row.case_no,
                    row.lead_unit.as_deref().unwrap_or("(none)")
                )));
            }
            let Some(unit) = update.unit.as_deref().filter(|u| !u.trim().is_empty()) else {
                return Ok(refuse(format!(
                    "case {}: a desk update names the unit it is recorded for",
                    row.case_no
                )));
            };
            (Sender::LEAD_UNIT, unit, actor, Some(unit))
        }
    };

    if current == Status::Merged {
        if update.action == Action::Callback && sender.source {
            tx.record_callback(&row, update, None).await?;
            note_event(
                tx,
                &row,
                current,
                "callback",
                by,
                unit,
                update.note.as_deref(),
            )
            .await?;
            return Ok(Applied::CaseUpdated {
                case_no: row.case_no,
            });
        }
        return Ok(refuse(format!(
            "case {} is merged into {}: report on that case",
            row.case_no,
            row.parent_case_no.as_deref().unwrap_or("another case")
        )));
    }

    let state = CaseState {
        status: current,
        located: row.grid_id.is_some(),
        callback_wanted: row.callback_wanted,
    };
    let outcome = match lifecycle::Report::of(update)
        .and_then(|report| lifecycle::apply(&state, report, sender))
    {
        Ok(outcome) => outcome,
        Err(not_allowed) => return Ok(refuse(format!("case {}: {}", row.case_no, not_allowed.0))),
    };
    let (steps, effects) = match outcome {
        Outcome::Late => {
            note_event(
                tx,
                &row,
                current,
                &format!("late_{}", update.action.as_str()),
                by,
                unit,
                update.note.as_deref(),
            )
            .await?;
            return Ok(Applied::CaseUpdated {
                case_no: row.case_no,
            });
        }
        Outcome::Noted => {
            if update.action == Action::Callback {
                tx.record_callback(&row, update, None).await?;
            }
            note_event(
                tx,
                &row,
                current,
                update.action.as_str(),
                by,
                unit,
                update.note.as_deref(),
            )
            .await?;
            return Ok(Applied::CaseUpdated {
                case_no: row.case_no,
            });
        }
        Outcome::Held => {
            let held = HeldCallback {
                connector: connector.to_owned(),
                message_id: message_id.unwrap_or_default().to_owned(),
                update: update.clone(),
            };
            let held = serde_json::to_string(&held).map_err(|error| StoreError::Permanent {
                code: format!("held callback: {error}"),
            })?;
            tx.hold_callback(row.id, Some(&held)).await?;
            let note = if row.held_callback.is_some() {
                "kept until the on-site verification ends (replaces the one kept before)"
            } else {
                "kept until the on-site verification ends"
            };
            note_event(tx, &row, current, "callback_held", by, unit, Some(note)).await?;
            return Ok(Applied::CaseUpdated {
                case_no: row.case_no,
            });
        }
        Outcome::Moved { steps, effects } => (steps, effects),
    };

    // The new state of the row.
    let mut next = row.clone();
    let last = *steps.last().expect("a move has steps");
    next.status = last.as_str().to_owned();
    let mut redispatch_to: Option<Unit> = None;
    let mut callback_requested = false;
    for effect in &effects {
        match effect {
            Effect::CountReturn => next.return_count += 1,
            Effect::CountRework => next.rework_count += 1,
            Effect::Redispatch => {
                let unit = if update.action == Action::Return {
                    rules.routing.on_return(row.routing_rule.as_deref()).clone()
                } else {
                    row.lead_unit
                        .as_deref()
                        .and_then(|id| rules.routing.unit(id))
                        .unwrap_or_else(|| rules.routing.fallback())
                        .clone()
                };
                next.lead_unit = Some(unit.id.clone());
                next.lead_connector = Some(unit.connector.clone());
                next.dispatch_level = Some(unit.level.as_str().to_owned());
                let priority =
                    Priority::parse(&row.priority).ok_or_else(|| StoreError::Permanent {
                        code: format!(
                            "corrupt row: case {} has priority {:?}",
                            row.case_no,
                            crate::message::printable(&row.priority)
                        ),
                    })?;
                next.due_at = Some(rules.routing.due_at(priority, now));
                next.escalation_level = 0;
                redispatch_to = Some(unit);
            }
            Effect::RequestCallback => {
                callback_requested = true;
                next.callback_due_at = chrono::Duration::from_std(rules.routing.callback)
                    .ok()
                    .map(|d| now + d);
            }
            Effect::RequestVerification | Effect::Rework => {}
        }
    }
    if update.action == Action::Callback {
        next.satisfaction = update.satisfaction.clone().or(next.satisfaction);
    }
    let sign_for = chrono::Duration::from_std(rules.routing.sign_for).unwrap_or_default();
    tx.write_case(
        &next,
        now,
        redispatch_to.is_some().then_some(now + sign_for),
        callback_requested,
    )
    .await?;
    if update.action == Action::Callback {
        tx.record_callback(&row, update, Some(&next)).await?;
    }

    // One event per step.
    let mut from = current;
    for (n, step) in steps.iter().enumerate() {
        let kind = if n == 0 {
            update.action.as_str()
        } else {
            step.as_str()
        };
        let note = if n == 0 {
            update
                .reason
                .as_deref()
                .or(update.note.as_deref())
                .map(str::to_owned)
        } else if *step == Status::Dispatched {
            redispatch_to
                .as_ref()
                .map(|u| format!("dispatched again to {}", u.id))
        } else {
            None
        };
        tx.insert_event(&CaseEvent {
            case_id: row.id,
            kind,
            from_status: Some(from.as_str()),
            to_status: step.as_str(),
            actor: if n == 0 { actor } else { "gridhub" },
            note,
            connector: message_id.map(|_| connector),
            message_id,
            media: (n == 0 && !update.media.is_empty()).then_some(update.media.as_slice()),
            on_behalf_of: if n == 0 { on_behalf_of } else { None },
        })
        .await?;
        from = *step;
    }

    // Who hears about it.
    let all_sources = tx.sources(row.id).await?;
    let mut events = Events::new(&rules.centre, &rules.registry);
    let view = next.view();
    for step in &steps {
        let extra = match step {
            Status::Returned => json!({"reason": update.reason, "returned_by": unit}),
            Status::Closed => json!({"satisfaction": next.satisfaction}),
            Status::Responded if !update.media.is_empty() => json!({"media": update.media}),
            _ => json!({}),
        };
        events.status(&view, step.as_str(), announced(*step), &all_sources, extra);
    }
    if callback_requested {
        // The request quotes the response the reporter is asked about.
        let response = if update.action == Action::Respond {
            Some(Response {
                unit: unit.to_owned(),
                note: update.note.clone(),
                media: update.media.clone(),
            })
        } else {
            tx.last_response(row.id).await?
        };
        let request = json!({"callback_due_at": next.callback_due_at, "response": response});
        events.status(
            &view,
            Status::Callback.as_str(),
            "callback_requested",
            &all_sources,
            request,
        );
    }
    if let Some(unit) = &redispatch_to {
        let reporter = tx.reporter(row.id, seal).await?;
        events.send_to_unit(
            &unit.connector,
            "dispatched",
            &view,
            reporter.as_ref(),
            json!({"role": "lead", "redispatch": true}),
        );
    }
    if effects.contains(&Effect::Rework)
        && let Some(lead) = &next.lead_connector
    {
        let reporter = tx.reporter(row.id, seal).await?;
        events.send_to_unit(
            lead,
            "rework",
            &view,
            reporter.as_ref(),
            json!({"rework_count": next.rework_count, "note": update.note}),
        );
    }
    if effects.contains(&Effect::RequestVerification) {
        let grid = rules
            .routing
            .units()
            .find(|u| u.level == Level::Grid)
            .map(|u| u.connector.clone())
            .unwrap_or_else(|| rules.centre.clone());
        events.send_to_unit(
            &grid,
            "verify_requested",
            &view,
            None,
            json!({"result": update.note}),
        );
    }
    tx.insert_outbox(&events.out, seal).await?;
    if update.action == Action::Verify
        && let Some(held) = &row.held_callback
    {
        settle_held_callback(tx, &next, held, by, unit, rules, seal, now).await?;
    }
    Ok(Applied::CaseUpdated {
        case_no: row.case_no,
    })
}

/// A callback result kept while the grid verified on site: who sent it and
/// what it said.
#[derive(serde::Serialize, serde::Deserialize)]
struct HeldCallback {
    connector: String,
    message_id: String,
    update: UpdateCase,
}

/// Once a verification ends, the callback kept during it: applied as it
/// arrived when the verification passed (the case is at `callback` or, with
/// no callback wanted, `closed`); dropped when it failed, since the hotline
/// is asked again after the next response. Either way an event says so.
#[allow(clippy::too_many_arguments)]
async fn settle_held_callback(
    tx: &mut Tx,
    case: &CaseRow,
    held: &str,
    by: By<'_>,
    unit: &str,
    rules: &Rules,
    seal: &Seal,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.hold_callback(case.id, None).await?;
    let status = Status::parse(&case.status).unwrap_or(Status::Rework);
    let held: HeldCallback = match serde_json::from_str(held) {
        Ok(held) => held,
        Err(error) => {
            tracing::error!(case_no = %case.case_no, error = %error, "a held callback does not read");
            let note = "the callback kept during verification could not be read";
            return note_event(tx, case, status, "callback_dropped", by, unit, Some(note)).await;
        }
    };
    if status == Status::Rework {
        let note = "the verification failed: the hotline is asked again after the next response";
        return note_event(tx, case, status, "callback_dropped", by, unit, Some(note)).await;
    }
    let sent_by = By::Message {
        connector: &held.connector,
        message_id: &held.message_id,
    };
    let applied = Box::pin(update_case(tx, sent_by, &held.update, rules, seal, now)).await?;
    if let Applied::Refused(refusal) = applied {
        let note = format!("the callback kept during verification: {}", refusal.reason);
        note_event(tx, case, status, "callback_dropped", by, unit, Some(&note)).await?;
    }
    Ok(())
}

/// Whether a connector is the grid platform's.
fn is_grid(rules: &Rules, connector: &str) -> bool {
    rules
        .registry
        .get(connector)
        .is_some_and(|c| c.config.kind == Kind::Grid)
}

/// Records an update that changes no status.
async fn note_event(
    tx: &mut Tx,
    row: &CaseRow,
    status: Status,
    kind: &str,
    by: By<'_>,
    unit: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let (actor, connector, message_id, on_behalf_of) = match by {
        By::Message {
            connector,
            message_id,
        } => (unit, Some(connector), Some(message_id), None),
        By::Desk { actor } => (actor, None, None, Some(unit)),
    };
    tx.insert_event(&CaseEvent {
        case_id: row.id,
        kind,
        from_status: Some(status.as_str()),
        to_status: status.as_str(),
        actor,
        note: note.map(str::to_owned),
        connector,
        message_id,
        media: None,
        on_behalf_of,
    })
    .await
}
