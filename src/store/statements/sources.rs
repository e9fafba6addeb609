//! The `case_sources` table: the tickets each case was opened or merged
//! from, and the case numbers drawn for new ones.

use std::collections::HashSet;

use uuid::Uuid;

use crate::store::backend::{either, lite_uuid};
use crate::store::events::Sources;
use crate::store::{StoreError, Tx};

/// A source ticket to record for a new case.
pub(in crate::store) struct SourceRow<'a> {
    pub connector: &'a str,
    pub source_ref: &'a str,
    pub case_id: Uuid,
    pub message_id: &'a str,
}

impl Tx {
    /// Records source tickets not seen before and draws a case number for each:
    /// returns the (connector, source_ref) of those recorded now and as many
    /// case number sequence values, in ascending order.
    pub(in crate::store) async fn insert_sources(
        &mut self,
        rows: &[SourceRow<'_>],
    ) -> Result<(HashSet<(String, String)>, Vec<i64>), StoreError> {
        if rows.is_empty() {
            return Ok((HashSet::new(), Vec::new()));
        }
        match self {
            Tx::Pg(tx) => {
                // The numbers are drawn in the same round trip, one per row
                // inserted.
                let inserted: Vec<(String, String, i64)> = sqlx::query_as(
                    "WITH s AS (
                       INSERT INTO case_sources (connector, source_ref, case_id, message_id)
                       SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[])
                       ON CONFLICT DO NOTHING
                       RETURNING connector, source_ref)
                     SELECT connector, source_ref, nextval('case_no_seq') FROM s",
                )
                .bind(rows.iter().map(|r| r.connector).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.source_ref).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.case_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.message_id).collect::<Vec<_>>())
                .fetch_all(&mut **tx)
                .await?;
                let mut seqs: Vec<i64> = inserted.iter().map(|(_, _, seq)| *seq).collect();
                seqs.sort_unstable();
                let refs = inserted
                    .into_iter()
                    .map(|(connector, source_ref, _)| (connector, source_ref))
                    .collect();
                Ok((refs, seqs))
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                let mut inserted = HashSet::new();
                for r in rows {
                    let row: Option<(String, String)> = sqlx::query_as(
                        "INSERT INTO case_sources (connector, source_ref, case_id, message_id)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING
                         RETURNING connector, source_ref",
                    )
                    .bind(r.connector)
                    .bind(r.source_ref)
                    .bind(lite_uuid(r.case_id))
                    .bind(r.message_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                    inserted.extend(row);
                }
                if inserted.is_empty() {
                    return Ok((inserted, Vec::new()));
                }
                // A counter row stands in for the sequence; the write lock makes
                // the range this transaction's own.
                let n = inserted.len() as i64;
                let last: i64 = sqlx::query_scalar(
                    "UPDATE counters SET value = value + $1 WHERE name = 'case_no' RETURNING value",
                )
                .bind(n)
                .fetch_one(&mut **tx)
                .await?;
                Ok((inserted, (last - n + 1..=last).collect()))
            }
        }
    }

    /// Sources of a case and of the cases merged into it: all their callers
    /// hear the case's outcome.
    pub(in crate::store) async fn sources(&mut self, case_id: Uuid) -> Result<Sources, StoreError> {
        Ok(either!(tx self, |tx, uuid, _time| sqlx::query_as(
            "SELECT s.connector, s.source_ref FROM case_sources s JOIN cases c ON c.id = s.case_id
             WHERE c.id = $1 OR c.parent_case_id = $1 ORDER BY s.received_at",
        )
        .bind(uuid(case_id))
        .fetch_all(&mut **tx)
        .await?))
    }

    /// The case's own source tickets (not those merged into it).
    pub(in crate::store) async fn own_sources(
        &mut self,
        case_id: Uuid,
    ) -> Result<Sources, StoreError> {
        Ok(either!(tx self, |tx, uuid, _time| sqlx::query_as(
            "SELECT connector, source_ref FROM case_sources WHERE case_id = $1"
        )
        .bind(uuid(case_id))
        .fetch_all(&mut **tx)
        .await?))
    }
}
