//! The `gridhub` command line.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::amqp::publish::{self, Outgoing, Published};
use crate::amqp::{self, Names};
use crate::connector::Registry;
use crate::dlq::{Edited, Filter, Office};
use crate::hub::Hub;
use crate::message::content_type_for;
use crate::settings::Settings;
use crate::store::Store;

mod assess;
mod cases;
mod dlq;
mod migrate;
#[cfg(feature = "tools")]
mod validate;

pub use cases::{CaseCommand, CaseFilters};
pub use dlq::{DlqCommand, FilterArgs};

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
    /// Folder of connector folders (default ./connectors, or those built
    /// into gridhub when there is none); schemas are read from `schemas`
    /// beside it unless the settings say otherwise.
    #[arg(long, global = true)]
    pub connectors: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// One connector's contract; `--json` prints it whole (schemas and
    /// sample bodies included).
    Show {
        #[command(flatten)]
        common: Common,
        /// The connector's id.
        id: String,
        #[arg(long)]
        json: bool,
    },
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
        /// The AMQP `type` property, which chooses the version of the
        /// message type's format: `v2`. Default none: the oldest live one.
        #[arg(long = "amqp-type", value_name = "VERSION")]
        amqp_type: Option<String>,
        /// Files to publish.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show recorded cases, newest first; every filter given must hold.
    Cases {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filters: CaseFilters,
    },
    /// The command centre's assessment (考评) of a period: per unit, street
    /// or community, the three rates (响应率, 解决率, 满意率), the counts
    /// beside them and a weighted score, ranked, beside the previous
    /// period; as a table, JSON, or the monthly report (CSV, HTML). See
    /// docs/ASSESSMENT.md.
    Assess {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: assess::AssessArgs,
    },
    /// Hot spots (主动治理): the places and categories with the most cases in
    /// a period, and the places whose count rose most against the one before.
    Hotspots {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: assess::HotspotArgs,
    },
    /// The callbacks (回访) hotlines still owe, the most pressing first.
    Callbacks {
        #[command(flatten)]
        common: Common,
        /// One hotline's (its connector id); every hotline's when left out.
        #[arg(long)]
        hotline: Option<String>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply the case store's pending migrations under the migration lock,
    /// or list them with --dry-run; refuses a schema newer than this build.
    /// `serve` migrates at start too, unless database_migrate = false (see
    /// docs/OPERATIONS.md, Upgrades).
    Migrate {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: migrate::MigrateArgs,
    },
    /// Expire personal data past its retention now (the hub also does it
    /// every ten minutes): reporters of cases over for
    /// reporter_retention_days, dead letters older than
    /// dead_letter_retention_days.
    Expire {
        #[command(flatten)]
        common: Common,
    },
    /// A connector's contract: what it publishes (routing keys, schemas,
    /// samples), what it receives back, the personal data it may send and
    /// receive (as `GET /api/connectors/{id}`).
    Connector {
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// Keys personal data is sealed with at rest.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// API and console tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// One case, at the district centre's desk.
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// Dead-letter queues.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print the broker topology as a RabbitMQ definitions file, with a
    /// user per connector (least privilege), the centre's and the hub's.
    Topology {
        #[command(flatten)]
        common: Common,
        /// Passwords file (`user password` lines, owner-only): read, given a
        /// new password for each user without one, and hashed into the
        /// definitions. Without it users have no password.
        #[arg(long, value_name = "FILE")]
        passwords: Option<std::path::PathBuf>,
    },
    /// The district's reference data.
    #[cfg(feature = "tools")]
    District {
        #[command(subcommand)]
        command: crate::district::DistrictCommand,
    },
    /// Run the whole hub in this process with no broker and no database (an
    /// in-process bus and SQLite), play a stream of hotline tickets and
    /// department messages, a few of them bad, and serve the console.
    /// Dry-run message files offline, as `POST
    /// /api/connectors/{id}/{type}/validate` does on a running hub: every
    /// violation and its path, or the case each would become (placed on
    /// the bundled district's grids) or the records it would share. No
    /// broker, no database. Exit 1 if any file is refused.
    #[cfg(feature = "tools")]
    Validate {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: validate::ValidateArgs,
    },
    #[cfg(feature = "tools")]
    Demo {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: crate::demo::DemoArgs,
    },
    /// Measure the hub end to end against the broker's own ceiling, check
    /// that nothing was lost or doubled, and print the figures.
    #[cfg(feature = "tools")]
    Bench {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: crate::bench::BenchArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a new token: prints the secret (once: give it to its holder)
    /// and the `[[tokens]]` entry for the settings, which holds only its
    /// SHA-256.
    New {
        /// Who holds it, for the audit trail (e.g. night-shift).
        name: String,
        /// viewer, dispatcher or ops.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// A connector the token is for (repeat for several): a
        /// department's token sees only its own dead letters and cases.
        #[arg(long = "connector", value_name = "ID")]
        connectors: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a new key line (`<id> <64 hex digits>`) for data_keys_file:
    /// put it first to make it the current key.
    New {
        /// The key's id (default: today's date).
        #[arg(long)]
        id: Option<String>,
    },
    /// Seal every reporter's personal data with the current key (the first
    /// line of the keys): run it after putting a new key first and
    /// restarting the hubs; then the older key can be removed.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
}

fn settings(common: &Common) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(common.config.as_deref())?;
    if let Some(dir) = &common.connectors {
        settings.connectors_dir = dir.clone();
    } else if settings.connectors_by_default() && !settings.connectors_dir.exists() {
        // Named nowhere and not here: the ones built into the binary, with
        // the schemas and rules beside them (unless the settings name those).
        let base = crate::bundled::materialise()?;
        eprintln!(
            "gridhub: no ./connectors here; using the connectors, schemas and rules built into gridhub"
        );
        settings.connectors_dir = base.join(crate::settings::DEFAULT_CONNECTORS_DIR);
    }
    Ok(settings)
}

fn registry(settings: &Settings) -> anyhow::Result<Registry> {
    Registry::load(&settings.connectors_dir, &settings.schemas_dir())
        .map_err(|problems| anyhow::anyhow!("cannot load connectors:\n  {}", problems.join("\n  ")))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // Workers drop deliveries, whose header tables nest as deep as a frame
    // allows (crate::amqp::limits).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::amqp::limits::THREAD_STACK)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gridhub: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(dispatch(cli));
    crate::bundled::remove();
    match outcome {
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
            amqp_type,
            files,
        } => {
            publish(
                &settings(&common)?,
                &connector,
                &message_type,
                message_id,
                content_type,
                amqp_type,
                &files,
            )
            .await
        }
        Command::Cases { common, filters } => cases::cases(&settings(&common)?, filters).await,
        Command::Connector {
            command: ConnectorCommand::Show { common, id, json },
        } => connector_show(&settings(&common)?, &id, json),
        Command::Key {
            command: KeyCommand::New { id },
        } => {
            let id = id.unwrap_or_else(|| chrono::Utc::now().format("%Y%m%d").to_string());
            println!("{}", crate::store::seal::Seal::new_key_line(&id));
            Ok(ExitCode::SUCCESS)
        }
        Command::Key {
            command: KeyCommand::Rotate { common },
        } => {
            let settings = settings(&common)?;
            let seal = settings.seal()?;
            let store = open_store(&settings).await?;
            let reporters = store.reseal().await?;
            let descriptions = store.reseal_descriptions().await?;
            let letters = store.reseal_dead_letters().await?;
            println!(
                "sealed with key {}: reporters {reporters}, confidential descriptions {descriptions}, dead letters {letters}",
                seal.current().unwrap_or("-")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { common, args } => migrate::migrate(&settings(&common)?, args).await,
        Command::Expire { common } => {
            let settings = settings(&common)?;
            let store = open_store(&settings).await?;
            let (reporters, dead_letters) = settings.retention();
            let expired = store
                .expire(chrono::Utc::now(), reporters, dead_letters)
                .await?;
            println!(
                "reporters erased: {}\ndead letters expired: {}\nsettled dead letters deleted: {}",
                expired.reporters, expired.dead_letters, expired.settled_deleted
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command:
                TokenCommand::New {
                    name,
                    role,
                    connectors,
                },
        } => new_token(&name, &role, connectors),
        Command::Case { command } => cases::case(command).await,
        Command::Assess { common, args } => assess::assess(&settings(&common)?, args).await,
        Command::Hotspots { common, args } => assess::hotspots(&settings(&common)?, args).await,
        Command::Callbacks {
            common,
            hotline,
            json,
        } => cases::callbacks(&settings(&common)?, hotline.as_deref(), json).await,
        Command::Dlq { command } => dlq::dlq(command).await,
        #[cfg(feature = "tools")]
        Command::Bench { common, args } => crate::bench::run(settings(&common)?, args).await,
        #[cfg(feature = "tools")]
        Command::Validate { common, args } => validate::run(&settings(&common)?, args),
        #[cfg(feature = "tools")]
        Command::Demo { common, args } => crate::demo::run(settings(&common)?, args).await,
        Command::Topology { common, passwords } => topology(&common, passwords.as_deref()),
        #[cfg(feature = "tools")]
        Command::District { command } => district(command),
    }
}

#[cfg(feature = "tools")]
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

/// Waits for SIGTERM or Ctrl-C.
pub async fn wait_for_signal() {
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

fn connector_show(settings: &Settings, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let registry =
        Registry::load(&settings.connectors_dir, &settings.schemas_dir()).map_err(|problems| {
            anyhow::anyhow!("cannot load connectors:\n  {}", problems.join("\n  "))
        })?;
    let Some(connector) = registry.get(id) else {
        anyhow::bail!("no such connector: {id}");
    };
    let contract = crate::contract::contract(connector, &registry);
    if json {
        println!("{}", serde_json::to_string_pretty(&contract)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    println!(
        "{} ({}, {})",
        text(&contract["name"]),
        id,
        text(&contract["kind"])
    );
    let publish = &contract["publish"];
    println!(
        "\npublishes to gridhub.in, each message with a message_id{}:",
        if publish["user_id_required"] == true {
            " and the user_id of its broker user"
        } else {
            ""
        }
    );
    println!("  name, phone, id_number and birth_date are personal wherever they stand");
    for m in publish["messages"].as_array().into_iter().flatten() {
        let count = |kind: &str| m["samples"][kind].as_array().map_or(0, Vec::len);
        let chosen_by = match m["amqp_type"].as_str() {
            Some(amqp_type) => format!(", AMQP type {amqp_type}"),
            None => String::new(),
        };
        let deprecated = match m["deprecated"].as_str() {
            Some(date) => format!(", deprecated: goes {date}"),
            None => String::new(),
        };
        println!(
            "  {:<40} {}{chosen_by}{deprecated}: schema {} ({} valid, {} invalid samples)",
            text(&m["routing_key"]),
            text(&m["version"]),
            text(&m["schema_file"]),
            count("valid"),
            count("invalid")
        );
        for field in m["personal_fields"].as_array().into_iter().flatten() {
            println!(
                "      also personal: {} ({})",
                text(&field["path"]),
                text(&field["kind"])
            );
        }
        for refused in m["samples"]["invalid"].as_array().into_iter().flatten() {
            println!(
                "      refused at {} {}: {}",
                text(&refused["refused_at"]),
                text(&refused["path"]),
                refused["why"].as_str().unwrap_or(&text(&refused["name"]))
            );
        }
    }
    let receive = &contract["receive"];
    println!(
        "\nreceives on {} (schema {}):",
        text(&receive["queue"]),
        text(&receive["event_schema_file"])
    );
    for key in receive["routing_keys"].as_array().into_iter().flatten() {
        println!("  {}", text(key));
    }
    for record in receive["records"].as_array().into_iter().flatten() {
        println!(
            "  records {} from {}",
            text(&record["dataset"]),
            text(&record["from"])
        );
    }
    for share in contract["shares"].as_array().into_iter().flatten() {
        println!("\nshares {} with {}", text(&share["dataset"]), share["to"]);
    }
    let personal = &contract["personal_data_received"];
    println!(
        "\npersonal data it receives: reporters {}, records {}",
        text(&personal["reporter"]),
        text(&personal["records"])
    );
    Ok(ExitCode::SUCCESS)
}

fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let report = crate::check::run_all(settings);
    for problem in report.problems.iter().chain(&report.warnings) {
        println!("{problem}");
    }
    eprintln!(
        "{} samples checked, {} problems, {} warnings",
        report.samples,
        report.problems.len(),
        report.warnings.len()
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
    amqp_type: Option<String>,
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
            amqp_type: amqp_type.clone(),
            user_id: Some(amqp::url_user(&settings.broker_url())),
            body,
            replays: 0,
        });
    }
    let connection = settings.brokers()?.connect("publish").await?.connection;
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

fn topology(common: &Common, passwords: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let settings = settings(common)?;
    let registry = registry(&settings)?;
    let names = Names::new(&settings.namespace);
    let topology = amqp::topology::Topology::new(
        &names,
        &registry,
        settings.delivery_limit,
        &settings.centre_destination,
    )
    .with_quorum_replicas(settings.quorum_replicas);
    let access = amqp::access::Access::new(
        &names,
        &registry,
        &amqp::url_user(&settings.broker_url()),
        &settings.centre_destination,
        &amqp::url_vhost(&settings.broker_url()),
    );
    let passwords = match passwords {
        Some(path) => {
            let (passwords, created) =
                amqp::access::Passwords::load_or_create(path, access.users())?;
            if !created.is_empty() {
                eprintln!(
                    "{}: new passwords for {}",
                    path.display(),
                    created.join(", ")
                );
            }
            Some(passwords)
        }
        None => None,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&topology.definitions(&access, passwords.as_ref()))?
    );
    Ok(ExitCode::SUCCESS)
}

fn new_token(name: &str, role: &str, connectors: Vec<String>) -> anyhow::Result<ExitCode> {
    let role: crate::settings::Role = toml::Value::String(role.to_owned())
        .try_into()
        .map_err(|_| anyhow::anyhow!("role {role}: viewer, dispatcher or ops"))?;
    let (secret, token) = crate::settings::Token::generate(name, role, connectors);
    eprintln!("The secret, for {name} only (it is not kept anywhere):");
    println!("{secret}");
    eprintln!("\nAdd to the settings (it holds only the secret's SHA-256):");
    eprintln!(
        "[[tokens]]\nname = {:?}\ntoken = {:?}\nrole = {:?}",
        token.name,
        token.token,
        role.as_str()
    );
    if !token.connectors.is_empty() {
        eprintln!("connectors = {:?}", token.connectors);
    }
    Ok(ExitCode::SUCCESS)
}
/// Who runs the command, and on which host, for the audit trail.
fn cli_actor() -> crate::store::audit::Actor {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown host".to_owned());
    crate::store::audit::Actor {
        name: format!("cli:{user}"),
        origin: Some(format!("host {host}")),
    }
}
/// The case store, sealing and opening with the configured data keys;
/// migrated as `serve` would (`database_migrate`).
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Ok(
        Store::connect_with(&settings.database_url, 2, settings.schema_mode())
            .await?
            .sealed(settings.seal()?),
    )
}
