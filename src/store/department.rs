//! What a department reads about itself (`GET /api/connectors/{id}/refusals`):
//! its refusals grouped by cause, and when the events now waiting on its
//! out queue were sent.
//!
//! Refusals come from `dead_letters`, the record the hub writes with every
//! refusal (stage, reason, schema file, violations; never the message),
//! not from the waiting dead letters (`dlq_messages`): a department fixes
//! its system whether or not ops have replayed or purged what it sent, and
//! sees its fix work when a cause's `last_seen` stops moving.

use chrono::{DateTime, Utc};

use super::backend::lite_time;
use super::{Pool, Store, StoreError};

/// Refusals of one connector that failed the same way: the same stage, the
/// same message type and the same rule of the same schema (for `required`,
/// the same missing property); without a rule, the same reason. A refusal
/// with several violations counts in each of their groups.
#[derive(Debug, Clone, PartialEq)]
pub struct CauseRow {
    /// `<connector>.<type>` when it is one of the connector's own routing
    /// keys; `None` for a routing key the connector does not have.
    pub routing_key: Option<String>,
    pub stage: String,
    /// Relative to the schemas folder.
    pub schema_file: Option<String>,
    /// The violation's schema path, `""` for a refusal without one.
    pub schema_path: String,
    /// One instance path where the rule failed (the least, as text).
    pub instance_path: Option<String>,
    /// The violation's message (masked: no value from the message), or the
    /// refusal's stored reason for a refusal without a rule.
    pub message: String,
    /// Refusals in the group.
    pub refusals: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A connector's refusals since a time, grouped.
#[derive(Debug, Clone, PartialEq)]
pub struct Causes {
    /// The largest groups first (then the most recent), at most the limit.
    pub groups: Vec<CauseRow>,
    /// Refusals in the period.
    pub refused: i64,
    /// More groups than the limit.
    pub truncated: bool,
}

/// A refusal's violations, one row each (one row with nulls for a refusal
/// without violations), then grouped. `$violations` is the backend's set
/// of a refusal's violations, and `$field(v, name)` one violation's field.
macro_rules! causes_sql {
    ($own:literal, $violations:literal, $schema_path:literal, $instance_path:literal, $message:literal) => {
        concat!(
            "WITH causes AS (
                 SELECT d.id, d.stage, d.schema_file, d.refused_at, d.reason,
                        CASE WHEN ",
            $own,
            " THEN d.routing_key END AS routing_key,
                        COALESCE(",
            $schema_path,
            ", '') AS schema_path,
                        ",
            $instance_path,
            " AS instance_path,
                        COALESCE(",
            $message,
            ", d.reason) AS message
                 FROM dead_letters d LEFT JOIN ",
            $violations,
            " ON true
                 WHERE d.connector = $1 AND d.refused_at >= $2
             )
             SELECT routing_key, stage, schema_file, schema_path,
                    min(instance_path) AS instance_path,
                    min(message) AS message,
                    count(DISTINCT id) AS refusals,
                    min(refused_at) AS first_seen, max(refused_at) AS last_seen,
                    count(*) OVER () AS groups
             FROM causes
             GROUP BY routing_key, stage, schema_file, schema_path,
                      CASE WHEN schema_path = '' THEN reason
                           WHEN schema_path LIKE '%/required' THEN message END
             ORDER BY refusals DESC, last_seen DESC, stage, schema_path, message
             LIMIT $4"
        )
    };
}

const PG_CAUSES: &str = causes_sql!(
    "d.routing_key = ANY($3)",
    "jsonb_array_elements(CASE jsonb_typeof(d.violations) WHEN 'array' THEN d.violations ELSE '[]'::jsonb END) v",
    "v->>'schema_path'",
    "v->>'instance_path'",
    "v->>'message'"
);

#[cfg(feature = "sqlite")]
const LITE_CAUSES: &str = causes_sql!(
    "d.routing_key IN (SELECT value FROM json_each($3))",
    "json_each(CASE json_type(d.violations) WHEN 'array' THEN d.violations ELSE '[]' END) v",
    "json_extract(v.value, '$.schema_path')",
    "json_extract(v.value, '$.instance_path')",
    "json_extract(v.value, '$.message')"
);

const REFUSED: &str = "SELECT count(*) FROM dead_letters WHERE connector = $1 AND refused_at >= $2";

type Row<T> = (
    Option<String>,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    i64,
    T,
    T,
    i64,
);

/// The outbox rows a question about one out queue reads at most: the age of
/// a deeper queue's oldest event is given as at least that of the last one read.
pub const OLDEST_SCAN: i64 = 10_000;

/// When the oldest of the events waiting on a destination's queue was sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OldestWaiting {
    pub sent_at: DateTime<Utc>,
    /// The outbox no longer holds that event (retention), or the queue is
    /// deeper than [`OLDEST_SCAN`]: it was sent at `sent_at` or before.
    pub at_most: bool,
}

impl Store {
    /// A connector's refusals since `since`, grouped by cause, at most
    /// `limit` groups; `routing_keys` are its own (`<connector>.<type>`).
    pub async fn refusal_causes(
        &self,
        connector: &str,
        since: DateTime<Utc>,
        routing_keys: &[String],
        limit: i64,
    ) -> Result<Causes, StoreError> {
        let (rows, refused): (Vec<Row<DateTime<Utc>>>, i64) = match &self.pool {
            Pool::Pg(pool) => {
                let rows = sqlx::query_as(PG_CAUSES)
                    .bind(connector)
                    .bind(since)
                    .bind(routing_keys)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                let refused = sqlx::query_scalar(REFUSED)
                    .bind(connector)
                    .bind(since)
                    .fetch_one(pool)
                    .await?;
                (rows, refused)
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let keys = serde_json::to_string(routing_keys).unwrap_or_else(|_| "[]".into());
                let rows: Vec<Row<String>> = sqlx::query_as(LITE_CAUSES)
                    .bind(connector)
                    .bind(lite_time(since))
                    .bind(keys)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                let refused = sqlx::query_scalar(REFUSED)
                    .bind(connector)
                    .bind(lite_time(since))
                    .fetch_one(pool)
                    .await?;
                let rows = rows
                    .into_iter()
                    .map(|r| {
                        Ok((
                            r.0,
                            r.1,
                            r.2,
                            r.3,
                            r.4,
                            r.5,
                            r.6,
                            time(&r.7)?,
                            time(&r.8)?,
                            r.9,
                        ))
                    })
                    .collect::<Result<_, StoreError>>()?;
                (rows, refused)
            }
        };
        let truncated = rows.first().is_some_and(|r| r.9 > rows.len() as i64);
        let groups = rows
            .into_iter()
            .map(|r| CauseRow {
                routing_key: r.0,
                stage: r.1,
                schema_file: r.2,
                schema_path: r.3,
                instance_path: r.4,
                message: r.5,
                refusals: r.6,
                first_seen: r.7,
                last_seen: r.8,
            })
            .collect();
        Ok(Causes {
            groups,
            refused,
            truncated,
        })
    }

    /// Dead letters of one connector waiting for ops (neither replayed nor
    /// purged).
    pub async fn waiting_dead_letter_count(&self, connector: &str) -> Result<i64, StoreError> {
        Ok(super::backend::either!(pool & self.pool, |pool| {
            sqlx::query_scalar(
                "SELECT count(*) FROM dlq_messages WHERE connector = $1 AND settled_at IS NULL",
            )
            .bind(connector)
            .fetch_one(pool)
            .await?
        }))
    }

    /// When the oldest of `waiting` events on `destination`'s queue was
    /// sent, if the broker keeps a queue in order: the `waiting`-th most
    /// recent event the outbox sent there (by id, the order the relay
    /// publishes in). `None` when nothing waits, or the outbox holds no
    /// sent event for it.
    pub async fn oldest_waiting(
        &self,
        destination: &str,
        waiting: u32,
    ) -> Result<Option<OldestWaiting>, StoreError> {
        if waiting == 0 {
            return Ok(None);
        }
        let wanted = i64::from(waiting).min(OLDEST_SCAN);
        const SQL: &str = "SELECT min(sent_at), count(*) FROM (
                 SELECT sent_at FROM outbox WHERE destination = $1 AND sent_at IS NOT NULL
                 ORDER BY id DESC LIMIT $2) AS newest";
        let (sent_at, read): (Option<DateTime<Utc>>, i64) = match &self.pool {
            Pool::Pg(pool) => {
                sqlx::query_as(SQL)
                    .bind(destination)
                    .bind(wanted)
                    .fetch_one(pool)
                    .await?
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let (at, read): (Option<String>, i64) = sqlx::query_as(SQL)
                    .bind(destination)
                    .bind(wanted)
                    .fetch_one(pool)
                    .await?;
                (at.as_deref().map(time).transpose()?, read)
            }
        };
        Ok(sent_at.map(|sent_at| OldestWaiting {
            sent_at,
            at_most: read < i64::from(waiting),
        }))
    }
}

/// A time as SQLite keeps it (`backend::lite_time`).
fn time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| StoreError::Permanent {
            code: "decode: a stored time".to_owned(),
        })
}
