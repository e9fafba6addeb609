//! What the hub keeps, and for how long: personal data expires.
//!
//! - A reporter's name, phone and ID number are erased once their case has
//!   been over (closed, merged, rejected or answered) for the reporter
//!   retention. The row stays without them: the case keeps whether the
//!   reporter was anonymous, asked for confidentiality or agreed to a
//!   callback. A confidential complainant's description (their own words)
//!   is erased with them.
//! - A dead letter's payload expires after the dead-letter retention: one
//!   still waiting is settled as `expired` (its body cleared), then every
//!   settled one that old is deleted with its properties. The refusal
//!   itself stays in `dead_letters` (stage, reason, schema paths: no
//!   payload).
//!
//! Idempotent, and safe with several hubs: each statement only touches
//! rows not yet expired.

use chrono::{DateTime, Utc};

use super::backend::lite_time;
use super::{Pool, Store, StoreError};

/// What one round expired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Expired {
    /// Reporters whose name, phone and ID number were erased.
    pub reporters: u64,
    /// Waiting dead letters whose payload was cleared.
    pub dead_letters: u64,
    /// Settled dead letters deleted.
    pub settled_deleted: u64,
}

const ERASE_REPORTERS: &str =
    "UPDATE reporters SET name = NULL, phone = NULL, id_number = NULL, erased_at = $2
     WHERE erased_at IS NULL
       AND case_id IN (SELECT id FROM cases
                       WHERE status IN ('closed', 'merged', 'rejected', 'answered')
                         AND COALESCE(closed_at, updated_at) < $1)";

const ERASE_CONFIDENTIAL_WORDS: &str = "UPDATE cases SET description = ''
     WHERE description <> ''
       AND status IN ('closed', 'merged', 'rejected', 'answered')
       AND COALESCE(closed_at, updated_at) < $1
       AND id IN (SELECT case_id FROM reporters WHERE confidential)";

const EXPIRE_WAITING: &str =
    "UPDATE dlq_messages SET body = $3, settled_at = $2, settled_as = 'expired'
     WHERE settled_at IS NULL AND recorded_at < $1";

const DELETE_SETTLED: &str =
    "DELETE FROM dlq_messages WHERE settled_at IS NOT NULL AND recorded_at < $1";

impl Store {
    /// Expires, as of `now`, reporters of cases over for longer than
    /// `reporters_after` and dead letters recorded longer than
    /// `dead_letters_after` ago (`None`: kept).
    pub async fn expire(
        &self,
        now: DateTime<Utc>,
        reporters_after: Option<chrono::Duration>,
        dead_letters_after: Option<chrono::Duration>,
    ) -> Result<Expired, StoreError> {
        // Kept: a cut-off no row is older than.
        let never = DateTime::<Utc>::UNIX_EPOCH;
        let reporters_before = reporters_after.map_or(never, |after| now - after);
        let letters_before = dead_letters_after.map_or(never, |after| now - after);
        let empty: &[u8] = &[];
        Ok(match &self.pool {
            Pool::Pg(pool) => Expired {
                reporters: {
                    sqlx::query(ERASE_CONFIDENTIAL_WORDS)
                        .bind(reporters_before)
                        .execute(pool)
                        .await?;
                    sqlx::query(ERASE_REPORTERS)
                        .bind(reporters_before)
                        .bind(now)
                        .execute(pool)
                        .await?
                        .rows_affected()
                },
                dead_letters: sqlx::query(EXPIRE_WAITING)
                    .bind(letters_before)
                    .bind(now)
                    .bind(empty)
                    .execute(pool)
                    .await?
                    .rows_affected(),
                settled_deleted: sqlx::query(DELETE_SETTLED)
                    .bind(letters_before)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            },
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => Expired {
                reporters: {
                    sqlx::query(ERASE_CONFIDENTIAL_WORDS)
                        .bind(lite_time(reporters_before))
                        .execute(pool)
                        .await?;
                    sqlx::query(ERASE_REPORTERS)
                        .bind(lite_time(reporters_before))
                        .bind(lite_time(now))
                        .execute(pool)
                        .await?
                        .rows_affected()
                },
                dead_letters: sqlx::query(EXPIRE_WAITING)
                    .bind(lite_time(letters_before))
                    .bind(lite_time(now))
                    .bind(empty)
                    .execute(pool)
                    .await?
                    .rows_affected(),
                settled_deleted: sqlx::query(DELETE_SETTLED)
                    .bind(lite_time(letters_before))
                    .execute(pool)
                    .await?
                    .rows_affected(),
            },
        })
    }
}

/// Reporters read per round of a rotation.
const RESEAL_PAGE: i64 = 500;

impl Store {
    /// Seals every reporter's personal data with the current key (values
    /// sealed with an older key, or stored before keys were configured)
    /// and recomputes the phone's keyed hash. Returns how many were
    /// sealed again; a value no configured key opens stops it, naming the
    /// case.
    pub async fn reseal(&self) -> anyhow::Result<u64> {
        use crate::intent::Reporter;
        let seal = &self.seal;
        anyhow::ensure!(seal.is_on(), "no data keys configured");
        let mut resealed = 0;
        let mut after = String::new();
        loop {
            type Row = (
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
            );
            let rows: Vec<Row> = match &self.pool {
                Pool::Pg(pool) => {
                    sqlx::query_as(
                        "SELECT case_id::text, connector, name, phone, id_number FROM reporters
                         WHERE erased_at IS NULL AND case_id::text > $1
                         ORDER BY case_id::text LIMIT $2",
                    )
                    .bind(&after)
                    .bind(RESEAL_PAGE)
                    .fetch_all(pool)
                    .await?
                }
                #[cfg(feature = "sqlite")]
                Pool::Lite(pool) => {
                    sqlx::query_as(
                        "SELECT case_id, connector, name, phone, id_number FROM reporters
                         WHERE erased_at IS NULL AND case_id > $1
                         ORDER BY case_id LIMIT $2",
                    )
                    .bind(&after)
                    .bind(RESEAL_PAGE)
                    .fetch_all(pool)
                    .await?
                }
            };
            let Some(last) = rows.last() else {
                return Ok(resealed);
            };
            after = last.0.clone();
            for (case_id, connector, name, phone, id_number) in rows {
                let stale = [&name, &phone, &id_number]
                    .iter()
                    .any(|v| v.as_deref().is_some_and(|v| !seal.is_current(v)));
                if !stale {
                    continue;
                }
                let id: uuid::Uuid = case_id.parse()?;
                let open = |field: &str, value: &Option<String>| {
                    seal.open(id, field, value.as_deref())
                        .map_err(|e| anyhow::anyhow!("case {case_id}, {field}: {e}"))
                };
                let plain = Reporter {
                    name: open("name", &name)?,
                    phone: open("phone", &phone)?,
                    id_number: open("id_number", &id_number)?,
                    ..Reporter::default()
                };
                let sealed = seal.seal_reporter(id, &plain);
                let hash = seal.phone_hash(plain.phone.as_deref());
                let sql = match &self.pool {
                    Pool::Pg(_) => {
                        "UPDATE reporters SET name = $3, phone = $4, id_number = $5, phone_hash = $6
                         WHERE case_id = CAST($1 AS uuid) AND connector = $2"
                    }
                    #[cfg(feature = "sqlite")]
                    Pool::Lite(_) => {
                        "UPDATE reporters SET name = $3, phone = $4, id_number = $5, phone_hash = $6
                         WHERE case_id = $1 AND connector = $2"
                    }
                };
                super::backend::either!(pool & self.pool, |pool| {
                    sqlx::query(sql)
                        .bind(&case_id)
                        .bind(&connector)
                        .bind(&sealed.name)
                        .bind(&sealed.phone)
                        .bind(&sealed.id_number)
                        .bind(&hash)
                        .execute(pool)
                        .await?;
                });
                resealed += 1;
            }
        }
    }
}

impl Store {
    /// Seals again, with the current key, every sealed description (a
    /// confidential complainant's) sealed with an older key. Returns how
    /// many; a value no configured key opens stops it, naming the case.
    pub async fn reseal_descriptions(&self) -> anyhow::Result<u64> {
        let seal = &self.seal;
        let Some(current) = seal.current() else {
            anyhow::bail!("no data keys configured");
        };
        let current = format!("gh1:{current}:%");
        let mut resealed = 0;
        loop {
            let rows: Vec<(String, String)> = match &self.pool {
                Pool::Pg(pool) => {
                    sqlx::query_as(
                        "SELECT id::text, description FROM cases
                         WHERE description LIKE 'gh1:%' AND description NOT LIKE $1 LIMIT $2",
                    )
                    .bind(&current)
                    .bind(RESEAL_PAGE)
                    .fetch_all(pool)
                    .await?
                }
                #[cfg(feature = "sqlite")]
                Pool::Lite(pool) => {
                    sqlx::query_as(
                        "SELECT id, description FROM cases
                         WHERE description LIKE 'gh1:%' AND description NOT LIKE $1 LIMIT $2",
                    )
                    .bind(&current)
                    .bind(RESEAL_PAGE)
                    .fetch_all(pool)
                    .await?
                }
            };
            if rows.is_empty() {
                return Ok(resealed);
            }
            for (case_id, stored) in rows {
                let id: uuid::Uuid = case_id.parse()?;
                let plain = seal
                    .open(id, "description", Some(&stored))
                    .map_err(|e| anyhow::anyhow!("case {case_id}, description: {e}"))?;
                let sealed = seal.seal(id, "description", plain.as_deref());
                let sql = match &self.pool {
                    Pool::Pg(_) => "UPDATE cases SET description = $2 WHERE id = CAST($1 AS uuid)",
                    #[cfg(feature = "sqlite")]
                    Pool::Lite(_) => "UPDATE cases SET description = $2 WHERE id = $1",
                };
                super::backend::either!(pool & self.pool, |pool| {
                    sqlx::query(sql)
                        .bind(&case_id)
                        .bind(&sealed)
                        .execute(pool)
                        .await?;
                });
                resealed += 1;
            }
        }
    }
}
