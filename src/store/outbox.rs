//! The outbox: events recorded with the change that causes them, published
//! by the relay afterwards. Events carry personal data (a reporter for the
//! unit, shared population records): with data keys, each payload is
//! stored sealed (store/seal.rs), bound to its event id, as a JSON string
//! `"gh1:..."`, and opened when the relay claims it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
#[cfg(feature = "sqlite")]
use sqlx::SqlitePool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::backend::{lite_now, lite_time};
use super::seal::Seal;
use super::{Pool, Store, StoreError};

/// An event bound for one destination.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_id: Uuid,
    pub destination: String,
    /// `<destination>.<event>`.
    pub routing_key: String,
    /// The payload as JSON text: an object with the event's name and id.
    pub payload: String,
}

impl OutboxEvent {
    /// An event whose payload is `payload` (which serializes to a JSON
    /// object) with the event's name and id.
    pub fn new(destination: &str, event: &str, payload: &impl Serialize) -> OutboxEvent {
        OutboxEvent::appended(destination, event, &json_text(payload, 1024), None)
    }

    /// An event whose payload is `body`, a JSON object's text, with `entry`
    /// (a key that needs no escaping and its value's JSON text) and the
    /// event's name and id appended. `body` is copied, not parsed: one
    /// event's body serves all its destinations.
    pub(super) fn appended(
        destination: &str,
        event: &str,
        body: &str,
        entry: Option<(&str, &str)>,
    ) -> OutboxEvent {
        let event_id = Uuid::new_v4();
        let routing_key = format!("{destination}.{event}");
        let destination = destination.to_owned();
        let Some(open) = body.strip_suffix('}').filter(|_| body.starts_with('{')) else {
            // Not an object: nothing to add the name and id to.
            return OutboxEvent {
                event_id,
                destination,
                routing_key,
                payload: body.to_owned(),
            };
        };
        let event = json_text(&event, event.len() + 2);
        let mut id = [b'"'; uuid::fmt::Hyphenated::LENGTH + 2];
        event_id.hyphenated().encode_lower(&mut id[1..]);
        let id = std::str::from_utf8(&id).unwrap_or_default();
        let entries = [
            entry,
            Some(("event", event.as_str())),
            Some(("event_id", id)),
        ];
        let entries = entries.into_iter().flatten();
        let added: usize = entries.clone().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut payload = String::with_capacity(open.len() + added + 1);
        payload.push_str(open);
        for (key, value) in entries {
            debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if payload.len() > 1 {
                payload.push(',');
            }
            payload.push('"');
            payload.push_str(key);
            payload.push_str("\":");
            payload.push_str(value);
        }
        payload.push('}');
        OutboxEvent {
            event_id,
            destination,
            routing_key,
            payload,
        }
    }
}

/// JSON text of a value the hub built itself: its own types and JSON
/// values, whose keys are strings, written to memory; that cannot fail.
/// `capacity` is the bytes it is expected to take (it grows past it).
pub(super) fn json_text(value: &(impl Serialize + ?Sized), capacity: usize) -> String {
    let mut text = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut text, value).expect("the hub's own values serialize");
    // serde_json writes UTF-8 only.
    String::from_utf8(text).unwrap_or_default()
}

/// What the `payload` column holds: the JSON text, or with keys a JSON
/// string of it sealed.
pub(super) fn stored<'e>(event: &'e OutboxEvent, seal: &Seal) -> std::borrow::Cow<'e, str> {
    if !seal.is_on() {
        return std::borrow::Cow::Borrowed(&event.payload);
    }
    let sealed = seal
        .seal(event.event_id, SEALED_FIELD, Some(&event.payload))
        .unwrap_or_default();
    // Base64 and `:` need no escaping in a JSON string.
    std::borrow::Cow::Owned(format!("\"{sealed}\""))
}

/// The associated data's field name of a sealed payload.
const SEALED_FIELD: &str = "outbox.payload";

/// A stored payload opened: JSON text as it is, a sealed one with its key.
pub fn open_payload(
    event_id: Uuid,
    payload: String,
    seal: &Seal,
) -> Result<String, super::seal::SealError> {
    match payload
        .strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .filter(|p| p.starts_with("gh1:"))
    {
        Some(sealed) => Ok(seal
            .open(event_id, SEALED_FIELD, Some(sealed))?
            .unwrap_or_default()),
        None => Ok(payload),
    }
}

/// An unsent outbox row, claimed by one relay.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub event_id: Uuid,
    pub routing_key: String,
    /// The event as JSON text, published as it is.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl Pending {
    /// The payload parsed.
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_str(&self.payload)
    }
}

/// A claim on a page of unsent events, released by [`Claim::mark_sent`] or
/// by dropping it. On PostgreSQL the rows stay locked (skipped by other
/// relays) until then. On SQLite nothing is held while the relay waits for
/// the broker (that would stop every writer): one process owns an SQLite
/// database, and its one relay is the only one reading the outbox.
pub struct Claim {
    held: Held,
    pub events: Vec<Pending>,
    /// The page was cut by its row or byte bound: more may be waiting.
    pub more: bool,
}

/// An outbox row as SQLite holds it: uuid as text; and the rows the page
/// could have held.
#[cfg(feature = "sqlite")]
type LitePending = (
    i64,
    uuid::fmt::Hyphenated,
    String,
    String,
    DateTime<Utc>,
    i64,
);

/// An outbox row as PostgreSQL gives it, with the rows the page could have held.
type PgPending = (i64, Uuid, String, String, DateTime<Utc>, i64);

enum Held {
    Pg(Transaction<'static, Postgres>),
    #[cfg(feature = "sqlite")]
    Lite(SqlitePool),
}

impl Store {
    /// Claims unsent events, oldest first: at most `limit`, and no more than
    /// about `max_bytes` of payload (always at least one), so that a page of
    /// large events (shared population records) stays small in memory.
    pub async fn claim_outbox(&self, limit: i64, max_bytes: i64) -> Result<Claim, StoreError> {
        match &self.pool {
            Pool::Pg(pool) => {
                let mut tx = pool.begin().await?;
                // Rows are locked up to `limit`; those past the byte bound
                // stay unsent and are claimed again by the next page.
                let rows: Vec<PgPending> = sqlx::query_as(
                    "WITH claimed AS (
                         SELECT id, pg_column_size(payload)::int8 AS size FROM outbox
                         WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
                     ), page AS (
                         SELECT id, sum(size) OVER (ORDER BY id) - size AS before,
                                count(*) OVER () AS claimed
                         FROM claimed
                     )
                     SELECT o.id, o.event_id, o.routing_key, o.payload::text, o.created_at, p.claimed
                     FROM outbox o JOIN page p USING (id)
                     WHERE p.before < $2 ORDER BY o.id",
                )
                .bind(limit)
                .bind(max_bytes)
                .fetch_all(&mut *tx)
                .await?;
                let (events, more) = page(rows, limit, &self.seal);
                Ok(Claim {
                    held: Held::Pg(tx),
                    events,
                    more,
                })
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let rows: Vec<LitePending> = sqlx::query_as(
                    "SELECT id, event_id, routing_key, payload, created_at, claimed FROM (
                         SELECT id, event_id, routing_key, payload, created_at,
                                sum(length(payload)) OVER (ORDER BY id) - length(payload) AS before,
                                count(*) OVER () AS claimed
                         FROM (SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1)
                     ) WHERE before < $2 ORDER BY id",
                )
                .bind(limit)
                .bind(max_bytes)
                .fetch_all(pool)
                .await?;
                let (events, more) = page(rows, limit, &self.seal);
                Ok(Claim {
                    held: Held::Lite(pool.clone()),
                    events,
                    more,
                })
            }
        }
    }
}

/// The claimed rows as events, opened, and whether the page was cut by its
/// row or byte bound (each row carries how many rows were claimed before
/// the byte bound). An event whose payload does not open (its key is not
/// configured) is left out, unsent, and logged.
fn page<U: Into<Uuid>>(
    rows: Vec<(i64, U, String, String, DateTime<Utc>, i64)>,
    limit: i64,
    seal: &Seal,
) -> (Vec<Pending>, bool) {
    let more = rows
        .first()
        .is_some_and(|r| r.5 == limit || (rows.len() as i64) < r.5);
    let events = rows
        .into_iter()
        .filter_map(|(id, event_id, routing_key, payload, created_at, _)| {
            let event_id = event_id.into();
            match open_payload(event_id, payload, seal) {
                Ok(payload) => Some(Pending {
                    id,
                    event_id,
                    routing_key,
                    payload,
                    created_at,
                }),
                Err(error) => {
                    tracing::error!(id, error = %error, "cannot open an outbox event; it stays unsent until its key is configured");
                    None
                }
            }
        })
        .collect();
    (events, more)
}

/// Rows deleted per statement when pruning.
const PRUNE_CHUNK: i64 = 5000;

/// Deletes a chunk of sent events recorded before a time (the same text on
/// both backends; only the time's binding differs).
const PRUNE: &str = "DELETE FROM outbox WHERE id IN (
                         SELECT id FROM outbox
                         WHERE created_at < $1 AND sent_at IS NOT NULL LIMIT $2)";

impl Store {
    /// Deletes the events that were sent and were recorded before `before`,
    /// a chunk at a time; returns how many. Unsent events are never deleted.
    pub async fn prune_outbox(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = match &self.pool {
                Pool::Pg(pool) => sqlx::query(PRUNE)
                    .bind(before)
                    .bind(PRUNE_CHUNK)
                    .execute(pool)
                    .await?
                    .rows_affected(),
                #[cfg(feature = "sqlite")]
                Pool::Lite(pool) => sqlx::query(PRUNE)
                    .bind(lite_time(before))
                    .bind(PRUNE_CHUNK)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            };
            total += deleted;
            if deleted < PRUNE_CHUNK as u64 {
                return Ok(total);
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
            #[cfg(feature = "sqlite")]
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
