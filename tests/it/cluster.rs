//! A broker cluster is the normal case: a hub given the three nodes of a
//! RabbitMQ cluster (deploy/dev/cluster.sh, started here if it is not
//! running) and quorum queues of three replicas loses nothing and doubles
//! nothing while the node it is connected to stops, comes back, and then
//! another stops; /readyz comes back within seconds each time.
//!
//! GRIDHUB_CLUSTER_MESSAGES sets the number of tickets (default 2000; the
//! full size is 20000, see docs/DEPLOY.md).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gridhub::amqp::publish::{self, Outgoing, Published};
use gridhub::amqp::topology::Topology;
use gridhub::amqp::{Brokers, Names};
use gridhub::connector::Registry;

use gridhub::hub::Hub;
use gridhub::settings::{RetrySettings, Settings};
use sqlx::PgPool;

use crate::helpers::{
    POSTGRES_ADMIN, RunningHub, TEST_KEY, empty_ticket, init_logs, outgoing, root, ticket_12345,
    wait_until,
};

const NODES: [(&str, u16); 3] = [
    ("gridhub-a@localhost", 5681),
    ("gridhub-b@localhost", 5682),
    ("gridhub-c@localhost", 5683),
];

fn url(port: u16) -> String {
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
}

fn urls() -> Vec<String> {
    NODES.iter().map(|(_, port)| url(*port)).collect()
}

fn rabbitmqctl(node: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new("rabbitmqctl")
        .args(["-q", "-n", node])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

async fn ctl(node: &'static str, args: &'static [&'static str]) -> Result<String, String> {
    tokio::task::spawn_blocking(move || rabbitmqctl(node, args))
        .await
        .unwrap()
}

/// Starts the nodes this test stopped when it ends, even when it fails,
/// and removes the test's queues and exchanges from the cluster and its
/// database. The test needs nothing of the machine's own broker.
struct ClusterGuard {
    stopped: std::sync::Mutex<Vec<&'static str>>,
    queues: Vec<String>,
    exchanges: Vec<String>,
    database: String,
}

impl ClusterGuard {
    async fn stop(&self, node: &'static str) -> Duration {
        self.stopped.lock().unwrap().push(node);
        let start = Instant::now();
        ctl(node, &["stop_app"]).await.expect("stop_app");
        start.elapsed()
    }

    async fn start(&self, node: &'static str) -> Duration {
        let start = Instant::now();
        ctl(node, &["start_app"]).await.expect("start_app");
        ctl(node, &["await_startup"]).await.expect("await_startup");
        self.stopped.lock().unwrap().retain(|n| *n != node);
        start.elapsed()
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        for node in self.stopped.lock().unwrap().drain(..) {
            let _ = rabbitmqctl(node, &["start_app"]);
            let _ = rabbitmqctl(node, &["await_startup"]);
        }
        let (queues, exchanges) = (self.queues.clone(), self.exchanges.clone());
        let database = self.database.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let brokers = Brokers::new(urls(), None);
                    if let Ok(connected) = brokers.connect("cluster test cleanup").await {
                        if let Ok(channel) = connected.connection.create_channel().await {
                            for queue in &queues {
                                let _ = channel
                                    .queue_delete(queue.as_str().into(), Default::default())
                                    .await;
                            }
                            for exchange in &exchanges {
                                let _ = channel
                                    .exchange_delete(exchange.as_str().into(), Default::default())
                                    .await;
                            }
                        }
                        let _ = connected.connection.close(200, "cleanup".into()).await;
                    }
                    if let Ok(pool) = PgPool::connect(POSTGRES_ADMIN).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                        )))
                        .execute(&pool)
                        .await;
                    }
                })
        })
        .join();
    }
}

/// The node that holds the hub's ops connection (the one /readyz uses),
/// else the one that holds most of its connections, other than `not`; and
/// how many of the hub's connections (consumers, relay, ops) it holds.
async fn hub_node(not: Option<&str>) -> (&'static str, usize) {
    let asked = NODES
        .iter()
        .find(|(node, _)| Some(*node) != not)
        .map(|(node, _)| *node)
        .unwrap();
    let listing = ctl(
        asked,
        &[
            "list_connections",
            "port",
            "client_properties",
            "--no-table-headers",
        ],
    )
    .await
    .unwrap_or_default();
    let node_of = |line: &str| {
        let port: u16 = line.split('\t').next()?.trim().parse().ok()?;
        NODES
            .iter()
            .find(|(_, p)| *p == port)
            .map(|(node, _)| *node)
    };
    let candidates = |name: &str| -> Vec<&'static str> {
        listing
            .lines()
            .filter(|line| line.contains(&format!("\"connection_name\",\"{name}\"")))
            .filter_map(node_of)
            .filter(|node| Some(*node) != not)
            .collect()
    };
    let mut hub = candidates("gridhub hub");
    let ops = candidates("gridhub ops");
    hub.extend(&ops);
    let on = |node: &str| hub.iter().filter(|n| **n == node).count();
    let node = match ops.first() {
        Some(node) => *node,
        None => NODES
            .iter()
            .map(|(node, _)| *node)
            .filter(|node| Some(*node) != not)
            .max_by_key(|node| on(node))
            .unwrap(),
    };
    (node, on(node))
}

/// Whether /readyz answers 200 within 6 s.
async fn ready(hub: &RunningHub) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(6),
            hub.call("GET", "/readyz", None, None)
        )
        .await,
        Ok((200, _))
    )
}

/// How long after `since` /readyz answers 200 again (polled every 100 ms).
async fn ready_again(hub: &RunningHub, since: Instant, limit: Duration) -> Duration {
    loop {
        if ready(hub).await {
            return since.elapsed();
        }
        assert!(since.elapsed() < limit, "/readyz not back within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes every message with confirms, a chunk at a time, to whichever
/// node answers: a chunk not wholly confirmed (its node went away, or a
/// nack) is published again, whole; the inbox makes the copies harmless.
async fn publish_with_failover(
    brokers: Brokers,
    exchange: String,
    messages: Vec<Outgoing>,
    republished: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    spread: Duration,
) {
    let mut connection: Option<lapin::Connection> = None;
    let start = Instant::now();
    let chunks = messages.len().div_ceil(200).max(1);
    for (index, chunk) in messages.chunks(200).enumerate() {
        // Spread over `spread`, so that the nodes stop mid-stream.
        let due = spread.mul_f64(index as f64 / chunks as f64);
        tokio::time::sleep(due.saturating_sub(start.elapsed())).await;
        loop {
            let open = connection.as_ref().is_some_and(|c| c.status().connected());
            if !open {
                match brokers.connect("cluster test publisher").await {
                    Ok(connected) => connection = Some(connected.connection),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let attempt = async {
                let channel = connection.as_ref().unwrap().create_channel().await?;
                publish::confirming(&channel).await?;
                let results = publish::publish_all(&channel, &exchange, chunk).await?;
                let _ = channel.close(200, "done".into()).await;
                Ok::<_, lapin::Error>(results)
            };
            match tokio::time::timeout(Duration::from_secs(30), attempt).await {
                Ok(Ok(results)) if results.iter().all(|r| *r == Published::Confirmed) => break,
                _ => {
                    republished.fetch_add(chunk.len(), Ordering::Relaxed);
                    if let Some(old) = connection.take() {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(2),
                            old.close(200, "republishing".into()),
                        )
                        .await;
                    }
                }
            }
        }
        sent.fetch_add(chunk.len(), Ordering::Relaxed);
    }
    if let Some(connection) = connection {
        let _ = connection.close(200, "done".into()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_a_three_node_cluster_loses_nothing_while_nodes_stop() {
    let started = Instant::now();
    let script = root().join("deploy/dev/cluster.sh");
    let status =
        tokio::task::spawn_blocking(move || Command::new("bash").arg(script).arg("start").status())
            .await
            .unwrap()
            .expect("deploy/dev/cluster.sh runs");
    assert!(status.success(), "deploy/dev/cluster.sh start failed");

    let total: usize = std::env::var("GRIDHUB_CLUSTER_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    // One in fifty is refused, so the DLQ holds messages through it all.
    let invalid = (total / 50).max(1);
    let valid = total - invalid;

    init_logs();
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = format!("gridhub_test_{id}");
    let keys = std::env::temp_dir().join(format!("gridhub-test-keys-{id}"));
    std::fs::write(&keys, format!("{TEST_KEY}\n")).unwrap();
    let settings = Settings {
        amqp_urls: urls(),
        quorum_replicas: Some(3),
        broker_connect_timeout_ms: 5000,
        data_keys_file: Some(keys),
        database_url: format!("postgres://postgres@127.0.0.1:5432/{database}"),
        connectors_dir: root().join("connectors"),
        routing_file: Some(root().join("deploy/routing.toml")),
        namespace: format!("t{id}"),
        retry: RetrySettings {
            min_delay_ms: 50,
            max_delay_ms: 500,
        },
        outbox_poll_ms: 200,
        shutdown_grace_secs: 5,
        overdue_scan_secs: 3600,
        http_listen: "127.0.0.1:0".to_owned(),
        ..Settings::default()
    };
    let names = Names::new(&settings.namespace);
    let registry =
        Registry::load(&settings.connectors_dir, &settings.schemas_dir()).expect("connectors");
    let topology = Topology::new(
        &names,
        &registry,
        settings.delivery_limit,
        &settings.centre_destination,
    );
    let guard = ClusterGuard {
        stopped: Default::default(),
        queues: topology.queues.iter().map(|q| q.name.clone()).collect(),
        exchanges: topology.exchanges.clone(),
        database,
    };
    let hub = RunningHub::run(Hub::build(settings).await.expect("hub builds"));
    let pool = hub.store.pg_pool().expect("PostgreSQL").clone();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    ready_again(&hub, Instant::now(), Duration::from_secs(60)).await;

    // Every quorum queue of the test has its three replicas.
    let listing = ctl(
        NODES[0].0,
        &["list_queues", "name", "members", "--no-table-headers"],
    )
    .await
    .unwrap();
    for queue in &guard.queues {
        let line = listing
            .lines()
            .find(|l| l.split('\t').next() == Some(queue.as_str()))
            .unwrap_or_else(|| panic!("{queue} is on the cluster"));
        assert_eq!(line.matches("@localhost").count(), 3, "{line}");
    }

    let messages: Vec<Outgoing> = (0..total)
        .map(|n| match n % 50 {
            25 => empty_ticket(&format!("cluster-invalid-{n:06}")),
            _ => outgoing(
                "hotline-12345",
                "ticket",
                ticket_12345(&format!("BJ12345-20261201-{n:06}")),
            ),
        })
        .collect();
    assert_eq!(
        messages
            .iter()
            .filter(|m| m
                .message_id
                .as_deref()
                .unwrap()
                .starts_with("cluster-invalid"))
            .count(),
        invalid
    );
    let (republished, sent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let publisher = tokio::spawn(publish_with_failover(
        Brokers::new(urls(), None).with_attempt_bound(Duration::from_secs(5)),
        names.inbound_exchange(),
        messages,
        republished.clone(),
        sent.clone(),
        Duration::from_secs(20),
    ));
    let processed = || count("SELECT count(*) FROM inbox");
    let limit = Duration::from_secs(120 + total as u64 / 20);

    // 1. The node of the hub's connection (the one /readyz uses) stops.
    let (first, held) = hub_node(None).await;
    wait_until(limit, "a fifth processed", || async {
        processed().await >= (total / 5) as i64
    })
    .await;
    let at = processed().await;
    let stopped_in = guard.stop(first).await;
    let since = Instant::now();
    let back = ready_again(&hub, since, Duration::from_secs(30)).await;
    println!(
        "cluster: {first} ({held} of the hub's connections) stopped at {at} of {total} \
         processed (stop_app took {:.1} s); /readyz 200 {:.2} s after",
        stopped_in.as_secs_f64(),
        back.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // 2. It comes back.
    let started_in = guard.start(first).await;
    let back_after_start = ready_again(&hub, Instant::now(), Duration::from_secs(30)).await;
    println!(
        "cluster: {first} started again (start_app took {:.1} s); /readyz 200 {:.2} s after",
        started_in.as_secs_f64(),
        back_after_start.as_secs_f64()
    );

    // 3. Another node stops.
    let (second, held) = hub_node(Some(first)).await;
    wait_until(limit, "half processed", || async {
        processed().await >= (total / 2) as i64
    })
    .await;
    let at = processed().await;
    let stopped_in = guard.stop(second).await;
    let back_second = ready_again(&hub, Instant::now(), Duration::from_secs(30)).await;
    println!(
        "cluster: {second} ({held} of the hub's connections) stopped at {at} of {total} \
         processed (stop_app took {:.1} s); /readyz 200 {:.2} s after",
        stopped_in.as_secs_f64(),
        back_second.as_secs_f64()
    );

    tokio::time::timeout(limit, publisher)
        .await
        .expect("the publisher finishes")
        .unwrap();
    wait_until(limit, "every ticket processed", || async {
        count("SELECT count(*) FROM inbox").await == total as i64
    })
    .await;
    guard.start(second).await;

    // Nothing lost, nothing doubled: every ticket's case exactly once.
    assert_eq!(count("SELECT count(*) FROM cases").await, valid as i64);
    assert_eq!(
        count("SELECT count(DISTINCT source_ref) FROM case_sources").await,
        valid as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM case_events WHERE kind = 'opened'").await,
        valid as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM inbox WHERE outcome = 'refused'").await,
        invalid as i64
    );
    // The DLQ is intact: every refused ticket recorded once, none waiting
    // unrecorded, the inbound queue empty.
    let probe = Brokers::new(urls(), None)
        .connect("cluster test")
        .await
        .unwrap();
    let depth = |queue: String| {
        let connection = &probe.connection;
        async move {
            let channel = connection.create_channel().await.unwrap();
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .unwrap();
            let _ = channel.close(200, "done".into()).await;
            declared.message_count()
        }
    };
    wait_until(Duration::from_secs(60), "the DLQ recorded", || async {
        depth(names.dead_letter_queue("hotline-12345")).await == 0
            && count("SELECT count(*) FROM dead_letters").await >= invalid as i64
    })
    .await;
    assert_eq!(
        count("SELECT count(*) FROM dead_letters").await,
        invalid as i64
    );
    assert_eq!(
        count("SELECT count(DISTINCT message_id) FROM dead_letters WHERE message_id LIKE 'cluster-invalid-%'")
            .await,
        invalid as i64
    );
    wait_until(
        Duration::from_secs(60),
        "the inbound queue empty",
        || async { depth(names.inbound_queue("hotline-12345")).await == 0 },
    )
    .await;
    // Every event reaches the centre's queue (some may twice).
    wait_until(limit, "the outbox sent", || async {
        count("SELECT count(*) FROM outbox WHERE sent_at IS NULL").await == 0
    })
    .await;
    let centre_rows =
        count("SELECT count(*) FROM outbox WHERE destination = 'command-centre'").await;
    let centre_depth = depth(names.outbound_queue("command-centre")).await;
    assert!(
        i64::from(centre_depth) >= centre_rows,
        "{centre_depth} events in the centre's queue, {centre_rows} sent"
    );
    println!(
        "cluster: {total} tickets ({valid} valid, {invalid} refused), {} republished by the \
         publisher: {} cases, {} dead letters, {centre_depth} events for {centre_rows} centre \
         rows; 0 lost, 0 doubled; {:.0} s in all",
        republished.load(Ordering::Relaxed),
        count("SELECT count(*) FROM cases").await,
        count("SELECT count(*) FROM dead_letters").await,
        started.elapsed().as_secs_f64()
    );
    let _ = probe.connection.close(200, "done".into()).await;
    hub.stop().await;
    drop(guard);
}

#[test]
fn the_definitions_carry_the_replica_count_when_set() {
    let dir = crate::cli::tempdir();
    let config = dir.join("gridhub.toml");
    std::fs::write(
        &config,
        format!(
            "amqp_urls = [\"{}\", \"{}\", \"{}\"]\nquorum_replicas = 3\nconnectors_dir = \"{}\"\n",
            url(5681),
            url(5682),
            url(5683),
            root().join("connectors").display()
        ),
    )
    .unwrap();
    let output = crate::cli::gridhub()
        .args(["topology", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let definitions: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let queues = definitions["queues"].as_array().unwrap();
    assert!(!queues.is_empty());
    for queue in queues {
        assert_eq!(queue["arguments"]["x-queue-type"], "quorum", "{queue}");
        assert_eq!(
            queue["arguments"]["x-quorum-initial-group-size"], 3,
            "{queue}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
