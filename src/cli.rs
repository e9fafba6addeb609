//! The `gridhub` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::amqp::publish::{self, Outgoing, Published};
use crate::amqp::{self, Names};
use crate::connector::Registry;
use crate::dlq;
use crate::hub::Hub;
use crate::message::content_type_for;
use crate::settings::Settings;
use crate::store::Store;

/// gridhub: the integration hub of a district's grid-based social service
/// management system. Hotline tickets, department data and grid reports
/// arrive over RabbitMQ and become unified cases in PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "gridhub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Settings file (TOML). Broker and database URLs may also come from
    /// GRIDHUB_AMQP_URL and GRIDHUB_DATABASE_URL.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Folder of connector folders (default ./connectors); schemas are read
    /// from `schemas` beside it unless the settings say otherwise.
    #[arg(long, global = true)]
    pub connectors: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub until SIGTERM or Ctrl-C.
    Serve {
        #[command(flatten)]
        common: Common,
    },
    /// Compile every schema and mapping and run every sample against its
    /// expectation; one line per problem, exit 1 if any.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Publish files as a connector would, and wait for the broker's confirms.
    Publish {
        #[command(flatten)]
        common: Common,
        /// Connector to publish as.
        #[arg(long)]
        connector: String,
        /// Message type (routing key `<connector>.<type>`).
        #[arg(long = "type")]
        message_type: String,
        /// message_id to use (only with one file); default: SHA-256 of the content.
        #[arg(long)]
        message_id: Option<String>,
        /// Content type; default from each file's extension.
        #[arg(long)]
        content_type: Option<String>,
        /// Files to publish.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show recorded cases, newest first.
    Cases {
        #[command(flatten)]
        common: Common,
        /// Print a JSON array of unified cases (schemas/hub/case.v1.json).
        #[arg(long)]
        json: bool,
        /// Most cases to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Dead-letter queues.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print the broker topology as a RabbitMQ definitions file.
    Topology {
        #[command(flatten)]
        common: Common,
    },
    /// The district's reference data.
    District {
        #[command(subcommand)]
        command: crate::district::DistrictCommand,
    },
    /// Measure the hub end to end against the broker's own ceiling, check
    /// that nothing was lost or doubled, and print the figures.
    Bench {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: crate::bench::BenchArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters without removing them.
    List {
        #[command(flatten)]
        common: Common,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        /// Only this connector's DLQ.
        #[arg(long)]
        connector: Option<String>,
        /// Most dead letters to read per connector.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

fn settings(common: &Common) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(common.config.as_deref())?;
    if let Some(dir) = &common.connectors {
        settings.connectors_dir = dir.clone();
    }
    Ok(settings)
}

fn registry(settings: &Settings) -> anyhow::Result<Registry> {
    Registry::load(&settings.connectors_dir, &settings.schemas_dir())
        .map_err(|problems| anyhow::anyhow!("cannot load connectors:\n  {}", problems.join("\n  ")))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gridhub: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gridhub: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { common } => serve(settings(&common)?).await,
        Command::Check { common } => check(&settings(&common)?),
        Command::Publish {
            common,
            connector,
            message_type,
            message_id,
            content_type,
            files,
        } => {
            publish(
                &settings(&common)?,
                &connector,
                &message_type,
                message_id,
                content_type,
                &files,
            )
            .await
        }
        Command::Cases {
            common,
            json,
            limit,
        } => cases(&settings(&common)?, json, limit).await,
        Command::Dlq {
            command:
                DlqCommand::List {
                    common,
                    json,
                    connector,
                    limit,
                },
        } => dlq_list(&settings(&common)?, json, connector.as_deref(), limit).await,
        Command::Bench { common, args } => crate::bench::run(settings(&common)?, args).await,
        Command::Topology { common } => {
            let settings = settings(&common)?;
            let topology = amqp::topology::Topology::new(
                &Names::new(&settings.namespace),
                &registry(&settings)?,
                settings.delivery_limit,
                &settings.centre_destination,
            );
            println!("{}", serde_json::to_string_pretty(&topology.definitions())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::District { command } => district(command),
    }
}

fn district(command: crate::district::DistrictCommand) -> anyhow::Result<ExitCode> {
    let crate::district::DistrictCommand::Generate { seed, out } = command;
    let paths = crate::district::write_planning_messages(&out, seed)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    for path in &paths {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(settings.log_format);
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop requested; finishing in-flight deliveries");
            shutdown.cancel();
        });
    }
    let hub = tokio::select! {
        hub = Hub::build(settings) => hub?,
        _ = shutdown.cancelled() => return Ok(ExitCode::SUCCESS),
    };
    tracing::info!(connectors = hub.registry().connectors.len(), "hub ready");
    hub.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let report = crate::check::run_all(
        &settings.connectors_dir,
        &settings.schemas_dir(),
        &settings.routing_file(),
    );
    for problem in &report.problems {
        println!("{problem}");
    }
    eprintln!(
        "{} samples checked, {} problems",
        report.samples,
        report.problems.len()
    );
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn publish(
    settings: &Settings,
    connector: &str,
    message_type: &str,
    message_id: Option<String>,
    content_type: Option<String>,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    if message_id.is_some() && files.len() > 1 {
        anyhow::bail!("--message-id needs exactly one file");
    }
    let mut messages = Vec::with_capacity(files.len());
    for file in files {
        let body = std::fs::read(file)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
        messages.push(Outgoing {
            routing_key: format!("{connector}.{message_type}"),
            message_id: Some(
                message_id
                    .clone()
                    .unwrap_or_else(|| publish::content_message_id(&body)),
            ),
            content_type: Some(
                content_type
                    .clone()
                    .unwrap_or_else(|| content_type_for(file).to_owned()),
            ),
            user_id: Some(amqp::url_user(&settings.amqp_url)),
            body,
            replays: 0,
        });
    }
    let connection = amqp::connect(&settings.amqp_url, "publish").await?;
    let channel = connection.create_channel().await?;
    publish::confirming(&channel).await?;
    let results = publish::publish_all(
        &channel,
        &Names::new(&settings.namespace).inbound_exchange(),
        &messages,
    )
    .await?;
    let _ = connection.close(200, "done".into()).await;
    let mut failed = 0;
    for ((file, message), result) in files.iter().zip(&messages).zip(&results) {
        let id = message.message_id.as_deref().unwrap_or_default();
        match result {
            Published::Confirmed => println!("confirmed {} message_id={id}", file.display()),
            Published::Unroutable => {
                failed += 1;
                println!(
                    "unroutable {} message_id={id}: no queue for {} (is the hub's topology declared?)",
                    file.display(),
                    message.routing_key
                );
            }
            Published::Refused => {
                failed += 1;
                println!(
                    "refused {} message_id={id}: the broker did not confirm it",
                    file.display()
                );
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn cases(settings: &Settings, json: bool, limit: i64) -> anyhow::Result<ExitCode> {
    let store = Store::connect(&settings.database_url, 2).await?;
    let cases = store.cases(limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cases)?);
    } else {
        println!(
            "{:<16} {:<11} {:<6} {:<12} {:<24} RECEIVED",
            "CASE", "STATUS", "CHAN", "NATURE", "CATEGORY"
        );
        for case in &cases {
            let field = |k: &str| {
                case.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .to_owned()
            };
            println!(
                "{:<16} {:<11} {:<6} {:<12} {:<24} {}",
                field("case_no"),
                field("status"),
                field("channel"),
                field("nature"),
                field("category"),
                field("received_at")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn dlq_list(
    settings: &Settings,
    json: bool,
    connector: Option<&str>,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let names = Names::new(&settings.namespace);
    let connectors: Vec<String> = match connector {
        Some(id) => vec![id.to_owned()],
        None => registry(settings)?.connectors.keys().cloned().collect(),
    };
    let connection = amqp::connect(&settings.amqp_url, "dlq").await?;
    let mut letters = Vec::new();
    for id in &connectors {
        let channel = connection.create_channel().await?;
        match dlq::browse(&channel, &names.dead_letter_queue(id), id, limit).await {
            Ok(mut found) => letters.append(&mut found),
            Err(error) => anyhow::bail!("{}: {error}", names.dead_letter_queue(id)),
        }
        let _ = channel.close(200, "done".into()).await;
    }
    let _ = connection.close(200, "done".into()).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else {
        println!(
            "{:<16} {:<10} {:<66} REASON",
            "CONNECTOR", "STAGE", "MESSAGE_ID"
        );
        for letter in &letters {
            println!(
                "{:<16} {:<10} {:<66} {}",
                letter.connector,
                letter.stage,
                letter.message_id.as_deref().unwrap_or("-"),
                letter.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
