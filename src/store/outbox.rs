//! The outbox: events recorded with the change that causes them, published
//! by the relay afterwards.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Postgres, SqlitePool, Transaction};
use uuid::Uuid;

use super::backend::{lite_now, lite_uuid};
use super::{Pool, Store, StoreError, Tx};

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

pub(super) async fn insert(tx: &mut Tx, events: &[OutboxEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Pg(tx) => {
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
        }
        Tx::Lite(tx) => {
            for e in events {
                sqlx::query(
                    "INSERT INTO outbox (event_id, destination, routing_key, payload) VALUES ($1, $2, $3, json($4))",
                )
                .bind(lite_uuid(e.event_id))
                .bind(&e.destination)
                .bind(&e.routing_key)
                .bind(e.payload.to_string())
                .execute(&mut **tx)
                .await?;
            }
        }
    }
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

/// A claim on a page of unsent events, released by [`Claim::mark_sent`] or
/// by dropping it. On PostgreSQL the rows stay locked (skipped by other
/// relays) until then. On SQLite nothing is held while the relay waits for
/// the broker (that would stop every writer): one process owns an SQLite
/// database, and its one relay is the only one reading the outbox.
pub struct Claim {
    held: Held,
    pub events: Vec<Pending>,
}

/// An outbox row as SQLite holds it: uuid and payload as text.
type LitePending = (
    i64,
    uuid::fmt::Hyphenated,
    String,
    sqlx::types::Json<Value>,
    DateTime<Utc>,
);

enum Held {
    Pg(Transaction<'static, Postgres>),
    Lite(SqlitePool),
}

impl Store {
    /// Claims up to `limit` unsent events, oldest first.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Claim, StoreError> {
        match &self.pool {
            Pool::Pg(pool) => {
                let mut tx = pool.begin().await?;
                let events: Vec<Pending> = sqlx::query_as(
                    "SELECT id, event_id, routing_key, payload, created_at FROM outbox
                     WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                Ok(Claim {
                    held: Held::Pg(tx),
                    events,
                })
            }
            Pool::Lite(pool) => {
                let rows: Vec<LitePending> = sqlx::query_as(
                    "SELECT id, event_id, routing_key, payload, created_at FROM outbox
                         WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(pool)
                .await?;
                Ok(Claim {
                    held: Held::Lite(pool.clone()),
                    events: rows
                        .into_iter()
                        .map(|(id, event_id, routing_key, payload, created_at)| Pending {
                            id,
                            event_id: event_id.into_uuid(),
                            routing_key,
                            payload: payload.0,
                            created_at,
                        })
                        .collect(),
                })
            }
        }
    }
}

impl Claim {
    /// Marks the given events sent and releases the claim.
    pub async fn mark_sent(self, ids: &[i64]) -> Result<(), StoreError> {
        match self.held {
            Held::Pg(mut tx) => {
                if !ids.is_empty() {
                    sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
                        .bind(ids)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            Held::Lite(pool) => {
                if !ids.is_empty() {
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    for id in ids {
                        sqlx::query(concat!(
                            "UPDATE outbox SET sent_at = ",
                            lite_now!(),
                            " WHERE id = $1"
                        ))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
            }
        }
        Ok(())
    }
}
