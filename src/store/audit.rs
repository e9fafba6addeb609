//! The audit trail of dead-letter operations (table `dlq_audit`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError};

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
}

/// What to record.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    pub actor: &'a str,
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
        sqlx::query(
            "INSERT INTO dlq_audit (actor, action, filter, affected, failed, message_ids, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(record.actor.replace('\0', ""))
        .bind(record.action)
        .bind(&record.filter)
        .bind(i32::try_from(record.affected).unwrap_or(i32::MAX))
        .bind(i32::try_from(record.failed).unwrap_or(i32::MAX))
        .bind(ids)
        .bind(record.note.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent operations, newest first.
    pub async fn audit_trail(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, action, filter, affected, failed, message_ids, note
             FROM dlq_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Events committed but not yet confirmed by the broker.
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// How many cases have each status.
    pub async fn cases_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT status, count(*) FROM cases GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
