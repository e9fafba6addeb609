//! `gridhub demo`: the whole hub in one process, with no broker and no
//! database.
//!
//! The in-process bus ([`crate::bus`]) stands for RabbitMQ and SQLite for
//! PostgreSQL; the pipeline, the case store's logic, the consumers, the
//! outbox relay, the dead-letter operations, the console and the API are the
//! ones `gridhub serve` runs. A player then acts as the connectors would:
//! the planning commission publishes the district's grid division, then
//! hotline tickets of all three formats, grid workers' reports and
//! department population records arrive at a steady rate, a few of them bad,
//! so that calls become cases and refusals land in their dead-letter queues.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use lapin::BasicProperties;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::amqp::Names;
use crate::bench::mix::{self, Generator};
use crate::bus::LocalBus;
use crate::connector::Registry;
use crate::hub::Hub;
use crate::message::Inbound;
use crate::settings::{Role, Settings, Token};

mod units;

/// Options of `gridhub demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Where the console and the API listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Messages per second the player publishes.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Stop publishing after this many messages (the hub keeps running
    /// until Ctrl-C). Default: no end.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Share of bad messages (each a different fault from the connectors'
    /// invalid samples).
    #[arg(long, default_value_t = 0.05)]
    pub invalid: f64,
    /// The case store, an SQLite URL. Default: in memory, gone when the
    /// demo stops; e.g. `sqlite://gridhub-demo.db?mode=rwc` keeps it.
    #[arg(long, default_value = "sqlite::memory:")]
    pub database: String,
    /// Seed of the district and of the stream: the same seed plays the same demo.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// Events kept per destination queue: nobody consumes them in the demo.
const OUT_QUEUE_LENGTH: usize = 1000;

/// The planning commission's connector and message type.
const PLANNING: (&str, &str) = ("dept-planning", "grid-boundaries");

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, args: DemoArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(settings.log_format);
    let (settings, token) = demo_settings(settings, &args);
    let hub = Hub::build(settings.clone()).await?;
    let registry = hub.shared_registry();
    let address = hub.http_address();
    let (hub, bus) = hub.on_local_bus();
    // Nobody consumes the event queues in the demo: keep the latest only.
    let events = Names::new(&settings.namespace).outbound_queue("");
    for queue in hub.topology().queues {
        if queue.name.starts_with(&events) {
            bus.set_max_length(&queue.name, OUT_QUEUE_LENGTH);
        }
    }
    // Message ids unique to this run, so that a case store kept from an
    // earlier run (`--database sqlite://FILE`) takes the new run's messages;
    // its tickets are the same, and are recognised as already known.
    let run = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let mut generator = Generator::new(
        &registry,
        &mix::default_mix(&registry).0,
        args.invalid,
        &run,
        args.seed,
        1,
    )?;
    for note in &generator.notes {
        tracing::info!(note = %note, "demo mix");
    }
    // Plan the whole run up front when it has an end: a type that would run
    // out of unique ticket numbers stops the demo before it starts.
    if let Some(total) = args.messages {
        generator.plan(&registry, 0, total)?;
    }
    if let Some(address) = address {
        println!("gridhub demo: the console is at http://{address}/#token={token}");
        println!("  (API: curl -H 'Authorization: Bearer {token}' http://{address}/api/overview)");
    }
    println!("  Ctrl-C stops it.");

    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            crate::cli::wait_for_signal().await;
            shutdown.cancel();
        });
    }
    let player = Arc::new(Player {
        bus,
        registry,
        names: Names::new(&settings.namespace),
        centre: settings.centre_destination.clone(),
        refresh: Duration::from_millis(settings.places_refresh_ms),
        played: AtomicU64::new(0),
    });
    tokio::spawn(units::run(player.clone(), run.clone(), shutdown.clone()));
    let playing = {
        let (stop, player) = (shutdown.clone(), player.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => Ok(()),
                played = player.play(&mut generator, &args) => played,
            }
        })
    };
    hub.run_until_stopped(shutdown).await?;
    let played = player.played.load(Ordering::Relaxed);
    match playing.await {
        Ok(Ok(())) => tracing::info!(messages = played, "demo stopped"),
        Ok(Err(error)) => return Err(error),
        Err(error) => anyhow::bail!("the demo's player failed: {error}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The settings the demo runs with, and the console token it prints.
fn demo_settings(mut settings: Settings, args: &DemoArgs) -> (Settings, String) {
    settings.namespace = "demo".to_owned();
    settings.database_url = args.database.clone();
    settings.database_pool_size = settings.database_pool_size.min(4);
    settings.http_listen = args.listen.clone();
    settings.consumers_per_queue = 1;
    // Small batches: at a few messages a second, a case appears at once.
    settings.batch_linger_ms = settings.batch_linger_ms.min(20);
    settings.places_refresh_ms = settings.places_refresh_ms.min(500);
    // The demo's units answer in seconds, not hours: its assessment judges
    // contact on the same scale (deploy/dev/demo-assessment.toml), unless
    // the settings name a file.
    if settings.assessment_file.is_none() {
        let file = settings
            .routing_file()
            .with_file_name("dev/demo-assessment.toml");
        settings.assessment_file = Some(file);
    }
    // An ops token of the settings, unless it is stored as a hash (then
    // there is no secret to print).
    let own = settings
        .tokens
        .iter()
        .find(|t| t.role == Role::Ops && !t.token.starts_with(crate::settings::HASHED));
    let token = match own {
        Some(token) => token.token.clone(),
        None => {
            let token = format!("demo-{}", uuid::Uuid::new_v4().simple());
            settings.tokens.push(Token {
                name: "demo".to_owned(),
                token: token.clone(),
                role: Role::Ops,
                connectors: Vec::new(),
            });
            token
        }
    };
    (settings, token)
}

/// Publishes as the connectors would.
struct Player {
    bus: Arc<LocalBus>,
    registry: Arc<Registry>,
    names: Names,
    /// The command centre's destination (every event goes there).
    centre: String,
    /// How often the hub looks for new grid data.
    refresh: Duration,
    /// Stream messages published so far.
    played: AtomicU64,
}

impl Player {
    /// The grid data first, then the stream.
    async fn play(&self, generator: &mut Generator, args: &DemoArgs) -> anyhow::Result<()> {
        self.publish_district(args.seed).await?;
        let every = Duration::from_secs_f64(1.0 / args.rate.clamp(0.01, 10_000.0));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut planned = args.messages.unwrap_or(0);
        let mut seq = 0;
        while args.messages.is_none_or(|total| seq < total) {
            if seq == planned {
                // An endless demo plans a thousand messages at a time.
                generator.plan(&self.registry, seq, seq + 1000)?;
                planned = seq + 1000;
            }
            ticks.tick().await;
            let message = generator.message("s", seq);
            let (connector, _) = message
                .routing_key
                .split_once('.')
                .unwrap_or((message.routing_key.as_str(), ""));
            let spread = message
                .valid
                .then(|| {
                    self.spread(
                        connector,
                        &message.routing_key,
                        &message.body,
                        seq ^ args.seed,
                    )
                })
                .flatten();
            self.publish(
                connector,
                &message.routing_key,
                &message.message_id,
                &message.content_type,
                spread.as_deref().unwrap_or(&message.body),
            )?;
            seq += 1;
            self.played.store(seq, Ordering::Relaxed);
        }
        tracing::info!(messages = seq, "the demo's stream is played");
        Ok(())
    }

    /// The message with its coordinates moved by up to about 2 km, so that
    /// the demo's cases spread over the district instead of all falling on
    /// the few places the samples name (where they would merge as
    /// duplicates). `None` if it has no coordinates, or if the moved message
    /// would be refused.
    fn spread(
        &self,
        connector: &str,
        routing_key: &str,
        body: &[u8],
        seed: u64,
    ) -> Option<Vec<u8>> {
        let mut document: Value = serde_json::from_slice(body).ok()?;
        let offset = |salt: u64, span: f64| {
            let r = crate::bench::mix::splitmix(seed.rotate_left(7) ^ salt);
            ((r % 2_000_001) as f64 / 1_000_000.0 - 1.0) * span
        };
        let (dlon, dlat) = (offset(1, 0.02), offset(2, 0.015));
        if !move_points(&mut document, dlon, dlat) {
            return None;
        }
        self.accepted(connector, routing_key, serde_json::to_vec(&document).ok()?)
    }

    /// The body back if the pipeline would accept it from the connector's
    /// own publisher, `None` if it would be refused.
    fn accepted(&self, connector: &str, routing_key: &str, body: Vec<u8>) -> Option<Vec<u8>> {
        let user = self.publisher(connector);
        let check = Inbound {
            routing_key: routing_key.to_owned(),
            message_id: Some("demo-check".to_owned()),
            content_type: Some("application/json".to_owned()),
            amqp_type: None,
            user_id: user.clone(),
            body,
            replays: 0,
        };
        let trusted: Vec<String> = user.into_iter().collect();
        crate::pipeline::prepare(&self.registry, connector, &check, &trusted).ok()?;
        Some(check.body)
    }

    /// The broker user the connector publishes as: the hub's own for a
    /// connector only the hub publishes as (`publishers = []`, the Open311
    /// endpoint's).
    fn publisher(&self, connector: &str) -> Option<String> {
        let publishers = self
            .registry
            .get(connector)
            .and_then(|c| c.config.publishers.as_ref())?;
        Some(
            publishers
                .first()
                .cloned()
                .unwrap_or_else(|| crate::hub::LOCAL_HUB_USER.to_owned()),
        )
    }

    /// The planning commission's grid division, and time for the hub to
    /// load it, so that the first tickets are placed in their grids.
    async fn publish_district(&self, seed: u64) -> anyhow::Result<()> {
        let (connector, message_type) = PLANNING;
        if self.registry.get(connector).is_none() {
            tracing::warn!(connector, "no planning connector: cases will not be placed");
            return Ok(());
        }
        let district = crate::district::generate(seed);
        let parts =
            crate::district::planning_messages(&district, crate::district::DEFAULT_PER_MESSAGE);
        for (n, part) in parts.iter().enumerate() {
            self.publish(
                connector,
                &format!("{connector}.{message_type}"),
                &format!("demo-grids-{seed}-{n}"),
                "application/json",
                &serde_json::to_vec(part)?,
            )?;
        }
        let queue = self.names.inbound_queue(connector);
        while self.bus.depth(&queue).unwrap_or(0) > 0 || self.bus.unacked(&queue) > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(self.refresh * 2).await;
        tracing::info!(
            grids = district.grids.len(),
            "the district's grid division is published"
        );
        Ok(())
    }

    fn publish(
        &self,
        connector: &str,
        routing_key: &str,
        message_id: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let mut properties = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_content_type(content_type.into())
            .with_delivery_mode(2)
            .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
            .with_app_id("gridhub-demo".into());
        // The broker would have checked the publisher's user; the demo
        // publishes as the connector's own.
        if let Some(user) = self.publisher(connector) {
            properties = properties.with_user_id(user.as_str().into());
        }
        let routed = self.bus.publish(
            &self.names.inbound_exchange(),
            routing_key,
            properties,
            body,
        );
        if routed == 0 {
            return Err(anyhow::anyhow!("no queue for {routing_key}"))
                .context("the demo's bus refused a message");
        }
        Ok(())
    }
}

/// Moves every longitude (`lng`, `lon`, `longitude`) and latitude (`lat`,
/// `latitude`) number in a document, any case, by the given degrees
/// (rounded to 6 decimals). Returns whether there was any.
fn move_points(value: &mut Value, dlon: f64, dlat: f64) -> bool {
    match value {
        Value::Object(map) => {
            let mut moved = false;
            for (key, item) in map.iter_mut() {
                let delta = match key.to_ascii_lowercase().as_str() {
                    "lng" | "lon" | "longitude" => Some(dlon),
                    "lat" | "latitude" => Some(dlat),
                    _ => None,
                };
                match (delta, item.as_f64()) {
                    (Some(delta), Some(degrees)) => {
                        let shifted = ((degrees + delta) * 1e6).round() / 1e6;
                        if let Some(number) = serde_json::Number::from_f64(shifted) {
                            *item = Value::Number(number);
                            moved = true;
                        }
                    }
                    _ => moved |= move_points(item, dlon, dlat),
                }
            }
            moved
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |moved, item| move_points(item, dlon, dlat) | moved),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn points_move_wherever_they_are_named() {
        let mut document = json!({
            "location": {"lng": 116.65, "lat": 39.9},
            "cameras": [{"LONGITUDE": 116.7, "LATITUDE": 39.8, "name": "lng"}],
            "title": "no numbers here"
        });
        assert!(move_points(&mut document, 0.01, -0.02));
        assert_eq!(document["location"]["lng"], json!(116.66));
        assert_eq!(document["location"]["lat"], json!(39.88));
        assert_eq!(document["cameras"][0]["LONGITUDE"], json!(116.71));
        assert_eq!(document["cameras"][0]["name"], json!("lng"));
        assert!(!move_points(
            &mut json!({"address": "玉桥街道"}),
            0.01,
            0.01
        ));
    }

    #[test]
    fn the_demo_runs_with_a_generated_ops_token_unless_one_is_set() {
        let args = DemoArgs {
            listen: "127.0.0.1:0".into(),
            rate: 1.0,
            messages: None,
            invalid: 0.05,
            database: "sqlite::memory:".into(),
            seed: 1,
        };
        let (settings, token) = demo_settings(Settings::default(), &args);
        assert!(token.starts_with("demo-") && token.len() > 16);
        assert_eq!(settings.tokens.len(), 1);
        assert_eq!(settings.namespace, "demo");
        assert_eq!(settings.database_url, "sqlite::memory:");
        settings.validate().unwrap();
        let mut given = Settings::default();
        given.tokens.push(Token {
            name: "night".into(),
            token: "a-token-of-our-own-1234".into(),
            role: Role::Ops,
            connectors: Vec::new(),
        });
        let (_, token) = demo_settings(given, &args);
        assert_eq!(token, "a-token-of-our-own-1234");
    }
}
