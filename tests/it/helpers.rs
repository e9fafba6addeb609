//! Tests own their infrastructure: a database and a broker namespace per
//! test, both removed when the test ends (even when it fails).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use gridhub::amqp::publish::{self, Outgoing, Published};
use gridhub::amqp::topology::Topology;
use gridhub::amqp::{self, Names};
use gridhub::connector::Registry;
use gridhub::hub::Hub;
use gridhub::settings::{RetrySettings, Role, Settings, Token};
use lapin::Connection;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// API tokens every test hub accepts.
/// The key reporters are sealed with in tests (`gridhub key new` makes one).
pub const TEST_KEY: &str = "test1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const OPS_TOKEN: &str = "ops-token-for-tests-0123456789";
pub const VIEWER_TOKEN: &str = "viewer-token-for-tests-0123456789";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Logs on demand: `TEST_LOG=1 cargo test`.
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("warn,gridhub=debug"))
                .with_test_writer()
                .try_init();
        }
    });
}

/// One test's database and broker namespace.
pub struct TestEnv {
    pub settings: Settings,
    pub names: Names,
    pub database_url: String,
    pub pool: PgPool,
    pub broker: Connection,
    cleanup: Option<Cleanup>,
}

struct Cleanup {
    database: String,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl TestEnv {
    /// A fresh, empty database (migrated) and a namespace of its own.
    pub async fn new() -> TestEnv {
        init_logs();
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database = format!("gridhub_test_{id}");
        let database_url = format!("postgres://postgres@127.0.0.1:5432/{database}");
        // Reporters are sealed at rest in every test, as in a district.
        let keys = std::env::temp_dir().join(format!("gridhub-test-keys-{id}"));
        std::fs::write(&keys, format!("{TEST_KEY}\n")).unwrap();
        let settings = Settings {
            data_keys_file: Some(keys),
            amqp_url: AMQP.to_owned(),
            database_url: database_url.clone(),
            connectors_dir: root().join("connectors"),
            routing_file: Some(root().join("deploy/routing.toml")),
            namespace: format!("t{id}"),
            retry: RetrySettings {
                min_delay_ms: 50,
                max_delay_ms: 500,
            },
            outbox_poll_ms: 200,
            shutdown_grace_secs: 5,
            places_refresh_ms: 100,
            overdue_scan_secs: 3600,
            http_listen: "127.0.0.1:0".to_owned(),
            tokens: vec![
                Token {
                    name: "tester".to_owned(),
                    token: OPS_TOKEN.to_owned(),
                    role: Role::Ops,
                    connectors: Vec::new(),
                },
                Token {
                    name: "watcher".to_owned(),
                    token: VIEWER_TOKEN.to_owned(),
                    role: Role::Viewer,
                    connectors: Vec::new(),
                },
            ],
            ..Settings::default()
        };
        let store = gridhub::store::Store::connect(&database_url, 4)
            .await
            .expect("test database");
        let registry = Registry::load(&settings.connectors_dir, &settings.schemas_dir())
            .expect("connectors load");
        let names = Names::new(&settings.namespace);
        let topology = Topology::new(
            &names,
            &registry,
            settings.delivery_limit,
            &settings.centre_destination,
        );
        // Bounded: a broker that stalls (say, on the queues a killed run
        // left behind) fails the test with a reason instead of hanging it.
        let cleanup = Cleanup {
            database,
            queues: topology.queues.iter().map(|q| q.name.clone()).collect(),
            exchanges: topology.exchanges.clone(),
        };
        let declared = tokio::time::timeout(Duration::from_secs(30), async {
            let broker = amqp::connect(AMQP, "test").await.expect("broker");
            // Declared here too, so a test can publish before its hub runs.
            let channel = broker.create_channel().await.unwrap();
            topology.declare(&channel).await.unwrap();
            broker
        })
        .await;
        let Ok(broker) = declared else {
            // What was declared before the broker stalled goes, or later
            // runs find it left over.
            clean_up(cleanup);
            panic!(
                "the broker declares a test's topology within 30 s: are queues of killed runs left over? (rabbitmqctl list_queues)"
            );
        };
        TestEnv {
            names,
            database_url,
            pool: store.pg_pool().expect("a PostgreSQL store").clone(),
            broker,
            cleanup: Some(cleanup),
            settings,
        }
    }

    /// Starts a hub with these settings in this process.
    pub async fn start_hub(&self, settings: Settings) -> RunningHub {
        RunningHub::run(Hub::build(settings).await.expect("hub builds"))
    }

    /// These settings with one more API token, for `connectors` only (every
    /// connector when empty).
    pub fn settings_with_token(
        &self,
        name: &str,
        token: &str,
        role: Role,
        connectors: &[&str],
    ) -> Settings {
        let mut settings = self.settings.clone();
        settings.tokens.push(Token {
            name: name.to_owned(),
            token: token.to_owned(),
            role,
            connectors: connectors.iter().map(|c| (*c).to_owned()).collect(),
        });
        settings
    }

    /// A `gridhub.toml` in a directory of its own that names this test's
    /// namespace, then the lines of `more`.
    pub fn config_file(&self, more: &str) -> PathBuf {
        let config = crate::cli::tempdir().join("gridhub.toml");
        let namespace = &self.settings.namespace;
        std::fs::write(&config, format!("namespace = \"{namespace}\"\n{more}")).unwrap();
        config
    }

    /// Starts a hub on a copy of the bundled connectors in which
    /// `connector`'s ticket mapping fails every message; the copy's
    /// directory, to remove when done, and the hub.
    pub async fn start_hub_with_broken_mapping(&self, connector: &str) -> (PathBuf, RunningHub) {
        let broken = crate::cli::broken_ticket_mapping(connector);
        let settings = Settings {
            connectors_dir: broken.join("connectors"),
            ..self.settings.clone()
        };
        (broken, self.start_hub(settings).await)
    }

    /// Publishes with confirms to the inbound exchange.
    pub async fn publish(&self, messages: &[Outgoing]) -> Vec<Published> {
        let channel = self.broker.create_channel().await.unwrap();
        publish::confirming(&channel).await.unwrap();
        let results = publish::publish_all(&channel, &self.names.inbound_exchange(), messages)
            .await
            .unwrap();
        let _ = channel.close(200, "done".into()).await;
        results
    }

    /// Publishes the test grid ([`one_grid`]) and waits until it is stored
    /// and the running hubs have reloaded their places.
    pub async fn load_one_grid(&self) {
        self.publish(&[outgoing("dept-planning", "grid-boundaries", one_grid())])
            .await;
        self.wait_count("SELECT count(*) FROM grids", 1, Duration::from_secs(10))
            .await;
        // Each hub reloads its places within places_refresh_ms.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// Publishes a ticket into an empty store and waits until it opens the
    /// one case there; its case number.
    pub async fn open_case(&self, ticket: Outgoing) -> String {
        self.publish(&[ticket]).await;
        self.wait_count("SELECT count(*) FROM cases", 1, Duration::from_secs(20))
            .await;
        sqlx::query_scalar("SELECT case_no FROM cases")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// How many times a case was returned by its units (`return_count`).
    pub async fn return_count(&self, case_no: &str) -> i32 {
        sqlx::query_scalar("SELECT return_count FROM cases WHERE case_no = $1")
            .bind(case_no)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Messages ready in a queue. For a DLQ, the dead letters waiting for
    /// ops: those the hub recorded in the store and has not settled, and
    /// those still in the queue, not yet recorded.
    pub async fn depth(&self, queue: &str) -> u32 {
        let ready = self.depth_if_any(queue).await.expect("the queue exists");
        match queue.strip_prefix(&format!("{}.dlq.", self.names.namespace)) {
            Some(connector) => ready + self.dead_letters(connector).await.len() as u32,
            None => ready,
        }
    }

    /// The case store on this test's database, with the test key.
    pub fn store(&self) -> gridhub::store::Store {
        gridhub::store::Store::from_pool(self.pool.clone())
            .sealed(gridhub::store::seal::Seal::parse(TEST_KEY).unwrap())
    }

    /// The dead letters the hub recorded for a connector and has not
    /// settled (replayed or purged), oldest first.
    pub async fn dead_letters(&self, connector: &str) -> Vec<gridhub::dlq::DeadLetter> {
        self.store()
            .waiting_dead_letters(connector, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                let properties = gridhub::dlq::decode_properties(&row.properties).unwrap();
                gridhub::dlq::DeadLetter::from_message(
                    connector,
                    &row.routing_key,
                    &properties,
                    row.body.as_deref().expect("the test key opens it"),
                )
            })
            .collect()
    }

    /// Waits until `sql`, a count, reaches `n`, failing the test after `limit`.
    pub async fn wait_count(&self, sql: &'static str, n: i64, limit: Duration) {
        wait_until(limit, &format!("{n} of {sql}"), || async {
            self.count(sql).await == n
        })
        .await;
    }

    /// Waits until a queue holds `n` messages (a DLQ: `n` dead letters
    /// waiting, see [`TestEnv::depth`]), failing the test after `limit`.
    pub async fn wait_depth(&self, queue: &str, n: u32, limit: Duration) {
        wait_until(limit, &format!("{n} in {queue}"), || async {
            self.depth(queue).await == n
        })
        .await;
    }

    /// Messages ready in a queue, or `None` if there is no such queue.
    pub async fn depth_if_any(&self, queue: &str) -> Option<u32> {
        // A passive declare of a missing queue closes its channel.
        let channel = self.broker.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .ok()?;
        let _ = channel.close(200, "done".into()).await;
        Some(declared.message_count())
    }

    /// Takes every message now in a queue (acknowledging them).
    pub async fn drain(&self, queue: &str) -> Vec<(lapin::BasicProperties, Value)> {
        let channel = self.broker.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(
                queue.into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            let body = serde_json::from_slice(&message.delivery.data).unwrap_or(Value::Null);
            out.push((message.delivery.properties.clone(), body));
        }
        let _ = channel.close(200, "done".into()).await;
        out
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            clean_up(cleanup);
        }
    }
}

/// Deletes a test's queues and exchanges and drops its database; a broker
/// that stalls gets a minute, and the database goes regardless.
fn clean_up(cleanup: Cleanup) {
    block_on_own_thread(async move {
        let broker = async {
            if let Ok(connection) = amqp::connect(AMQP, "test cleanup").await {
                if let Ok(channel) = connection.create_channel().await {
                    for queue in &cleanup.queues {
                        let _ = channel
                            .queue_delete(queue.as_str().into(), Default::default())
                            .await;
                    }
                    for exchange in &cleanup.exchanges {
                        let _ = channel
                            .exchange_delete(exchange.as_str().into(), Default::default())
                            .await;
                    }
                }
                let _ = connection.close(200, "cleanup".into()).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), broker).await;
        drop_database(&cleanup.database).await;
    });
}

/// Runs cleanup from Drop: async work cannot run there, a thread with its
/// own runtime can.
fn block_on_own_thread(work: impl Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
    .join();
}

async fn drop_database(database: &str) {
    if let Ok(pool) = PgPool::connect(POSTGRES_ADMIN).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
    }
}

/// A fresh, migrated PostgreSQL database for store-level tests (no
/// broker), dropped at the end even when the test fails.
pub struct TestDb {
    pub store: gridhub::store::Store,
    database: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        init_logs();
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database = format!("gridhub_test_{id}");
        let store = gridhub::store::Store::connect(
            &format!("postgres://postgres@127.0.0.1:5432/{database}"),
            4,
        )
        .await
        .expect("test database")
        // Personal data sealed at rest, as in a district.
        .sealed(gridhub::store::seal::Seal::parse(TEST_KEY).unwrap());
        TestDb { store, database }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let database = std::mem::take(&mut self.database);
        block_on_own_thread(async move { drop_database(&database).await });
    }
}

pub struct RunningHub {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    /// The hub's rules (places as at start).
    pub rules: gridhub::store::Rules,
    pub store: gridhub::store::Store,
    /// Where its console and API listen.
    pub http: Option<std::net::SocketAddr>,
}

impl RunningHub {
    /// Runs a built hub in this process until [`RunningHub::stop`].
    pub fn run(hub: Hub) -> RunningHub {
        let rules = hub.rules();
        let store = hub.store().clone();
        let http = hub.http_address();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hub.run_until_stopped(shutdown.clone()));
        RunningHub {
            shutdown,
            task,
            rules,
            store,
            http,
        }
    }

    /// An HTTP request to this hub's API: (status, body as JSON or a string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let addr = self.http.expect("the hub has an HTTP server");
        let (status, text) = http(addr, method, path, token, body).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// `GET path` with a token: (status, body).
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }

    /// `POST path` of a JSON body with a token: (status, body).
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    /// Asks the hub to stop and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("hub stops in time")
            .expect("hub task")
            .expect("hub ends cleanly");
    }
}

/// How many batches went through a step, read off the hub's `/metrics` text
/// (`gridhub_batch_step_seconds_count{step="..."}`).
pub fn batches_through(metrics: &str, step: &str) -> u64 {
    let key = format!("gridhub_batch_step_seconds_count{{step=\"{step}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in\n{metrics}"))
}

/// Polls `check` until it returns true, failing the test after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A ticket for `connector`, message_id from its content.
pub fn outgoing(connector: &str, message_type: &str, body: Vec<u8>) -> Outgoing {
    Outgoing {
        routing_key: format!("{connector}.{message_type}"),
        message_id: Some(publish::content_message_id(&body)),
        content_type: Some("application/json".to_owned()),
        user_id: Some("guest".to_owned()),
        body,
        ..Outgoing::default()
    }
}

/// `message` under another message_id.
pub fn with_message_id(mut message: Outgoing, message_id: &str) -> Outgoing {
    message.message_id = Some(message_id.to_owned());
    message
}

/// An empty 12345 ticket, `{}`, which its schema refuses, under `message_id`.
pub fn empty_ticket(message_id: &str) -> Outgoing {
    with_message_id(
        outgoing("hotline-12345", "ticket", b"{}".to_vec()),
        message_id,
    )
}

/// A valid 12345 ticket with the given ticket number, as the hotline
/// publishes it.
pub fn hotline_ticket(ticket_no: &str) -> Outgoing {
    outgoing("hotline-12345", "ticket", ticket_12345(ticket_no))
}

/// A valid 12345 ticket with the given ticket number.
pub fn ticket_12345(ticket_no: &str) -> Vec<u8> {
    let template = std::fs::read_to_string(root().join("tests/data/ticket-12345.json")).unwrap();
    template.replace("{TICKET_NO}", ticket_no).into_bytes()
}

/// A minimal HTTP/1.1 client (one request per connection), enough for the
/// hub's API and a WebDriver server. Returns the status and the body.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    http_bytes(addr, method, path, token, body).await
}

/// [`http`] with a body of any bytes and content type.
pub async fn http_bytes(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let payload = body.as_ref().map(|(_, b)| b.as_slice()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if let Some((content_type, _)) = &body {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(payload);
    stream.write_all(&request).await.unwrap();
    // Read the head, then as many bytes as Content-Length says (some
    // servers keep the connection open despite `Connection: close`).
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    let body_start = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        raw.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) => {
            while raw.len() < body_start + length {
                let n = stream.read(&mut buffer).await.unwrap();
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buffer[..n]);
            }
        }
        None => {
            stream.read_to_end(&mut raw).await.unwrap();
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// The body of a bundled sample.
pub fn sample(connector: &str, path: &str) -> Vec<u8> {
    std::fs::read(root().join(format!("connectors/{connector}/samples/{path}"))).unwrap()
}

/// Numbers the cases a test opens past every case number its messages name.
///
/// Sample updates name cases by number (TZ, a date, a sequence): numbers the
/// district could have issued on the days the samples were written. Without
/// this, a case opened from a sample received on such a day takes one of
/// those numbers whenever the sequence reaches it, and the update naming it
/// applies to that case instead of being refused as naming none; whether it
/// does depends on the order the hub takes the messages in.
pub async fn number_cases_past(store: &gridhub::store::Store, messages: &[Outgoing]) {
    let last_named = messages
        .iter()
        .flat_map(|m| named_case_sequences(&m.body))
        .max()
        .unwrap_or(0)
        .max(1);
    if let Some(pool) = store.pg_pool() {
        sqlx::query("SELECT setval('case_no_seq', $1)")
            .bind(last_named)
            .execute(pool)
            .await
            .unwrap();
    } else if let Some(pool) = store.sqlite_pool() {
        sqlx::query("UPDATE counters SET value = $1 WHERE name = 'case_no'")
            .bind(last_named)
            .execute(pool)
            .await
            .unwrap();
    }
}

/// The sequences of the case numbers (`TZ` + yymmdd + 7 digits) in a body.
fn named_case_sequences(body: &[u8]) -> impl Iterator<Item = i64> + '_ {
    const DIGITS: usize = 13;
    body.windows(2 + DIGITS).filter_map(|w| {
        let (prefix, digits) = w.split_at(2);
        (prefix == b"TZ" && digits.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(&digits[6..]).ok()?.parse().ok())
            .flatten()
    })
}

/// Every sample of every connector, as published, with its expectation.
pub fn sample_messages(
    registry: &Registry,
    user: &str,
) -> (Vec<Outgoing>, Vec<(String, gridhub::check::Sample)>) {
    let mut messages = Vec::new();
    let mut expected = Vec::new();
    for connector in registry.connectors.values() {
        let (samples, _) = gridhub::check::samples(connector);
        for (n, sample) in samples.iter().enumerate() {
            let message_id = format!("{}-{n}", connector.id());
            let inbound = sample.inbound(&message_id).unwrap();
            messages.push(Outgoing {
                routing_key: inbound.routing_key,
                message_id: inbound.message_id,
                content_type: inbound.content_type,
                amqp_type: inbound.amqp_type,
                user_id: Some(user.to_owned()),
                body: inbound.body,
                replays: 0,
            });
            expected.push((message_id, sample.clone()));
        }
    }
    (messages, expected)
}

#[test]
fn case_numbers_named_in_a_body_are_found() {
    let body = br#"{"case":"TZ2611280000042","parent":"TZ2611300000250","ticket":"TZ26113","n":"TZ26112800000x1"}"#;
    assert_eq!(named_case_sequences(body).collect::<Vec<_>>(), [42, 250]);
}

/// One grid around the test tickets' place, as the planning commission
/// sends it.
pub fn one_grid() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "FeatureCollection",
        "batch": {"id": "TZ-GRID-1", "part": 1, "parts": 1},
        "features": [{
            "type": "Feature", "id": "YQ-001-01",
            "geometry": {"type": "Polygon", "coordinates": [[[116.67, 39.89], [116.68, 39.89], [116.68, 39.90], [116.67, 39.90], [116.67, 39.89]]]},
            "properties": {"grid_id": "YQ-001-01", "community": "玉桥东里社区", "community_kind": "community", "street": "玉桥街道", "retired": false}
        }],
        "addresses": []
    }))
    .unwrap()
}
