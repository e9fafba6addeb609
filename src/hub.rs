//! The running hub: connects, declares the topology, runs the consumers and
//! the outbox relay, and starts over when the broker connection is lost.
//! The same hub runs on the in-process bus for `gridhub demo`
//! ([`Hub::on_local_bus`]).

use std::sync::Arc;
use std::time::Duration;

use lapin::Connection;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::amqp::consumer::{self, Context};
use crate::amqp::relay::Relay;
use crate::amqp::topology::Topology;
use crate::amqp::{self, Names};
use crate::bus::LocalBus;
use crate::carrier::Carrier;
use crate::connector::Registry;
use crate::dlq::Office;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::places;
use crate::routing::{self, Routing};
use crate::settings::Settings;
use crate::store::{Rules, Store};

pub struct Hub {
    settings: Settings,
    registry: Arc<Registry>,
    routing: Arc<Routing>,
    /// How the assessment judges (deploy/assessment.toml).
    assessment: Arc<crate::assessment::Config>,
    places: places::Current,
    store: Store,
    /// The broker link's TLS (`amqps://`).
    tls: Option<amqp::Tls>,
    metrics: Arc<Metrics>,
    /// Bound at build, so the address (port 0 in tests) is known before running.
    http: Option<TcpListener>,
    /// The in-process bus, if the hub runs on one instead of RabbitMQ.
    local: Option<Arc<LocalBus>>,
    /// The Open311 endpoint's services, when it has api_keys.
    open311: Option<http::open311::Services>,
}

/// The broker user replays are published as on the in-process bus.
pub const LOCAL_HUB_USER: &str = "gridhub";

/// What one connection's tasks ended with.
enum Ended {
    Stopped,
    Failed {
        error: String,
        /// The client could not parse what the broker sent (a message's
        /// properties that are not UTF-8): see `amqp::unreadable`.
        unreadable: bool,
    },
}

/// What one broker connection carries.
#[derive(Debug, Clone)]
enum Part {
    /// The consumers of one connector's inbound queue.
    Connector(String),
    /// The outbox relay.
    Relay,
}

/// How long a connector stays in quarantine (prefetch 1) after a message
/// ended its connection.
const QUARANTINE: Duration = Duration::from_secs(60);

/// Keeps one part of the hub connected: connects (declaring the topology),
/// runs the part until it stops or its connection fails, and starts over.
struct Supervisor {
    brokers: amqp::Brokers,
    topology: Arc<Topology>,
    bound: Duration,
    retry: crate::settings::RetrySettings,
    consumers_per_queue: usize,
    context: Arc<Context>,
    relay: Arc<Relay>,
}

impl Supervisor {
    async fn run(self: Arc<Self>, part: Part) {
        let stop = self.context.stop.clone();
        let mut delays = self.retry.delays();
        // After a connection ended on a message the client cannot read: the
        // connector consumes one message at a time until then, so that the
        // next such failure holds the culprit alone.
        let mut quarantine_until: Option<std::time::Instant> = None;
        // The last failure happened in quarantine: the culprit is at the head.
        let mut evict = false;
        loop {
            if stop.is_cancelled() {
                return;
            }
            // Every node in turn (each bounded), then the topology (bounded):
            // the backoff comes only after a whole round failed.
            let connection = tokio::select! {
                _ = stop.cancelled() => return,
                connection = connect_and_declare(&self.brokers, &self.topology, self.bound) => connection,
            };
            let (connection, url) = match connection {
                Ok((connection, url)) => (Arc::new(connection), url),
                Err(error) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(part = ?part, error = %error, retry_in_ms = delay.as_millis() as u64, "broker unavailable");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            let quarantined = quarantine_until.is_some_and(|t| std::time::Instant::now() < t);
            if !quarantined {
                quarantine_until = None;
            }
            if let (Part::Connector(connector), true) = (&part, evict) {
                self.evict(&connection, &url, connector).await;
            }
            let ended = self.run_part(&connection, &part, quarantined).await;
            close_within(self.bound, &connection, "gridhub reconnecting").await;
            match ended {
                Ended::Stopped => return,
                Ended::Failed { error, unreadable } => {
                    if stop.is_cancelled() {
                        return;
                    }
                    if let (Part::Connector(connector), true) = (&part, unreadable) {
                        self.context
                            .metrics
                            .unreadable
                            .get_or_create(&crate::metrics::Metrics::label(connector))
                            .inc();
                        tracing::warn!(
                            connector = %connector,
                            quarantined,
                            "the AMQP client could not read a delivery; \
                             the connector consumes one message at a time for a while"
                        );
                        evict = quarantined;
                        quarantine_until = Some(std::time::Instant::now() + QUARANTINE);
                        // Straight back: only this connector waits.
                        delays = self.retry.delays();
                        continue;
                    }
                    evict = false;
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(part = ?part, error = %error, retry_in_ms = delay.as_millis() as u64, "broker connection lost; reconnecting");
                    tokio::time::sleep(delay).await;
                }
            }
            if quarantine_until.is_none() {
                delays = self.retry.delays();
            }
        }
    }

    /// Takes the unreadable messages at the head of the connector's queue
    /// off it (see `amqp::unreadable`).
    async fn evict(&self, connection: &Connection, url: &str, connector: &str) {
        let evicted = async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(lapin::options::ConfirmSelectOptions::default())
                .await?;
            let evicted = amqp::unreadable::evict(url, &channel, &self.context, connector).await;
            let _ = channel.close(200, "evicted".into()).await;
            Ok::<_, anyhow::Error>(evicted?)
        };
        match evicted.await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(
                connector,
                messages = count,
                "unreadable messages dead-lettered"
            ),
            Err(error) => {
                tracing::warn!(connector, error = %error, "cannot take unreadable messages off the queue; the delivery limit will")
            }
        }
    }

    /// Runs one part on one connection until it stops (shutdown) or fails
    /// (then its other tasks are dropped: what they held unacknowledged is
    /// redelivered, and the inbox makes that harmless).
    async fn run_part(
        &self,
        connection: &Arc<Connection>,
        part: &Part,
        quarantined: bool,
    ) -> Ended {
        let context = &self.context;
        let mut tasks: JoinSet<Result<(), PartFailure>> = JoinSet::new();
        match part {
            Part::Connector(connector) => {
                let (consumers, prefetch) = match quarantined {
                    true => (1, Some(1)),
                    false => (self.consumers_per_queue, None),
                };
                for index in 0..consumers {
                    let (connection, context, id) =
                        (connection.clone(), context.clone(), connector.clone());
                    tasks.spawn(async move {
                        consumer::run(&Carrier::Broker(connection), context, id, index, prefetch)
                            .await
                            .map_err(PartFailure::Consumer)
                    });
                }
                let (connection, context, id) =
                    (connection.clone(), context.clone(), connector.clone());
                tasks.spawn(async move {
                    consumer::record(&Carrier::Broker(connection), context, id)
                        .await
                        .map_err(PartFailure::Consumer)
                });
            }
            Part::Relay => {
                let (connection, relay) = (connection.clone(), self.relay.clone());
                tasks.spawn(async move {
                    relay
                        .run(&Carrier::Broker(connection))
                        .await
                        .map_err(PartFailure::Relay)
                });
            }
        }
        // What ended the connection, if it was the client's parser.
        let unreadable = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            // Idle consumers notice a dead connection late; watch it directly.
            let (connection, stop, unreadable) =
                (connection.clone(), context.stop.clone(), unreadable.clone());
            tasks.spawn(async move {
                let mut events = std::pin::pin!(connection.events_listener());
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        event = futures_util::StreamExt::next(&mut events) => {
                            if let Some(lapin::Event::Error(error)) = event {
                                if amqp::unparseable(&error) {
                                    unreadable.store(true, std::sync::atomic::Ordering::Relaxed);
                                }
                                return Err(PartFailure::Connection(error));
                            }
                        }
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {
                            if !connection.status().connected() {
                                return Err(PartFailure::Closed);
                            }
                        }
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let failure = match joined {
                Ok(Ok(())) => continue,
                // What a consumer held at shutdown goes back to the queue.
                Ok(Err(PartFailure::Consumer(consumer::ConsumerError::Abandoned)))
                    if context.stop.is_cancelled() =>
                {
                    continue;
                }
                Ok(Err(error)) => error.to_string(),
                Err(error) => format!("task failed: {error}"),
            };
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            return Ended::Failed {
                error: failure,
                unreadable: unreadable.load(std::sync::atomic::Ordering::Relaxed),
            };
        }
        Ended::Stopped
    }
}

/// Why one task of a part ended before shutdown.
#[derive(Debug, thiserror::Error)]
enum PartFailure {
    #[error(transparent)]
    Consumer(consumer::ConsumerError),
    #[error("relay: {0}")]
    Relay(lapin::Error),
    #[error("connection: {0}")]
    Connection(lapin::Error),
    #[error("connection closed")]
    Closed,
}

impl Hub {
    /// Loads and compiles every connector (any problem stops the start, with
    /// every problem listed) and connects to the case store, creating and
    /// migrating the database if needed (unless `database_migrate` is off).
    /// Waits for the database if it is down; stops on a schema it must not
    /// run on (`store::schema::SchemaError`).
    pub async fn build(settings: Settings) -> anyhow::Result<Hub> {
        settings.validate()?;
        let registry = Registry::load(&settings.connectors_dir, &settings.schemas_dir()).map_err(
            |problems| anyhow::anyhow!("cannot load connectors:\n  {}", problems.join("\n  ")),
        )?;
        for token in &settings.tokens {
            if let Some(unknown) = token.connectors.iter().find(|c| registry.get(c).is_none()) {
                anyhow::bail!("token {}: no connector {unknown}", token.name);
            }
        }
        let routing = Routing::load(&settings.routing_file()).map_err(|problems| {
            anyhow::anyhow!("cannot load routing rules:\n  {}", problems.join("\n  "))
        })?;
        let assessment = crate::assess::load_config(&settings.assessment_file())?;
        let problems = routing::check_against(&routing, &registry);
        if !problems.is_empty() {
            anyhow::bail!(
                "routing rules do not fit the connectors:\n  {}",
                problems.join("\n  ")
            );
        }
        let open311 = match settings.open311.api_keys.is_empty() {
            true => None,
            false => {
                for key in &settings.open311.api_keys {
                    let takes = registry
                        .get(&key.connector)
                        .is_some_and(|c| c.messages.contains_key(http::open311::MESSAGE_TYPE));
                    if !takes {
                        anyhow::bail!(
                            "open311 api_key {}: no connector {} with a message type {}",
                            key.name,
                            key.connector,
                            http::open311::MESSAGE_TYPE
                        );
                    }
                }
                Some(http::open311::Services::load(
                    &settings.open311_services_file(),
                    &routing,
                )?)
            }
        };
        let mut delays = settings.retry.delays();
        let schema = settings.schema_mode();
        let store = loop {
            match Store::connect_with(&settings.database_url, settings.database_pool_size, schema)
                .await
            {
                Ok(store) => break store,
                // A schema newer (or, not migrating, older) than this build's
                // does not change by waiting.
                Err(error) if error.is::<crate::store::schema::SchemaError>() => return Err(error),
                Err(error) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "case store unavailable at start");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let places = loop {
            match places::load(&store).await {
                Ok(places) => break places,
                Err(error) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "cannot load grid data");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let http = match settings.http_listen.trim() {
            "" => None,
            address => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("http_listen {address}: {e}"))?,
            ),
        };
        let seal = settings.seal()?;
        match seal.current() {
            Some(key) => {
                tracing::info!(key, "personal data is sealed at rest")
            }
            None => tracing::warn!(
                "no data keys (data_keys_file, GRIDHUB_DATA_KEYS): personal data (reporters, events, dead letters) is stored as given"
            ),
        }
        let store = store.sealed(seal);
        let tls = settings.amqp_tls()?;
        Ok(Hub {
            tls,
            settings,
            registry: Arc::new(registry),
            routing: Arc::new(routing),
            assessment: Arc::new(assessment),
            places: places::Current::new(places.1),
            store,
            metrics: Arc::new(Metrics::new()),
            http,
            local: None,
            open311,
        })
    }

    /// Runs on an in-process bus declared from the hub's topology instead of
    /// RabbitMQ; publish to the bus returned to feed the hub.
    pub fn on_local_bus(mut self) -> (Hub, Arc<LocalBus>) {
        let bus = LocalBus::new(&self.topology());
        self.local = Some(bus.clone());
        (self, bus)
    }

    /// Where the console, the API and `/metrics` listen (none if turned off).
    pub fn http_address(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn shared_registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What applying a batch needs, with the places as they are now.
    pub fn rules(&self) -> Rules {
        Rules {
            centre: self.settings.centre_destination.clone(),
            registry: self.registry.clone(),
            routing: self.routing.clone(),
            places: self.places.get(),
        }
    }

    pub fn topology(&self) -> Topology {
        Topology::new(
            &Names::new(&self.settings.namespace),
            &self.registry,
            self.settings.delivery_limit,
            &self.settings.centre_destination,
        )
        .with_quorum_replicas(self.settings.quorum_replicas)
    }

    /// The broker's addresses, with the link's TLS.
    fn brokers(&self) -> anyhow::Result<amqp::Brokers> {
        Ok(
            amqp::Brokers::new(self.settings.broker_urls(), self.tls.clone())
                .with_attempt_bound(self.settings.broker_connect_timeout()),
        )
    }

    /// Runs until `shutdown` is cancelled: then stops consuming, finishes the
    /// deliveries in hand (for at most the grace period) and returns.
    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let abandon = CancellationToken::new();
        let grace = Duration::from_secs(self.settings.shutdown_grace_secs);
        {
            let (shutdown, abandon) = (shutdown.clone(), abandon.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
                abandon.cancel();
            });
        }
        let mut trusted = self.settings.trusted_users.clone();
        trusted.push(match &self.local {
            Some(_) => LOCAL_HUB_USER.to_owned(),
            None => amqp::url_user(&self.settings.broker_url()),
        });
        let mut http_task = None;
        if let Some(listener) = self.http.take() {
            let names = Names::new(&self.settings.namespace);
            let metrics = Some(self.metrics.clone());
            let ops = Arc::new(match &self.local {
                Some(bus) => Office::local(
                    bus.clone(),
                    LOCAL_HUB_USER,
                    names,
                    self.store.clone(),
                    self.registry.clone(),
                    self.settings.dlq_scan_limit,
                    metrics,
                ),
                None => Office::on_brokers(
                    self.brokers()?,
                    names,
                    self.store.clone(),
                    self.registry.clone(),
                    trusted.clone(),
                    self.settings.dlq_scan_limit,
                    metrics,
                ),
            });
            let mut state = AppState::new(
                ops.clone(),
                self.metrics.clone(),
                self.settings.tokens.clone(),
                self.topology(),
            )
            .with_desk(self.rules())
            .with_places(self.places.clone())
            .with_assessment(self.assessment.clone());
            if let Some(services) = self.open311.take() {
                state = state.with_open311(http::open311::Endpoint::new(http::open311::Parts {
                    settings: self.settings.open311.clone(),
                    services,
                    routing: self.routing.clone(),
                    registry: self.registry.clone(),
                    ops: ops.clone(),
                    store: self.store.clone(),
                    hub_user: trusted.last().cloned().unwrap_or_default(),
                    trusted: trusted.clone(),
                }));
            }
            let state = Arc::new(state);
            // The console stays up until the hub has finished its in-flight work.
            let stopped = CancellationToken::new();
            let server = tokio::spawn(http::serve(listener, state, stopped.clone()));
            http_task = Some((server, stopped, ops));
        }
        let result = self.consume(shutdown, abandon, trusted).await;
        if let Some((server, stopped, ops)) = http_task {
            stopped.cancel();
            match server.await {
                Ok(Err(error)) => tracing::warn!(error = %error, "http server failed"),
                Err(error) => tracing::warn!(error = %error, "http server task failed"),
                Ok(Ok(())) => {}
            }
            ops.close().await;
        }
        result
    }

    async fn consume(
        &self,
        shutdown: CancellationToken,
        abandon: CancellationToken,
        trusted: Vec<String>,
    ) -> anyhow::Result<()> {
        let outbox_ready = Arc::new(Notify::new());
        tokio::spawn(refresh_places(
            self.store.clone(),
            self.places.clone(),
            Duration::from_millis(self.settings.places_refresh_ms),
            shutdown.clone(),
        ));
        tokio::spawn(scan_deadlines(
            self.store.clone(),
            self.rules(),
            self.places.clone(),
            Duration::from_secs(self.settings.overdue_scan_secs.max(1)),
            outbox_ready.clone(),
            shutdown.clone(),
        ));
        if self.settings.outbox_retention_hours > 0 {
            tokio::spawn(prune_outbox(
                self.store.clone(),
                chrono::Duration::hours(
                    i64::try_from(self.settings.outbox_retention_hours).unwrap_or(i64::MAX / 7200),
                ),
                shutdown.clone(),
            ));
        }
        tokio::spawn(expire_personal_data(
            self.store.clone(),
            self.settings.retention(),
            shutdown.clone(),
        ));
        let context = Arc::new(Context {
            registry: self.registry.clone(),
            store: self.store.clone(),
            names: Names::new(&self.settings.namespace),
            rules: self.rules(),
            places: self.places.clone(),
            trusted,
            holding: self.settings.holding(self.settings.prefetch),
            max_message_size: self.settings.max_message_size,
            oversize_seen: Default::default(),
            batch_size: self.settings.batch_size.max(1),
            batch_bytes: self.settings.batch_bytes.max(1),
            batch_linger: self.settings.batch_linger(),
            retry: self.settings.retry.clone(),
            store_hold: Duration::from_secs(self.settings.store_hold_secs.max(1)),
            outbox_ready: outbox_ready.clone(),
            stop: shutdown.clone(),
            abandon: abandon.clone(),
            metrics: self.metrics.clone(),
            topology: Arc::new(self.topology()),
        });
        let relay = Arc::new(Relay {
            store: self.store.clone(),
            names: Names::new(&self.settings.namespace),
            ready: outbox_ready,
            poll: Duration::from_millis(self.settings.outbox_poll_ms),
            stop: shutdown.clone(),
            metrics: self.metrics.clone(),
            topology: context.topology.clone(),
            user: match &self.local {
                Some(_) => LOCAL_HUB_USER.to_owned(),
                None => amqp::url_user(&self.settings.broker_url()),
            },
        });
        if let Some(bus) = &self.local {
            self.run_local(bus, &context, &relay).await;
            tracing::info!("stopped");
            return Ok(());
        }
        // One connection per connector and one for the relay: a message
        // that ends a connection (one the client cannot parse) costs its
        // own connector a reconnect, and nothing else.
        let supervisor = Arc::new(Supervisor {
            brokers: self.brokers()?,
            topology: context.topology.clone(),
            bound: self.settings.broker_connect_timeout(),
            retry: self.settings.retry.clone(),
            consumers_per_queue: self.settings.consumers_per_queue.max(1),
            context: context.clone(),
            relay: relay.clone(),
        });
        let mut parts: JoinSet<()> = JoinSet::new();
        for connector in self.consumed() {
            parts.spawn(supervisor.clone().run(Part::Connector(connector)));
        }
        parts.spawn(supervisor.clone().run(Part::Relay));
        while parts.join_next().await.is_some() {}
        tracing::info!("stopped");
        Ok(())
    }

    /// Runs every consumer and the relay on the in-process bus until they stop.
    async fn run_local(&self, bus: &Arc<LocalBus>, context: &Arc<Context>, relay: &Arc<Relay>) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        let carrier = Carrier::Local(bus.clone());
        for id in self.consumed() {
            let connector = id.clone();
            let (local, shared) = (carrier.clone(), context.clone());
            tasks.spawn(async move {
                // On the bus a consumer only ends when stopped or abandoned.
                if let Err(error) = consumer::run(&local, shared, id, 0, None).await {
                    tracing::warn!(error = %error, "consumer ended");
                }
            });
            let (local, context) = (carrier.clone(), context.clone());
            tasks.spawn(async move {
                if let Err(error) = consumer::record(&local, context, connector).await {
                    tracing::warn!(error = %error, "dead-letter recorder ended");
                }
            });
        }
        {
            let (local, relay) = (carrier.clone(), relay.clone());
            tasks.spawn(async move {
                // Publishing on the bus cannot fail.
                let _ = relay.run(&local).await;
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Connectors whose queue the hub consumes: those with message types.
    fn consumed(&self) -> Vec<String> {
        self.registry
            .connectors
            .values()
            .filter(|c| !c.messages.is_empty())
            .map(|c| c.id().to_owned())
            .collect()
    }
}

/// Closes a connection, waiting at most `bound`: one that died may never
/// answer a close.
async fn close_within(bound: Duration, connection: &Connection, reason: &str) {
    let _ = tokio::time::timeout(bound, connection.close(200, reason.into())).await;
}

/// Connects to one of the broker's nodes (each bounded by `bound`) and
/// declares the topology there (bounded by `bound` too).
async fn connect_and_declare(
    brokers: &amqp::Brokers,
    topology: &Topology,
    bound: Duration,
) -> anyhow::Result<(Connection, String)> {
    let amqp::Connected { connection, url } = brokers.connect("hub").await?;
    // A broker with a larger frame_max delivers header tables deeper than
    // the client's threads can parse: one such message would end the process.
    let frame_max = connection.configuration().frame_max();
    if let Err(error) = amqp::limits::check_frame_max(frame_max) {
        close_within(Duration::from_secs(5), &connection, "frame_max too large").await;
        return Err(error);
    }
    match tokio::time::timeout(bound, topology.declare_on(&connection)).await {
        Ok(Ok(())) => Ok((connection, url)),
        failed => {
            close_within(Duration::from_secs(5), &connection, "topology not declared").await;
            Err(match failed {
                Ok(Err(error)) => anyhow::anyhow!(
                    "{}: cannot declare the topology: {error}",
                    amqp::redact_url(&url)
                ),
                _ => anyhow::anyhow!(
                    "{}: the topology was not declared within {} ms",
                    amqp::redact_url(&url),
                    bound.as_millis()
                ),
            })
        }
    }
}

/// Reloads the district's places when another hub (or this one) changed
/// the grid data.
async fn refresh_places(
    store: Store,
    places: places::Current,
    every: Duration,
    stop: CancellationToken,
) {
    let mut known = store.grid_version().await.unwrap_or(-1);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match store.grid_version().await {
            Ok(version) if version != known => match places::load(&store).await {
                Ok((loaded, fresh)) => {
                    known = loaded;
                    places.set(fresh);
                    tracing::info!(version = loaded, "grid data reloaded");
                }
                Err(error) => tracing::warn!(error = %error, "cannot reload grid data"),
            },
            Ok(_) => {}
            Err(error) => tracing::debug!(error = %error, "cannot read the grid data version"),
        }
    }
}

/// How often sent events past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deletes sent events older than `retention`, at start and then every
/// [`PRUNE_EVERY`]. Several hubs may prune at once: each deletes what the
/// others have not.
async fn prune_outbox(store: Store, retention: chrono::Duration, stop: CancellationToken) {
    loop {
        let before = chrono::Utc::now() - retention;
        match store.prune_outbox(before).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(events = deleted, "sent events past their retention deleted")
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot prune the outbox; next round retries")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

/// Erases reporters' personal data and dead letters' payloads past their
/// retention, every [`PRUNE_EVERY`] (`store::retention`).
async fn expire_personal_data(
    store: Store,
    (reporters, dead_letters): (Option<chrono::Duration>, Option<chrono::Duration>),
    stop: CancellationToken,
) {
    if reporters.is_none() && dead_letters.is_none() {
        return;
    }
    loop {
        match store
            .expire(chrono::Utc::now(), reporters, dead_letters)
            .await
        {
            Ok(expired) if expired != Default::default() => tracing::info!(
                reporters = expired.reporters,
                dead_letters = expired.dead_letters,
                settled_deleted = expired.settled_deleted,
                "personal data past its retention expired"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %error, "cannot expire personal data; next round retries")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

/// Runs the overdue scanner on the hub's clock.
async fn scan_deadlines(
    store: Store,
    rules: Rules,
    places: places::Current,
    every: Duration,
    outbox_ready: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let rules = Rules {
            places: places.get(),
            ..rules.clone()
        };
        match store.escalate(chrono::Utc::now(), &rules).await {
            Ok(escalations) if !escalations.is_empty() => {
                tracing::info!(escalations = escalations.len(), "deadlines escalated");
                outbox_ready.notify_one();
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "overdue scan failed; next scan retries"),
        }
    }
}
