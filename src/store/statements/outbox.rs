//! The `outbox` table: events written with the work that caused them, for
//! the relay to publish.

use super::inserts::PgInserts;
use crate::store::backend::lite_uuid;
use crate::store::outbox::{OutboxEvent, stored};
use crate::store::seal::Seal;
use crate::store::{StoreError, Tx};

impl Tx {
    pub(in crate::store) async fn insert_outbox(
        &mut self,
        events: &[OutboxEvent],
        seal: &Seal,
    ) -> Result<(), StoreError> {
        match self {
            Tx::Pg(tx) => {
                let mut inserts = PgInserts::new();
                add(&mut inserts, events, seal);
                inserts.execute(tx).await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                for e in events {
                    sqlx::query(
                        "INSERT INTO outbox (event_id, destination, routing_key, payload) VALUES ($1, $2, $3, json($4))",
                    )
                    .bind(lite_uuid(e.event_id))
                    .bind(&e.destination)
                    .bind(&e.routing_key)
                    .bind(stored(e, seal).as_ref())
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// Outbox rows as one insert of a PostgreSQL statement; none if there are none.
pub(in crate::store) fn add(inserts: &mut PgInserts, events: &[OutboxEvent], seal: &Seal) {
    if events.is_empty() {
        return;
    }
    let columns = [
        inserts.column(events.iter().map(|e| e.event_id).collect(), "uuid"),
        inserts.column(
            events.iter().map(|e| e.destination.as_str()).collect(),
            "text",
        ),
        inserts.column(
            events.iter().map(|e| e.routing_key.as_str()).collect(),
            "text",
        ),
        if seal.is_on() {
            inserts.column(
                events
                    .iter()
                    .map(|e| stored(e, seal).into_owned())
                    .collect(),
                "text",
            )
        } else {
            inserts.column(events.iter().map(|e| e.payload.as_str()).collect(), "text")
        },
    ];
    inserts.insert(format!(
        "INSERT INTO outbox (event_id, destination, routing_key, payload)
         SELECT event_id, destination, routing_key, payload::json
         FROM UNNEST({}) AS o(event_id, destination, routing_key, payload)",
        columns.join(", ")
    ));
}
