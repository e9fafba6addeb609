//! The dead letters ops read: every DLQ consumed into the store
//! (`dlq_messages`, migration 0009), so that reading one never makes the
//! broker count a delivery. Bodies are personal data: they are stored
//! sealed with the store's keys (store/seal.rs), bound to their letter.

use std::collections::HashMap;

use super::backend::{either, lite_now};
use super::{Pool, Store, StoreError};

/// A dead letter as the recorder takes it off its DLQ.
pub struct NewDeadLetter<'a> {
    /// `dlq::DeadLetter`'s id: a second delivery of the same letter is not
    /// recorded again.
    pub letter_id: String,
    pub connector: &'a str,
    /// Control characters escaped (`message::printable`).
    pub routing_key: std::borrow::Cow<'a, str>,
    /// The AMQP encoding of its properties (`dlq::encode_properties`).
    pub properties: Vec<u8>,
    pub body: &'a [u8],
}

/// A recorded dead letter that is neither replayed nor purged.
pub struct StoredDeadLetter {
    pub id: i64,
    pub routing_key: String,
    pub properties: Vec<u8>,
    /// Opened; why not if its key is not configured or it was tampered with.
    pub body: Result<Vec<u8>, super::seal::SealError>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    letter_id: String,
    routing_key: String,
    properties: Vec<u8>,
    body: Vec<u8>,
    sealed_with: Option<String>,
}

/// What a dead letter's body is bound to: a sealed body copied to another
/// letter does not open.
fn associated(letter_id: &str) -> Vec<u8> {
    let mut aad = b"dlq_messages.body:".to_vec();
    aad.extend_from_slice(letter_id.as_bytes());
    aad
}

impl Store {
    /// Records dead letters in one transaction; one already recorded (the
    /// same letter delivered again) is left as it is.
    pub async fn record_dead_letters(
        &self,
        letters: &[NewDeadLetter<'_>],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for letter in letters {
            let sealed = self
                .seal
                .seal_bytes(&associated(&letter.letter_id), letter.body);
            let (sealed_with, body) = match &sealed {
                Some((key, sealed)) => (Some(*key), sealed.as_slice()),
                None => (None, letter.body),
            };
            either!(tx &mut tx, |tx, _uuid, _time| {
                sqlx::query(
                    "INSERT INTO dlq_messages (letter_id, connector, routing_key, properties, body, sealed_with)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (letter_id) DO NOTHING",
                )
                .bind(&letter.letter_id)
                .bind(letter.connector)
                .bind(letter.routing_key.as_ref())
                .bind(&letter.properties)
                .bind(body)
                .bind(sealed_with)
                .execute(&mut **tx)
                .await?;
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// A connector's waiting dead letters, oldest first, at most `limit`.
    pub async fn waiting_dead_letters(
        &self,
        connector: &str,
        limit: i64,
    ) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let rows: Vec<Row> = either!(pool & self.pool, |pool| sqlx::query_as(
            "SELECT id, letter_id, routing_key, properties, body, sealed_with FROM dlq_messages
             WHERE connector = $1 AND settled_at IS NULL ORDER BY id LIMIT $2"
        )
        .bind(connector)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|row| StoredDeadLetter {
                id: row.id,
                body: match &row.sealed_with {
                    Some(key) => self
                        .seal
                        .open_bytes(key, &associated(&row.letter_id), &row.body),
                    None => Ok(row.body),
                },
                routing_key: row.routing_key,
                properties: row.properties,
            })
            .collect())
    }

    /// Seals again, with the current key, every waiting dead letter sealed
    /// with another key or stored as it came; how many. A body that does
    /// not open is left as it is (and logged).
    pub async fn reseal_dead_letters(&self) -> Result<u64, StoreError> {
        let Some(current) = self.seal.current() else {
            return Ok(0);
        };
        let mut resealed = 0;
        let mut after = 0i64;
        loop {
            let rows: Vec<Row> = either!(pool & self.pool, |pool| {
                sqlx::query_as(
                "SELECT id, letter_id, routing_key, properties, body, sealed_with FROM dlq_messages
                 WHERE settled_at IS NULL AND id > $1
                   AND (sealed_with IS NULL OR sealed_with <> $2)
                 ORDER BY id LIMIT 500"
            )
            .bind(after)
            .bind(current)
            .fetch_all(pool)
            .await?
            });
            let Some(last) = rows.last() else {
                return Ok(resealed);
            };
            after = last.id;
            for row in rows {
                let aad = associated(&row.letter_id);
                let plain = match &row.sealed_with {
                    Some(key) => match self.seal.open_bytes(key, &aad, &row.body) {
                        Ok(plain) => plain,
                        Err(error) => {
                            tracing::error!(id = row.id, error = %error, "cannot open a dead letter's body; left as it is");
                            continue;
                        }
                    },
                    None => row.body,
                };
                let Some((key, sealed)) = self.seal.seal_bytes(&aad, &plain) else {
                    return Ok(resealed);
                };
                let done = either!(pool & self.pool, |pool| sqlx::query(
                    "UPDATE dlq_messages SET body = $2, sealed_with = $3
                     WHERE id = $1 AND settled_at IS NULL"
                )
                .bind(row.id)
                .bind(&sealed)
                .bind(key)
                .execute(pool)
                .await?
                .rows_affected());
                resealed += done;
            }
        }
    }

    /// Settles a dead letter (`replayed` or `purged`) and clears its body,
    /// which is personal data. False if it was settled already.
    pub async fn settle_dead_letter(&self, id: i64, how: &str) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Pg(pool) => sqlx::query(
                "UPDATE dlq_messages SET settled_at = now(), settled_as = $2, body = ''::bytea, sealed_with = NULL
                 WHERE id = $1 AND settled_at IS NULL",
            )
            .bind(id)
            .bind(how)
            .execute(pool)
            .await?
            .rows_affected(),
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => sqlx::query(concat!(
                "UPDATE dlq_messages SET settled_at = ",
                lite_now!(),
                ", settled_as = $2, body = x'', sealed_with = NULL WHERE id = $1 AND settled_at IS NULL"
            ))
            .bind(id)
            .bind(how)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
    }

    /// Waiting dead letters by connector.
    pub async fn waiting_dead_letter_counts(&self) -> Result<HashMap<String, u32>, StoreError> {
        let rows: Vec<(String, i64)> = either!(pool & self.pool, |pool| {
            sqlx::query_as(
            "SELECT connector, count(*) FROM dlq_messages WHERE settled_at IS NULL GROUP BY connector"
        )
        .fetch_all(pool)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(c, n)| (c, u32::try_from(n).unwrap_or(u32::MAX)))
            .collect())
    }
}
