//! The outbox: events recorded with the change that causes them, published
//! by the relay afterwards.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::StoreError;

/// An event bound for one destination.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_id: Uuid,
    pub destination: String,
    /// `<destination>.<event>`.
    pub routing_key: String,
    pub payload: Value,
}

impl OutboxEvent {
    pub fn new(destination: &str, event: &str, mut payload: Value) -> OutboxEvent {
        let event_id = Uuid::new_v4();
        if let Value::Object(map) = &mut payload {
            map.insert("event".into(), json!(event));
            map.insert("event_id".into(), json!(event_id));
        }
        OutboxEvent {
            event_id,
            destination: destination.to_owned(),
            routing_key: format!("{destination}.{event}"),
            payload,
        }
    }
}

pub(super) async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (event_id, destination, routing_key, payload)
         SELECT event_id, destination, routing_key, payload::jsonb
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) AS o(event_id, destination, routing_key, payload)",
    )
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.destination.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.routing_key.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.payload.to_string()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An unsent outbox row, claimed by one relay.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub event_id: Uuid,
    pub routing_key: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// A claim on a page of unsent events: rows stay locked (skipped by other
/// relays) until [`Claim::mark_sent`] commits or the claim is dropped.
pub struct Claim {
    tx: Transaction<'static, Postgres>,
    pub events: Vec<Pending>,
}

impl Claim {
    /// Claims up to `limit` unsent events, oldest first.
    pub async fn take(pool: &PgPool, limit: i64) -> Result<Claim, StoreError> {
        let mut tx = pool.begin().await?;
        let events: Vec<Pending> = sqlx::query_as(
            "SELECT id, event_id, routing_key, payload, created_at FROM outbox
             WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        Ok(Claim { tx, events })
    }

    /// Marks the given events sent and releases the claim.
    pub async fn mark_sent(mut self, ids: &[i64]) -> Result<(), StoreError> {
        if !ids.is_empty() {
            sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
                .bind(ids)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
