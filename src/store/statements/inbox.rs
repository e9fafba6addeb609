//! The `inbox` table: one row per message id, claimed in the transaction
//! that does the message's work.

use std::collections::HashSet;

use uuid::Uuid;

use crate::store::backend::{either, lite_now, lite_uuid};
use crate::store::{StoreError, Tx};

/// One inbox row to claim.
pub(in crate::store) struct InboxClaim<'a> {
    pub connector: &'a str,
    pub message_id: &'a str,
    pub message_type: &'a str,
    pub outcome: &'static str,
    pub case_id: Option<Uuid>,
    pub replays: i32,
}

impl Tx {
    /// Claims inbox rows; returns the (connector, message_id) claimed. A row
    /// already there is claimed again only by a replay of a refused message.
    pub(in crate::store) async fn claim_inbox(
        &mut self,
        claims: &[InboxClaim<'_>],
    ) -> Result<HashSet<(String, String)>, StoreError> {
        if claims.is_empty() {
            return Ok(HashSet::new());
        }
        match self {
            Tx::Pg(tx) => {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "INSERT INTO inbox (connector, message_id, message_type, outcome, case_id, replays)
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::int4[])
                     ON CONFLICT (connector, message_id) DO UPDATE
                       SET outcome = EXCLUDED.outcome, case_id = EXCLUDED.case_id,
                           replays = EXCLUDED.replays, processed_at = clock_timestamp()
                       WHERE inbox.outcome = 'refused' AND inbox.replays < EXCLUDED.replays
                     RETURNING connector, message_id",
                )
                .bind(claims.iter().map(|c| c.connector).collect::<Vec<_>>())
                .bind(claims.iter().map(|c| c.message_id).collect::<Vec<_>>())
                .bind(claims.iter().map(|c| c.message_type).collect::<Vec<_>>())
                .bind(claims.iter().map(|c| c.outcome).collect::<Vec<_>>())
                .bind(claims.iter().map(|c| c.case_id).collect::<Vec<_>>())
                .bind(claims.iter().map(|c| c.replays).collect::<Vec<_>>())
                .fetch_all(&mut **tx)
                .await?;
                Ok(rows.into_iter().collect())
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                let mut claimed = HashSet::new();
                for c in claims {
                    let row: Option<(String, String)> = sqlx::query_as(concat!(
                        "INSERT INTO inbox (connector, message_id, message_type, outcome, case_id, replays)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (connector, message_id) DO UPDATE
                           SET outcome = excluded.outcome, case_id = excluded.case_id,
                               replays = excluded.replays, processed_at = ",
                        lite_now!(),
                        " WHERE inbox.outcome = 'refused' AND inbox.replays < excluded.replays
                         RETURNING connector, message_id"
                    ))
                    .bind(c.connector)
                    .bind(c.message_id)
                    .bind(c.message_type)
                    .bind(c.outcome)
                    .bind(c.case_id.map(lite_uuid))
                    .bind(c.replays)
                    .fetch_optional(&mut **tx)
                    .await?;
                    claimed.extend(row);
                }
                Ok(claimed)
            }
        }
    }

    /// Gives up a message's inbox claim (the store refused it after all).
    pub(in crate::store) async fn release_inbox(
        &mut self,
        connector: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        either!(tx self, |tx, _uuid, _time| {
            sqlx::query("DELETE FROM inbox WHERE connector = $1 AND message_id = $2")
                .bind(connector)
                .bind(message_id)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Records that these messages repeated a known ticket: (connector, message_id).
    pub(in crate::store) async fn mark_duplicate_sources(
        &mut self,
        messages: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Pg(tx) => {
                sqlx::query(
                    "UPDATE inbox SET outcome = 'duplicate_source', case_id = NULL
                     FROM UNNEST($1::text[], $2::text[]) AS d(connector, message_id)
                     WHERE inbox.connector = d.connector AND inbox.message_id = d.message_id",
                )
                .bind(messages.iter().map(|(c, _)| *c).collect::<Vec<_>>())
                .bind(messages.iter().map(|(_, m)| *m).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                for (connector, message_id) in messages {
                    sqlx::query(
                        "UPDATE inbox SET outcome = 'duplicate_source', case_id = NULL
                         WHERE connector = $1 AND message_id = $2",
                    )
                    .bind(*connector)
                    .bind(*message_id)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
