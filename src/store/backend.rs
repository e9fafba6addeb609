//! The two backends: a pool and a write transaction on PostgreSQL or SQLite.
//!
//! An enum rather than a trait: there are exactly two, the flow functions
//! stay ordinary (not generic) functions compiled once, and each data-access
//! step shows both statements side by side in one `match`.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqlitePool};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Pg(PgPool),
    #[cfg(feature = "sqlite")]
    Lite(SqlitePool),
}

/// A write transaction on either backend.
pub(crate) enum Tx {
    Pg(Transaction<'static, Postgres>),
    #[cfg(feature = "sqlite")]
    Lite(Transaction<'static, Sqlite>),
}

impl Pool {
    /// Begins a write transaction. On SQLite it begins IMMEDIATE: it takes
    /// the database's one write lock at once (waiting up to the busy
    /// timeout), so the transaction cannot fail later upgrading a read lock.
    /// That lock is also why SQLite needs neither advisory locks nor
    /// `FOR UPDATE [SKIP LOCKED]`: a writer is alone until it commits.
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Pg(pool) => Tx::Pg(pool.begin().await?),
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => Tx::Lite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(tx) => tx.commit().await,
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => tx.commit().await,
        }
    }
}

/// Runs `$body` on whichever backend it is, for a statement whose SQL is
/// the same on both: `tx` form with `$conn` the transaction, `$uuid` and
/// `$time` functions encoding a uuid and a time as that backend stores
/// them; `pool` form with `$conn` the pool. The body is written once and
/// compiled for each.
macro_rules! either {
    (tx $tx:expr, |$conn:ident, $uuid:ident, $time:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Pg($conn) => {
                #[allow(unused_variables)]
                let $uuid = |id: ::uuid::Uuid| id;
                #[allow(unused_variables)]
                let $time = |at: ::chrono::DateTime<::chrono::Utc>| at;
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::store::Tx::Lite($conn) => {
                #[allow(unused_variables)]
                let $uuid = $crate::store::backend::lite_uuid;
                #[allow(unused_variables)]
                let $time = $crate::store::backend::lite_time;
                $body
            }
        }
    };
    (pool $pool:expr, |$conn:ident| $body:expr) => {
        match $pool {
            $crate::store::Pool::Pg($conn) => $body,
            #[cfg(feature = "sqlite")]
            $crate::store::Pool::Lite($conn) => $body,
        }
    };
}
pub(super) use either;

/// SQLite keeps timestamps as UTC text of one fixed width
/// (`2026-11-28T08:35:12.123456Z`), so that comparing and sorting the text
/// compares and sorts the times. The migrations' defaults write the same
/// shape (see `lite_now!`).
pub(super) fn lite_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// SQL for the current time in the shape of [`lite_time`] (SQLite's `%f`
/// is seconds with three decimals), for `concat!` into SQLite statements.
macro_rules! lite_now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')"
    };
}
pub(super) use lite_now;

/// SQLite keeps uuids as hyphenated text.
pub(super) fn lite_uuid(id: Uuid) -> uuid::fmt::Hyphenated {
    id.hyphenated()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_times_have_one_width() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T08:35:12Z")
            .unwrap()
            .to_utc();
        assert_eq!(lite_time(at), "2026-11-28T08:35:12.000000Z");
        let later = at + chrono::Duration::microseconds(1);
        assert_eq!(lite_time(later), "2026-11-28T08:35:12.000001Z");
        assert!(lite_time(at) < lite_time(later));
    }
}
