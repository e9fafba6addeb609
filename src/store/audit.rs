//! The audit trail (table `dlq_audit`): every dead-letter operation and
//! every read of a payload or of personal data, with who, what, when and
//! from where.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::backend::either;
use super::{Pool, Store, StoreError};

/// Most message ids kept in one audit row.
const MAX_IDS: usize = 1000;

/// One operation, as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub filter: Value,
    pub affected: i32,
    pub failed: i32,
    pub message_ids: Vec<String>,
    pub note: Option<String>,
    /// Where it came from: an address, or the CLI's host.
    pub origin: Option<String>,
}

/// Who does something, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `token:<name>` for the API and console, `cli:<user>` for the CLI.
    pub name: String,
    /// The caller's address (and what a proxy forwarded for), or the host
    /// the CLI ran on.
    pub origin: Option<String>,
}

impl From<&str> for Actor {
    fn from(name: &str) -> Actor {
        Actor {
            name: name.to_owned(),
            origin: None,
        }
    }
}

/// What to record.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub filter: Value,
    pub affected: usize,
    pub failed: usize,
    pub message_ids: Vec<String>,
    pub note: Option<String>,
}

impl Store {
    pub async fn audit(&self, record: &AuditRecord<'_>) -> Result<(), StoreError> {
        let ids: Vec<&str> = record
            .message_ids
            .iter()
            .take(MAX_IDS)
            .map(|id| id.as_str())
            .collect();
        let actor = record.actor.name.replace('\0', "");
        let origin = record.actor.origin.as_deref().map(|o| o.replace('\0', ""));
        let affected = i32::try_from(record.affected).unwrap_or(i32::MAX);
        let failed = i32::try_from(record.failed).unwrap_or(i32::MAX);
        match &self.pool {
            Pool::Pg(pool) => {
                sqlx::query(
                    "INSERT INTO dlq_audit (actor, action, filter, affected, failed, message_ids, note, origin)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(actor)
                .bind(record.action)
                .bind(&record.filter)
                .bind(affected)
                .bind(failed)
                .bind(ids)
                .bind(record.note.as_deref())
                .bind(origin.as_deref())
                .execute(pool)
                .await?;
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                sqlx::query(
                    "INSERT INTO dlq_audit (actor, action, filter, affected, failed, message_ids, note, origin)
                     VALUES ($1, $2, json($3), $4, $5, json($6), $7, $8)",
                )
                .bind(actor)
                .bind(record.action)
                .bind(record.filter.to_string())
                .bind(affected)
                .bind(failed)
                .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
                .bind(record.note.as_deref())
                .bind(origin.as_deref())
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The most recent operations, newest first.
    pub async fn audit_trail(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let sql =
            "SELECT id, at, actor, action, filter, affected, failed, message_ids, note, origin
                   FROM dlq_audit ORDER BY id DESC LIMIT $1";
        match &self.pool {
            Pool::Pg(pool) => Ok(sqlx::query_as(sql).bind(limit).fetch_all(pool).await?),
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let rows = sqlx::query(sql).bind(limit).fetch_all(pool).await?;
                let entry = |row: &sqlx::sqlite::SqliteRow| -> Result<AuditEntry, sqlx::Error> {
                    use sqlx::Row;
                    Ok(AuditEntry {
                        id: row.try_get("id")?,
                        at: row.try_get("at")?,
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        filter: row.try_get::<sqlx::types::Json<Value>, _>("filter")?.0,
                        affected: row.try_get("affected")?,
                        failed: row.try_get("failed")?,
                        message_ids: row
                            .try_get::<sqlx::types::Json<Vec<String>>, _>("message_ids")?
                            .0,
                        note: row.try_get("note")?,
                        origin: row.try_get("origin")?,
                    })
                };
                Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
            }
        }
    }

    /// Events committed but not yet confirmed by the broker.
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        Ok(either!(pool & self.pool, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        )
        .fetch_one(pool)
        .await?))
    }

    /// Seconds since the oldest event not yet confirmed by the broker was
    /// committed, by the database's clock; 0 when none waits. The relay
    /// sends in id order, so the first unsent id is the oldest (index
    /// `outbox_unsent`).
    pub async fn outbox_oldest_unsent_secs(&self) -> Result<f64, StoreError> {
        let age: Option<f64> = match &self.pool {
            Pool::Pg(pool) => {
                sqlx::query_scalar(
                    "SELECT EXTRACT(EPOCH FROM now() - created_at)::float8 FROM outbox
                     WHERE sent_at IS NULL ORDER BY id LIMIT 1",
                )
                .fetch_optional(pool)
                .await?
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                sqlx::query_scalar(
                    "SELECT (julianday('now') - julianday(created_at)) * 86400.0 FROM outbox
                     WHERE sent_at IS NULL ORDER BY id LIMIT 1",
                )
                .fetch_optional(pool)
                .await?
            }
        };
        Ok(age.unwrap_or(0.0).max(0.0))
    }

    /// Escalation events recorded in the last hour, by the database's
    /// clock: (kind, lead unit, count). A reminder or supervision by hand
    /// counts with the scanner's (`remind` and `supervise` are older
    /// names of the same). Reads only the index
    /// `case_events_escalations`, which holds these kinds alone.
    pub async fn escalations_last_hour(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        const SELECT: &str = "SELECT CASE kind WHEN 'remind' THEN 'reminder'
                                             WHEN 'supervise' THEN 'supervision' ELSE kind END,
                                    COALESCE(unit, '(none)'), count(*)
                             FROM case_events
                             WHERE kind IN ('deadline_warning', 'sign_for_overdue', 'reminder',
                                            'remind', 'supervision', 'supervise',
                                            'callback_overdue')
                               AND at >= ";
        match &self.pool {
            Pool::Pg(pool) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} now() - interval '1 hour' GROUP BY 1, 2 ORDER BY 1, 2"
            )))
            .fetch_all(pool)
            .await?),
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '-1 hour')
                 GROUP BY 1, 2 ORDER BY 1, 2"
            )))
            .fetch_all(pool)
            .await?),
        }
    }

    /// How many cases have each status.
    pub async fn cases_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(either!(pool & self.pool, |pool| sqlx::query_as(
            "SELECT status, count(*) FROM cases GROUP BY status ORDER BY status"
        )
        .fetch_all(pool)
        .await?))
    }

    /// Open cases past a deadline: (unit, level, count). Handling past its
    /// deadline counts by the lead unit at `reminder` or `supervision`, a
    /// dispatch not signed for at `sign_for`, a callback not made by each
    /// hotline that owes it at `callback`.
    pub async fn overdue_cases(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        // The statuses are the lifecycle's own names, a closed set.
        let handling = crate::lifecycle::HANDLING
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT COALESCE(lead_unit, '(none)'),
                    CASE WHEN escalation_level >= 2 THEN 'supervision' ELSE 'reminder' END, count(*)
             FROM cases WHERE overdue AND status IN ({handling})
             GROUP BY 1, 2
             UNION ALL
             SELECT COALESCE(lead_unit, '(none)'), 'sign_for', count(*)
             FROM cases WHERE accept_overdue AND status = 'dispatched' GROUP BY 1
             UNION ALL
             SELECT s.connector, 'callback', count(DISTINCT c.id)
             FROM cases c JOIN case_sources s
               ON s.case_id = c.id OR s.case_id IN (SELECT m.id FROM cases m WHERE m.parent_case_id = c.id)
             WHERE c.callback_overdue AND c.status = 'callback' GROUP BY 1
             ORDER BY 1, 2"
        );
        Ok(either!(pool & self.pool, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        either!(pool & self.pool, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}
