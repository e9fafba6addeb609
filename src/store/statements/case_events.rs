//! The `case_events` table: each case's timeline.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::CaseRow;
use super::inserts::PgInserts;
use crate::intent::{Action, Media, UpdateCase};
use crate::lifecycle::Status;
use crate::store::backend::either;
use crate::store::{StoreError, Tx};

/// One entry of a case's audit trail.
pub(in crate::store) struct CaseEvent<'a> {
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
    /// What the assessment reads (docs/ASSESSMENT.md): the case's lead unit
    /// and handling deadline once the event is recorded, and a callback's
    /// verdict.
    pub facts: Facts<'a>,
}

/// The assessment's facts of one case event.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::store) struct Facts<'a> {
    pub unit: Option<&'a str>,
    pub due_at: Option<DateTime<Utc>>,
    pub solved: Option<bool>,
    pub satisfaction: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The unit and deadline of a case as it stands.
    pub fn of(case: &'a CaseRow) -> Facts<'a> {
        Facts {
            unit: case.lead_unit.as_deref(),
            due_at: case.due_at,
            ..Facts::default()
        }
    }

    /// With a callback's verdict, when the update is one.
    pub fn verdict(self, update: &'a UpdateCase) -> Facts<'a> {
        if update.action != Action::Callback {
            return self;
        }
        Facts {
            solved: update.solved,
            satisfaction: update.satisfaction.as_deref(),
            ..self
        }
    }
}

/// A unit's response as a callback request quotes it.
#[derive(Debug, Clone, serde::Serialize)]
pub(in crate::store) struct Response {
    pub unit: String,
    pub note: Option<String>,
    pub media: Vec<Media>,
}

impl Tx {
    /// Appends case events in one statement (on SQLite, one per row).
    pub(in crate::store) async fn insert_events(
        &mut self,
        events: &[CaseEvent<'_>],
    ) -> Result<(), StoreError> {
        match self {
            Tx::Pg(tx) => {
                let mut inserts = PgInserts::new();
                add(&mut inserts, events);
                inserts.execute(tx).await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(_) => {
                for event in events {
                    self.insert_event(event).await?;
                }
            }
        }
        Ok(())
    }

    /// Appends one case event.
    pub(in crate::store) async fn insert_event(
        &mut self,
        event: &CaseEvent<'_>,
    ) -> Result<(), StoreError> {
        either!(tx self, |tx, uuid, time| {
            sqlx::query(
                "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id,
                                          media, on_behalf_of, unit, due_at, solved, satisfaction)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
            .bind(event.facts.unit)
            .bind(event.facts.due_at.map(time))
            .bind(event.facts.solved)
            .bind(event.facts.satisfaction)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// The lead unit's latest response (办结反馈): who gave it (the unit, or
    /// the desk for it), what was done and its photos.
    pub(in crate::store) async fn last_response(
        &mut self,
        case_id: Uuid,
    ) -> Result<Option<Response>, StoreError> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<Json<Vec<Media>>>,
        );
        let row: Option<Row> = either!(tx self, |tx, uuid, _time| sqlx::query_as(
            "SELECT actor, on_behalf_of, note, media FROM case_events
             WHERE case_id = $1 AND kind = 'respond' ORDER BY id DESC LIMIT 1",
        )
        .bind(uuid(case_id))
        .fetch_optional(&mut **tx)
        .await?);
        Ok(row.map(|(actor, on_behalf_of, note, media)| Response {
            unit: on_behalf_of.unwrap_or(actor),
            note,
            media: media.map(|m| m.0).unwrap_or_default(),
        }))
    }

    /// The status the case was in before its latest event of `kind` (a
    /// `return`, a `suspend`): where a rejected return or a resumption
    /// brings it back.
    pub(in crate::store) async fn status_before(
        &mut self,
        case_id: Uuid,
        kind: &str,
    ) -> Result<Option<Status>, StoreError> {
        let from: Option<Option<String>> = either!(tx self, |tx, uuid, _time| sqlx::query_scalar(
            "SELECT from_status FROM case_events WHERE case_id = $1 AND kind = $2
             ORDER BY id DESC LIMIT 1",
        )
        .bind(uuid(case_id))
        .bind(kind)
        .fetch_optional(&mut **tx)
        .await?);
        Ok(from.flatten().as_deref().and_then(Status::parse))
    }
}

/// Case events as one insert of a PostgreSQL statement; none if there are none.
pub(in crate::store) fn add(inserts: &mut PgInserts, events: &[CaseEvent<'_>]) {
    if events.is_empty() {
        return;
    }
    // The batched path writes the events cases are opened with, which carry
    // neither media, nor a unit acted for, nor a callback's verdict.
    debug_assert!(events.iter().all(|e| e.media.is_none()
        && e.on_behalf_of.is_none()
        && e.facts.solved.is_none()
        && e.facts.satisfaction.is_none()));
    let columns = [
        inserts.column(events.iter().map(|e| e.case_id).collect(), "uuid"),
        inserts.column(events.iter().map(|e| e.kind).collect(), "text"),
        inserts.column(events.iter().map(|e| e.from_status).collect(), "text"),
        inserts.column(events.iter().map(|e| e.to_status).collect(), "text"),
        inserts.column(events.iter().map(|e| e.actor).collect(), "text"),
        inserts.column(events.iter().map(|e| e.note.as_deref()).collect(), "text"),
        inserts.column(events.iter().map(|e| e.connector).collect(), "text"),
        inserts.column(events.iter().map(|e| e.message_id).collect(), "text"),
        inserts.column(events.iter().map(|e| e.facts.unit).collect(), "text"),
        inserts.column(
            events.iter().map(|e| e.facts.due_at).collect(),
            "timestamptz",
        ),
    ];
    inserts.insert(format!(
        "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id,
                                  unit, due_at)
         SELECT * FROM UNNEST({})",
        columns.join(", ")
    ));
}
