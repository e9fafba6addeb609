//! The `dead_letters` table: refusals recorded with their reasons.

use crate::store::{StoreError, Tx};

/// A refusal as recorded: the message it refused and why.
pub(in crate::store) struct Refused<'a> {
    pub connector: &'a str,
    pub message_id: Option<&'a str>,
    /// Printable.
    pub routing_key: String,
    pub stage: &'static str,
    pub reason: String,
    pub schema: Option<&'a str>,
    /// JSON text: the schema's violations.
    pub violations: String,
}

impl Tx {
    /// Records refusals (their messages are already in their DLQ).
    pub(in crate::store) async fn record_refusals(
        &mut self,
        refusals: &[Refused<'_>],
    ) -> Result<(), StoreError> {
        if refusals.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Pg(tx) => {
                sqlx::query(
                    "INSERT INTO dead_letters (connector, message_id, routing_key, stage, reason, schema_file, violations)
                     SELECT connector, message_id, routing_key, stage, reason, schema_file, violations::jsonb
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                       AS d(connector, message_id, routing_key, stage, reason, schema_file, violations)",
                )
                .bind(refusals.iter().map(|r| r.connector).collect::<Vec<_>>())
                .bind(refusals.iter().map(|r| r.message_id).collect::<Vec<_>>())
                .bind(refusals.iter().map(|r| r.routing_key.as_str()).collect::<Vec<_>>())
                .bind(refusals.iter().map(|r| r.stage).collect::<Vec<_>>())
                .bind(refusals.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
                .bind(refusals.iter().map(|r| r.schema).collect::<Vec<_>>())
                .bind(refusals.iter().map(|r| r.violations.as_str()).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                for r in refusals {
                    sqlx::query(
                        "INSERT INTO dead_letters (connector, message_id, routing_key, stage, reason, schema_file, violations)
                         VALUES ($1, $2, $3, $4, $5, $6, json($7))",
                    )
                    .bind(r.connector)
                    .bind(r.message_id)
                    .bind(&r.routing_key)
                    .bind(r.stage)
                    .bind(&r.reason)
                    .bind(r.schema)
                    .bind(&r.violations)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
