//! The callback worklist (回访): what each hotline still owes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::backend::either;
use super::{Store, StoreError};

/// One callback a source still owes: a case waiting at `callback` and one
/// of its tickets (its own, or one of a case merged into it).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CallbackOwed {
    pub case_no: String,
    /// The connector whose ticket it is.
    pub connector: String,
    pub ticket_id: String,
    pub title: String,
    pub category: Option<String>,
    pub lead_unit: Option<String>,
    /// When the callback was asked for by.
    pub callback_due_at: Option<DateTime<Utc>>,
    /// The deadline passed (the overdue scanner said so).
    pub overdue: bool,
}

impl Store {
    /// Callbacks owed, the most pressing first, at most `limit`: by one
    /// connector, or by every one.
    pub async fn callbacks_owed(
        &self,
        connector: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CallbackOwed>, StoreError> {
        Ok(either!(pool & self.pool, |pool| {
            sqlx::query_as(
            "SELECT c.case_no, s.connector, s.source_ref AS ticket_id, c.title, c.category, c.lead_unit,
                    c.callback_due_at, c.callback_overdue AS overdue
             FROM cases c
             JOIN case_sources s
               ON s.case_id = c.id OR s.case_id IN (SELECT m.id FROM cases m WHERE m.parent_case_id = c.id)
             WHERE c.status = 'callback' AND (CAST($1 AS TEXT) IS NULL OR s.connector = $1)
             ORDER BY c.callback_due_at, c.case_no, s.connector, s.source_ref
             LIMIT $2",
        )
        .bind(connector)
        .bind(limit)
        .fetch_all(pool)
        .await?
        }))
    }
}
