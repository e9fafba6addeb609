//! What the assessment (`gridhub_core::assessment`) reads: the cases
//! the hub received in a period, with their events recorded before a
//! cut-off.
//! Nothing is computed here; the same statements serve both backends.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

#[cfg(feature = "sqlite")]
use super::backend::lite_time;
use super::{Pool, Store, StoreError};
use crate::assessment::{Case, Event};
use crate::intent::Priority;

/// A case row as the assessment reads it.
#[derive(sqlx::FromRow)]
struct CaseRow {
    case_no: String,
    recorded_at: DateTime<Utc>,
    priority: String,
    category: Option<String>,
    street: Option<String>,
    community: Option<String>,
    grid_id: Option<String>,
    lead_unit: Option<String>,
    due_at: Option<DateTime<Utc>>,
}

/// A case's event, with its case, as the assessment reads it.
#[derive(sqlx::FromRow)]
struct EventRow {
    #[sqlx(flatten)]
    case: CaseRow,
    at: DateTime<Utc>,
    kind: String,
    to_status: String,
    unit: Option<String>,
    event_due_at: Option<DateTime<Utc>>,
    solved: Option<bool>,
    satisfaction: Option<String>,
}

const CASES: &str =
    "SELECT case_no, created_at AS recorded_at, priority, category, street, community,
            grid_id, lead_unit, due_at
     FROM cases WHERE created_at >= $1 AND created_at < $2 ORDER BY case_no";

/// The cases recorded in a span with every event a figure may read; the
/// others (progress, notes, warnings) are left in the database. One row an
/// event, a case's rows together, in the order recorded.
const EVENTS: &str =
    "SELECT c.case_no, c.created_at AS recorded_at, c.priority, c.category, c.street, c.community,
            c.grid_id, c.lead_unit, c.due_at,
            e.at, e.kind, e.to_status, e.unit, e.due_at AS event_due_at, e.solved, e.satisfaction
     FROM cases c JOIN case_events e ON e.case_id = c.id
     WHERE c.created_at >= $1 AND c.created_at < $2 AND e.at < $3
       AND (e.to_status IN ('dispatched', 'accepted', 'closed', 'merged', 'rejected', 'answered',
                            'return_pending', 'rework', 'suspended')
            OR e.kind IN ('opened', 'sign_for_overdue', 'contact', 'accept', 'progress', 'respond',
                          'callback', 'return', 'verify', 'reminder', 'remind', 'supervision',
                          'supervise')
            OR e.from_status <> e.to_status)
     ORDER BY c.case_no, e.id";

impl Store {
    /// Each case the hub recorded in `[from, to)` with the events it had
    /// before `cut`, in the order they were recorded, handed to `each` one
    /// case at a time: read as a stream, so that a district's months of
    /// events are never held at once.
    pub async fn assessment_history(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cut: DateTime<Utc>,
        mut each: impl FnMut(Case, Vec<Event>),
    ) -> Result<(), StoreError> {
        let mut current: Option<(String, Case, Vec<Event>)> = None;
        let mut take = |row: EventRow| {
            let event = Event {
                at: row.at,
                kind: row.kind,
                to_status: row.to_status,
                unit: row.unit,
                due_at: row.event_due_at,
                solved: row.solved,
                satisfaction: row.satisfaction,
            };
            match &mut current {
                Some((case_no, _, events)) if *case_no == row.case.case_no => events.push(event),
                _ => {
                    if let Some((_, case, events)) = current.take() {
                        each(case, events);
                    }
                    let case_no = row.case.case_no.clone();
                    current = Some((case_no, case(row.case), vec![event]));
                }
            }
        };
        match &self.pool {
            Pool::Pg(pool) => {
                let mut rows = sqlx::query_as::<_, EventRow>(EVENTS)
                    .bind(from)
                    .bind(to)
                    .bind(cut)
                    .fetch(pool);
                while let Some(row) = rows.try_next().await? {
                    take(row);
                }
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let mut rows = sqlx::query_as::<_, EventRow>(EVENTS)
                    .bind(lite_time(from))
                    .bind(lite_time(to))
                    .bind(lite_time(cut))
                    .fetch(pool);
                while let Some(row) = rows.try_next().await? {
                    take(row);
                }
            }
        }
        if let Some((_, case, events)) = current {
            each(case, events);
        }
        Ok(())
    }

    /// The cases the hub recorded in `[from, to)`, without their events (for hot spots).
    pub async fn received_cases(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Case>, StoreError> {
        let rows: Vec<CaseRow> = match &self.pool {
            Pool::Pg(pool) => {
                sqlx::query_as(CASES)
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await?
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                sqlx::query_as(CASES)
                    .bind(lite_time(from))
                    .bind(lite_time(to))
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(case).collect())
    }
}

fn case(row: CaseRow) -> Case {
    Case {
        recorded_at: row.recorded_at,
        priority: Priority::parse(&row.priority),
        category: row.category,
        street: row.street,
        community: row.community,
        grid: row.grid_id,
        lead_unit: row.lead_unit,
        due_at: row.due_at,
    }
}
