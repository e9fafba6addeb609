//! Lifecycle updates: sign-for, return, progress, respond, verify, callback,
//! close, reopen. One case at a time, locked for the transaction.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::events::Events;
use super::seal::Seal;
use super::statements::{CaseEvent, CaseJson, CaseKey, CaseRow, Clocks, Facts, Response};
use super::{Applied, Rules, StoreError, Tx};
use crate::connector::Kind;
use crate::intent::{Action, Nature, Priority, UpdateCase};
use crate::lifecycle::{self, CaseState, Effect, HANDLING, Outcome, Sender, Status};
use crate::pipeline::{Refusal, Stage};
use crate::routing::{Level, Placed, Route, Unit};

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

/// A stored value the hub cannot read: an error naming the row and the
/// value, never read as some default.
fn corrupt(row: &CaseRow, what: &str, value: &str) -> StoreError {
    StoreError::Permanent {
        code: format!(
            "corrupt row: case {} has {what} {:?}",
            row.case_no,
            crate::message::printable(value)
        ),
    }
}

/// A case's stored status.
fn stored_status(row: &CaseRow) -> Result<Status, StoreError> {
    Status::parse(&row.status).ok_or_else(|| corrupt(row, "status", &row.status))
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
    /// A dispatcher of the district centre, acting on the case itself:
    /// dispatch, review a return, remind, supervise, close, reopen.
    Centre { actor: &'a str },
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
        By::Desk { .. } | By::Centre { .. } => ("", None),
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
    let current = stored_status(&row)?;
    let (sender, unit, actor, on_behalf_of) = match by {
        By::Message { .. } => {
            let own_sources = tx.own_sources(row.id).await?;
            let sender = Sender {
                lead_unit: row.lead_connector.as_deref() == Some(connector),
                grid_platform: rules.registry.is(connector, Kind::Grid),
                source: own_sources.iter().any(|(c, _)| c == connector),
                centre: false,
            };
            let unit = update.unit.as_deref().unwrap_or(connector);
            (sender, unit, unit, None)
        }
        By::Desk { actor } => {
            let led_in_grid = row
                .lead_connector
                .as_deref()
                .is_some_and(|c| rules.registry.is(c, Kind::Grid));
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
        By::Centre { actor } => (Sender::CENTRE, actor, actor, None),
    };

    // A merged case follows the case it is part of, until split out.
    if current == Status::Merged && update.action != Action::Split {
        if update.action == Action::Callback && sender.source {
            tx.record_callback(&row, update, None).await?;
            note_event(
                tx,
                &row,
                current,
                "callback",
                by,
                unit,
                Said::Callback(update),
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

    let before = match current {
        Status::ReturnPending => tx.status_before(row.id, "return").await?,
        Status::Suspended => tx.status_before(row.id, "suspend").await?,
        _ => None,
    };
    let state = CaseState {
        status: current,
        located: row.grid_id.is_some(),
        callback_wanted: row.callback_wanted,
        before,
    };
    let outcome = match lifecycle::Report::of(update)
        .and_then(|report| lifecycle::apply(&state, report, sender))
    {
        Ok(outcome) => outcome,
        Err(not_allowed) => return Ok(refuse(format!("case {}: {}", row.case_no, not_allowed.0))),
    };
    let (steps, effects) = match outcome {
        Outcome::Late | Outcome::Noted => {
            let step = Step {
                row: &row,
                status: current,
                update,
                by,
                rules,
                seal,
            };
            let kind = if outcome == Outcome::Late {
                format!("late_{}", update.action.as_str())
            } else if matches!(update.action, Action::Remind | Action::Supervise) {
                return press(tx, step).await;
            } else if update.action.is_request() {
                return request(tx, step, unit, now).await;
            } else if matches!(update.action, Action::Extend | Action::RejectRequest) {
                return settle_request(tx, step).await;
            } else {
                if update.action == Action::Callback {
                    tx.record_callback(&row, update, None).await?;
                }
                update.action.as_str().to_owned()
            };
            note_event(tx, &row, current, &kind, by, unit, Said::Callback(update)).await?;
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
            tx.set_case_json(row.id, CaseJson::HeldCallback, Some(&held))
                .await?;
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

    // Who the case's sources are, before a merge takes the cases merged
    // into this one along.
    let all_sources = tx.sources(row.id).await?;
    // The new state of the row.
    let mut next = row.clone();
    let last = *steps.last().expect("a move has steps");
    next.status = last.as_str().to_owned();
    let mut redispatch_to: Option<Unit> = None;
    let mut merged_into: Option<(CaseRow, Status)> = None;
    let mut clocks = Clocks {
        // A request is about the work the unit was doing: moot once the
        // case leaves it.
        request_settled: !matches!(last, Status::Accepted | Status::InProgress),
        ..Clocks::default()
    };
    for effect in &effects {
        match effect {
            Effect::CountReturn => next.return_count += 1,
            Effect::CountRework => next.rework_count += 1,
            Effect::Redispatch => {
                let chosen = match update.action {
                    Action::Dispatch | Action::ApproveReturn | Action::Split => {
                        match chosen_units(update, rules, &row.case_no) {
                            Ok(chosen) => chosen,
                            Err(refusal) => return Ok(refusal),
                        }
                    }
                    _ => None,
                };
                let unit = match (update.action, chosen) {
                    (_, Some((lead, assist))) => {
                        next.assisting_units = assist;
                        lead
                    }
                    (Action::ApproveReturn, None) => {
                        rules.routing.on_return(row.routing_rule.as_deref()).clone()
                    }
                    // Merged at intake, it was never routed: the rules
                    // route it now as they would have.
                    (Action::Split, None) if row.lead_unit.is_none() => {
                        let nature = Nature::parse(&row.nature)
                            .ok_or_else(|| corrupt(&row, "nature", &row.nature))?;
                        match split_route(&row, nature, rules) {
                            Ok((unit, rule)) => {
                                next.routing_rule = Some(rule);
                                unit
                            }
                            Err(refusal) => return Ok(refusal),
                        }
                    }
                    _ => row
                        .lead_unit
                        .as_deref()
                        .and_then(|id| rules.routing.unit(id))
                        .unwrap_or_else(|| rules.routing.fallback())
                        .clone(),
                };
                next.lead_unit = Some(unit.id.clone());
                next.lead_connector = Some(unit.connector.clone());
                next.dispatch_level = Some(unit.level.as_str().to_owned());
                let priority = Priority::parse(&row.priority)
                    .ok_or_else(|| corrupt(&row, "priority", &row.priority))?;
                next.due_at = Some(rules.routing.due_at(priority, now));
                next.escalation_level = 0;
                redispatch_to = Some(unit);
            }
            Effect::Merge => {
                let (target, status) = match merge_target(tx, &row, update, seal).await? {
                    Ok(target) => target,
                    Err(refusal) => return Ok(refusal),
                };
                tx.set_parent(row.id, Some(target.id)).await?;
                next.parent_case_no = Some(target.case_no.clone());
                merged_into = Some((target, status));
            }
            Effect::Split => {
                tx.set_parent(row.id, None).await?;
                next.parent_case_no = None;
            }
            Effect::StopClock => next.suspended_at = Some(now),
            Effect::RestartClock => {
                let stood = (now - row.suspended_at.unwrap_or(now)).max(chrono::TimeDelta::zero());
                next.due_at = row.due_at.map(|due| due + stood);
                // Watched again against the new deadline, from the start.
                next.escalation_level = 0;
                clocks.deadline_moved = true;
                if last == Status::Dispatched {
                    tx.shift_sign_for(row.id, stood).await?;
                }
            }
            Effect::RequestCallback => {
                clocks.callback_requested = true;
                next.callback_due_at = chrono::Duration::from_std(rules.routing.callback)
                    .ok()
                    .map(|d| now + d);
            }
            Effect::RequestVerification | Effect::Rework => {}
        }
    }
    if current == Status::Suspended && last != Status::Suspended {
        next.suspended_at = None;
    }
    if update.action == Action::Callback {
        next.satisfaction = update.satisfaction.clone().or(next.satisfaction);
    }
    let sign_for = chrono::Duration::from_std(rules.routing.sign_for).unwrap_or_default();
    clocks.accept_due_at = redispatch_to.is_some().then_some(now + sign_for);
    tx.write_case(&next, now, &clocks).await?;
    if update.action == Action::Callback {
        tx.record_callback(&row, update, Some(&next)).await?;
    }
    if next.assisting_units != row.assisting_units {
        tx.set_assisting(row.id, &next.assisting_units).await?;
    }

    // One event per step.
    let mut from = current;
    for (n, step) in steps.iter().enumerate() {
        let kind = if n == 0 {
            update.action.as_str()
        } else {
            step.as_str()
        };
        let note = if n == 0 && update.action == Action::Dispatch {
            let to = redispatch_to.as_ref().map(|u| u.id.as_str()).unwrap_or("");
            Some(match update.reason.as_deref() {
                Some(reason) => format!("to {to}: {reason}"),
                None => format!("to {to}"),
            })
        } else if n == 0 {
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
            facts: if n == 0 {
                Facts::of(&next).verdict(update)
            } else {
                Facts::of(&next)
            },
        })
        .await?;
        from = *step;
    }

    // Who hears about it.
    let mut events = Events::new(&rules.centre, &rules.registry);
    let view = &next;
    for step in &steps {
        let (what, extra) = match (update.action, step) {
            (_, Status::ReturnPending) => (
                "returned",
                json!({"reason": update.reason, "returned_by": unit}),
            ),
            (Action::ApproveReturn, Status::Returned) => (
                "return_approved",
                json!({"reason": update.reason, "approved_by": actor}),
            ),
            (Action::RejectReturn, _) => (
                "return_rejected",
                json!({"reason": update.reason, "rejected_by": actor}),
            ),
            (_, Status::Returned) => (
                "returned",
                json!({"reason": update.reason, "returned_by": unit}),
            ),
            (Action::Suspend, _) => (
                "suspended",
                json!({"reason": update.reason, "suspended_by": actor}),
            ),
            (Action::Merge, _) => (
                "merged",
                json!({"into": next.parent_case_no, "reason": update.reason, "by_hand": true}),
            ),
            (Action::Split, _) => (
                "split",
                json!({"from": row.parent_case_no, "reason": update.reason}),
            ),
            (Action::Resume, _) => (
                "resumed",
                json!({"reason": update.reason, "resumed_by": actor, "due_at": next.due_at}),
            ),
            (_, Status::Closed) => ("closed", json!({"satisfaction": next.satisfaction})),
            (_, Status::Responded) if !update.media.is_empty() => {
                ("responded", json!({"media": update.media}))
            }
            (_, other) => (announced(*other), json!({})),
        };
        events.status(view, step.as_str(), what, &all_sources, extra);
    }
    let told_unit = match update.action {
        Action::RejectReturn => Some("return_rejected"),
        Action::Suspend => Some("suspended"),
        Action::Resume => Some("resumed"),
        // The unit that handled it stops: the case it joined goes on.
        Action::Merge if HANDLING.contains(&current) || current == Status::Suspended => {
            Some("merged")
        }
        _ => None,
    };
    if let (Some(what), Some(lead)) = (told_unit, &next.lead_connector) {
        events.notify_unit(lead, what, view, json!({"reason": update.reason}));
    }
    if clocks.callback_requested {
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
            view,
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
            view,
            reporter.as_ref(),
            json!({"role": "lead", "redispatch": row.lead_unit.is_some()}),
        );
        // A dispatcher's choice of assisting units (协办) hears it too.
        if matches!(
            update.action,
            Action::Dispatch | Action::ApproveReturn | Action::Split
        ) {
            for id in &next.assisting_units {
                if let Some(assist) = rules.routing.unit(id) {
                    events.send_to_unit(
                        &assist.connector,
                        "dispatched",
                        view,
                        None,
                        json!({"role": "assist", "unit": id}),
                    );
                }
            }
        }
    }
    if effects.contains(&Effect::Rework)
        && let Some(lead) = &next.lead_connector
    {
        let reporter = tx.reporter(row.id, seal).await?;
        events.send_to_unit(
            lead,
            "rework",
            view,
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
            view,
            None,
            json!({"result": update.note}),
        );
    }
    tx.insert_outbox(&events.out, seal).await?;
    if let Some((target, status)) = &merged_into {
        let note = format!("{} merged into it", row.case_no);
        note_event(
            tx,
            target,
            *status,
            "merged_in",
            by,
            unit,
            Some(note.as_str()),
        )
        .await?;
    }
    if update.action == Action::Verify
        && let Some(held) = &row.held_callback
    {
        settle_held_callback(tx, &next, last, held, by, unit, rules, seal, now).await?;
    }
    Ok(Applied::CaseUpdated {
        case_no: row.case_no,
    })
}

/// The case a merge by hand names, locked, with its status: open, not
/// merged itself, not the case merged. The cases merged into the one
/// merged follow it there. `Err` is the refusal.
async fn merge_target(
    tx: &mut Tx,
    row: &CaseRow,
    update: &UpdateCase,
    seal: &Seal,
) -> Result<Result<(CaseRow, Status), Applied>, StoreError> {
    let Some(into) = update.into.as_deref() else {
        return Ok(Err(refuse(format!(
            "case {}: merge names the case it goes into",
            row.case_no
        ))));
    };
    if into == row.case_no {
        return Ok(Err(refuse(format!(
            "case {}: cannot merge a case into itself",
            row.case_no
        ))));
    }
    let Some(target) = load_case(tx, CaseKey::Number(into), seal).await? else {
        return Ok(Err(refuse(format!(
            "case {}: unknown case {into}",
            row.case_no
        ))));
    };
    let status = stored_status(&target)?;
    if !status.is_open() {
        return Ok(Err(refuse(format!(
            "case {}: {into} is {}: merge into an open case",
            row.case_no, target.status
        ))));
    }
    // Intake's duplicate search must not pick this case as a parent while
    // it is merged away: the category's duplicate lock, held whole.
    if let Some(category) = &row.category {
        tx.lock_duplicates_of(category).await?;
    }
    tx.reparent(row.id, target.id).await?;
    Ok(Ok((target, status)))
}

/// Where the rules send a case merged at intake, now split out: its lead
/// unit and rule. `Err` is the refusal.
#[allow(clippy::result_large_err)]
fn split_route(row: &CaseRow, nature: Nature, rules: &Rules) -> Result<(Unit, String), Applied> {
    let placed = Placed::of(
        row.grid_id.is_some(),
        row.community.is_some(),
        row.street.is_some(),
    );
    match rules.routing.route(row.category.as_deref(), nature, placed) {
        Route::Dispatch { rule, lead, .. } => Ok((lead, rule)),
        Route::Answer { rule } => Err(refuse(format!(
            "case {}: rule {rule} answers it at intake: split names the unit it goes to",
            row.case_no
        ))),
    }
}

/// The units a dispatcher chose: the lead (required for a dispatch; for an
/// approved return, the rule's `on_return` when none is named) and the
/// assisting units, each one the routing rules know. `Err` is the refusal.
#[allow(clippy::result_large_err)]
fn chosen_units(
    update: &UpdateCase,
    rules: &Rules,
    case_no: &str,
) -> Result<Option<(Unit, Vec<String>)>, Applied> {
    let known = |id: &str| {
        rules
            .routing
            .unit(id)
            .cloned()
            .ok_or_else(|| refuse(format!("case {case_no}: unknown unit {id}")))
    };
    let Some(lead) = update.unit.as_deref() else {
        if update.action == Action::Dispatch {
            return Err(refuse(format!(
                "case {case_no}: a dispatch names the unit it goes to"
            )));
        }
        return Ok(None);
    };
    let lead = known(lead)?;
    let mut assist = Vec::new();
    for id in &update.assist {
        let unit = known(id)?;
        if unit.id != lead.id && !assist.contains(&unit.id) {
            assist.push(unit.id);
        }
    }
    Ok(Some((lead, assist)))
}

/// An update that moves no status, on the case it is about.
#[derive(Clone, Copy)]
struct Step<'a> {
    row: &'a CaseRow,
    /// The case's status (it stays).
    status: Status,
    update: &'a UpdateCase,
    by: By<'a>,
    rules: &'a Rules,
    seal: &'a Seal,
}

/// A reminder (催办) or supervision (督办) by hand: the case's escalation
/// level rises to it (never falls), the lead unit and the centre hear it,
/// and the timeline names the dispatcher.
async fn press(tx: &mut Tx, step: Step<'_>) -> Result<Applied, StoreError> {
    let (row, status, update, by) = (step.row, step.status, step.update, step.by);
    let (rules, seal) = (step.rules, step.seal);
    let (kind, level) = if update.action == Action::Supervise {
        ("supervision", 2)
    } else {
        ("reminder", 1)
    };
    tx.raise_escalation(row.id, level).await?;
    note_event(tx, row, status, kind, by, "", update.reason.as_deref()).await?;
    let mut next = row.clone();
    next.escalation_level = next.escalation_level.max(level);
    let extra = json!({"escalation": kind, "by_hand": true, "reason": update.reason});
    let hear = Hear {
        status,
        what: kind,
        extra,
        unit: true,
    };
    announce(tx, &next, hear, rules, seal).await
}

/// What an action that moves no status announces: `case.<what>`, at
/// `status`, with `extra`, to the centre and the sources that receive it,
/// and to the lead unit when `unit`.
struct Hear<'a> {
    status: Status,
    what: &'a str,
    extra: serde_json::Value,
    unit: bool,
}

/// Announces an action on `case` (as it is after it) and answers that the
/// case was updated.
async fn announce(
    tx: &mut Tx,
    case: &CaseRow,
    hear: Hear<'_>,
    rules: &Rules,
    seal: &Seal,
) -> Result<Applied, StoreError> {
    let sources = tx.sources(case.id).await?;
    let mut events = Events::new(&rules.centre, &rules.registry);
    let status = hear.status.as_str();
    events.status(case, status, hear.what, &sources, hear.extra.clone());
    if hear.unit
        && let Some(lead) = &case.lead_connector
    {
        events.notify_unit(lead, hear.what, case, hear.extra);
    }
    tx.insert_outbox(&events.out, seal).await?;
    Ok(Applied::CaseUpdated {
        case_no: case.case_no.clone(),
    })
}

/// A lead unit's request waiting for the centre (延期申请, 挂起申请), kept
/// on the case as JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingRequest {
    action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    days: Option<u16>,
    reason: Option<String>,
    unit: String,
    at: DateTime<Utc>,
}

/// The event a request is announced as.
fn requested(action: Action) -> &'static str {
    if action == Action::RequestExtension {
        "extension_requested"
    } else {
        "suspension_requested"
    }
}

/// A lead unit asks for more time or a suspension: the request waits on
/// the case (replacing one made before) and the centre hears it.
async fn request(
    tx: &mut Tx,
    step: Step<'_>,
    unit: &str,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let (row, status, update, by) = (step.row, step.status, step.update, step.by);
    let (rules, seal) = (step.rules, step.seal);
    let pending = PendingRequest {
        action: update.action,
        days: update.days,
        reason: update.reason.clone(),
        unit: unit.to_owned(),
        at: now,
    };
    let text = serde_json::to_string(&pending).map_err(|error| StoreError::Permanent {
        code: format!("pending request: {error}"),
    })?;
    tx.set_case_json(row.id, CaseJson::PendingRequest, Some(&text))
        .await?;
    let what = requested(update.action);
    let note = match update.days {
        Some(days) => format!("{days} days: {}", update.reason.as_deref().unwrap_or("")),
        None => update.reason.clone().unwrap_or_default(),
    };
    note_event(tx, row, status, what, by, unit, Some(note.as_str())).await?;
    let extra = json!({"days": update.days, "reason": update.reason, "requested_by": unit});
    let hear = Hear {
        status,
        what,
        extra,
        unit: false,
    };
    announce(tx, row, hear, rules, seal).await
}

/// The centre extends the deadline (延期: by `days`, else by the days the
/// unit asked for) or declines the request waiting on the case; the lead
/// unit, the centre and the sources that receive it hear which.
async fn settle_request(tx: &mut Tx, step: Step<'_>) -> Result<Applied, StoreError> {
    let (row, status, update, by) = (step.row, step.status, step.update, step.by);
    let (rules, seal) = (step.rules, step.seal);
    let pending: Option<PendingRequest> = match row.pending_request.as_deref() {
        None => None,
        Some(text) => Some(
            serde_json::from_str(text).map_err(|_| StoreError::Permanent {
                code: format!(
                    "corrupt row: case {} has an unreadable pending request",
                    row.case_no
                ),
            })?,
        ),
    };
    let mut next = row.clone();
    let (what, extra) = if update.action == Action::Extend {
        let asked = pending
            .as_ref()
            .filter(|p| p.action == Action::RequestExtension)
            .and_then(|p| p.days);
        let Some(days) = update.days.or(asked) else {
            return Ok(refuse(format!(
                "case {}: extend names its days (no extension was asked for)",
                row.case_no
            )));
        };
        let Some(due_at) = row.due_at else {
            return Ok(refuse(format!(
                "case {}: no deadline to extend",
                row.case_no
            )));
        };
        let extended = rules.routing.extend(due_at, days);
        next.due_at = Some(extended);
        next.escalation_level = 0;
        // A suspension asked for stays asked: extending answers only an extension.
        let settles = pending
            .as_ref()
            .is_none_or(|p| p.action == Action::RequestExtension);
        tx.extend_deadline(row.id, extended, settles).await?;
        let extra = json!({"days": days, "previous_due_at": row.due_at, "reason": update.reason});
        ("extended", extra)
    } else {
        let Some(pending) = pending else {
            return Ok(refuse(format!(
                "case {}: no extension or suspension request waits",
                row.case_no
            )));
        };
        tx.set_case_json(row.id, CaseJson::PendingRequest, None)
            .await?;
        let extra = json!({"request": requested(pending.action), "reason": update.reason});
        ("request_rejected", extra)
    };
    next.pending_request = None;
    // The event carries the deadline as extended.
    note_event(tx, &next, status, what, by, "", update.reason.as_deref()).await?;
    let hear = Hear {
        status,
        what,
        extra,
        unit: true,
    };
    announce(tx, &next, hear, rules, seal).await
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
    status: Status,
    held: &str,
    by: By<'_>,
    unit: &str,
    rules: &Rules,
    seal: &Seal,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.set_case_json(case.id, CaseJson::HeldCallback, None)
        .await?;
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
        note_event(
            tx,
            case,
            status,
            "callback_dropped",
            by,
            unit,
            Some(note.as_str()),
        )
        .await?;
    }
    Ok(())
}

/// What an event that changes no status says: a note, or a callback's
/// result (its note and its verdict).
enum Said<'a> {
    Note(Option<&'a str>),
    Callback(&'a UpdateCase),
}

impl<'a> From<Option<&'a str>> for Said<'a> {
    fn from(note: Option<&'a str>) -> Said<'a> {
        Said::Note(note)
    }
}

/// Records an update that changes no status.
async fn note_event<'a>(
    tx: &mut Tx,
    row: &CaseRow,
    status: Status,
    kind: &str,
    by: By<'_>,
    unit: &str,
    said: impl Into<Said<'a>>,
) -> Result<(), StoreError> {
    let (actor, connector, message_id, on_behalf_of) = match by {
        By::Message {
            connector,
            message_id,
        } => (unit, Some(connector), Some(message_id), None),
        By::Desk { actor } => (actor, None, None, Some(unit)),
        By::Centre { actor } => (actor, None, None, None),
    };
    let (note, facts) = match said.into() {
        Said::Note(note) => (note, Facts::of(row)),
        Said::Callback(update) => (update.note.as_deref(), Facts::of(row).verdict(update)),
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
        facts,
    })
    .await
}
