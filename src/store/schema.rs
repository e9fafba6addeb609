//! The case store's schema: the migrations this build carries, those the
//! database has applied, and applying the missing ones, one process at a
//! time.
//!
//! On PostgreSQL every process that looks at or changes the schema (a hub
//! starting, `gridhub migrate`, every CLI command that opens the store)
//! first takes the session advisory lock [`MIGRATION_LOCK`] on a connection
//! of its own, then reads `_sqlx_migrations`, decides, migrates if it is to,
//! and lets go (closing the connection lets go too, whatever happened). So
//! two hubs starting at once, or a hub and `gridhub migrate`, never apply a
//! migration twice, and none of them reads the list of applied migrations
//! while another is half-way through it. sqlx's migrator takes an advisory
//! lock of its own around its run (keyed on the database's name); that one
//! is an implementation detail of sqlx (a migrator may be built without it)
//! and does not cover our reading of the schema before the run, so the hub
//! holds its own around the whole of it. The two nest: ours is always
//! taken first.
//!
//! SQLite has no advisory locks and needs none: the whole check and
//! migration runs in one `BEGIN IMMEDIATE` transaction, which holds the
//! database's only write lock from the first read to the commit (each
//! migration is a savepoint inside it). A second process waits for that
//! lock (`busy_timeout`), then finds nothing left to do.
//!
//! A database that has applied a migration this build does not carry was
//! migrated by a newer gridhub: every command refuses it
//! ([`SchemaError::Newer`]), naming the versions, rather than run on a
//! schema it does not know.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Postgres;

/// The PostgreSQL migrations, `src/store/migrations`.
pub static POSTGRES: Migrator = sqlx::migrate!("src/store/migrations");

/// The SQLite migrations, `src/store/sqlite_migrations`.
#[cfg(feature = "sqlite")]
pub static SQLITE: Migrator = sqlx::migrate!("src/store/sqlite_migrations");

/// The key of the PostgreSQL session advisory lock held while the schema is
/// read and migrated: "gridhubM" as a big-endian integer. Advisory locks
/// are per database, so hubs of other districts' databases on the same
/// server never wait for each other.
pub const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"gridhubM");

/// What a process does with the schema when it opens the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply the pending migrations (creating the database if missing).
    Migrate,
    /// Apply nothing: refuse a schema that is behind this build
    /// ([`SchemaError::Behind`]); `serve` with `database_migrate = false`.
    Check,
    /// Apply nothing, change nothing (not even create the database): say
    /// what `Migrate` would do. `gridhub migrate --dry-run`.
    DryRun,
}

/// One migration: its version and description (from its file's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version: i64,
    pub description: String,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.version, self.description)
    }
}

/// A database's schema against this build's migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The newest migration the database has applied; `None` when it has
    /// none (a new database).
    pub current: Option<i64>,
    /// The newest migration this build carries.
    pub latest: i64,
    /// This build's migrations the database has not applied, oldest first.
    pub pending: Vec<Version>,
    /// Migrations the database has applied that this build does not carry:
    /// a newer gridhub's.
    pub unknown: Vec<Version>,
    /// Migrations applied with other content than this build's file.
    pub changed: Vec<i64>,
    /// Migrations recorded as failed part-way (`success = false`).
    pub failed: Vec<i64>,
    /// The database does not exist yet (only a dry run leaves it so).
    pub no_database: bool,
}

/// What opening the store did to the schema.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The schema as found, under the lock.
    pub plan: Plan,
    /// The migrations applied (empty for a dry run or a check).
    pub applied: Vec<Version>,
    /// How long this process waited for another's migration, if it did.
    pub waited: Option<Duration>,
}

/// A schema this build must not run on, or cannot migrate. Not transient:
/// `serve` stops on it instead of retrying.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the database's schema is newer than this gridhub: it has applied migration {} that this build does not carry (this build's newest is {latest}); run the gridhub that migrated it, or a newer one",
        list(unknown)
    )]
    Newer { unknown: Vec<Version>, latest: i64 },
    #[error(
        "the database's schema is behind this gridhub ({}, this build at {latest}): migration {} pending; run `gridhub migrate`, or let serve migrate at start (database_migrate = true)",
        current.map_or("no migration applied".to_owned(), |v| format!("database at {v}")),
        list(pending)
    )]
    Behind {
        pending: Vec<Version>,
        current: Option<i64>,
        latest: i64,
    },
    #[error(
        "migration {changed:?} was applied with other content than this build's file of the same version: a migration file was edited after it ran; restore the file as it was and put the change in a new migration"
    )]
    Changed { changed: Vec<i64> },
    #[error(
        "migration {failed:?} is recorded as failed part-way (_sqlx_migrations.success = false): repair the schema by hand, then delete that row"
    )]
    Failed { failed: Vec<i64> },
}

fn list(versions: &[Version]) -> String {
    versions
        .iter()
        .map(Version::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a database has applied, oldest first.
const APPLIED: &str =
    "SELECT version, description, checksum, success FROM _sqlx_migrations ORDER BY version";

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Applied {
    pub version: i64,
    pub description: String,
    pub checksum: Vec<u8>,
    pub success: bool,
}

impl Plan {
    /// Compares what a database applied with what a build carries.
    pub fn new(known: &Migrator, applied: &[Applied]) -> Plan {
        let carried: HashMap<i64, &sqlx::migrate::Migration> = known
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m))
            .collect();
        let done: HashMap<i64, &Applied> = applied.iter().map(|a| (a.version, a)).collect();
        let mut plan = Plan {
            current: applied.iter().map(|a| a.version).max(),
            latest: carried.keys().copied().max().unwrap_or(0),
            ..Plan::default()
        };
        for migration in known
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
        {
            match done.get(&migration.version) {
                None => plan.pending.push(Version {
                    version: migration.version,
                    description: migration.description.to_string(),
                }),
                Some(a) if *a.checksum != *migration.checksum => {
                    plan.changed.push(migration.version)
                }
                Some(_) => {}
            }
        }
        for a in applied {
            if !carried.contains_key(&a.version) {
                plan.unknown.push(Version {
                    version: a.version,
                    description: a.description.clone(),
                });
            }
            if !a.success {
                plan.failed.push(a.version);
            }
        }
        plan
    }

    /// The error that stops this build from going on, if any; `Check`
    /// also refuses pending migrations.
    pub fn refusal(&self, mode: Mode) -> Option<SchemaError> {
        if !self.unknown.is_empty() {
            return Some(SchemaError::Newer {
                unknown: self.unknown.clone(),
                latest: self.latest,
            });
        }
        if !self.failed.is_empty() {
            return Some(SchemaError::Failed {
                failed: self.failed.clone(),
            });
        }
        if !self.changed.is_empty() {
            return Some(SchemaError::Changed {
                changed: self.changed.clone(),
            });
        }
        if mode == Mode::Check && !self.pending.is_empty() {
            return Some(SchemaError::Behind {
                pending: self.pending.clone(),
                current: self.current,
                latest: self.latest,
            });
        }
        None
    }
}

/// `gridhub migrate`: opens the database at `url` (PostgreSQL, or SQLite
/// with the sqlite feature) and does what `mode` says under the lock.
pub async fn run(url: &str, mode: Mode) -> anyhow::Result<Outcome> {
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return sqlite_file(url, mode).await;
        #[cfg(not(feature = "sqlite"))]
        anyhow::bail!(
            "database url: this build has no SQLite (the demo's store); use PostgreSQL, or build with the sqlite feature"
        );
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("database url: expected postgres://, postgresql:// or sqlite:");
    }
    if mode == Mode::DryRun && !Postgres::database_exists(url).await? {
        return Ok(Outcome {
            plan: Plan {
                no_database: true,
                ..Plan::new(&POSTGRES, &[])
            },
            applied: Vec::new(),
            waited: None,
        });
    }
    create_postgres_database(url).await?;
    let options =
        PgConnectOptions::from_str(url).map_err(|e| anyhow::anyhow!("database url: {e}"))?;
    postgres(&options, mode).await
}

/// Creates the PostgreSQL database of `url` if it is missing.
pub(super) async fn create_postgres_database(url: &str) -> anyhow::Result<()> {
    if Postgres::database_exists(url).await? {
        return Ok(());
    }
    match Postgres::create_database(url).await {
        Ok(()) => {
            let database = PgConnectOptions::from_str(url)
                .ok()
                .and_then(|o| o.get_database().map(str::to_owned))
                .unwrap_or_default();
            tracing::info!(database, "created database");
            Ok(())
        }
        // Another process created it meanwhile: PostgreSQL says so
        // (42P04), or, when both got past its own check at once, the
        // catalogue's unique index does (23505).
        Err(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("42P04" | "23505")) =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// On a PostgreSQL connection of its own, under [`MIGRATION_LOCK`]: reads
/// the schema, refuses what this build must not run on, and migrates if
/// `mode` says so. The connection is closed at the end, which lets go of
/// the lock whatever happened.
pub(super) async fn postgres(options: &PgConnectOptions, mode: Mode) -> anyhow::Result<Outcome> {
    let mut conn = PgConnection::connect_with(options).await?;
    let result = postgres_locked(&mut conn, mode).await;
    let _ = conn.close().await;
    result
}

async fn postgres_locked(conn: &mut PgConnection, mode: Mode) -> anyhow::Result<Outcome> {
    let waited = lock_postgres(conn).await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let applied = match exists {
        false => Vec::new(),
        true => {
            sqlx::query_as::<_, Applied>(APPLIED)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let plan = Plan::new(&POSTGRES, &applied);
    if let Some(refusal) = plan.refusal(mode) {
        return Err(refusal.into());
    }
    let mut applied = Vec::new();
    if mode == Mode::Migrate && !plan.pending.is_empty() {
        // `run_direct` rather than `run`: `run`'s `Acquire` bound makes
        // the future not `Send` (sqlx says so at `run_direct`), and a hub
        // is built inside spawned tasks.
        POSTGRES.run_direct(None, conn, false).await?;
        applied = plan.pending.clone();
        tracing::info!(
            from = plan.current.unwrap_or(0),
            to = plan.latest,
            migrations = applied.len(),
            "migrated the case store"
        );
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(Outcome {
        plan,
        applied,
        waited,
    })
}

/// Takes [`MIGRATION_LOCK`], saying so when another process holds it;
/// how long it waited, if it did.
async fn lock_postgres(conn: &mut PgConnection) -> anyhow::Result<Option<Duration>> {
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if free {
        return Ok(None);
    }
    tracing::info!("another process is reading or migrating the schema; waiting for it");
    eprintln!("gridhub: another process is migrating the database; waiting for it");
    let start = std::time::Instant::now();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(Some(start.elapsed()))
}

/// `gridhub migrate` on an SQLite file: a connection of its own, as the
/// store opens it (the file created if missing, unless a dry run).
#[cfg(feature = "sqlite")]
async fn sqlite_file(url: &str, mode: Mode) -> anyhow::Result<Outcome> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    let mut options =
        SqliteConnectOptions::from_str(url).map_err(|e| anyhow::anyhow!("database url: {e}"))?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if mode == Mode::DryRun && !in_memory && !options.get_filename().exists() {
        return Ok(Outcome {
            plan: Plan {
                no_database: true,
                ..Plan::new(&SQLITE, &[])
            },
            applied: Vec::new(),
            waited: None,
        });
    }
    if !url.contains("mode=") {
        options = options.create_if_missing(true);
    }
    // Waits for another process's migration rather than failing busy.
    let options = options
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(120));
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let result = sqlite(&mut conn, mode).await;
    let _ = conn.close().await;
    result
}

/// On an SQLite connection, in one `BEGIN IMMEDIATE` transaction (the
/// database's write lock held throughout): reads the schema, refuses what
/// this build must not run on, and migrates if `mode` says so.
#[cfg(feature = "sqlite")]
pub(super) async fn sqlite(
    conn: &mut sqlx::sqlite::SqliteConnection,
    mode: Mode,
) -> anyhow::Result<Outcome> {
    let start = std::time::Instant::now();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let waited = Some(start.elapsed()).filter(|d| *d > Duration::from_millis(100));
    let exists: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *tx)
    .await?;
    let applied = match exists {
        false => Vec::new(),
        true => {
            sqlx::query_as::<_, Applied>(APPLIED)
                .fetch_all(&mut *tx)
                .await?
        }
    };
    let plan = Plan::new(&SQLITE, &applied);
    if let Some(refusal) = plan.refusal(mode) {
        return Err(refusal.into());
    }
    let mut applied = Vec::new();
    if mode == Mode::Migrate && !plan.pending.is_empty() {
        // Each migration is a savepoint in this transaction.
        SQLITE.run_direct(None, &mut *tx, false).await?;
        applied = plan.pending.clone();
    }
    tx.commit().await?;
    Ok(Outcome {
        plan,
        applied,
        waited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i64, checksum: &[u8]) -> Applied {
        Applied {
            version,
            description: format!("m{version}"),
            checksum: checksum.to_vec(),
            success: true,
        }
    }

    fn as_applied(migrator: &Migrator, upto: i64) -> Vec<Applied> {
        migrator
            .iter()
            .filter(|m| m.version <= upto)
            .map(|m| applied(m.version, &m.checksum))
            .collect()
    }

    #[test]
    fn the_lock_key_is_fixed() {
        // Changing it would let a hub of this release and one of the next
        // migrate at once: it is part of the schema's contract.
        assert_eq!(MIGRATION_LOCK, 0x6772_6964_6875_624d);
    }

    #[test]
    fn a_new_database_has_every_migration_pending() {
        let plan = Plan::new(&POSTGRES, &[]);
        assert_eq!(plan.current, None);
        assert_eq!(plan.pending.len(), POSTGRES.iter().count());
        assert_eq!(plan.pending[0].version, 1);
        assert_eq!(plan.latest, plan.pending.last().unwrap().version);
        assert!(plan.refusal(Mode::Migrate).is_none());
        assert!(matches!(
            plan.refusal(Mode::Check),
            Some(SchemaError::Behind { .. })
        ));
    }

    #[test]
    fn the_previous_release_has_the_newest_pending() {
        let latest = POSTGRES.iter().map(|m| m.version).max().unwrap();
        let plan = Plan::new(&POSTGRES, &as_applied(&POSTGRES, latest - 1));
        assert_eq!(plan.current, Some(latest - 1));
        assert_eq!(
            plan.pending.iter().map(|v| v.version).collect::<Vec<_>>(),
            [latest]
        );
        let message = plan.refusal(Mode::Check).unwrap().to_string();
        assert!(
            message.contains(&format!("migration {latest} (")),
            "{message}"
        );
        assert!(message.contains("gridhub migrate"), "{message}");
    }

    #[test]
    fn a_newer_schema_is_refused_whatever_the_mode() {
        let mut rows = as_applied(&POSTGRES, i64::MAX);
        rows.push(Applied {
            version: 99_990_101,
            description: "from a newer gridhub".to_owned(),
            checksum: vec![0],
            success: true,
        });
        let plan = Plan::new(&POSTGRES, &rows);
        assert!(plan.pending.is_empty());
        for mode in [Mode::Migrate, Mode::Check, Mode::DryRun] {
            let message = plan.refusal(mode).expect("refused").to_string();
            assert!(
                message.contains("99990101 (from a newer gridhub)"),
                "{message}"
            );
            assert!(
                message.contains(&format!("this build's newest is {}", plan.latest)),
                "{message}"
            );
        }
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let mut rows = as_applied(&POSTGRES, i64::MAX);
        rows[2].checksum = vec![1, 2, 3];
        let plan = Plan::new(&POSTGRES, &rows);
        assert_eq!(plan.changed, [3]);
        assert!(matches!(
            plan.refusal(Mode::Migrate),
            Some(SchemaError::Changed { .. })
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn both_backends_number_their_migrations_from_one() {
        for migrator in [&POSTGRES, &SQLITE] {
            let versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
            let expected: Vec<i64> = (1..=versions.len() as i64).collect();
            assert_eq!(versions, expected);
        }
    }
}
