//! The case store: PostgreSQL in production, SQLite for the demo and
//! single-process use, written in batches.
//!
//! A batch of prepared messages (and of refusals already in their DLQ) is
//! recorded in one transaction: inbox rows, case sources, cases, reporters,
//! case events, outbox rows and dead-letter records. On PostgreSQL each is
//! one multi-row statement, so a batch costs the same handful of round trips
//! whatever its size; on SQLite (in process, no round trips) each row is one
//! prepared statement.
//!
//! The case logic (this file's `apply_batch`, `open.rs`, `update.rs`) is
//! written once, against [`Tx`]: a transaction on either backend. It holds
//! no SQL: each data-access step (claim inbox rows, insert case sources,
//! lock and load a case, ...) is a method on `Tx` in `statements/`, one file
//! per table group, that matches on the backend and runs its statement.

// Without SQLite (a production build), what only its statements use is
// unused: the helpers that shape SQLite's values and their imports.
#![cfg_attr(
    not(feature = "sqlite"),
    allow(unused_imports, unused_macros, dead_code)
)]

pub mod assessment;
pub mod audit;
mod backend;
pub mod callbacks;
pub mod dead_letters;
pub mod department;
pub mod duplicates;
mod events;
mod open;
pub mod open311;
pub mod outbox;
mod overdue;
pub mod query;
pub mod reference;
pub mod retention;
pub mod schema;
pub mod seal;
mod statements;
mod update;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use sqlx::Connection as _;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use uuid::Uuid;

use crate::connector::Registry;
use crate::intent::{Intent, OpenCase, UpdateCase};
use crate::pipeline::{Refusal, Stage};
use crate::places::Locate;
use crate::routing::Routing;

pub(crate) use backend::{Pool, Tx};
pub use outbox::OutboxEvent;
pub use overdue::Escalation;

/// Why the store could not do what was asked, split by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, restarting, or out of connections:
    /// back off and try the same work again.
    #[error("case store unavailable: {0}")]
    Transient(#[source] sqlx::Error),
    /// The database refused the data itself, or a stored row is corrupt:
    /// retrying cannot help. `code` names the error: `SQLSTATE 23505`,
    /// `SQLite 2067`, `decode`, or the corrupt row and value.
    #[error("case store refused the data ({code})")]
    Permanent { code: String },
}

impl StoreError {
    /// A transaction that lost a deadlock or a serialization conflict on
    /// PostgreSQL (SQLSTATE 40P01, 40001): the same work may succeed now.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Transient(sqlx::Error::Database(error)) => {
                matches!(error.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        classify(error)
    }
}

/// Data errors are permanent: on PostgreSQL SQLSTATE classes 21, 22, 23, 42
/// and 54; on SQLite a constraint, datatype, size or SQL error. Everything
/// else (connection, pool, shutdown, serialization failure, SQLite busy or
/// locked, I/O) is transient.
fn classify(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && let Some(code) = db.code()
    {
        #[cfg(feature = "sqlite")]
        let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
        #[cfg(not(feature = "sqlite"))]
        let sqlite = false;
        if sqlite {
            #[cfg(feature = "sqlite")]
            if code.parse::<i32>().is_ok_and(sqlite_permanent) {
                return StoreError::Permanent {
                    code: format!("SQLite {code}"),
                };
            }
        } else if ["21", "22", "23", "42", "54"]
            .iter()
            .any(|class| code.starts_with(class))
        {
            return StoreError::Permanent {
                code: format!("SQLSTATE {code}"),
            };
        }
    }
    if matches!(
        error,
        sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }
    ) {
        return StoreError::Permanent {
            code: "decode".to_owned(),
        };
    }
    StoreError::Transient(error)
}

/// SQLite result codes (the primary code is the low byte of the extended
/// one) that retrying cannot fix: SQLITE_ERROR (1, an SQL error such as a
/// missing table), SQLITE_TOOBIG (18), SQLITE_CONSTRAINT (19),
/// SQLITE_MISMATCH (20), SQLITE_RANGE (25). SQLITE_BUSY (5), SQLITE_LOCKED
/// (6), SQLITE_IOERR (10), SQLITE_FULL (13) and the rest are transient.
#[cfg(feature = "sqlite")]
fn sqlite_permanent(extended: i32) -> bool {
    matches!(extended & 0xff, 1 | 18 | 19 | 20 | 25)
}

/// One message of a batch.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub connector: &'a str,
    /// `None` only for refusals of messages that had no usable message_id.
    pub message_id: Option<&'a str>,
    pub message_type: &'a str,
    /// Replays from a DLQ: a replay may redo a message that was refused.
    pub replays: i32,
    pub work: Work<'a>,
}

#[derive(Debug, Clone)]
pub enum Work<'a> {
    /// Record what the intent asks for.
    Apply(&'a Intent),
    /// Record a refusal whose message is already safely in its DLQ.
    Refused {
        refusal: &'a Refusal,
        routing_key: &'a str,
    },
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A new case was opened.
    CaseOpened { case_no: String },
    /// The message_id was recorded before: nothing done again.
    AlreadyProcessed,
    /// The source's ticket already has a case: nothing new recorded.
    DuplicateSource,
    /// The refusal was recorded.
    RefusalRecorded,
    /// A lifecycle update was applied (or recorded as late).
    CaseUpdated { case_no: String },
    /// Records were forwarded to their destinations.
    RecordsShared { records: usize, destinations: usize },
    /// Grid reference data was updated.
    GridsUpdated { grids: usize },
    /// The store refused this item; nothing of it was recorded.
    Refused(Refusal),
}

/// What applying a batch needs besides the data: who receives events, the
/// routing rules, and the district's places.
#[derive(Clone)]
pub struct Rules {
    /// Destination that receives every event (the district command centre).
    pub centre: String,
    pub registry: Arc<Registry>,
    pub routing: Arc<Routing>,
    pub places: Arc<dyn Locate>,
}

/// The case store on PostgreSQL or SQLite; cheap to clone (a pool).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// What personal data is sealed with at rest: reporters, confidential
    /// complaints' descriptions, dead letters' bodies (store/seal.rs).
    seal: seal::Seal,
}

impl Store {
    /// Connects and runs the pending migrations (`schema::Mode::Migrate`).
    /// The URL's scheme chooses the backend: `postgres://` or
    /// `postgresql://` (the database is created if missing), or `sqlite:`
    /// (`sqlite::memory:`, `sqlite:///path/file.db`,
    /// `sqlite://file.db?mode=rwc`). A schema newer than this build is
    /// refused ([`schema::SchemaError`]).
    pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<Store> {
        Store::connect_with(url, pool_size, schema::Mode::Migrate).await
    }

    /// Connects, doing what `mode` says with the schema first (see
    /// [`schema`]): migrate it, or only check that it is this build's.
    pub async fn connect_with(
        url: &str,
        pool_size: u32,
        mode: schema::Mode,
    ) -> anyhow::Result<Store> {
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return Store::connect_sqlite(url, pool_size, mode).await;
            #[cfg(not(feature = "sqlite"))]
            anyhow::bail!(
                "database url: this build has no SQLite (the demo's store); use PostgreSQL, or build with the sqlite feature"
            );
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            anyhow::bail!("database url: expected postgres://, postgresql:// or sqlite:");
        }
        let options =
            PgConnectOptions::from_str(url).map_err(|e| anyhow::anyhow!("database url: {e}"))?;
        if mode == schema::Mode::Migrate {
            schema::create_postgres_database(url).await?;
        }
        // The schema first, on a connection of its own under the migration
        // lock; then the pool.
        schema::postgres(&options, mode).await?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(5))
            // A connection keeps its buffers at the size of the largest
            // statement or result it carried (a page of shared records, a
            // relay page): give that back when it returns to the pool, so
            // that a pool of connections does not hold a page each.
            .after_release(|connection, _| {
                Box::pin(async move {
                    connection.shrink_buffers();
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            pool: Pool::Pg(pool),
            seal: seal::Seal::default(),
        })
    }

    #[cfg(feature = "sqlite")]
    /// SQLite: one writer at a time. Write transactions begin IMMEDIATE (they
    /// take the write lock at once, so two never deadlock upgrading a read
    /// lock), waiting up to `busy_timeout` for it; a file database runs in
    /// WAL mode so that readers do not block the writer. An in-memory
    /// database lives as long as its connections, so it gets exactly one,
    /// kept for the life of the pool (and is migrated on it).
    async fn connect_sqlite(
        url: &str,
        pool_size: u32,
        mode: schema::Mode,
    ) -> anyhow::Result<Store> {
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("database url: {e}"))?;
        if !url.contains("mode=") {
            options = options.create_if_missing(true);
        }
        let options = options
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(pool_size.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.journal_mode(SqliteJournalMode::Wal))
                .await?
        };
        {
            let mut conn = pool.acquire().await?;
            schema::sqlite(&mut conn, mode).await?;
        }
        Ok(Store {
            pool: Pool::Lite(pool),
            seal: seal::Seal::default(),
        })
    }

    /// A store on an existing PostgreSQL pool (already migrated).
    pub fn from_pool(pool: PgPool) -> Store {
        Store {
            pool: Pool::Pg(pool),
            seal: seal::Seal::default(),
        }
    }

    /// This store, sealing the personal data it records with `seal`'s
    /// current key and opening it with any of its keys.
    pub fn sealed(self, seal: seal::Seal) -> Store {
        Store { seal, ..self }
    }

    /// The PostgreSQL pool, for tests and tools that query it directly;
    /// `None` on SQLite.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Pg(pool) => Some(pool),
            #[cfg(feature = "sqlite")]
            Pool::Lite(_) => None,
        }
    }

    #[cfg(feature = "sqlite")]
    /// The SQLite pool, for tests and tools that query it directly; `None`
    /// on PostgreSQL.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.pool {
            Pool::Pg(_) => None,
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => Some(pool),
        }
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match &self.pool {
            Pool::Pg(_) => "postgres",
            #[cfg(feature = "sqlite")]
            Pool::Lite(_) => "sqlite",
        }
    }

    /// Records a batch in one transaction. If the database refuses the data
    /// of some item, every item is retried alone so that only the bad one is
    /// refused. A transient error leaves nothing recorded.
    pub async fn apply(
        &self,
        items: &[Item<'_>],
        rules: &Rules,
    ) -> Result<Vec<Applied>, StoreError> {
        match self.apply_in_one(items, rules).await {
            Err(StoreError::Permanent { code }) if items.len() > 1 => {
                tracing::warn!(code = %code, items = items.len(), "batch refused by the case store; applying one by one");
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    results.push(self.apply_alone(item, rules).await?);
                }
                Ok(results)
            }
            Err(StoreError::Permanent { code }) => Ok(vec![store_refusal(&code)]),
            other => other,
        }
    }

    /// Which of these refused messages the inbox already settled (a
    /// redelivery of something recorded), so that they are not dead-lettered
    /// twice. A replay (more replays than the recorded refusal) is not settled.
    pub async fn settled(
        &self,
        connector: &str,
        messages: &[(&str, i32)],
    ) -> Result<HashSet<String>, StoreError> {
        if messages.is_empty() {
            return Ok(HashSet::new());
        }
        match &self.pool {
            Pool::Pg(pool) => {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT i.message_id FROM inbox i
                     JOIN UNNEST($2::text[], $3::int4[]) AS r(message_id, replays) ON i.message_id = r.message_id
                     WHERE i.connector = $1 AND NOT (i.outcome = 'refused' AND i.replays < r.replays)",
                )
                .bind(connector)
                .bind(messages.iter().map(|(id, _)| *id).collect::<Vec<_>>())
                .bind(messages.iter().map(|(_, replays)| *replays).collect::<Vec<_>>())
                .fetch_all(pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let mut settled = HashSet::new();
                for (id, replays) in messages {
                    let found: Option<String> = sqlx::query_scalar(
                        "SELECT message_id FROM inbox WHERE connector = $1 AND message_id = $2
                           AND NOT (outcome = 'refused' AND replays < $3)",
                    )
                    .bind(connector)
                    .bind(*id)
                    .bind(*replays)
                    .fetch_optional(pool)
                    .await?;
                    settled.extend(found);
                }
                Ok(settled)
            }
        }
    }

    /// Records a step the district centre's desk enters for the unit the
    /// update names, on a case led inside the grid system (see
    /// [`update::By::Desk`]), in one transaction with its events. A refusal
    /// says why; nothing is then recorded.
    pub async fn desk_update(
        &self,
        update: &UpdateCase,
        actor: &str,
        rules: &Rules,
    ) -> Result<Applied, StoreError> {
        self.by_hand(update, update::By::Desk { actor }, rules)
            .await
    }

    /// Records a dispatcher's action on a case (see [`update::By::Centre`]:
    /// dispatch, review a return, remind, supervise, close, reopen), in one
    /// transaction with its events. A refusal says why; nothing is then
    /// recorded.
    pub async fn centre_update(
        &self,
        update: &UpdateCase,
        actor: &str,
        rules: &Rules,
    ) -> Result<Applied, StoreError> {
        self.by_hand(update, update::By::Centre { actor }, rules)
            .await
    }

    /// An update entered at the desk, in one transaction with its events.
    /// A transaction that lost a deadlock or a serialization conflict (two
    /// dispatchers merging two cases into each other, say) runs again, up
    /// to three times in all: the second then sees the first's result.
    async fn by_hand(
        &self,
        update: &UpdateCase,
        by: update::By<'_>,
        rules: &Rules,
    ) -> Result<Applied, StoreError> {
        let mut attempt = 1;
        loop {
            match self.by_hand_once(update, by, rules).await {
                Err(error) if attempt < 3 && error.is_conflict() => attempt += 1,
                result => return result,
            }
        }
    }

    async fn by_hand_once(
        &self,
        update: &UpdateCase,
        by: update::By<'_>,
        rules: &Rules,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.pool.begin().await?;
        let applied =
            update::update_case(&mut tx, by, update, rules, &self.seal, Utc::now()).await?;
        // A refused update wrote nothing; dropping the transaction ends it.
        if !matches!(applied, Applied::Refused(_)) {
            tx.commit().await?;
        }
        Ok(applied)
    }

    async fn apply_alone(&self, item: &Item<'_>, rules: &Rules) -> Result<Applied, StoreError> {
        match self.apply_in_one(std::slice::from_ref(item), rules).await {
            Ok(mut results) => Ok(results.remove(0)),
            Err(StoreError::Permanent { code }) => Ok(store_refusal(&code)),
            Err(error) => Err(error),
        }
    }

    async fn apply_in_one(
        &self,
        items: &[Item<'_>],
        rules: &Rules,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let results = apply_batch(&mut tx, items, rules, &self.seal).await?;
        tx.commit().await?;
        Ok(results)
    }
}

fn store_refusal(code: &str) -> Applied {
    Applied::Refused(Refusal::new(
        Stage::Apply,
        format!("the case store refused the data ({code})"),
    ))
}

/// Message ids seen earlier in the same batch are duplicates too.
async fn apply_batch(
    tx: &mut Tx,
    items: &[Item<'_>],
    rules: &Rules,
    seal: &seal::Seal,
) -> Result<Vec<Applied>, StoreError> {
    let mut results: Vec<Option<Applied>> = vec![None; items.len()];

    // 1. Claim every message_id in the inbox; what is already there was done.
    // One claim per message_id (a statement may not touch a row twice): the
    // copy with the most replays, since an older copy can only be a duplicate.
    let mut chosen: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let Some(id) = item.message_id else { continue };
        match chosen.entry((item.connector, id)) {
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
            Entry::Occupied(mut slot) => {
                let earlier = *slot.get();
                if item.replays > items[earlier].replays {
                    results[earlier] = Some(Applied::AlreadyProcessed);
                    slot.insert(index);
                } else {
                    results[index] = Some(Applied::AlreadyProcessed);
                }
            }
        }
    }
    let mut claim: Vec<usize> = chosen.into_values().collect();
    claim.sort_unstable();
    let case_ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();
    let claims: Vec<statements::InboxClaim<'_>> = claim
        .iter()
        .map(|&i| statements::InboxClaim {
            connector: items[i].connector,
            message_id: items[i].message_id.unwrap_or_default(),
            message_type: items[i].message_type,
            outcome: outcome_of(&items[i].work),
            case_id: matches!(items[i].work, Work::Apply(Intent::OpenCase(_)))
                .then_some(case_ids[i]),
            replays: items[i].replays,
        })
        .collect();
    let claimed = tx.claim_inbox(&claims).await?;
    for &index in &claim {
        let item = &items[index];
        let key = (
            item.connector.to_owned(),
            item.message_id.unwrap_or_default().to_owned(),
        );
        if !claimed.contains(&key) {
            results[index] = Some(Applied::AlreadyProcessed);
        }
    }

    // 2. Do what is new, by kind of work, in the order received.
    let now = Utc::now();
    let mut opens: Vec<(usize, &OpenCase)> = Vec::new();
    let mut refusals: Vec<usize> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if results[index].is_none() {
            match &item.work {
                Work::Apply(Intent::OpenCase(open)) => opens.push((index, open)),
                Work::Refused { .. } => refusals.push(index),
                Work::Apply(_) => {}
            }
        }
    }
    if !opens.is_empty() {
        let opened = open::open_cases(tx, items, &opens, &case_ids, rules, seal, now).await?;
        for ((index, _), applied) in opens.iter().zip(opened) {
            results[*index] = Some(applied);
        }
    }
    // Records shared by the whole batch go to the outbox in one statement.
    let mut shared = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if results[index].is_some() {
            continue;
        }
        let message_id = item.message_id.unwrap_or_default();
        let applied = match &item.work {
            Work::Apply(Intent::UpdateCase(update)) => {
                let by = update::By::Message {
                    connector: item.connector,
                    message_id,
                };
                update::update_case(tx, by, update, rules, seal, now).await?
            }
            Work::Apply(Intent::ShareRecords(share)) => reference::share(
                item.connector,
                item.message_type,
                message_id,
                share,
                rules,
                &mut shared,
            ),
            Work::Apply(Intent::UpdateGrids(grids)) => reference::update_grids(tx, grids).await?,
            Work::Apply(Intent::OpenCase(_)) | Work::Refused { .. } => continue,
        };
        if matches!(applied, Applied::Refused(_)) {
            // Not done after all: the consumer dead-letters it and records
            // the refusal, which claims the inbox row afresh.
            tx.release_inbox(item.connector, message_id).await?;
        }
        results[index] = Some(applied);
    }
    tx.insert_outbox(&shared, seal).await?;
    if !refusals.is_empty() {
        tx.record_refusals(&refused(items, &refusals)).await?;
        for index in refusals {
            results[index] = Some(Applied::RefusalRecorded);
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect())
}

fn outcome_of(work: &Work<'_>) -> &'static str {
    match work {
        Work::Apply(Intent::OpenCase(_)) => "case_opened",
        Work::Apply(Intent::UpdateCase(_)) => "case_updated",
        Work::Apply(Intent::ShareRecords(_)) => "records_shared",
        Work::Apply(Intent::UpdateGrids(_)) => "grids_updated",
        Work::Refused { .. } => "refused",
    }
}

/// Readable case number: TZ, the Beijing date of receipt (yymmdd), a sequence.
fn case_no(received_at: &DateTime<FixedOffset>, seq: i64) -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    format!(
        "TZ{}{:07}",
        received_at.with_timezone(&beijing).format("%y%m%d"),
        seq
    )
}

/// The refusals among `items`, as recorded.
fn refused<'a>(items: &[Item<'a>], refusals: &[usize]) -> Vec<statements::Refused<'a>> {
    refusals
        .iter()
        .filter_map(|&index| {
            let item = &items[index];
            let Work::Refused {
                refusal,
                routing_key,
            } = &item.work
            else {
                return None;
            };
            Some(statements::Refused {
                connector: item.connector,
                message_id: item.message_id,
                routing_key: crate::message::printable(routing_key).into_owned(),
                stage: refusal.stage.as_str(),
                reason: clean(&refusal.reason),
                schema: refusal.schema.as_deref(),
                violations: clean(
                    &serde_json::to_string(&refusal.violations).unwrap_or_else(|_| "[]".into()),
                ),
            })
        })
        .collect()
}

/// PostgreSQL text cannot hold NUL; reasons quote names from the message.
/// (SQLite could, but both keep the same text.)
fn clean(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_use_the_beijing_date() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T17:30:00Z").unwrap();
        assert_eq!(case_no(&at, 42), "TZ2611280000042");
    }
}
