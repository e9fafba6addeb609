//! What the assessment (`gridhub_core::assessment`) reads: the cases
//! received in a period, with their events recorded before a cut-off.
//! Nothing is computed here; the same statements serve both backends.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

#[cfg(feature = "sqlite")]
use super::backend::lite_time;
use super::{Pool, Store, StoreError};
use crate::assessment::{Case, Event};
use crate::intent::Priority;

/// A case row as the assessment reads it.
#[derive(sqlx::FromRow)]
struct CaseRow {
    case_no: String,
    received_at: DateTime<Utc>,
    priority: String,
    category: Option<String>,
    street: Option<String>,
    community: Option<String>,
    grid_id: Option<String>,
    lead_unit: Option<String>,
    due_at: Option<DateTime<Utc>>,
}

/// An event row as the assessment reads it.
#[derive(sqlx::FromRow)]
struct EventRow {
    case_no: String,
    at: DateTime<Utc>,
    kind: String,
    to_status: String,
    unit: Option<String>,
    due_at: Option<DateTime<Utc>>,
    solved: Option<bool>,
    satisfaction: Option<String>,
}

const CASES: &str =
    "SELECT case_no, received_at, priority, category, street, community, grid_id, lead_unit, due_at
     FROM cases WHERE received_at >= $1 AND received_at < $2 ORDER BY case_no";

/// Every event a figure may read; the others (opened, progress, notes,
/// warnings) are left in the database.
const EVENTS: &str = "SELECT c.case_no, e.at, e.kind, e.to_status, e.unit, e.due_at, e.solved, e.satisfaction
     FROM case_events e JOIN cases c ON c.id = e.case_id
     WHERE c.received_at >= $1 AND c.received_at < $2 AND e.at < $3
       AND (e.to_status IN ('dispatched', 'accepted', 'closed', 'merged', 'rejected', 'answered',
                            'return_pending', 'rework', 'suspended')
            OR e.kind IN ('sign_for_overdue', 'contact', 'accept', 'progress', 'respond', 'callback',
                          'return', 'verify', 'reminder', 'remind', 'supervision', 'supervise')
            OR e.from_status <> e.to_status)
     ORDER BY c.case_no, e.id";

impl Store {
    /// The cases received in `[from, to)` with the events each had before
    /// `cut`, in the order they were recorded.
    pub async fn assessment_history(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cut: DateTime<Utc>,
    ) -> Result<Vec<(Case, Vec<Event>)>, StoreError> {
        let (cases, events): (Vec<CaseRow>, Vec<EventRow>) = match &self.pool {
            Pool::Pg(pool) => (
                sqlx::query_as(CASES)
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await?,
                sqlx::query_as(EVENTS)
                    .bind(from)
                    .bind(to)
                    .bind(cut)
                    .fetch_all(pool)
                    .await?,
            ),
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => (
                sqlx::query_as(CASES)
                    .bind(lite_time(from))
                    .bind(lite_time(to))
                    .fetch_all(pool)
                    .await?,
                sqlx::query_as(EVENTS)
                    .bind(lite_time(from))
                    .bind(lite_time(to))
                    .bind(lite_time(cut))
                    .fetch_all(pool)
                    .await?,
            ),
        };
        let mut by_case: HashMap<String, Vec<Event>> = HashMap::with_capacity(cases.len());
        for row in events {
            by_case.entry(row.case_no).or_default().push(Event {
                at: row.at,
                kind: row.kind,
                to_status: row.to_status,
                unit: row.unit,
                due_at: row.due_at,
                solved: row.solved,
                satisfaction: row.satisfaction,
            });
        }
        Ok(cases
            .into_iter()
            .map(|row| {
                let events = by_case.remove(&row.case_no).unwrap_or_default();
                (case(row), events)
            })
            .collect())
    }

    /// The cases received in `[from, to)`, without their events (for hot spots).
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
        received_at: row.received_at,
        priority: Priority::parse(&row.priority),
        category: row.category,
        street: row.street,
        community: row.community,
        grid: row.grid_id,
        lead_unit: row.lead_unit,
        due_at: row.due_at,
    }
}
