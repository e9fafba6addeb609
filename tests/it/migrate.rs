//! Migrations as an operation: `gridhub migrate` (the binary, as a deploy
//! step runs it), its lock, `--dry-run`, the upgrade from the previous
//! release with its data, and the refusal of a schema newer than the build.

use std::collections::BTreeMap;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use gridhub::store::schema::{self, MIGRATION_LOCK};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, PgPool};

use crate::cli::gridhub;
use crate::helpers::{
    OPS_TOKEN, POSTGRES_ADMIN, TestEnv, empty_ticket, hotline_ticket, outgoing, wait_until,
};

/// The newest migration this build carries.
fn latest() -> i64 {
    schema::POSTGRES.iter().map(|m| m.version).max().unwrap()
}

/// A database of the test's own, named and dropped at the end (even when
/// the test fails); not created until something creates it.
pub struct Database {
    pub name: String,
    pub url: String,
}

impl Database {
    pub fn named(what: &str) -> Database {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let name = format!("gridhub_test_{what}_{id}");
        Database {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }

    pub async fn create(&self) {
        admin(&format!("CREATE DATABASE {}", self.name)).await;
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin(&statement))
        })
        .join();
    }
}

async fn admin(statement: &str) {
    let mut conn = PgConnection::connect(POSTGRES_ADMIN).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// The tables of a database's public schema, each with its columns in order
/// (`_sqlx_migrations` left out).
pub async fn tables(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
            AND c.table_name <> '_sqlx_migrations'
          ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in rows {
        tables.entry(table).or_default().push(column);
    }
    tables
}

/// Per table, its row count and the MD5 of its rows (the given columns
/// only, as text, in order): equal digests, equal contents.
pub async fn digests(
    pool: &PgPool,
    tables: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    for (table, columns) in tables {
        let columns = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let digest: (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '')
               FROM (SELECT {columns} FROM \"{table}\") r"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(table.clone(), digest);
    }
    out
}

/// The versions `_sqlx_migrations` records, with their checksums.
async fn applied(pool: &PgPool) -> Vec<(i64, Vec<u8>, bool)> {
    sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// `gridhub migrate ARGS --database URL`, to the end.
fn migrate(url: &str, args: &[&str]) -> Output {
    gridhub()
        .arg("migrate")
        .args(args)
        .args(["--database", url])
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The versions a `gridhub migrate` listed under "applied:" or "would
/// apply:".
fn listed(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .skip_while(|l| !l.ends_with("apply:") && *l != "applied:")
        .skip(1)
        .map_while(|l| l.strip_prefix("  "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// Waits for a child process to exit, killing it after `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `gridhub serve` on `database`, with `more` settings; its exit status and
/// standard error if it exits within a minute.
fn serve_exit(env: &TestEnv, database: &str, more: &str) -> (Option<i32>, String) {
    let config = env.config_file(&format!(
        "database_url = \"{database}\"\nhttp_listen = \"127.0.0.1:0\"\n{more}"
    ));
    let mut child = gridhub()
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("GRIDHUB_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.and_then(|s| s.code()), stderr)
}

/// Copies every row of `from` into the tables `to` has (the columns `to`
/// has), and the sequences' positions: a database of an earlier schema
/// holding what a hub recorded. Foreign keys are not checked while copying
/// (session_replication_role = replica; rows a migration seeded are
/// replaced).
async fn copy_rows(from: &PgPool, to: &PgPool) {
    let mut tx = to.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for table in tables(to).await.keys() {
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]')::text FROM \"{table}\" t"
        )))
        .fetch_one(from)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM \"{table}\"")))
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{table}\" SELECT * FROM jsonb_populate_recordset(NULL::\"{table}\", $1::jsonb)"
        )))
        .bind(rows)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT sequencename::text FROM pg_sequences WHERE schemaname = 'public'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    for sequence in sequences {
        let (last, called): (i64, bool) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT last_value, is_called FROM \"{sequence}\""
        )))
        .fetch_one(from)
        .await
        .unwrap();
        sqlx::query("SELECT setval($1::regclass, $2, $3)")
            .bind(&sequence)
            .bind(last)
            .bind(called)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The release before this one: every migration but the newest.
fn previous_release() -> Migrator {
    let latest = latest();
    Migrator::with_migrations(
        schema::POSTGRES
            .iter()
            .filter(|m| m.version < latest)
            .cloned()
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_from_the_previous_release_keeps_the_data_and_serves() {
    let env = TestEnv::new().await;
    let latest = latest();

    // What a hub records: cases dispatched and merged, their events, the
    // outbox, refusals and their dead letters.
    let hub = env.start_hub(env.settings.clone()).await;
    env.load_one_grid().await;
    let tickets: Vec<_> = (0..12)
        .map(|n| hotline_ticket(&format!("BJ12345-20261201-{:06}", 100 + n)))
        .chain((0..3).map(|n| empty_ticket(&format!("upgrade-refused-{n}"))))
        .collect();
    env.publish(&tickets).await;
    env.wait_count("SELECT count(*) FROM cases", 12, Duration::from_secs(30))
        .await;
    env.wait_count(
        "SELECT count(*) FROM dlq_messages",
        3,
        Duration::from_secs(30),
    )
    .await;
    env.wait_count(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
        0,
        Duration::from_secs(30),
    )
    .await;
    hub.stop().await;

    // The same rows in a database of the previous release's schema.
    let previous = Database::named("prev");
    previous.create().await;
    let pool = previous.pool().await;
    previous_release().run(&pool).await.unwrap();
    copy_rows(&env.pool, &pool).await;
    let before_tables = tables(&pool).await;
    let before = digests(&pool, &before_tables).await;
    assert_eq!(
        before,
        digests(&env.pool, &before_tables).await,
        "the previous release's database holds what the hub recorded"
    );
    for table in [
        "cases",
        "case_events",
        "dead_letters",
        "dlq_messages",
        "outbox",
    ] {
        assert!(before[table].0 > 0, "{table} has rows");
    }
    let migrations_before = applied(&pool).await;
    assert_eq!(migrations_before.len() as i64, latest - 1);

    // serve that does not migrate refuses it, naming what is pending.
    let (code, stderr) = serve_exit(&env, &previous.url, "database_migrate = false\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("behind this gridhub")
            && stderr.contains(&format!("database at {}", latest - 1))
            && stderr.contains(&format!("migration {latest} (")),
        "{stderr}"
    );

    // Nor do the commands that open the store, with the same setting.
    let config = env.config_file(&format!(
        "database_url = \"{}\"\ndatabase_migrate = false\n",
        previous.url
    ));
    let output = gridhub()
        .args(["cases", "--config"])
        .arg(&config)
        .env_remove("GRIDHUB_DATABASE_URL")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("behind this gridhub"), "{stderr}");

    // --dry-run lists exactly the newest, and changes nothing.
    let output = migrate(&previous.url, &["--dry-run"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "database at version {}; this gridhub's schema is version {latest}\nwould apply:\n",
            latest - 1
        )),
        "{stdout}"
    );
    assert_eq!(listed(&stdout), [latest], "{stdout}");
    assert_eq!(applied(&pool).await, migrations_before);
    assert_eq!(tables(&pool).await, before_tables);
    assert_eq!(digests(&pool, &before_tables).await, before);

    // The upgrade.
    let output = migrate(&previous.url, &[]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(listed(&stdout), [latest], "{stdout}");
    assert!(
        stdout.ends_with(&format!("database at version {latest}\n")),
        "{stdout}"
    );
    let now = applied(&pool).await;
    assert_eq!(now.len() as i64, latest);
    assert!(now.iter().all(|(_, _, success)| *success));
    assert_eq!(now[..migrations_before.len()], migrations_before[..]);
    // Every row as it was, in every column the previous release had.
    assert_eq!(digests(&pool, &before_tables).await, before);
    let output = migrate(&previous.url, &[]);
    let (stdout, _) = text(&output);
    assert!(
        output.status.success() && stdout.contains("up to date: nothing to apply"),
        "{stdout}"
    );

    // A hub of this release serves on it (without migrating: the schema
    // is its own now): the old cases read back and move on, new ones open.
    let settings = gridhub::settings::Settings {
        database_url: previous.url.clone(),
        database_migrate: false,
        ..env.settings.clone()
    };
    let hub = env.start_hub(settings).await;
    let mut ready = 0;
    for _ in 0..100 {
        (ready, _) = hub.call("GET", "/readyz", None, None).await;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200, "the upgraded hub is ready");
    let old_case: String = sqlx::query_scalar(
        "SELECT case_no FROM cases WHERE status = 'dispatched' AND lead_unit = 'dept-urban-management' ORDER BY case_no LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (status, case) = hub.get(&format!("/api/cases/{old_case}"), OPS_TOKEN).await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["status"], "dispatched", "{case}");
    assert!(case["timeline"].as_array().unwrap().len() >= 2, "{case}");
    let sign_for =
        std::fs::read_to_string(crate::helpers::root().join(
            "connectors/dept-urban-management/samples/sign-for/valid/lucheng-night-duty.json",
        ))
        .unwrap()
        .replace("TZ2611280000125", &old_case);
    env.publish(&[
        outgoing("dept-urban-management", "sign-for", sign_for.into_bytes()),
        hotline_ticket("BJ12345-20261201-000999"),
    ])
    .await;
    wait_until(
        Duration::from_secs(30),
        "the old case signed for",
        || async {
            sqlx::query_scalar::<_, String>("SELECT status FROM cases WHERE case_no = $1")
                .bind(&old_case)
                .fetch_one(&pool)
                .await
                .unwrap()
                == "accepted"
        },
    )
    .await;
    wait_until(Duration::from_secs(30), "a new case", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM cases")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 13
    })
    .await;
    let numbers: i64 = sqlx::query_scalar("SELECT count(DISTINCT case_no) FROM cases")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(numbers, 13, "the new case has a number of its own");
    // The assessment reads events of both releases.
    let (status, assessment) = hub.get("/api/assessment", OPS_TOKEN).await;
    assert_eq!(status, 200, "{assessment}");
    hub.stop().await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_the_schema_once() {
    let latest = latest();

    // Two at once on a database that does not exist yet: both create it
    // (one of them finds it made), both succeed, one applies everything.
    let fresh = Database::named("race");
    let racers: Vec<Child> = (0..2)
        .map(|_| {
            gridhub()
                .args(["migrate", "--database", &fresh.url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        let (stdout, stderr) = text(output);
        assert!(output.status.success(), "{stdout}{stderr}");
    }
    let lists: Vec<Vec<i64>> = outputs.iter().map(|o| listed(&text(o).0)).collect();
    let all: Vec<i64> = (1..=latest).collect();
    assert!(
        lists.contains(&all) && lists.contains(&vec![]),
        "one applied everything, the other nothing: {lists:?}"
    );
    let pool = fresh.pool().await;
    let versions: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(versions, (latest, latest));
    pool.close().await;

    // The lock, shown: while another session holds it, two `gridhub
    // migrate` and a hub's store opening all wait; let go, they all
    // succeed and the schema is applied once.
    let locked = Database::named("lock");
    locked.create().await;
    let mut holder = PgConnection::connect(&locked.url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    let waiting: Vec<Child> = (0..2)
        .map(|_| {
            gridhub()
                .args(["migrate", "--database", &locked.url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let url = locked.url.clone();
    let store = tokio::spawn(async move { gridhub::store::Store::connect(&url, 1).await });
    let observer = locked.pool().await;
    wait_until(
        Duration::from_secs(30),
        "three waiting for the lock",
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&observer)
            .await
            .unwrap()
                == 3
        },
    )
    .await;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&observer)
        .await
        .unwrap();
    assert!(!exists, "nothing is migrated while the lock is held");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    let outputs: Vec<Output> = waiting
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let store = store.await.unwrap();
    assert!(store.is_ok(), "{:?}", store.err());
    for output in &outputs {
        let (stdout, stderr) = text(output);
        assert!(output.status.success(), "{stdout}{stderr}");
        assert!(
            stderr.contains("another process is migrating the database; waiting")
                && stderr.contains("waited"),
            "{stderr}"
        );
    }
    let applied_by_cli: usize = outputs.iter().map(|o| listed(&text(o).0).len()).sum();
    assert!(
        applied_by_cli == 0 || applied_by_cli == latest as usize,
        "applied once, by one of them: {applied_by_cli}"
    );
    let versions: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations")
            .fetch_one(&observer)
            .await
            .unwrap();
    assert_eq!(versions, (latest, latest));
    drop(store);
    let _ = holder.close().await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_build_is_refused() {
    let env = TestEnv::new().await;
    let latest = latest();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101, 'from a newer gridhub', true, '\\x00', 0)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let refused = |text: &str| {
        text.contains("the database's schema is newer than this gridhub")
            && text.contains("99990101 (from a newer gridhub)")
            && text.contains(&format!("this build's newest is {latest}"))
    };

    // serve, migrating at start or not: exit 1 at once, saying why.
    for more in ["", "database_migrate = false\n"] {
        let (code, stderr) = serve_exit(&env, &env.database_url, more);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(refused(&stderr), "{stderr}");
    }
    // gridhub migrate, with --dry-run or not, and the other commands.
    for args in [&["migrate"][..], &["migrate", "--dry-run"], &["cases"]] {
        let output = gridhub()
            .args(args)
            .env("GRIDHUB_DATABASE_URL", &env.database_url)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(refused(&stderr), "{args:?}: {stderr}");
    }
    // Nothing was touched.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(rows, latest + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_sqlite() {
    let dir = crate::cli::tempdir();
    let url = format!("sqlite://{}", dir.join("cases.db").display());
    let latest = gridhub::store::schema::SQLITE
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();

    let output = migrate(&url, &["--dry-run"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("the database does not exist yet"),
        "{stdout}"
    );
    assert_eq!(listed(&stdout), (1..=latest).collect::<Vec<_>>());
    assert!(!dir.join("cases.db").exists(), "a dry run creates nothing");

    // Two at once: one applies everything, the other waits for SQLite's
    // write lock and finds nothing to do.
    let racers: Vec<Child> = (0..2)
        .map(|_| {
            gridhub()
                .args(["migrate", "--database", &url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let lists: Vec<Vec<i64>> = racers
        .into_iter()
        .map(|c| {
            let output = c.wait_with_output().unwrap();
            let (stdout, stderr) = text(&output);
            assert!(output.status.success(), "{stdout}{stderr}");
            listed(&stdout)
        })
        .collect();
    assert!(
        lists.contains(&(1..=latest).collect()) && lists.contains(&vec![]),
        "{lists:?}"
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let versions: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(versions, (latest, latest));
    let (stdout, _) = text(&migrate(&url, &["--dry-run"]));
    assert!(stdout.contains("up to date"), "{stdout}");

    // A newer schema is refused here too.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101, 'from a newer gridhub', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let output = migrate(&url, &[]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("99990101 (from a newer gridhub)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
