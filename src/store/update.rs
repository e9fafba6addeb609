//! Lifecycle updates: sign-for, return, progress, respond, verify, callback,
//! close, reopen. One case at a time, locked for the transaction.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::backend::{either, lite_now, lite_uuid};
use super::events::{CaseView, Events, Sources};
use super::inserts::PgInserts;
use super::seal::Seal;
use super::{Applied, Rules, StoreError, Tx, outbox};
use crate::connector::Kind;
use crate::intent::{Action, Media, Place, Priority, Reporter, UpdateCase};
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

#[cfg(feature = "sqlite")]
/// Reads a case row from SQLite, whose columns hold uuids, times and
/// arrays as text.
fn lite_case_row(row: &SqliteRow) -> Result<CaseRow, sqlx::Error> {
    Ok(CaseRow {
        id: row.try_get::<uuid::fmt::Hyphenated, _>("id")?.into_uuid(),
        case_no: row.try_get("case_no")?,
        status: row.try_get("status")?,
        channel: row.try_get("channel")?,
        nature: row.try_get("nature")?,
        category: row.try_get("category")?,
        priority: row.try_get("priority")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        address: row.try_get("address")?,
        street_given: row.try_get("street_given")?,
        community_given: row.try_get("community_given")?,
        lon: row.try_get("lon")?,
        lat: row.try_get("lat")?,
        grid_id: row.try_get("grid_id")?,
        community: row.try_get("community")?,
        street: row.try_get("street")?,
        located_by: row.try_get("located_by")?,
        unplaced: row.try_get("unplaced")?,
        lead_unit: row.try_get("lead_unit")?,
        lead_connector: row.try_get("lead_connector")?,
        dispatch_level: row.try_get("dispatch_level")?,
        assisting_units: row.try_get::<Json<Vec<String>>, _>("assisting_units")?.0,
        routing_rule: row.try_get("routing_rule")?,
        due_at: row.try_get("due_at")?,
        parent_case_no: row.try_get("parent_case_no")?,
        received_at: row.try_get("received_at")?,
        rework_count: row.try_get("rework_count")?,
        return_count: row.try_get("return_count")?,
        escalation_level: row.try_get("escalation_level")?,
        satisfaction: row.try_get("satisfaction")?,
        callback_wanted: row.try_get("callback_wanted")?,
    })
}

/// How a case is named when loaded.
pub(super) enum CaseKey<'a> {
    /// By case number, locked for the transaction.
    Number(&'a str),
    /// By a source's ticket id (connector, source_ref), locked for the transaction.
    Source(&'a str, &'a str),
    /// By id, not locked (the caller already holds the row).
    Id(Uuid),
}

/// Loads a case row with its parent's case number, its description opened
/// (a confidential complainant's is sealed at rest). One that does not open
/// is left out and the failure logged: the case goes on without it.
pub(super) async fn load_case(
    tx: &mut Tx,
    key: CaseKey<'_>,
    seal: &Seal,
) -> Result<Option<CaseRow>, StoreError> {
    let Some(mut row) = load_row(tx, key).await? else {
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

async fn load_row(tx: &mut Tx, key: CaseKey<'_>) -> Result<Option<CaseRow>, StoreError> {
    match tx {
        Tx::Pg(tx) => Ok(match key {
            CaseKey::Number(case_no) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                 WHERE c.case_no = $1 FOR UPDATE OF c"
            )))
            .bind(case_no)
            .fetch_optional(&mut **tx)
            .await?,
            CaseKey::Source(source, source_ref) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                 WHERE c.id = (SELECT case_id FROM case_sources WHERE connector = $1 AND source_ref = $2)
                 FOR UPDATE OF c"
            )))
            .bind(source)
            .bind(source_ref)
            .fetch_optional(&mut **tx)
            .await?,
            CaseKey::Id(id) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id WHERE c.id = $1"
            )))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?,
        }),
        // No row locks on SQLite: the transaction holds the one write lock.
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            let row = match key {
                CaseKey::Number(case_no) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                     WHERE c.case_no = $1"
                )))
                .bind(case_no)
                .fetch_optional(&mut **tx)
                .await?,
                CaseKey::Source(source, source_ref) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                     WHERE c.id = (SELECT case_id FROM case_sources WHERE connector = $1 AND source_ref = $2)"
                )))
                .bind(source)
                .bind(source_ref)
                .fetch_optional(&mut **tx)
                .await?,
                CaseKey::Id(id) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id WHERE c.id = $1"
                )))
                .bind(lite_uuid(id))
                .fetch_optional(&mut **tx)
                .await?,
            };
            Ok(row.as_ref().map(lite_case_row).transpose()?)
        }
    }
}

/// Sources of a case and of the cases merged into it: all their callers
/// hear the case's outcome.
pub(super) async fn sources(tx: &mut Tx, case_id: Uuid) -> Result<Sources, StoreError> {
    Ok(either!(tx tx, |tx, uuid, _time| sqlx::query_as(
        "SELECT s.connector, s.source_ref FROM case_sources s JOIN cases c ON c.id = s.case_id
         WHERE c.id = $1 OR c.parent_case_id = $1 ORDER BY s.received_at",
    )
    .bind(uuid(case_id))
    .fetch_all(&mut **tx)
    .await?))
}

/// The case's own source tickets (not those merged into it).
async fn own_sources(tx: &mut Tx, case_id: Uuid) -> Result<Sources, StoreError> {
    Ok(either!(tx tx, |tx, uuid, _time| sqlx::query_as(
        "SELECT connector, source_ref FROM case_sources WHERE case_id = $1"
    )
    .bind(uuid(case_id))
    .fetch_all(&mut **tx)
    .await?))
}

/// The case's reporter, opened (stored sealed: store/seal.rs).
async fn reporter(tx: &mut Tx, case_id: Uuid, seal: &Seal) -> Result<Option<Reporter>, StoreError> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
        bool,
        bool,
    );
    let stored: Option<Row> = either!(tx tx, |tx, uuid, _time| sqlx::query_as(
        "SELECT name, phone, id_number, anonymous, confidential, callback_consent FROM reporters
         WHERE case_id = $1 LIMIT 1",
    )
    .bind(uuid(case_id))
    .fetch_optional(&mut **tx)
    .await?);
    Ok(stored.map(
        |(name, phone, id_number, anonymous, confidential, callback_consent)| {
            let stored = Reporter {
                name,
                phone,
                id_number,
                anonymous,
                confidential,
                callback_consent,
            };
            seal.open_reporter(case_id, stored)
        },
    ))
}

/// One entry of a case's audit trail.
pub(super) struct CaseEvent<'a> {
    pub case_id: Uuid,
    pub kind: &'a str,
    pub from_status: Option<&'a str>,
    pub to_status: &'a str,
    pub actor: &'a str,
    pub note: Option<String>,
    pub connector: Option<&'a str>,
    pub message_id: Option<&'a str>,
    /// Photos and files of the step.
    pub media: Option<&'a [Media]>,
    /// The unit the district centre's desk recorded the step for.
    pub on_behalf_of: Option<&'a str>,
}

/// Appends case events in one statement (on SQLite, one per row).
pub(super) async fn insert_events(tx: &mut Tx, events: &[CaseEvent<'_>]) -> Result<(), StoreError> {
    match tx {
        Tx::Pg(tx) => {
            let mut inserts = PgInserts::new();
            add_events(&mut inserts, events);
            inserts.execute(tx).await?;
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(_) => {
            for event in events {
                insert_event(tx, event).await?;
            }
        }
    }
    Ok(())
}

/// Case events as one insert of a PostgreSQL statement; none if there are none.
pub(super) fn add_events(inserts: &mut PgInserts, events: &[CaseEvent<'_>]) {
    if events.is_empty() {
        return;
    }
    // The batched path writes the events cases are opened with, which carry
    // neither media nor a unit acted for.
    debug_assert!(
        events
            .iter()
            .all(|e| e.media.is_none() && e.on_behalf_of.is_none())
    );
    let columns = [
        inserts.column(events.iter().map(|e| e.case_id).collect(), "uuid"),
        inserts.column(events.iter().map(|e| e.kind).collect(), "text"),
        inserts.column(events.iter().map(|e| e.from_status).collect(), "text"),
        inserts.column(events.iter().map(|e| e.to_status).collect(), "text"),
        inserts.column(events.iter().map(|e| e.actor).collect(), "text"),
        inserts.column(events.iter().map(|e| e.note.as_deref()).collect(), "text"),
        inserts.column(events.iter().map(|e| e.connector).collect(), "text"),
        inserts.column(events.iter().map(|e| e.message_id).collect(), "text"),
    ];
    inserts.insert(format!(
        "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id)
         SELECT * FROM UNNEST({})",
        columns.join(", ")
    ));
}

/// Appends one case event.
pub(super) async fn insert_event(tx: &mut Tx, event: &CaseEvent<'_>) -> Result<(), StoreError> {
    either!(tx tx, |tx, uuid, _time| {
        sqlx::query(
            "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id,
                                      media, on_behalf_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid(event.case_id))
        .bind(event.kind)
        .bind(event.from_status)
        .bind(event.to_status)
        .bind(event.actor)
        .bind(event.note.as_deref())
        .bind(event.connector)
        .bind(event.message_id)
        .bind(event.media.map(Json))
        .bind(event.on_behalf_of)
        .execute(&mut **tx)
        .await?;
    });
    Ok(())
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
            let own_sources = own_sources(tx, row.id).await?;
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
            record_callback(tx, &row, update, None).await?;
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
                record_callback(tx, &row, update, None).await?;
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
                let priority =
                    Priority::parse(&row.priority).ok_or_else(|| StoreError::Permanent {
                        code: format!(
                            "corrupt row: case {} has priority {:?}",
                            row.case_no,
                            crate::message::printable(&row.priority)
                        ),
                    })?;
                next.due_at = chrono::Duration::from_std(rules.routing.deadline(priority))
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
    write_case(
        tx,
        &next,
        now,
        redispatch_to.is_some().then_some(now + sign_for),
    )
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
        insert_event(
            tx,
            &CaseEvent {
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
            },
        )
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
            Status::Responded if !update.media.is_empty() => json!({"media": update.media}),
            _ => json!({}),
        };
        events.status(&view, step.as_str(), announced(*step), &all_sources, extra);
    }
    if let Some(unit) = &redispatch_to {
        let reporter = reporter(tx, row.id, seal).await?;
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
        let reporter = reporter(tx, row.id, seal).await?;
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
    outbox::insert(tx, &events.out, seal).await?;
    Ok(Applied::CaseUpdated {
        case_no: row.case_no,
    })
}

/// Writes a lifecycle change of `next` (the case as it is now). A
/// re-dispatch (`accept_due_at` set) restarts the dispatch clocks.
async fn write_case(
    tx: &mut Tx,
    next: &CaseRow,
    now: DateTime<Utc>,
    accept_due_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    either!(tx tx, |tx, uuid, time| {
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
        .bind(uuid(next.id))
        .bind(&next.status)
        .bind(time(now))
        .bind(&next.lead_unit)
        .bind(&next.lead_connector)
        .bind(&next.dispatch_level)
        .bind(next.due_at.map(time))
        .bind(next.escalation_level)
        .bind(next.rework_count)
        .bind(next.return_count)
        .bind(&next.satisfaction)
        .bind(accept_due_at.is_some())
        .bind(time(accept_due_at.unwrap_or(now)))
        .execute(&mut **tx)
        .await?;
    });
    Ok(())
}

async fn record_callback(
    tx: &mut Tx,
    row: &CaseRow,
    update: &UpdateCase,
    next: Option<&CaseRow>,
) -> Result<(), StoreError> {
    let satisfaction = next
        .and_then(|n| n.satisfaction.clone())
        .or(update.satisfaction.clone());
    match tx {
        Tx::Pg(tx) => {
            sqlx::query(
                "UPDATE cases SET contacted = COALESCE($2, contacted), solved = COALESCE($3, solved),
                        satisfaction = COALESCE($4, satisfaction), updated_at = now()
                 WHERE id = $1",
            )
            .bind(row.id)
            .bind(update.contacted)
            .bind(update.solved)
            .bind(satisfaction)
            .execute(&mut **tx)
            .await?;
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            sqlx::query(concat!(
                "UPDATE cases SET contacted = COALESCE($2, contacted), solved = COALESCE($3, solved),
                        satisfaction = COALESCE($4, satisfaction), updated_at = ",
                lite_now!(),
                " WHERE id = $1"
            ))
            .bind(lite_uuid(row.id))
            .bind(update.contacted)
            .bind(update.solved)
            .bind(satisfaction)
            .execute(&mut **tx)
            .await?;
        }
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
    insert_event(
        tx,
        &CaseEvent {
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
        },
    )
    .await
}
