//! Deadlines: the overdue scanner. Marks cases whose sign-for or handling
//! deadline passed and emits escalation events: a reminder (催办) at the
//! deadline, supervision (督办) once overdue by `supervision_after`.
//!
//! Safe with several hubs: each case's escalation level only rises, in an
//! UPDATE that locks the row; a case another hub is escalating is skipped,
//! and a level is emitted by the one transaction that raised it.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::events::Events;
use super::update::{CASE_COLUMNS, CaseRow, sources};
use super::{Rules, Store, StoreError, outbox};
use crate::lifecycle::HANDLING;

/// One escalation raised by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub case_no: String,
    /// `sign_for_overdue`, `reminder` or `supervision`.
    pub kind: &'static str,
}

impl Store {
    /// Escalates what is overdue at `now` (the clock is a parameter so that
    /// tests and operators can run a scan as of any time).
    pub async fn escalate(
        &self,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Result<Vec<Escalation>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let handling: Vec<&str> = HANDLING.iter().map(|s| s.as_str()).collect();
        let supervision =
            chrono::Duration::from_std(rules.routing.supervision_after).unwrap_or_default();
        // Handling deadlines: the level each case should have reached.
        let raised: Vec<(Uuid, i16, i16)> = sqlx::query_as(
            "WITH due AS (
                SELECT id, escalation_level AS old,
                       CASE WHEN due_at + $3 <= $1 THEN 2 ELSE 1 END::int2 AS new
                FROM cases
                WHERE status = ANY($2) AND due_at <= $1
                  AND escalation_level < CASE WHEN due_at + $3 <= $1 THEN 2 ELSE 1 END
                ORDER BY due_at LIMIT 1000
                FOR UPDATE SKIP LOCKED)
             UPDATE cases c SET overdue = true, escalation_level = due.new, updated_at = now()
             FROM due WHERE c.id = due.id
             RETURNING c.id, due.old, due.new",
        )
        .bind(now)
        .bind(&handling)
        .bind(supervision)
        .fetch_all(&mut *tx)
        .await?;
        // Sign-for deadlines.
        let unsigned: Vec<(Uuid,)> = sqlx::query_as(
            "WITH due AS (
                SELECT id FROM cases WHERE status = 'dispatched' AND accept_due_at <= $1 AND NOT accept_overdue
                ORDER BY accept_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
             UPDATE cases c SET accept_overdue = true, updated_at = now() FROM due WHERE c.id = due.id
             RETURNING c.id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;

        let mut escalations = Vec::new();
        let mut events = Events::new(&rules.centre, &rules.registry);
        let mut records: Vec<(Uuid, &'static str)> = Vec::new();
        for (id, old, new) in &raised {
            for level in (*old + 1)..=*new {
                let kind = if level == 1 {
                    "reminder"
                } else {
                    "supervision"
                };
                records.push((*id, kind));
            }
        }
        records.extend(unsigned.iter().map(|(id,)| (*id, "sign_for_overdue")));
        for (id, kind) in records {
            let row: CaseRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id WHERE c.id = $1"
            )))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note)
                 VALUES ($1, $2, $3, $3, 'gridhub', $4)",
            )
            .bind(id)
            .bind(kind)
            .bind(&row.status)
            .bind(row.due_at.map(|d| format!("deadline {}", d.to_rfc3339())))
            .execute(&mut *tx)
            .await?;
            let view = row.view();
            let sources = sources(&mut tx, id).await?;
            events.status(&view, kind, &sources, json!({"escalation": kind}));
            if let Some(lead) = &row.lead_connector
                && lead != &rules.centre
            {
                events.send_to_unit(lead, kind, &view, None, json!({"escalation": kind}));
            }
            escalations.push(Escalation {
                case_no: row.case_no.clone(),
                kind,
            });
        }
        outbox::insert(&mut tx, &events.out).await?;
        tx.commit().await?;
        Ok(escalations)
    }
}
