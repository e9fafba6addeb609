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

use super::backend::{lite_now, lite_time};
use super::events::Events;
use super::update::{CaseEvent, CaseKey, insert_event, load_case, sources};
use super::{Rules, Store, StoreError, Tx, outbox};
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
        let supervision =
            chrono::Duration::from_std(rules.routing.supervision_after).unwrap_or_default();
        let raised = raise_overdue(&mut tx, now, supervision).await?;
        let unsigned = flag_unsigned(&mut tx, now).await?;

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
        records.extend(unsigned.iter().map(|id| (*id, "sign_for_overdue")));
        for (id, kind) in records {
            let Some(row) = load_case(&mut tx, CaseKey::Id(id), &self.seal).await? else {
                continue;
            };
            insert_event(
                &mut tx,
                &CaseEvent {
                    case_id: id,
                    kind,
                    from_status: Some(&row.status),
                    to_status: &row.status,
                    actor: "gridhub",
                    note: row.due_at.map(|d| format!("deadline {}", d.to_rfc3339())),
                    connector: None,
                    message_id: None,
                    media: None,
                    on_behalf_of: None,
                },
            )
            .await?;
            let view = row.view();
            let sources = sources(&mut tx, id).await?;
            let escalation = json!({"escalation": kind});
            events.status(&view, &view.status, kind, &sources, escalation);
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
        outbox::insert(&mut tx, &events.out, &self.seal).await?;
        tx.commit().await?;
        Ok(escalations)
    }
}

/// Raises the escalation level of cases past their handling deadline (1 at
/// the deadline, 2 once overdue by `supervision`), at most 1000 a scan;
/// returns (case id, old level, new level). On PostgreSQL cases another
/// scanner holds are skipped.
async fn raise_overdue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    supervision: chrono::Duration,
) -> Result<Vec<(Uuid, i16, i16)>, StoreError> {
    let handling: Vec<&str> = HANDLING.iter().map(|s| s.as_str()).collect();
    match tx {
        Tx::Pg(tx) => Ok(sqlx::query_as(
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
        .fetch_all(&mut **tx)
        .await?),
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            // Times are fixed-width text: comparing them compares the times.
            let due: Vec<(uuid::fmt::Hyphenated, i16, i16)> = sqlx::query_as(
                "SELECT id, escalation_level, CASE WHEN due_at <= $3 THEN 2 ELSE 1 END FROM cases
                 WHERE status IN (SELECT value FROM json_each($2)) AND due_at <= $1
                   AND escalation_level < CASE WHEN due_at <= $3 THEN 2 ELSE 1 END
                 ORDER BY due_at LIMIT 1000",
            )
            .bind(lite_time(now))
            .bind(serde_json::to_string(&handling).unwrap_or_default())
            .bind(lite_time(now - supervision))
            .fetch_all(&mut **tx)
            .await?;
            let mut raised = Vec::with_capacity(due.len());
            for (id, old, new) in due {
                sqlx::query(concat!(
                    "UPDATE cases SET overdue = 1, escalation_level = $2, updated_at = ",
                    lite_now!(),
                    " WHERE id = $1"
                ))
                .bind(id)
                .bind(new)
                .execute(&mut **tx)
                .await?;
                raised.push((id.into_uuid(), old, new));
            }
            Ok(raised)
        }
    }
}

/// Flags dispatched cases past their sign-for deadline, at most 1000 a
/// scan; returns their ids.
async fn flag_unsigned(tx: &mut Tx, now: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
    match tx {
        Tx::Pg(tx) => {
            let rows: Vec<(Uuid,)> = sqlx::query_as(
                "WITH due AS (
                    SELECT id FROM cases WHERE status = 'dispatched' AND accept_due_at <= $1 AND NOT accept_overdue
                    ORDER BY accept_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
                 UPDATE cases c SET accept_overdue = true, updated_at = now() FROM due WHERE c.id = due.id
                 RETURNING c.id",
            )
            .bind(now)
            .fetch_all(&mut **tx)
            .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            let rows: Vec<(uuid::fmt::Hyphenated,)> = sqlx::query_as(concat!(
                "UPDATE cases SET accept_overdue = 1, updated_at = ",
                lite_now!(),
                " WHERE id IN (SELECT id FROM cases
                     WHERE status = 'dispatched' AND accept_due_at <= $1 AND NOT accept_overdue
                     ORDER BY accept_due_at LIMIT 1000)
                 RETURNING id"
            ))
            .bind(lite_time(now))
            .fetch_all(&mut **tx)
            .await?;
            Ok(rows.into_iter().map(|(id,)| id.into_uuid()).collect())
        }
    }
}
