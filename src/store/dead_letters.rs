//! The dead letters ops read: every DLQ consumed into the store
//! (`dlq_messages`, migration 0009), so that reading one never makes the
//! broker count a delivery.

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
#[derive(sqlx::FromRow)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub routing_key: String,
    pub properties: Vec<u8>,
    pub body: Vec<u8>,
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
            either!(tx &mut tx, |tx, _uuid, _time| {
                sqlx::query(
                    "INSERT INTO dlq_messages (letter_id, connector, routing_key, properties, body)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (letter_id) DO NOTHING",
                )
                .bind(&letter.letter_id)
                .bind(letter.connector)
                .bind(letter.routing_key.as_ref())
                .bind(&letter.properties)
                .bind(letter.body)
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
        Ok(either!(pool & self.pool, |pool| sqlx::query_as(
            "SELECT id, routing_key, properties, body FROM dlq_messages
             WHERE connector = $1 AND settled_at IS NULL ORDER BY id LIMIT $2"
        )
        .bind(connector)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// Settles a dead letter (`replayed` or `purged`) and clears its body,
    /// which is personal data. False if it was settled already.
    pub async fn settle_dead_letter(&self, id: i64, how: &str) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Pg(pool) => sqlx::query(
                "UPDATE dlq_messages SET settled_at = now(), settled_as = $2, body = ''::bytea
                 WHERE id = $1 AND settled_at IS NULL",
            )
            .bind(id)
            .bind(how)
            .execute(pool)
            .await?
            .rows_affected(),
            Pool::Lite(pool) => sqlx::query(concat!(
                "UPDATE dlq_messages SET settled_at = ",
                lite_now!(),
                ", settled_as = $2, body = x'' WHERE id = $1 AND settled_at IS NULL"
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
