//! Hub settings: a TOML file, environment overrides, documented defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Default broker: the local RabbitMQ with its guest user.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Default case store: the local PostgreSQL; the database is created if missing.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/gridhub";
/// Default connectors folder, relative to the working directory.
pub const DEFAULT_CONNECTORS_DIR: &str = "connectors";

/// Everything `gridhub serve` needs. Every field has a default, so an empty
/// file (or none) runs the hub against the local broker and database.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// AMQP URL of the broker. Overridden by `GRIDHUB_AMQP_URL`, which may
    /// hold several, separated by commas (a cluster's nodes).
    /// Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// AMQP URLs of a broker cluster's nodes, instead of `amqp_url`: every
    /// connection tries them in turn (from a rotating start, so that several
    /// hubs spread), and backs off only after a whole round failed. Same
    /// user and virtual host in each; the TLS settings apply to each.
    pub amqp_urls: Vec<String>,
    /// URL of the case store. Overridden by `GRIDHUB_DATABASE_URL`.
    /// The database is created and migrated at start if missing.
    /// `postgres://` or `postgresql://` for production (several hubs may
    /// share it); `sqlite:` for the demo and single-process use, e.g.
    /// `sqlite::memory:` or `sqlite:///var/lib/gridhub/cases.db`.
    /// Default `postgres://postgres@127.0.0.1:5432/gridhub`.
    pub database_url: String,
    /// Folder of connector folders. Default `connectors` (in the working
    /// directory; when there is none, the connectors built into the binary).
    /// Like every path in a settings file, a relative one is taken from
    /// the file's folder.
    pub connectors_dir: PathBuf,
    /// Folder of JSON Schemas. Default: `schemas` beside the connectors folder.
    pub schemas_dir: Option<PathBuf>,
    /// Prefix of every exchange and queue name. Default `gridhub`, giving
    /// `gridhub.in`, `gridhub.in.<connector>`, `gridhub.dlx`, ...
    pub namespace: String,
    /// Unacknowledged deliveries the broker may push to one consumer
    /// (AMQP prefetch), at most: `held_bytes` may lower it. Default 512.
    pub prefetch: u16,
    /// The broker's `max_message_size`, in bytes: the largest message it
    /// takes (`deploy/rabbitmq/rabbitmq.conf` ships 1 MiB). The broker pushes
    /// up to the prefetch of messages whatever their size, so this is what
    /// one delivery can cost. Default 1 MiB.
    pub max_message_size: u64,
    /// Most bytes of messages one connector's deliveries may hold in the hub
    /// at once, its DLQ recorder's included: each connector's prefetch is
    /// lowered until its consumers' prefetch times `max_message_size` fits.
    /// Default 256 MiB.
    pub held_bytes: u64,
    /// Most deliveries recorded in one database transaction. Default 256.
    pub batch_size: usize,
    /// Most message body bytes in one batch (a larger message makes a batch
    /// of its own): pages of records are hundreds of KiB each, and what the
    /// pipeline makes of them many times that. Default 256 KiB.
    pub batch_bytes: usize,
    /// How long a consumer waits for more deliveries to fill a batch, in
    /// milliseconds. Default 5.
    pub batch_linger_ms: u64,
    /// Consumers (AMQP channels) per inbound queue. Default 1.
    pub consumers_per_queue: usize,
    /// Delivery limit of each inbound quorum queue: a message delivered more
    /// often than this (because the hub died while holding it) is
    /// dead-lettered by the broker. Default 20.
    pub delivery_limit: u32,
    /// Replicas (members) of each quorum queue the hub creates:
    /// `x-quorum-initial-group-size`. Unset: the broker's default (every
    /// node of the cluster, in RabbitMQ 3.10). Applies to new queues only:
    /// existing ones keep their members (`rabbitmq-queues grow|shrink`).
    pub quorum_replicas: Option<u32>,
    /// Broker users trusted to publish as any connector (operators' replay
    /// tools). The hub's own broker user is always trusted.
    pub trusted_users: Vec<String>,
    /// Destination that receives every case event: the district command
    /// centre's feed, queue `<namespace>.out.<centre_destination>`.
    /// Default `command-centre`.
    pub centre_destination: String,
    /// Database connection pool size. Default 8.
    pub database_pool_size: u32,
    /// Whether `serve` applies pending migrations at start (under the
    /// migration lock, docs/OPERATIONS.md, Upgrades). `false` for a
    /// district that runs `gridhub migrate` as a step of its deploy: the
    /// hub then refuses to start on a schema behind its own, naming the
    /// pending migrations. A schema newer than the hub's is refused either
    /// way. Default true.
    pub database_migrate: bool,
    /// Backoff for transient failures (database or broker unavailable).
    pub retry: RetrySettings,
    /// How long one attempt to connect to the broker may take, in
    /// milliseconds: the AMQP handshake and the topology's declaration (and,
    /// the same bound, closing a failed connection). A broker or network
    /// path that accepts the TCP connection and then says nothing would
    /// otherwise hold the hub in that attempt; past the bound it is a failed
    /// attempt, retried after the backoff. Default 15000 (RabbitMQ gives a
    /// client 10 s for its side of the handshake).
    pub broker_connect_timeout_ms: u64,
    /// How often the outbox relay looks for unsent events when nothing woke
    /// it, in milliseconds. Default 1000.
    pub outbox_poll_ms: u64,
    /// How long events stay in the outbox once the broker has confirmed
    /// them, in hours; then they are deleted (they carry personal data,
    /// such as the masked records a department shared). 0 keeps them.
    /// Default 24.
    pub outbox_retention_hours: u64,
    /// Days a reporter's name, phone and ID number are kept once their case
    /// is over (closed, merged, rejected or answered); then they are
    /// erased. Long enough for the callback, a disputed closure and the
    /// monthly assessment; the hotline's own system is the record of the
    /// call. 0 keeps them. Default 180.
    pub reporter_retention_days: u32,
    /// Days a dead letter's payload is kept: then a waiting one is settled
    /// as `expired` (its body cleared) and a settled one deleted. The
    /// refusal itself (stage, reason) stays. 0 keeps them. Default 30.
    pub dead_letter_retention_days: u32,
    /// File of the keys reporters' personal data is sealed with at rest
    /// (AES-256-GCM): `<id> <64 hex digits>` lines, the first the current
    /// key (`gridhub key new` makes one). `GRIDHUB_DATA_KEYS`, the same
    /// lines, overrides it. Neither: stored as given, and the hub warns.
    pub data_keys_file: Option<PathBuf>,
    /// The CA (PEM) that signed the broker's certificate, for `amqps://`
    /// URLs. Unset: the system's roots.
    pub amqp_tls_ca_file: Option<PathBuf>,
    /// The hub's own certificate and key (PEM, the key PKCS#8), for a broker
    /// that asks its clients for one. Both or neither.
    pub amqp_tls_cert_file: Option<PathBuf>,
    pub amqp_tls_key_file: Option<PathBuf>,
    /// Refuse to start on a plaintext link: the broker URL must be
    /// `amqps://` and a PostgreSQL URL must say `sslmode=verify-full`
    /// (with `sslrootcert=` for a private CA). Default false.
    pub require_tls: bool,
    /// How long `serve` waits for in-flight work after SIGTERM, in seconds.
    /// Default 30.
    pub shutdown_grace_secs: u64,
    /// How long a consumer holds a batch while the case store keeps failing
    /// with transient errors (down, or a statement timeout every time), in
    /// seconds. Then it gives the batch back to the broker, which
    /// redelivers it (each time counting against `delivery_limit`), and
    /// counts a stall (`gridhub_store_stalls`). Default 300.
    pub store_hold_secs: u64,
    /// Log format: `text` or `json`. Overridden by `GRIDHUB_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Routing rules file. Default: `deploy/routing.toml` beside the
    /// connectors folder.
    pub routing_file: Option<PathBuf>,
    /// The assessment's rules (docs/ASSESSMENT.md). Default:
    /// `assessment.toml` beside the routing rules.
    pub assessment_file: Option<PathBuf>,
    /// How often the overdue scanner runs, in seconds. Default 30.
    pub overdue_scan_secs: u64,
    /// How often a hub checks whether the grid data changed, in
    /// milliseconds. Default 2000.
    pub places_refresh_ms: u64,
    /// Address of the ops console, the HTTP API, `/metrics`, `/healthz` and
    /// `/readyz`. Port 0 picks a free port; an empty string turns the HTTP
    /// server off. Overridden by `GRIDHUB_HTTP_LISTEN`. Default
    /// `127.0.0.1:8080`.
    pub http_listen: String,
    /// Bearer tokens for the console and the API, each with a name (written
    /// in the audit trail) and a role: `ops` (everything) or `viewer` (read
    /// only). `GRIDHUB_OPS_TOKEN` and `GRIDHUB_VIEWER_TOKEN` add one each.
    /// With no token, the API answers 401 to everyone. Default: none.
    pub tokens: Vec<Token>,
    /// Most messages one dead-letter operation reads from one DLQ (they are
    /// held unacknowledged meanwhile). Default 10000.
    pub dlq_scan_limit: usize,
    /// The Open311 GeoReport v2 endpoint under `/open311/v2/`
    /// (docs/OPEN311.md): on when an api_key is configured.
    pub open311: Open311Settings,
}

/// The Open311 GeoReport v2 endpoint: who may post, and its bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Open311Settings {
    /// The keys apps post requests with, each bound to the connector its
    /// requests are published as (e.g. `web-portal`). None: the endpoint
    /// is off. Default: none.
    pub api_keys: Vec<ApiKey>,
    /// Discovery and service definitions. Default: `deploy/open311.toml`
    /// beside the connectors folder.
    pub services_file: Option<PathBuf>,
    /// The endpoint's public address, as discovery gives it to clients,
    /// e.g. `https://grid.tz.example/open311/v2`. Default: built from the
    /// request's `Host` header.
    pub public_url: Option<String>,
    /// Largest POST body, in bytes (a description of 4,000 Chinese
    /// characters is 36,000 bytes form-encoded). Default 65536.
    pub max_body_bytes: usize,
    /// Requests one client address may make a minute (reads and posts),
    /// then 429. Behind a proxy every client has the proxy's address: limit
    /// there too (deploy/nginx). Default 120.
    pub requests_per_minute: u32,
    /// Requests served at once; more are answered 503. Default 32.
    pub concurrent_requests: usize,
}

/// One Open311 api_key. Its value never appears in `Debug` output or logs.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds it (an app, a vendor), for the logs.
    pub name: String,
    /// The secret, at least 16 characters, or its SHA-256 as
    /// `sha256:<64 hex digits>`.
    pub key: String,
    /// The connector a request posted with this key is published as.
    pub connector: String,
}

impl ApiKey {
    /// The SHA-256 a presented key must have.
    pub fn digest(&self) -> [u8; 32] {
        Token {
            name: String::new(),
            token: self.key.clone(),
            role: Role::Viewer,
            connectors: Vec::new(),
        }
        .digest()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("connector", &self.connector)
            .finish()
    }
}

impl Default for Open311Settings {
    fn default() -> Self {
        Open311Settings {
            api_keys: Vec::new(),
            services_file: None,
            public_url: None,
            max_body_bytes: 64 * 1024,
            requests_per_minute: 120,
            concurrent_requests: 32,
        }
    }
}

/// How a stored token's hash is written: `sha256:` and 64 hex digits.
pub const HASHED: &str = "sha256:";

/// One API token. Its value never appears in `Debug` output or logs.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it, for the audit trail, e.g. `night-shift`.
    pub name: String,
    /// The secret sent as `Authorization: Bearer <token>`, or better its
    /// SHA-256 as `sha256:<64 hex digits>` (what `gridhub token new`
    /// prints), so that the file holds no secret. A secret itself is at
    /// least 16 characters.
    pub token: String,
    /// `ops`, `dispatcher` or `viewer`.
    pub role: Role,
    /// The connectors this token is for: a department's token sees only
    /// their refusals, dead letters (without payloads) and out queues,
    /// their cases (as lead or assisting unit, or as source) and their
    /// figures, and none of the district's audit trail or desk; it never
    /// replays, edits or purges, whatever its role. Empty: every connector.
    #[serde(default)]
    pub connectors: Vec<String>,
}

impl Token {
    /// The SHA-256 a presented secret must have: the stored hash, or the
    /// hash of the stored secret.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        if let Some(hex) = self.token.strip_prefix(HASHED)
            && hex.len() == 64
        {
            let mut digest = [0u8; 32];
            for (n, byte) in digest.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * n..2 * n + 2], 16).unwrap_or(0);
            }
            return digest;
        }
        Sha256::digest(self.token.as_bytes()).into()
    }

    /// A new secret (two random UUIDs as hex: 244 bits from the operating
    /// system's generator) and its entry for the settings, holding only its
    /// hash.
    pub fn generate(name: &str, role: Role, connectors: Vec<String>) -> (String, Token) {
        use sha2::{Digest, Sha256};
        // uuid v4 draws its 122 random bits from the OS (getrandom).
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hex: String = Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let token = Token {
            name: name.to_owned(),
            token: format!("{HASHED}{hex}"),
            role,
            connectors,
        };
        (secret, token)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .field("connectors", &self.connectors)
            .finish()
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything except message bodies.
    Viewer,
    /// A viewer who also records steps on cases at the district centre's
    /// desk (a response for a unit with no system of its own).
    Dispatcher,
    /// Everything: read bodies, replay, edit, purge, and the desk.
    Ops,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Dispatcher => "dispatcher",
            Role::Ops => "ops",
        }
    }
}

/// Exponential backoff with jitter, capped.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// First delay, in milliseconds. Default 100.
    pub min_delay_ms: u64,
    /// Largest delay, in milliseconds. Default 10000.
    pub max_delay_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            amqp_url: DEFAULT_AMQP_URL.to_owned(),
            amqp_urls: Vec::new(),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            connectors_dir: PathBuf::from(DEFAULT_CONNECTORS_DIR),
            schemas_dir: None,
            namespace: "gridhub".to_owned(),
            prefetch: 512,
            max_message_size: 1024 * 1024,
            held_bytes: 256 * 1024 * 1024,
            batch_size: 256,
            batch_bytes: 256 * 1024,
            batch_linger_ms: 5,
            consumers_per_queue: 1,
            delivery_limit: 20,
            quorum_replicas: None,
            trusted_users: Vec::new(),
            centre_destination: "command-centre".to_owned(),
            database_pool_size: 8,
            database_migrate: true,
            retry: RetrySettings::default(),
            broker_connect_timeout_ms: 15_000,
            outbox_poll_ms: 1000,
            outbox_retention_hours: 24,
            reporter_retention_days: 180,
            dead_letter_retention_days: 30,
            data_keys_file: None,
            amqp_tls_ca_file: None,
            amqp_tls_cert_file: None,
            amqp_tls_key_file: None,
            require_tls: false,
            shutdown_grace_secs: 30,
            store_hold_secs: 300,
            log_format: LogFormat::Text,
            routing_file: None,
            assessment_file: None,
            overdue_scan_secs: 30,
            places_refresh_ms: 2000,
            http_listen: "127.0.0.1:8080".to_owned(),
            tokens: Vec::new(),
            dlq_scan_limit: 10_000,
            open311: Open311Settings::default(),
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            min_delay_ms: 100,
            max_delay_ms: 10_000,
        }
    }
}

impl RetrySettings {
    /// Delays for successive retries: exponential from `min_delay_ms`, capped
    /// at `max_delay_ms`, with jitter, never ending.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.min_delay_ms))
            .with_max_delay(Duration::from_millis(self.max_delay_ms))
            .with_jitter()
            .without_max_times()
            .build()
    }
}

impl Settings {
    /// Reads the file if given, then applies the environment overrides.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let mut settings: Settings =
                    toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
                let named = toml::from_str::<toml::Table>(&text).unwrap_or_default();
                settings.resolve_paths(&config_folder(path)?, &named);
                settings
            }
            None => Settings::default(),
        };
        settings.apply_env();
        settings.validate()?;
        Ok(settings)
    }

    /// Takes the relative paths a settings file names from `base`, the
    /// file's folder, so that the file means the same from any working
    /// directory. `named` is the file's table: the connectors folder is
    /// taken from `base` only when the file names it (its default stays in
    /// the working directory).
    fn resolve_paths(&mut self, base: &Path, named: &toml::Table) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        if named.contains_key("connectors_dir") {
            resolve(&mut self.connectors_dir);
        }
        for path in [
            &mut self.schemas_dir,
            &mut self.data_keys_file,
            &mut self.amqp_tls_ca_file,
            &mut self.amqp_tls_cert_file,
            &mut self.amqp_tls_key_file,
            &mut self.routing_file,
            &mut self.assessment_file,
            &mut self.open311.services_file,
        ]
        .into_iter()
        .flatten()
        {
            resolve(path);
        }
    }

    /// Whether the connectors folder is the default one, `./connectors`:
    /// named neither by the settings file nor by `--connectors`.
    pub fn connectors_by_default(&self) -> bool {
        self.connectors_dir == Path::new(DEFAULT_CONNECTORS_DIR)
    }

    fn apply_env(&mut self) {
        if let Ok(url) = std::env::var("GRIDHUB_AMQP_URL") {
            self.amqp_url = url;
            self.amqp_urls.clear();
        }
        if let Ok(url) = std::env::var("GRIDHUB_DATABASE_URL") {
            self.database_url = url;
        }
        if let Ok(listen) = std::env::var("GRIDHUB_HTTP_LISTEN") {
            self.http_listen = listen;
        }
        for (var, role) in [
            ("GRIDHUB_OPS_TOKEN", Role::Ops),
            ("GRIDHUB_VIEWER_TOKEN", Role::Viewer),
        ] {
            if let Ok(token) = std::env::var(var)
                && !token.is_empty()
            {
                self.tokens.push(Token {
                    name: var.to_lowercase(),
                    token,
                    role,
                    connectors: Vec::new(),
                });
            }
        }
        if let Ok(format) = std::env::var("GRIDHUB_LOG_FORMAT")
            && format.eq_ignore_ascii_case("json")
        {
            self.log_format = LogFormat::Json;
        }
    }

    /// What opening the case store does with its schema: migrate it, or,
    /// with `database_migrate = false`, only check that it is this build's.
    pub fn schema_mode(&self) -> crate::store::schema::Mode {
        match self.database_migrate {
            true => crate::store::schema::Mode::Migrate,
            false => crate::store::schema::Mode::Check,
        }
    }

    /// The schemas folder: explicit, or `schemas` beside the connectors folder.
    pub fn schemas_dir(&self) -> PathBuf {
        match &self.schemas_dir {
            Some(dir) => dir.clone(),
            None => schemas_beside(&self.connectors_dir),
        }
    }

    /// The routing rules: explicit, or `deploy/routing.toml` beside the connectors folder.
    pub fn routing_file(&self) -> PathBuf {
        match &self.routing_file {
            Some(file) => file.clone(),
            None => schemas_beside(&self.connectors_dir)
                .with_file_name("deploy")
                .join("routing.toml"),
        }
    }

    /// The Open311 service definitions: explicit, or `deploy/open311.toml`
    /// beside the connectors folder.
    pub fn open311_services_file(&self) -> PathBuf {
        match &self.open311.services_file {
            Some(file) => file.clone(),
            None => self.routing_file().with_file_name("open311.toml"),
        }
    }

    /// The assessment's rules: explicit, or `assessment.toml` beside the routing rules.
    pub fn assessment_file(&self) -> PathBuf {
        match &self.assessment_file {
            Some(file) => file.clone(),
            None => self.routing_file().with_file_name("assessment.toml"),
        }
    }

    /// Problems that stop the start: tokens too short or used twice.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.broker_connect_timeout_ms == 0 {
            anyhow::bail!("broker_connect_timeout_ms: must be more than 0");
        }
        let brokers = self.broker_urls();
        if brokers.is_empty() {
            anyhow::bail!("amqp_urls: no broker address");
        }
        if !self.amqp_urls.is_empty() && self.amqp_url != DEFAULT_AMQP_URL {
            anyhow::bail!("amqp_url and amqp_urls: give one of them");
        }
        for url in &brokers {
            if url.parse::<lapin::uri::AMQPUri>().is_err() {
                anyhow::bail!(
                    "broker address {}: not an AMQP URL",
                    crate::amqp::redact_url(url)
                );
            }
            let (user, vhost) = (crate::amqp::url_user(url), crate::amqp::url_vhost(url));
            let first = &brokers[0];
            if user != crate::amqp::url_user(first) || vhost != crate::amqp::url_vhost(first) {
                anyhow::bail!(
                    "broker addresses: every one needs the same user and virtual host ({} differs from {})",
                    crate::amqp::redact_url(url),
                    crate::amqp::redact_url(first)
                );
            }
        }
        if self.quorum_replicas == Some(0) {
            anyhow::bail!("quorum_replicas: must be more than 0 (or unset)");
        }
        if self.require_tls {
            if brokers.iter().any(|url| !url.starts_with("amqps://")) {
                anyhow::bail!("require_tls: a broker URL is not amqps://");
            }
            let postgres = self.database_url.starts_with("postgres");
            if postgres && !self.database_url.contains("sslmode=verify-full") {
                anyhow::bail!("require_tls: the database URL does not say sslmode=verify-full");
            }
        }
        if self.max_message_size == 0 || self.held_bytes < self.max_message_size {
            anyhow::bail!(
                "held_bytes ({}) must hold at least one message of max_message_size ({})",
                self.held_bytes,
                self.max_message_size
            );
        }
        let mut seen = std::collections::HashSet::new();
        for key in &self.open311.api_keys {
            if let Some(hex) = key.key.strip_prefix(HASHED) {
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    anyhow::bail!("open311 api_key {}: {HASHED} needs 64 hex digits", key.name);
                }
            } else if key.key.chars().count() < 16 {
                anyhow::bail!("open311 api_key {}: shorter than 16 characters", key.name);
            }
            if !seen.insert(key.key.as_str()) {
                anyhow::bail!("open311 api_key {}: the same key is given twice", key.name);
            }
        }
        if self.open311.max_body_bytes == 0
            || self.open311.requests_per_minute == 0
            || self.open311.concurrent_requests == 0
        {
            anyhow::bail!(
                "open311: max_body_bytes, requests_per_minute and concurrent_requests must be more than 0"
            );
        }
        for token in &self.tokens {
            if let Some(hex) = token.token.strip_prefix(HASHED) {
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    anyhow::bail!("token {}: {HASHED} needs 64 hex digits", token.name);
                }
            } else if token.token.chars().count() < 16 {
                anyhow::bail!("token {}: shorter than 16 characters", token.name);
            }
            if !seen.insert(token.token.as_str()) {
                anyhow::bail!("token {}: the same secret is given twice", token.name);
            }
            let lower = token.token.to_lowercase();
            if EXAMPLE_TOKENS.iter().any(|example| lower.contains(example)) {
                anyhow::bail!(
                    "token {}: an example from the documentation; make one of your own \
                     with `gridhub token new`",
                    token.name
                );
            }
        }
        Ok(())
    }

    /// What one connector may hold, in deliveries: its consumers' prefetch
    /// (at most `wanted`, the hub's or the connector's own) and its DLQ
    /// recorder's, such that the whole, at `max_message_size` each, fits in
    /// `held_bytes`.
    pub fn holding(&self, wanted: u16) -> Holding {
        let deliveries = (self.held_bytes / self.max_message_size.max(1)).max(2);
        // The recorder takes an eighth, up to 64: dead letters the hub
        // writes keep 4 KiB of their body, but what the broker dead-letters
        // after the delivery limit is whole.
        let recorder = (deliveries / 8).clamp(1, 64);
        let consumers = self.consumers_per_queue.max(1) as u64;
        let each = ((deliveries - recorder) / consumers).max(1);
        Holding {
            prefetch: u16::try_from(each).unwrap_or(u16::MAX).min(wanted.max(1)),
            recorder: u16::try_from(recorder).unwrap_or(64),
        }
    }

    /// The keys personal data is sealed with at rest: `GRIDHUB_DATA_KEYS`,
    /// else `data_keys_file`, else none.
    pub fn seal(&self) -> anyhow::Result<crate::store::seal::Seal> {
        use crate::store::seal::Seal;
        if let Ok(lines) = std::env::var("GRIDHUB_DATA_KEYS")
            && !lines.trim().is_empty()
        {
            return Seal::parse(&lines).map_err(|e| anyhow::anyhow!("GRIDHUB_DATA_KEYS: {e}"));
        }
        match &self.data_keys_file {
            Some(path) => {
                let lines = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Seal::parse(&lines).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            None => Ok(Seal::default()),
        }
    }

    /// The broker link's TLS files, read.
    pub fn amqp_tls(&self) -> anyhow::Result<Option<crate::amqp::Tls>> {
        crate::amqp::Tls::load(
            self.amqp_tls_ca_file.as_deref(),
            self.amqp_tls_cert_file.as_deref(),
            self.amqp_tls_key_file.as_deref(),
        )
    }

    /// The retentions of personal data, as durations (`None`: kept).
    pub fn retention(&self) -> (Option<chrono::Duration>, Option<chrono::Duration>) {
        let days = |d: u32| (d > 0).then(|| chrono::Duration::days(i64::from(d)));
        (
            days(self.reporter_retention_days),
            days(self.dead_letter_retention_days),
        )
    }

    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }

    pub fn broker_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.broker_connect_timeout_ms)
    }

    /// The broker addresses: `amqp_urls`, or `amqp_url` (several when
    /// separated by commas, as `GRIDHUB_AMQP_URL` may give them).
    pub fn broker_urls(&self) -> Vec<String> {
        if !self.amqp_urls.is_empty() {
            return self.amqp_urls.iter().map(|u| u.trim().to_owned()).collect();
        }
        self.amqp_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The first broker address: its user is the hub's identity, its
    /// virtual host the hub's (the same in every address).
    pub fn broker_url(&self) -> String {
        self.broker_urls()
            .into_iter()
            .next()
            .unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned())
    }

    /// The broker addresses with their TLS, to connect to.
    pub fn brokers(&self) -> anyhow::Result<crate::amqp::Brokers> {
        Ok(
            crate::amqp::Brokers::new(self.broker_urls(), self.amqp_tls()?)
                .with_attempt_bound(self.broker_connect_timeout()),
        )
    }
}

/// What one connector holds at most, in deliveries (see
/// [`Settings::holding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    /// Each inbound consumer's prefetch.
    pub prefetch: u16,
    /// The DLQ recorder's prefetch.
    pub recorder: u16,
}

/// Texts of the documentation's example tokens: a token containing one is
/// refused, so that a copied example never guards a real hub.
const EXAMPLE_TOKENS: [&str; 3] = ["change-me", "long random secret", "example-token"];

/// The folder of a settings file, as an absolute path.
fn config_folder(file: &Path) -> anyhow::Result<PathBuf> {
    let file = std::path::absolute(file).with_context(|| format!("{}", file.display()))?;
    Ok(file.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// `schemas` beside a connectors folder: `./connectors` gives `./schemas`.
pub fn schemas_beside(connectors_dir: &Path) -> PathBuf {
    let parent = connectors_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join("schemas")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_connector_holds_fits_in_its_bytes() {
        let settings = Settings::default();
        let held = |s: &Settings, wanted: u16| {
            let h = s.holding(wanted);
            (u64::from(h.prefetch) * s.consumers_per_queue as u64 + u64::from(h.recorder))
                * s.max_message_size
        };
        // 256 MiB of 1 MiB messages: 32 for the recorder, 224 for the consumer.
        assert_eq!(
            settings.holding(512),
            Holding {
                prefetch: 224,
                recorder: 32
            }
        );
        assert!(held(&settings, 512) <= settings.held_bytes);
        // A connector's own smaller prefetch stays.
        assert_eq!(settings.holding(8).prefetch, 8);
        // Shared among consumers; never below one delivery each.
        let two = Settings {
            consumers_per_queue: 2,
            ..Settings::default()
        };
        assert_eq!(two.holding(512).prefetch, 112);
        assert!(held(&two, 512) <= two.held_bytes);
        let tiny = Settings {
            held_bytes: 1,
            ..Settings::default()
        };
        assert_eq!(
            tiny.holding(512),
            Holding {
                prefetch: 1,
                recorder: 1
            }
        );
        // Small messages: the prefetch asked for is the bound.
        let small = Settings {
            max_message_size: 64 * 1024,
            ..Settings::default()
        };
        assert_eq!(small.holding(512).prefetch, 512);
        assert_eq!(small.holding(512).recorder, 64);
    }

    #[test]
    fn the_documentations_example_tokens_are_refused() {
        let docs = include_str!("../docs/CONFIGURATION.md");
        let example: Settings = toml::from_str(
            docs.split("```toml")
                .nth(1)
                .and_then(|block| block.split("```").next())
                .expect("a toml block"),
        )
        .unwrap();
        assert!(!example.tokens.is_empty());
        let error = example.validate().unwrap_err().to_string();
        assert!(error.contains("example"), "{error}");
        let own = Settings {
            tokens: vec![Token {
                name: "ops".into(),
                token: "7f3a9c0e51b24d86a1e0c4f2".into(),
                role: Role::Ops,
                connectors: Vec::new(),
            }],
            ..Settings::default()
        };
        own.validate().unwrap();
    }

    #[test]
    fn broker_addresses_are_a_list() {
        let single = Settings::default();
        assert_eq!(single.broker_urls(), vec![DEFAULT_AMQP_URL.to_owned()]);
        let listed: Settings = toml::from_str(
            r#"amqp_urls = ["amqp://hub:pw@node1:5672/%2f", "amqp://hub:pw@node2:5672/%2f"]
               quorum_replicas = 3"#,
        )
        .unwrap();
        listed.validate().unwrap();
        assert_eq!(listed.broker_urls().len(), 2);
        assert_eq!(listed.broker_url(), "amqp://hub:pw@node1:5672/%2f");
        assert_eq!(listed.quorum_replicas, Some(3));
        // GRIDHUB_AMQP_URL's form: separated by commas.
        let env = Settings {
            amqp_url: "amqp://hub:pw@node1:5672/%2f, amqp://hub:pw@node2:5672/%2f,".into(),
            ..Settings::default()
        };
        assert_eq!(env.broker_urls(), listed.broker_urls());
        let mixed = Settings {
            amqp_url: "amqp://hub:pw@node1:5672/%2f,amqp://other:pw@node2:5672/%2f".into(),
            ..Settings::default()
        };
        let error = mixed.validate().unwrap_err().to_string();
        assert!(
            error.contains("same user") && !error.contains("pw@"),
            "{error}"
        );
        let both = Settings {
            amqp_url: "amqp://hub:pw@node1:5672/%2f".into(),
            ..listed.clone()
        };
        assert!(both.validate().is_err());
        let none = Settings {
            quorum_replicas: Some(0),
            ..Settings::default()
        };
        assert!(none.validate().is_err());
    }

    #[test]
    fn a_token_may_be_stored_as_its_hash() {
        let (secret, token) = Token::generate("night-shift", Role::Ops, Vec::new());
        assert!(token.token.starts_with(HASHED) && !token.token.contains(&secret));
        use sha2::{Digest, Sha256};
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        assert_eq!(token.digest(), presented);
        let settings = Settings {
            tokens: vec![token],
            ..Settings::default()
        };
        settings.validate().unwrap();
        let broken = Settings {
            tokens: vec![Token {
                name: "x".into(),
                token: "sha256:abc".into(),
                role: Role::Viewer,
                connectors: Vec::new(),
            }],
            ..Settings::default()
        };
        assert!(broken.validate().is_err());
    }

    #[test]
    fn empty_file_gives_defaults() {
        let settings: Settings = toml::from_str("").unwrap();
        assert_eq!(settings.namespace, "gridhub");
        assert_eq!(settings.prefetch, 512);
    }

    #[test]
    fn tokens_are_never_printed() {
        let settings: Settings = toml::from_str(
            "[[tokens]]\nname = \"night\"\ntoken = \"s3cret-s3cret-s3cret\"\nrole = \"ops\"\n",
        )
        .unwrap();
        assert_eq!(settings.tokens[0].role, Role::Ops);
        assert!(!format!("{settings:?}").contains("s3cret"));
        settings.validate().unwrap();
        let short: Settings =
            toml::from_str("[[tokens]]\nname = \"x\"\ntoken = \"short\"\nrole = \"viewer\"\n")
                .unwrap();
        assert!(short.validate().is_err());
    }

    #[test]
    fn a_broker_connect_attempt_needs_time() {
        let settings: Settings = toml::from_str("broker_connect_timeout_ms = 2500").unwrap();
        assert_eq!(
            settings.broker_connect_timeout(),
            Duration::from_millis(2500)
        );
        settings.validate().unwrap();
        let none: Settings = toml::from_str("broker_connect_timeout_ms = 0").unwrap();
        assert!(none.validate().is_err());
    }

    #[test]
    fn unknown_field_is_an_error() {
        assert!(toml::from_str::<Settings>("prefetchh = 3").is_err());
    }

    #[test]
    fn relative_paths_in_a_file_are_taken_from_its_folder() {
        let dir = std::env::temp_dir().join(format!("gridhub-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let file = dir.join("etc/gridhub.toml");
        std::fs::write(
            &file,
            "connectors_dir = \"../share/connectors\"\n\
             routing_file = \"rules/routing.toml\"\n\
             assessment_file = \"/srv/assessment.toml\"\n\
             data_keys_file = \"data-keys\"\n\
             amqp_tls_ca_file = \"tls/ca.pem\"\n\
             amqp_tls_cert_file = \"tls/hub.pem\"\n\
             amqp_tls_key_file = \"tls/hub.key\"\n\
             [open311]\nservices_file = \"open311.toml\"\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&file)).unwrap();
        let etc = dir.join("etc");
        assert_eq!(settings.connectors_dir, etc.join("../share/connectors"));
        assert!(!settings.connectors_by_default());
        // Unnamed: beside the connectors folder, as before.
        assert_eq!(settings.schemas_dir(), etc.join("../share/schemas"));
        assert_eq!(settings.routing_file(), etc.join("rules/routing.toml"));
        assert_eq!(
            settings.assessment_file(),
            Path::new("/srv/assessment.toml")
        );
        assert_eq!(settings.data_keys_file, Some(etc.join("data-keys")));
        assert_eq!(settings.amqp_tls_ca_file, Some(etc.join("tls/ca.pem")));
        assert_eq!(settings.amqp_tls_cert_file, Some(etc.join("tls/hub.pem")));
        assert_eq!(settings.amqp_tls_key_file, Some(etc.join("tls/hub.key")));
        assert_eq!(settings.open311_services_file(), etc.join("open311.toml"));

        // A file that names no connectors folder keeps the default, in the
        // working directory; a relative --config is made absolute.
        std::fs::write(&file, "schemas_dir = \"schemas\"\n").unwrap();
        let settings = Settings::load(Some(&file)).unwrap();
        assert!(settings.connectors_by_default());
        assert_eq!(settings.schemas_dir(), etc.join("schemas"));
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(&file, &cwd);
        let settings = Settings::load(Some(&relative)).unwrap();
        let schemas = settings.schemas_dir();
        assert!(schemas.is_absolute() && schemas.ends_with("schemas"));
        assert_eq!(
            schemas.parent().unwrap().canonicalize().unwrap(),
            etc.canonicalize().unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // No file: every path as given, from the working directory.
        let settings = Settings::load(None).unwrap();
        assert!(settings.connectors_by_default());
        assert_eq!(settings.routing_file(), Path::new("./deploy/routing.toml"));
    }

    /// `path` relative to `from` (both absolute), through `..` as needed.
    fn pathdiff(path: &Path, from: &Path) -> PathBuf {
        let (path, from): (Vec<_>, Vec<_>) =
            (path.components().collect(), from.components().collect());
        let common = path.iter().zip(&from).take_while(|(a, b)| a == b).count();
        let mut relative = PathBuf::new();
        for _ in common..from.len() {
            relative.push("..");
        }
        for part in &path[common..] {
            relative.push(part);
        }
        relative
    }

    #[test]
    fn schemas_sit_beside_connectors() {
        assert_eq!(
            schemas_beside(Path::new("connectors")),
            Path::new("./schemas")
        );
        assert_eq!(
            schemas_beside(Path::new("/srv/hub/connectors")),
            Path::new("/srv/hub/schemas")
        );
    }
}
