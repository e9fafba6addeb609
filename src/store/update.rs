//! Lifecycle updates: sign-for, return, progress, respond, verify, callback,
//! close, reopen. One case at a time, locked for the transaction.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::events::{CaseView, Events, Sources};
use super::{Applied, Rules, StoreError, outbox};
use crate::connector::Kind;
use crate::intent::{Action, Place, Reporter, UpdateCase};
use crate::lifecycle::{self, CaseState, Effect, Outcome, Sender, Status};
use crate::pipeline::{Refusal, Stage};
use crate::routing::{Level, Unit};

/// The case row as updates need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct CaseRow {
    pub id: Uuid,
    pub case_no: String,
    pub status: String,
    pub channel: String,
    pub nature: String,
    pub category: Option<String>,
    pub priority: String,
    pub title: String,
    pub description: String,
    pub address: Option<String>,
    pub street_given: Option<String>,
    pub community_given: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub grid_id: Option<String>,
    pub community: Option<String>,
    pub street: Option<String>,
    pub located_by: Option<String>,
    pub unplaced: bool,
    pub lead_unit: Option<String>,
    pub lead_connector: Option<String>,
    pub dispatch_level: Option<String>,
    pub assisting_units: Vec<String>,
    pub routing_rule: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub parent_case_no: Option<String>,
    pub received_at: DateTime<Utc>,
    pub rework_count: i32,
    pub return_count: i32,
    pub escalation_level: i16,
    pub satisfaction: Option<String>,
    pub callback_wanted: bool,
}

pub(super) const CASE_COLUMNS: &str = "c.id, c.case_no, c.status, c.channel, c.nature, c.category, c.priority, c.title,
    c.description, c.address, c.street_given, c.community_given, c.lon, c.lat, c.grid_id, c.community, c.street,
    c.located_by, c.unplaced, c.lead_unit, c.lead_connector, c.dispatch_level, c.assisting_units, c.routing_rule,
    c.due_at, p.case_no AS parent_case_no, c.received_at, c.rework_count, c.return_count, c.escalation_level,
    c.satisfaction, c.callback_wanted";

impl CaseRow {
    pub fn view(&self) -> CaseView {
        CaseView {
            id: self.id,
            case_no: self.case_no.clone(),
            status: self.status.clone(),
            channel: self.channel.clone(),
            nature: self.nature.clone(),
            category: self.category.clone(),
            priority: self.priority.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            place: Place {
                address: self.address.clone(),
                street: self.street_given.clone(),
                community: self.community_given.clone(),
                lon: self.lon,
                lat: self.lat,
                grid_id: None,
            },
            grid_id: self.grid_id.clone(),
            community: self.community.clone(),
            street: self.street.clone(),
            located_by: self.located_by.clone(),
            unplaced: self.unplaced,
            lead_unit: self.lead_unit.clone(),
            lead_connector: self.lead_connector.clone(),
            dispatch_level: self.dispatch_level.clone(),
            assisting_units: self.assisting_units.clone(),
            routing_rule: self.routing_rule.clone(),
            due_at: self.due_at,
            parent_case_no: self.parent_case_no.clone(),
            received_at: self.received_at,
            rework_count: self.rework_count,
            escalation_level: self.escalation_level,
            satisfaction: self.satisfaction.clone(),
        }
    }
}

/// Sources of a case and of the cases merged into it: all their callers
/// hear the case's outcome.
pub(super) async fn sources(
    tx: &mut Transaction<'_, Postgres>,
    case_id: Uuid,
) -> Result<Sources, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.connector, s.source_ref FROM case_sources s JOIN cases c ON c.id = s.case_id
         WHERE c.id = $1 OR c.parent_case_id = $1 ORDER BY s.received_at",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?)
}

async fn reporter(
    tx: &mut Transaction<'_, Postgres>,
    case_id: Uuid,
) -> Result<Option<Reporter>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT name, phone, id_number, anonymous, confidential, callback_consent FROM reporters WHERE case_id = $1 LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?)
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

/// Applies one update to the case it names.
pub(super) async fn update_case(
    tx: &mut Transaction<'_, Postgres>,
    connector: &str,
    message_id: &str,
    update: &UpdateCase,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let (row, named): (Option<CaseRow>, String) = match (
        &update.case.case_no,
        &update.case.source_ref,
    ) {
        (Some(case_no), _) => (
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                 WHERE c.case_no = $1 FOR UPDATE OF c"
            )))
            .bind(case_no)
            .fetch_optional(&mut **tx)
            .await?,
            format!("case {case_no}"),
        ),
        (None, Some(source_ref)) => {
            let source = update.case.connector.as_deref().unwrap_or(connector);
            (
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                     WHERE c.id = (SELECT case_id FROM case_sources WHERE connector = $1 AND source_ref = $2)
                     FOR UPDATE OF c"
                )))
                .bind(source)
                .bind(source_ref)
                .fetch_optional(&mut **tx)
                .await?,
                format!("ticket {source_ref} of {source}"),
            )
        }
        (None, None) => return Ok(refuse("update names no case".to_owned())),
    };
    let Some(row) = row else {
        return Ok(refuse(format!("unknown case: no {named}")));
    };
    let current = Status::parse(&row.status).unwrap_or(Status::Registered);
    let own_sources: Vec<(String, String)> =
        sqlx::query_as("SELECT connector, source_ref FROM case_sources WHERE case_id = $1")
            .bind(row.id)
            .fetch_all(&mut **tx)
            .await?;
    let sender = Sender {
        lead_unit: row.lead_connector.as_deref() == Some(connector),
        grid_platform: rules
            .registry
            .get(connector)
            .is_some_and(|c| c.config.kind == Kind::Grid),
        source: own_sources.iter().any(|(c, _)| c == connector),
    };
    let unit = update.unit.as_deref().unwrap_or(connector);

    if current == Status::Merged {
        if update.action == Action::Callback && sender.source {
            record_callback(tx, &row, update, None).await?;
            note_event(
                tx,
                &row,
                current,
                "callback",
                unit,
                connector,
                message_id,
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
    let outcome = match lifecycle::apply(
        &state,
        update.action,
        sender,
        update.passed,
        update.solved,
        update.contacted,
    ) {
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
                unit,
                connector,
                message_id,
                update.note.as_deref(),
            )
            .await?;
            return Ok(Applied::CaseUpdated {
                case_no: row.case_no,
            });
        }
        Outcome::Noted => {
            if update.action == Action::Callback {
                record_callback(tx, &row, update, None).await?;
            }
            note_event(
                tx,
                &row,
                current,
                update.action.as_str(),
                unit,
                connector,
                message_id,
                update.note.as_deref(),
            )
            .await?;
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
                next.due_at = chrono::Duration::from_std(rules.routing.deadline(&row.priority))
                    .ok()
                    .map(|d| now + d);
                next.escalation_level = 0;
                redispatch_to = Some(unit);
            }
            Effect::RequestVerification | Effect::RequestCallback | Effect::Rework => {}
        }
    }
    if update.action == Action::Callback {
        next.satisfaction = update.satisfaction.clone().or(next.satisfaction);
    }
    let sign_for = chrono::Duration::from_std(rules.routing.sign_for).unwrap_or_default();
    sqlx::query(
        "UPDATE cases SET status = $2, status_changed_at = $3, updated_at = $3, version = version + 1,
                lead_unit = $4, lead_connector = $5, dispatch_level = $6, due_at = $7,
                escalation_level = $8, rework_count = $9, return_count = $10, satisfaction = $11,
                dispatched_at = CASE WHEN $12 THEN $3 ELSE dispatched_at END,
                accept_due_at = CASE WHEN $12 THEN $13 ELSE accept_due_at END,
                overdue = CASE WHEN $12 THEN false ELSE overdue END,
                accept_overdue = CASE WHEN $12 THEN false ELSE accept_overdue END,
                closed_at = CASE WHEN $2 = 'closed' THEN $3 ELSE NULL END
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(&next.status)
    .bind(now)
    .bind(&next.lead_unit)
    .bind(&next.lead_connector)
    .bind(&next.dispatch_level)
    .bind(next.due_at)
    .bind(next.escalation_level)
    .bind(next.rework_count)
    .bind(next.return_count)
    .bind(&next.satisfaction)
    .bind(redispatch_to.is_some())
    .bind(now + sign_for)
    .execute(&mut **tx)
    .await?;
    if update.action == Action::Callback {
        record_callback(tx, &row, update, Some(&next)).await?;
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
        sqlx::query(
            "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(row.id)
        .bind(kind)
        .bind(from.as_str())
        .bind(step.as_str())
        .bind(if n == 0 { unit } else { "gridhub" })
        .bind(note)
        .bind(connector)
        .bind(message_id)
        .execute(&mut **tx)
        .await?;
        from = *step;
    }

    // Who hears about it.
    let all_sources = sources(tx, row.id).await?;
    let mut events = Events::new(&rules.centre, &rules.registry);
    let view = next.view();
    for step in &steps {
        let extra = match step {
            Status::Returned => json!({"reason": update.reason, "returned_by": unit}),
            Status::Closed => json!({"satisfaction": next.satisfaction}),
            _ => json!({}),
        };
        let mut at_step = view.clone();
        at_step.status = step.as_str().to_owned();
        events.status(&at_step, announced(*step), &all_sources, extra);
    }
    if let Some(unit) = &redispatch_to {
        let reporter = reporter(tx, row.id).await?;
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
        let reporter = reporter(tx, row.id).await?;
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
    outbox::insert(tx, &events.out).await?;
    Ok(Applied::CaseUpdated {
        case_no: row.case_no,
    })
}

async fn record_callback(
    tx: &mut Transaction<'_, Postgres>,
    row: &CaseRow,
    update: &UpdateCase,
    next: Option<&CaseRow>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cases SET contacted = COALESCE($2, contacted), solved = COALESCE($3, solved),
                satisfaction = COALESCE($4, satisfaction), updated_at = now()
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(update.contacted)
    .bind(update.solved)
    .bind(
        next.and_then(|n| n.satisfaction.clone())
            .or(update.satisfaction.clone()),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn note_event(
    tx: &mut Transaction<'_, Postgres>,
    row: &CaseRow,
    status: Status,
    kind: &str,
    unit: &str,
    connector: &str,
    message_id: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id)
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(kind)
    .bind(status.as_str())
    .bind(unit)
    .bind(note)
    .bind(connector)
    .bind(message_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
