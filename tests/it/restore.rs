//! The backup and restore drill, as an operator runs it: a short load
//! through a hub on a virtual host of its own, `deploy/backup.sh`,
//! `deploy/restore.sh` into a new database and a new virtual host, the
//! same rows and the same broker objects there, and a hub that serves on
//! the restored pair.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use gridhub::amqp::publish::{self, Outgoing, Published};
use gridhub::settings::Settings;
use serde_json::Value;

use crate::helpers::{
    OPS_TOKEN, RunningHub, TestEnv, empty_ticket, hotline_ticket, one_grid, outgoing, root,
    wait_until,
};
use crate::migrate::{Database, digests, tables};

/// A virtual host, deleted at the end (even when the test fails).
struct Vhost(String);

impl Vhost {
    /// Creates it, with every permission for guest (the tests' hub user).
    fn create(name: String) -> Vhost {
        let vhost = Vhost(name);
        rabbitmqctl(&["add_vhost", &vhost.0]);
        rabbitmqctl(&["set_permissions", "-p", &vhost.0, "guest", ".*", ".*", ".*"]);
        vhost
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.0)
    }

    fn exists(&self) -> bool {
        let list: Value =
            serde_json::from_str(&rabbitmqctl(&["list_vhosts", "--formatter", "json"])).unwrap();
        list.as_array().unwrap().iter().any(|v| v["name"] == self.0)
    }

    /// Its exchanges, queues and bindings (those the hub declares), each
    /// list sorted, to compare with another's.
    fn objects(&self) -> BTreeMap<&'static str, Vec<String>> {
        let list = |args: &[&str]| -> Vec<Value> {
            let mut all = vec!["-p", &self.0];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--formatter", "json"]);
            serde_json::from_str(&rabbitmqctl(&all)).unwrap()
        };
        let mut exchanges: Vec<String> = list(&["list_exchanges", "name", "type", "durable"])
            .into_iter()
            .filter(|e| !e["name"].as_str().unwrap().is_empty())
            .filter(|e| !e["name"].as_str().unwrap().starts_with("amq."))
            .map(|e| e.to_string())
            .collect();
        let mut queues: Vec<String> = list(&["list_queues", "name", "durable", "arguments"])
            .into_iter()
            .map(|q| q.to_string())
            .collect();
        let mut bindings: Vec<String> = list(&[
            "list_bindings",
            "source_name",
            "destination_name",
            "destination_kind",
            "routing_key",
            "arguments",
        ])
        .into_iter()
        .filter(|b| b["source_name"] != "")
        .map(|b| b.to_string())
        .collect();
        exchanges.sort();
        queues.sort();
        bindings.sort();
        BTreeMap::from([
            ("exchanges", exchanges),
            ("queues", queues),
            ("bindings", bindings),
        ])
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.0])
            .output();
    }
}

fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "rabbitmqctl {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `bash deploy/<script> ARGS`, to the end.
fn script(name: &str, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("deploy").join(name))
        .args(args)
        .env_remove("GRIDHUB_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Publishes with confirms to the inbound exchange of a virtual host.
async fn publish_to(url: &str, exchange: &str, messages: &[Outgoing]) {
    let broker = gridhub::amqp::connect(url, "drill").await.unwrap();
    let channel = broker.create_channel().await.unwrap();
    publish::confirming(&channel).await.unwrap();
    let results = publish::publish_all(&channel, exchange, messages)
        .await
        .unwrap();
    assert!(
        results.iter().all(|r| *r == Published::Confirmed),
        "{results:?}"
    );
    let _ = broker.close(200, "done".into()).await;
}

async fn ready(hub: &RunningHub) {
    let mut status = 0;
    for _ in 0..200 {
        (status, _) = hub.call("GET", "/readyz", None, None).await;
        if status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hub is not ready: {status}");
}

async fn count(pool: &sqlx::PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_drill() {
    let env = TestEnv::new().await;
    let namespace = env.settings.namespace.clone();
    let exchange = env.names.inbound_exchange();
    let live = Vhost::create(format!("gridhub-drill-{namespace}"));
    let settings = Settings {
        amqp_url: live.url(),
        ..env.settings.clone()
    };

    // A short load: tickets that become cases (dispatched, merged), and
    // refusals, so that cases, case_events and dead_letters all have rows.
    let hub = env.start_hub(settings).await;
    ready(&hub).await;
    publish_to(
        &live.url(),
        &exchange,
        &[outgoing("dept-planning", "grid-boundaries", one_grid())],
    )
    .await;
    env.wait_count("SELECT count(*) FROM grids", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load: Vec<Outgoing> = (0..36)
        .map(|n| hotline_ticket(&format!("BJ12345-20261202-{:06}", 100 + n)))
        .chain((0..8).map(|n| empty_ticket(&format!("drill-refused-{n}"))))
        .collect();
    publish_to(&live.url(), &exchange, &load).await;
    env.wait_count("SELECT count(*) FROM cases", 36, Duration::from_secs(60))
        .await;
    env.wait_count(
        "SELECT count(*) FROM dlq_messages",
        8,
        Duration::from_secs(30),
    )
    .await;
    env.wait_count(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
        0,
        Duration::from_secs(30),
    )
    .await;
    let case_no: String =
        sqlx::query_scalar("SELECT case_no FROM cases WHERE status = 'dispatched' LIMIT 1")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let (status, live_case) = hub.get(&format!("/api/cases/{case_no}"), OPS_TOKEN).await;
    assert_eq!(status, 200, "{live_case}");
    hub.stop().await;

    let tables = tables(&env.pool).await;
    let before = digests(&env.pool, &tables).await;
    for table in ["cases", "case_events", "dead_letters", "dlq_messages"] {
        assert!(before[table].0 > 0, "{table} has rows: {before:?}");
    }
    let live_objects = live.objects();
    assert!(!live_objects["queues"].is_empty());

    // Backup.
    let out = crate::cli::tempdir();
    let started = std::time::Instant::now();
    let output = script(
        "backup.sh",
        &[
            "--database",
            &env.database_url,
            "--vhost",
            &live.0,
            "--namespace",
            &namespace,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    eprintln!("backup: {:?}\n{}", started.elapsed(), text(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let dir = Path::new(stdout.lines().last().unwrap()).to_owned();
    assert!(dir.starts_with(&out), "{stdout}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let latest = gridhub::store::schema::POSTGRES
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    assert_eq!(manifest["database"]["schema_version"], latest, "{manifest}");
    for (table, (rows, _)) in &before {
        assert_eq!(
            manifest["database"]["rows"][table], *rows,
            "{table}: {manifest}"
        );
    }
    for kind in ["exchanges", "queues", "bindings"] {
        assert_eq!(
            manifest["broker"][kind],
            live_objects[kind].len(),
            "{kind}: {manifest}"
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("database.dump"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the dump is its owner's only");

    // Never over the live ones unless forced.
    let restored_vhost = Vhost(format!("gridhub-drill-{namespace}-restored"));
    let output = script(
        "restore.sh",
        &[
            "--from",
            dir.to_str().unwrap(),
            "--database",
            &env.database_url,
            "--vhost",
            &restored_vhost.0,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("exists"), "{}", text(&output));
    let output = script(
        "restore.sh",
        &[
            "--from",
            dir.to_str().unwrap(),
            "--no-database",
            "--vhost",
            &live.0,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("exists"), "{}", text(&output));
    assert!(!restored_vhost.exists());
    assert_eq!(digests(&env.pool, &tables).await, before);

    // Restore into a new database and a new virtual host.
    let restored = Database::named("restored");
    let started = std::time::Instant::now();
    let output = script(
        "restore.sh",
        &[
            "--from",
            dir.to_str().unwrap(),
            "--database",
            &restored.url,
            "--vhost",
            &restored_vhost.0,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    eprintln!("restore: {:?}\n{}", started.elapsed(), text(&output));
    let pool = restored.pool().await;
    assert_eq!(
        digests(&pool, &tables).await,
        before,
        "the restored database holds the same rows"
    );
    assert_eq!(
        restored_vhost.objects(),
        live_objects,
        "the restored virtual host has the same exchanges, queues and bindings"
    );

    // A hub serves on the restored pair, without migrating anything.
    let settings = Settings {
        amqp_url: restored_vhost.url(),
        database_url: restored.url.clone(),
        database_migrate: false,
        ..env.settings.clone()
    };
    let hub = env.start_hub(settings).await;
    ready(&hub).await;
    let (status, case) = hub.get(&format!("/api/cases/{case_no}"), OPS_TOKEN).await;
    assert_eq!(status, 200, "{case}");
    for field in ["status", "sources", "timeline", "lead_unit", "deadlines"] {
        assert_eq!(case[field], live_case[field], "{field}");
    }
    let (status, letters) = hub.get("/api/dlq?connector=hotline-12345", OPS_TOKEN).await;
    assert_eq!(status, 200, "{letters}");
    let letters = letters["letters"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 8);
    let id = letters[0]["id"].as_str().unwrap();
    let (status, letter) = hub
        .get(&format!("/api/dlq/hotline-12345/{id}"), OPS_TOKEN)
        .await;
    assert_eq!(status, 200, "a restored dead letter opens: {letter}");
    publish_to(
        &restored_vhost.url(),
        &exchange,
        &[hotline_ticket("BJ12345-20261202-000999")],
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "a case on the restored hub",
        || async { count(&pool, "SELECT count(DISTINCT case_no) FROM cases").await == 37 },
    )
    .await;
    hub.stop().await;
    pool.close().await;
    let _ = std::fs::remove_dir_all(&out);
}
