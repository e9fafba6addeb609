//! `gridhub bench`: the hub end to end against the broker's own ceiling.
//!
//! One run, on its own namespace of exchanges and queues and its own fresh
//! database, removed at the end even on failure:
//!
//! 1. **ceiling**: the same payloads through the raw broker path, a publisher
//!    with confirms into a quorum queue and a consumer with manual acks
//!    running together, no processing;
//! 2. **throughput**: the hub (this binary's `serve`, a child process) takes
//!    the mix published at full speed with confirms; from the first publish
//!    to the last commit;
//! 3. **latency**: once the hub has relayed the throughput run's events,
//!    the mix offered at a fixed rate; publish time to the inbox row's time
//!    (written by the recording transaction);
//! 4. **checks**: nothing lost or doubled; the hub's peak RSS; and for each
//!    run, the machine's CPU by process (`cpu.rs`).

mod broker;
mod cpu;
pub mod mix;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use sqlx::PgPool;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::amqp::topology::Topology;
use crate::amqp::{self, Names};
use crate::connector::Registry;
use crate::settings::Settings;
use cpu::Snapshot;
use mix::{Generator, Planned};
use report::{Ceiling, Checks, Latency, Report, Throughput};

/// Options of `gridhub bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Messages published in the ceiling run and in the hub's throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Messages offered at --rate in the latency run (0 skips it).
    #[arg(long, default_value_t = 30_000)]
    pub latency_messages: u64,
    /// Offered load of the latency run, messages per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Mix as `connector.type=weight,...`. Default: 12345 tickets 40, 96156
    /// and 96126 tickets 10 each, grid reports 20, police and health
    /// population records 10 each, leaving out what does not exist.
    #[arg(long)]
    pub mix: Option<String>,
    /// Fraction of messages taken from the connectors' invalid samples.
    #[arg(long, default_value_t = 0.02)]
    pub invalid: f64,
    /// Records in every message of a type that shares records (population
    /// pages): the sample's rows repeated, each with a record id of its own.
    /// 1 publishes the samples as they are (1 to 3 records). A department's
    /// export pages hold up to 1,000 (and 256 KiB).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_rows: u16,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the ceiling run (no ratio is reported).
    #[arg(long)]
    pub no_ceiling: bool,
    /// Unconfirmed messages a publisher keeps in flight.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// Prefetch of the ceiling's consumer.
    #[arg(long, default_value_t = 1000)]
    pub ceiling_prefetch: u16,
    /// Give up when the hub records nothing for this long, in seconds.
    #[arg(long, default_value_t = 60)]
    pub stall_secs: u64,
    /// Keep the bench's database, queues and hub log at the end.
    #[arg(long)]
    pub keep: bool,
    /// Seed of the mix: the same seed publishes the same messages.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the bench; exit 1 when a correctness check fails (speed never fails it).
pub async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let registry =
        Registry::load(&settings.connectors_dir, &settings.schemas_dir()).map_err(|problems| {
            anyhow::anyhow!("cannot load connectors:\n  {}", problems.join("\n  "))
        })?;
    let (mix, mut notes) = match &args.mix {
        Some(text) => (mix::parse_mix(text)?, Vec::new()),
        None => mix::default_mix(&registry),
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let mut generator = Generator::new(
        &registry,
        &mix,
        args.invalid,
        &format!("bench-{id}"),
        args.seed,
        usize::from(args.page_rows),
    )?;
    notes.append(&mut generator.notes);
    for note in &notes {
        eprintln!("note: {note}");
    }
    let planned = generator.plan(&registry, 0, args.messages + args.latency_messages)?;

    let work = Workspace::new(&settings, &registry, &id)?;
    let outcome = tokio::select! {
        outcome = run_phases(&settings, &args, &work, &mut generator, &planned) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let failed = outcome.is_err();
    if args.keep {
        eprintln!(
            "kept: database {}, namespace {}, hub log {}",
            work.database,
            work.names.namespace,
            work.dir.display()
        );
    } else {
        work.clean(failed).await;
    }
    let mut report = outcome?;
    // The generator's notes first, then what the run's figures call for.
    notes.append(&mut report.notes);
    report.notes = notes;
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(if report.checks.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The bench's namespace, database and scratch folder.
struct Workspace {
    names: Names,
    topology: Topology,
    ceiling_queue: String,
    ceiling_exchange: String,
    database: String,
    database_url: String,
    admin_url: String,
    amqp_url: String,
    dir: PathBuf,
    /// The hub under test seals personal data at rest, as a district's
    /// does, with a key of its own.
    keys: PathBuf,
}

impl Workspace {
    fn new(settings: &Settings, registry: &Registry, id: &str) -> anyhow::Result<Workspace> {
        let names = Names::new(&format!("bench{id}"));
        let topology = Topology::new(
            &names,
            registry,
            settings.delivery_limit,
            &settings.centre_destination,
        );
        let database = format!("gridhub_bench_{id}");
        let dir = std::env::temp_dir().join(format!("gridhub-bench-{id}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let keys = dir.join("data-keys");
        std::fs::write(
            &keys,
            crate::store::seal::Seal::new_key_line("bench") + "\n",
        )?;
        Ok(Workspace {
            keys,
            ceiling_queue: format!("{}.ceiling", names.namespace),
            ceiling_exchange: format!("{}.ceiling", names.namespace),
            database_url: with_database(&settings.database_url, &database)?,
            admin_url: with_database(&settings.database_url, "postgres")?,
            amqp_url: settings.broker_url(),
            database,
            names,
            topology,
            dir,
        })
    }

    /// Declares the hub's topology and the ceiling's own exchange and queue
    /// (with the arguments of an inbound queue).
    async fn declare(&self, channel: &Channel) -> anyhow::Result<()> {
        self.topology.declare(channel).await?;
        channel
            .exchange_declare(
                self.ceiling_exchange.as_str().into(),
                ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let inbound = self
            .topology
            .queues
            .first()
            .context("the topology has no queue")?;
        let arguments = inbound.field_table();
        channel
            .queue_declare(
                self.ceiling_queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                arguments,
            )
            .await?;
        channel
            .queue_bind(
                self.ceiling_queue.as_str().into(),
                self.ceiling_exchange.as_str().into(),
                "#".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// Deletes the queues and exchanges, drops the database, removes the
    /// scratch folder (kept when the run failed: it holds the hub's log).
    async fn clean(&self, failed: bool) {
        if let Ok(connection) = amqp::connect(&self.amqp_url, "bench cleanup").await {
            if let Ok(channel) = connection.create_channel().await {
                let queues = self
                    .topology
                    .queues
                    .iter()
                    .map(|q| q.name.as_str())
                    .chain([self.ceiling_queue.as_str()]);
                for queue in queues {
                    let _ = channel.queue_delete(queue.into(), Default::default()).await;
                }
                let exchanges = self
                    .topology
                    .exchanges
                    .iter()
                    .map(String::as_str)
                    .chain([self.ceiling_exchange.as_str()]);
                for exchange in exchanges {
                    let _ = channel
                        .exchange_delete(exchange.into(), Default::default())
                        .await;
                }
            }
            let _ = connection.close(200, "bench done".into()).await;
        }
        match PgPool::connect(&self.admin_url).await {
            Ok(pool) => {
                let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.database
                )))
                .execute(&pool)
                .await;
                if let Err(error) = dropped {
                    eprintln!(
                        "gridhub bench: cannot drop database {}: {error}",
                        self.database
                    );
                }
                pool.close().await;
            }
            Err(error) => eprintln!(
                "gridhub bench: cannot drop database {}: {error}",
                self.database
            ),
        }
        if failed {
            eprintln!("hub log kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The hub under test: `gridhub serve` in a child process.
struct HubProcess {
    child: Child,
    pid: i32,
    log: PathBuf,
}

impl HubProcess {
    async fn start(settings: &Settings, work: &Workspace) -> anyhow::Result<HubProcess> {
        let mut table = toml::Table::new();
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        let mut set = |key: &str, value: String| {
            table.insert(key.to_owned(), toml::Value::String(value));
        };
        set("amqp_url", work.amqp_url.clone());
        set("database_url", work.database_url.clone());
        set("namespace", work.names.namespace.clone());
        set(
            "connectors_dir",
            absolute(&settings.connectors_dir).display().to_string(),
        );
        set(
            "schemas_dir",
            absolute(&settings.schemas_dir()).display().to_string(),
        );
        // Any free port: a hub already on the default port must not stop the run.
        set("http_listen", "127.0.0.1:0".to_owned());
        set("data_keys_file", work.keys.display().to_string());
        table.extend(hub_tuning(settings));
        let config = work.dir.join("hub.toml");
        std::fs::write(&config, toml::to_string(&table)?)?;
        let log = work.dir.join("hub.log");
        let exe = std::env::current_exe().context("cannot find the gridhub binary")?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("GRIDHUB_AMQP_URL")
            .env_remove("GRIDHUB_DATABASE_URL")
            .env_remove("GRIDHUB_DATA_KEYS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start gridhub serve")?;
        let pid = child.id().context("the hub exited at once")? as i32;
        Ok(HubProcess { child, pid, log })
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "the hub exited ({status}); its log: {}",
                self.log.display()
            )),
            _ => None,
        }
    }

    /// Peak resident set size (VmHWM), in bytes.
    fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// SIGTERM, then waits for the hub to finish what it holds.
    async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => anyhow::bail!("the hub exited with {status} after SIGTERM"),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => {
                let _ = self.child.kill().await;
                anyhow::bail!("the hub did not stop within 60 s of SIGTERM")
            }
        }
    }
}

/// The settings of the bench's own `--config` that tune the hub under test.
fn hub_tuning(settings: &Settings) -> Vec<(String, toml::Value)> {
    let int = |n: u64| toml::Value::Integer(n as i64);
    vec![
        ("prefetch".into(), int(u64::from(settings.prefetch))),
        ("batch_size".into(), int(settings.batch_size as u64)),
        ("batch_bytes".into(), int(settings.batch_bytes as u64)),
        ("batch_linger_ms".into(), int(settings.batch_linger_ms)),
        (
            "consumers_per_queue".into(),
            int(settings.consumers_per_queue as u64),
        ),
        (
            "database_pool_size".into(),
            int(u64::from(settings.database_pool_size)),
        ),
        (
            "delivery_limit".into(),
            int(u64::from(settings.delivery_limit)),
        ),
        (
            "shutdown_grace_secs".into(),
            int(settings.shutdown_grace_secs),
        ),
        ("outbox_poll_ms".into(), int(settings.outbox_poll_ms)),
    ]
}

/// The same URL on another database.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base
        .find("://")
        .map(|p| p + 3)
        .context("database url has no scheme")?;
    let path_start = base[authority_start..]
        .find('/')
        .map(|p| authority_start + p)
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

fn bar(progress: &MultiProgress, len: u64, label: &str) -> ProgressBar {
    let bar = progress.add(ProgressBar::new(len));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {bar:40} {pos:>9}/{len:9} {per_sec:>12} {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(label.to_owned());
    bar
}

fn multi() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4))
}

#[allow(clippy::too_many_arguments)]
async fn run_phases(
    settings: &Settings,
    args: &BenchArgs,
    work: &Workspace,
    generator: &mut Generator,
    planned: &BTreeMap<String, Planned>,
) -> anyhow::Result<Report> {
    let connection = amqp::connect(&work.amqp_url, "bench").await?;
    let setup = connection.create_channel().await?;
    work.declare(&setup).await?;
    let user = amqp::url_user(&work.amqp_url);
    let mut report = Report::new(args, generator.describe(), planned);

    // 1. The ceiling: the same payloads, no hub.
    if !args.no_ceiling {
        eprintln!(
            "ceiling: {} messages through the raw broker path",
            args.messages
        );
        let progress = multi();
        let published = bar(&progress, args.messages, "published");
        let consumed = bar(&progress, args.messages, "consumed");
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let consumer = connection.create_channel().await?;
        generator.rewind();
        let messages: Vec<_> = (0..args.messages)
            .map(|seq| generator.message("c", seq))
            .collect();
        let cpu_before = Snapshot::take(None);
        let (sent, last) = tokio::join!(
            broker::publish(
                &publisher,
                &work.ceiling_exchange,
                &user,
                messages.into_iter(),
                args.window,
                None,
                &published,
            ),
            broker::consume(
                &consumer,
                &work.ceiling_queue,
                args.messages,
                args.ceiling_prefetch,
                &consumed,
            ),
        );
        let (sent, last) = (sent?, last?);
        let cpu = Snapshot::take(None).since(&cpu_before, args.messages, report.machine.cpus);
        published.finish();
        consumed.finish();
        let _ = publisher.close(200, "done".into()).await;
        let _ = consumer.close(200, "done".into()).await;
        let mut ceiling = Ceiling::new(args.messages, &sent, last);
        ceiling.cpu = Some(cpu);
        report.ceiling = Some(ceiling);
    }

    // 2. The hub, in its own process and database.
    eprintln!("starting the hub (namespace {})", work.names.namespace);
    let mut hub = HubProcess::start(settings, work).await?;
    wait_for_consumers(&connection, work, generator, &mut hub).await?;
    let pool = wait_for_database(&work.database_url, &mut hub).await?;
    let result = measure_hub(
        &connection,
        &pool,
        args,
        work,
        generator,
        &mut hub,
        &mut report,
        &user,
        planned,
    )
    .await;
    report.hub_peak_rss_bytes = hub.peak_rss();
    let stopped = hub.stop().await;
    result?;
    if let Err(error) = stopped {
        report.checks.problems.push(error.to_string());
        report.checks.ok = false;
    }
    pool.close().await;
    let _ = connection.close(200, "bench done".into()).await;
    report.evaluate_goals();
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn measure_hub(
    connection: &Connection,
    pool: &PgPool,
    args: &BenchArgs,
    work: &Workspace,
    generator: &mut Generator,
    hub: &mut HubProcess,
    report: &mut Report,
    user: &str,
    planned: &BTreeMap<String, Planned>,
) -> anyhow::Result<()> {
    let exchange = work.names.inbound_exchange();
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    // Throughput: full speed.
    eprintln!("throughput: {} messages through the hub", args.messages);
    generator.rewind();
    let progress = multi();
    let published = bar(&progress, args.messages, "published");
    let recorded = bar(&progress, args.messages, "recorded");
    let messages: Vec<_> = (0..args.messages)
        .map(|seq| generator.message("t", seq))
        .collect();
    let positions = generator.positions();
    let records: u64 = messages.iter().map(|m| m.records).sum();
    let population_only = messages.iter().all(|m| !m.valid || m.records > 0);
    let cpu_before = Snapshot::take(Some(hub.pid));
    let (sent, done) = tokio::join!(
        broker::publish(
            &publisher,
            &exchange,
            user,
            messages.into_iter(),
            args.window,
            None,
            &published,
        ),
        wait_recorded(pool, args.messages, args.stall_secs, &recorded, hub),
    );
    let sent = sent?;
    done?;
    published.finish();
    recorded.finish();
    let last_commit: i64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(processed_at)) * 1000000)::int8 FROM inbox WHERE message_id LIKE $1",
    )
    .bind("bench-%-t-%")
    .fetch_one(pool)
    .await?;
    let mut throughput =
        Throughput::new(args.messages, &sent, last_commit, records, population_only);
    // The hub's CPU for the run includes relaying its events.
    wait_outbox_drained(pool, args.stall_secs, hub).await?;
    throughput.set_cpu(Snapshot::take(Some(hub.pid)).since(
        &cpu_before,
        args.messages,
        report.machine.cpus,
    ));
    report.throughput = Some(throughput);

    // Latency: a fixed offered load, on a hub that has finished the
    // throughput run (its events relayed), so that the figure is the
    // steady state at that load and not the tail of the run before.
    if args.latency_messages > 0 {
        eprintln!(
            "latency: {} messages offered at {}/s",
            args.latency_messages, args.rate
        );
        generator.set_positions(&positions);
        let progress = multi();
        let published = bar(&progress, args.latency_messages, "published");
        let recorded = bar(&progress, args.latency_messages, "recorded");
        recorded.set_position(0);
        let from = args.messages;
        let to = args.messages + args.latency_messages;
        let messages: Vec<_> = (from..to).map(|seq| generator.message("l", seq)).collect();
        let cpu_before = Snapshot::take(Some(hub.pid));
        let (sent, done) = tokio::join!(
            broker::publish(
                &publisher,
                &exchange,
                user,
                messages.into_iter(),
                args.window,
                Some(args.rate),
                &published,
            ),
            wait_recorded_from(pool, from, to, args.stall_secs, &recorded, hub),
        );
        let sent = sent?;
        done?;
        let cpu = Snapshot::take(Some(hub.pid)).since(
            &cpu_before,
            args.latency_messages,
            report.machine.cpus,
        );
        published.finish();
        recorded.finish();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT message_id, (extract(epoch FROM processed_at) * 1000000)::int8 FROM inbox WHERE message_id LIKE $1",
        )
        .bind("bench-%-l-%")
        .fetch_all(pool)
        .await?;
        let mut latencies: Vec<i64> = Vec::with_capacity(rows.len());
        for (message_id, at) in rows {
            let seq: u64 = message_id
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .context("unexpected message_id in the inbox")?;
            if let Some(published) = sent.at_micros.get((seq - from) as usize) {
                latencies.push(at - published);
            }
        }
        let mut latency = Latency::new(args.rate, &sent, latencies);
        latency.cpu = Some(cpu);
        report.latency = Some(latency);
    }
    let _ = publisher.close(200, "done".into()).await;

    // Checks: nothing lost, nothing doubled.
    report.checks = check(connection, pool, work, generator, planned).await?;
    Ok(())
}

async fn wait_for_consumers(
    connection: &Connection,
    work: &Workspace,
    generator: &Generator,
    hub: &mut HubProcess,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let channel = connection.create_channel().await?;
    loop {
        if let Some(exit) = hub.exited() {
            anyhow::bail!("{exit}");
        }
        let mut ready = true;
        for id in generator.connectors() {
            let queue = passive(&channel, &work.names.inbound_queue(&id)).await?;
            ready &= queue.consumer_count() > 0;
        }
        if ready {
            let _ = channel.close(200, "done".into()).await;
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            anyhow::bail!(
                "the hub did not start consuming within 120 s; its log: {}",
                hub.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_database(url: &str, hub: &mut HubProcess) -> anyhow::Result<PgPool> {
    let start = Instant::now();
    loop {
        match sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
        {
            Ok(pool) => return Ok(pool),
            Err(error) if start.elapsed() > Duration::from_secs(60) => {
                anyhow::bail!("cannot reach the bench database: {error}")
            }
            Err(_) => {}
        }
        if let Some(exit) = hub.exited() {
            anyhow::bail!("{exit}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn passive(channel: &Channel, queue: &str) -> anyhow::Result<lapin::Queue> {
    Ok(channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?)
}

async fn wait_recorded(
    pool: &PgPool,
    count: u64,
    stall_secs: u64,
    progress: &ProgressBar,
    hub: &mut HubProcess,
) -> anyhow::Result<()> {
    wait_recorded_from(pool, 0, count, stall_secs, progress, hub).await
}

/// Waits until the inbox holds `to` rows (the messages `from..to` of this
/// phase after all earlier ones). Progress comes from PostgreSQL's table
/// statistics (cheap, up to a second late); the exact count is taken only
/// near the end, so that watching costs the database little.
async fn wait_recorded_from(
    pool: &PgPool,
    from: u64,
    to: u64,
    stall_secs: u64,
    progress: &ProgressBar,
    hub: &mut HubProcess,
) -> anyhow::Result<()> {
    let mut last_change = Instant::now();
    let mut seen = 0i64;
    let mut exact = 0i64;
    let mut steady = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(exit) = hub.exited() {
            anyhow::bail!("{exit}");
        }
        let estimate: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(n_tup_ins), 0)::int8 FROM pg_stat_user_tables WHERE relname = 'inbox'",
        )
        .fetch_one(pool)
        .await?;
        steady = if estimate == seen { steady + 1 } else { 0 };
        if estimate != seen {
            seen = estimate;
            last_change = Instant::now();
        }
        progress.set_position(
            (estimate.max(exact) as u64)
                .saturating_sub(from)
                .min(to - from),
        );
        if estimate as u64 >= to || steady >= 4 {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
                .fetch_one(pool)
                .await?;
            if count != exact {
                exact = count;
                last_change = Instant::now();
            }
            progress.set_position((exact as u64).saturating_sub(from).min(to - from));
            if exact as u64 >= to {
                return Ok(());
            }
            steady = 0;
        }
        if last_change.elapsed() > Duration::from_secs(stall_secs) {
            anyhow::bail!(
                "the hub recorded nothing for {stall_secs} s ({} of {} messages recorded); its log: {}",
                exact.max(seen),
                to,
                hub.log.display()
            );
        }
    }
}

/// Waits until the hub has relayed every event it recorded.
async fn wait_outbox_drained(
    pool: &PgPool,
    stall_secs: u64,
    hub: &mut HubProcess,
) -> anyhow::Result<()> {
    let mut last = i64::MAX;
    let mut last_change = Instant::now();
    loop {
        if let Some(exit) = hub.exited() {
            anyhow::bail!("{exit}");
        }
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await?;
        if unsent == 0 {
            return Ok(());
        }
        if unsent < last {
            last = unsent;
            last_change = Instant::now();
        }
        if last_change.elapsed() > Duration::from_secs(stall_secs) {
            anyhow::bail!(
                "the hub relayed nothing for {stall_secs} s ({unsent} events unsent); its log: {}",
                hub.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn check(
    connection: &Connection,
    pool: &PgPool,
    work: &Workspace,
    generator: &Generator,
    planned: &BTreeMap<String, Planned>,
) -> anyhow::Result<Checks> {
    let sent: u64 = planned.values().map(|p| p.valid + p.invalid).sum();
    let invalid: u64 = planned.values().map(|p| p.invalid).sum();
    let opening: u64 = planned.values().map(|p| p.opening).sum();
    let mut checks = Checks {
        sent,
        expected_refused: invalid,
        expected_cases: opening,
        records_sent: planned.values().map(|p| p.records).sum(),
        ..Checks::default()
    };
    let outcomes: Vec<(String, i64)> =
        sqlx::query_as("SELECT outcome, count(*) FROM inbox GROUP BY outcome ORDER BY outcome")
            .fetch_all(pool)
            .await?;
    checks.inbox = outcomes
        .into_iter()
        .map(|(outcome, n)| (outcome, n as u64))
        .collect();
    checks.duplicate_message_ids =
        sqlx::query_scalar::<_, i64>("SELECT count(*) - count(DISTINCT message_id) FROM inbox")
            .fetch_one(pool)
            .await? as u64;
    // Each population message's records once, from any one destination's
    // event (opened: the outbox holds them sealed).
    let seal = crate::store::seal::Seal::parse(&std::fs::read_to_string(&work.keys)?)?;
    let shared: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT event_id, payload::text FROM outbox WHERE routing_key LIKE '%.records.shared'",
    )
    .fetch_all(pool)
    .await?;
    let mut forwarded = BTreeMap::new();
    for (event_id, payload) in shared {
        let payload = crate::store::outbox::open_payload(event_id, payload, &seal)?;
        let event: serde_json::Value = serde_json::from_str(&payload)?;
        let records = event["records"].as_array().map_or(0, Vec::len) as u64;
        forwarded.insert(event["source_message_id"].to_string(), records);
    }
    checks.records_forwarded = forwarded.values().sum();
    checks.cases = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM cases")
        .fetch_one(pool)
        .await? as u64;
    checks.dead_letter_records = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM dead_letters")
        .fetch_one(pool)
        .await? as u64;
    let channel = connection.create_channel().await?;
    // Dead letters: those the hub recorded in the store, and those still in
    // a DLQ, not yet recorded; wait (bounded) for the recorders to settle.
    let start = Instant::now();
    loop {
        let recorded = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM dlq_messages WHERE settled_at IS NULL",
        )
        .fetch_one(pool)
        .await? as u64;
        let mut queued = 0u64;
        for id in generator.connectors() {
            queued += u64::from(
                passive(&channel, &work.names.dead_letter_queue(&id))
                    .await?
                    .message_count(),
            );
        }
        checks.dlq_messages = recorded + queued;
        if checks.dlq_messages == checks.expected_refused
            || start.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Events: wait (bounded) for the relay to publish every outbox row once.
    let start = Instant::now();
    loop {
        let (rows, unsent): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE sent_at IS NULL) FROM outbox")
                .fetch_one(pool)
                .await?;
        let mut queued = 0u64;
        for queue in work.topology.queues.iter().filter(|q| {
            q.name
                .starts_with(&format!("{}.out.", work.names.namespace))
        }) {
            queued += u64::from(passive(&channel, &queue.name).await?.message_count());
        }
        checks.outbox_rows = rows as u64;
        checks.events_queued = queued;
        if (unsent == 0 && queued == rows as u64) || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = channel.close(200, "done".into()).await;
    checks.judge();
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/gridhub", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").unwrap(),
            "postgres://h:5432/x"
        );
    }
}
