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
    /// Show recorded cases, newest first; every filter given must hold.
    Cases {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filters: CaseFilters,
    },
    /// Expire personal data past its retention now (the hub also does it
    /// every ten minutes): reporters of cases over for
    /// reporter_retention_days, dead letters older than
    /// dead_letter_retention_days.
    Expire {
        #[command(flatten)]
        common: Common,
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
    District {
        #[command(subcommand)]
        command: crate::district::DistrictCommand,
    },
    /// Run the whole hub in this process with no broker and no database (an
    /// in-process bus and SQLite), play a stream of hotline tickets and
    /// department messages, a few of them bad, and serve the console.
    Demo {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: crate::demo::DemoArgs,
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

/// Which dead letters a command is about; every option given must match.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only this connector's DLQ.
    #[arg(long)]
    pub connector: Option<String>,
    /// Only those refused at this stage (decode, identity, schema, mapping,
    /// intent, apply, delivery-limit).
    #[arg(long)]
    pub stage: Option<crate::pipeline::Stage>,
    /// Only those whose reason or violations contain this text (any case).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only those refused at or after this time (RFC 3339, e.g. 2026-11-28T02:00:00Z).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only those refused before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this failure group (the id `dlq groups` shows).
    #[arg(long)]
    pub group: Option<String>,
    /// Only this dead letter (the id `dlq list` shows).
    #[arg(long)]
    pub id: Option<String>,
    /// Only the dead letters of this message_id.
    #[arg(long)]
    pub message_id: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            connector: self.connector.clone(),
            stage: self.stage,
            reason: self.reason.clone(),
            since: self.since,
            until: self.until,
            group: self.group.clone(),
            id: self.id.clone(),
            message_id: self.message_id.clone(),
            within: None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters without removing them.
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        /// Most dead letters to print.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Dead letters grouped by failure signature (connector, stage, schema,
    /// schema paths and kinds of violation), with counts, first and last seen.
    Groups {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter: its payload pretty-printed, its properties, every reason.
    Show {
        #[command(flatten)]
        common: Common,
        /// The connector whose DLQ holds it.
        connector: String,
        /// The dead letter's id (from `dlq list`).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Republish dead letters to the inbound exchange (original routing key
    /// and message_id, replay count + 1); each leaves its DLQ only after the
    /// broker confirmed its copy.
    Replay {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay every dead letter of every connector (needed when no filter is given).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replace one dead letter's body with a fixed one and replay it. The
    /// fixed body is checked first; nothing happens if it would be refused
    /// again, unless --force.
    Edit {
        #[command(flatten)]
        common: Common,
        connector: String,
        id: String,
        /// File with the fixed body (`-` for standard input).
        file: PathBuf,
        /// Replay even if the fixed body would be refused.
        #[arg(long)]
        force: bool,
    },
    /// Remove dead letters for good, after showing how many and asking.
    Purge {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: FilterArgs,
        /// Every dead letter of every connector (needed when no filter is given).
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// The audit trail of dead-letter operations, newest first.
    Audit {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
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

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// One case whole: sources, place, routing, deadlines and its timeline.
    Show {
        #[command(flatten)]
        common: Common,
        /// The case number (TZ...).
        case_no: String,
        /// Print it as JSON (the unified case with `deadlines` and
        /// `timeline`).
        #[arg(long)]
        json: bool,
    },
    /// Find cases by a ticket id, a caller's phone or words (and any filter
    /// of `gridhub cases`).
    Find {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filters: CaseFilters,
    },
    /// Record a response (办结反馈) for a unit with no system of its own, on
    /// a case led inside the grid system; the unit is named and you are
    /// recorded as the actor.
    Respond {
        #[command(flatten)]
        common: Common,
        /// The case number (TZ...).
        case_no: String,
        /// The unit that did the work, by name (e.g. 区水务局).
        #[arg(long)]
        unit: String,
        /// What was done.
        #[arg(long)]
        note: String,
        /// A photo's https address; repeat for more.
        #[arg(long = "photo")]
        photos: Vec<String>,
    },
}

/// Which cases to show (`gridhub cases`, `gridhub case find`).
#[derive(Args, Clone)]
pub struct CaseFilters {
    /// A status: registered, dispatched, accepted, responded, closed...
    #[arg(long)]
    status: Option<String>,
    /// A street or township, by name.
    #[arg(long)]
    street: Option<String>,
    /// A community, by name.
    #[arg(long)]
    community: Option<String>,
    /// A grid id.
    #[arg(long)]
    grid: Option<String>,
    /// The lead unit's id.
    #[arg(long)]
    lead_unit: Option<String>,
    /// 12345, 96156, 96126, grid, department...
    #[arg(long)]
    channel: Option<String>,
    /// A category (noise.construction...).
    #[arg(long)]
    category: Option<String>,
    /// Only overdue cases.
    #[arg(long)]
    overdue: bool,
    /// Received on or after (RFC 3339).
    #[arg(long)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Received before (RFC 3339).
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Words in the title or description.
    #[arg(long)]
    text: Option<String>,
    /// A source's ticket id.
    #[arg(long)]
    ticket: Option<String>,
    /// A caller's phone, matched through its keyed hash; `-` reads it from
    /// standard input (kept out of the shell's history).
    #[arg(long)]
    phone: Option<String>,
    /// Print a JSON array of unified cases (schemas/hub/case.v1.json).
    #[arg(long)]
    json: bool,
    /// Most cases to show (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Cases to skip (the next page).
    #[arg(long, default_value_t = 0)]
    offset: i64,
}

/// Without the phone.
impl std::fmt::Debug for CaseFilters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseFilters")
            .field("status", &self.status)
            .field("ticket", &self.ticket)
            .field("phone", &self.phone.as_ref().map(|_| "(given)"))
            .finish_non_exhaustive()
    }
}

impl CaseFilters {
    fn query(self) -> anyhow::Result<crate::store::query::CaseQuery> {
        let phone = match self.phone.as_deref() {
            Some("-") => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim().to_owned())
            }
            _ => self.phone,
        };
        Ok(crate::store::query::CaseQuery {
            status: self.status,
            street: self.street,
            community: self.community,
            grid: self.grid,
            lead_unit: self.lead_unit,
            channel: self.channel,
            category: self.category,
            overdue: self.overdue.then_some(true),
            received_from: self.from,
            received_to: self.to,
            text: self.text,
            ticket: self.ticket,
            phone,
            offset: self.offset,
            limit: Some(self.limit),
        })
    }
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
        Command::Cases { common, filters } => cases(&settings(&common)?, filters).await,
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
        Command::Case { command } => case(command).await,
        Command::Dlq { command } => dlq(command).await,
        Command::Bench { common, args } => crate::bench::run(settings(&common)?, args).await,
        Command::Demo { common, args } => crate::demo::run(settings(&common)?, args).await,
        Command::Topology { common, passwords } => topology(&common, passwords.as_deref()),
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

fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let report = crate::check::run_all(
        &settings.connectors_dir,
        &settings.schemas_dir(),
        &settings.routing_file(),
    );
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
    let connection =
        amqp::connect_with(&settings.amqp_url, "publish", settings.amqp_tls()?.as_ref()).await?;
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

async fn cases(settings: &Settings, filters: CaseFilters) -> anyhow::Result<ExitCode> {
    let json = filters.json;
    let query = filters.query()?;
    let store = open_store(settings).await?;
    if query.phone.is_some() && !store.finds_phones() {
        anyhow::bail!("finding by phone needs data keys (data_keys_file, GRIDHUB_DATA_KEYS)");
    }
    let cases = store.find_cases(&query, None).await?;
    // Descriptions and places can hold personal data, and a phone finds a
    // caller's cases: those reads are audited (without the phone).
    if json || query.phone.is_some() {
        store
            .audit(&crate::store::audit::AuditRecord {
                actor: &cli_actor(),
                action: if query.phone.is_some() {
                    "find-by-phone"
                } else {
                    "read-cases"
                },
                filter: serde_json::json!(query),
                affected: cases.len(),
                failed: 0,
                message_ids: Vec::new(),
                note: json.then(|| "cases in full: descriptions and places".to_owned()),
            })
            .await?;
    }
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

fn topology(common: &Common, passwords: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let settings = settings(common)?;
    let registry = registry(&settings)?;
    let names = Names::new(&settings.namespace);
    let topology = amqp::topology::Topology::new(
        &names,
        &registry,
        settings.delivery_limit,
        &settings.centre_destination,
    );
    let access = amqp::access::Access::new(
        &names,
        &registry,
        &amqp::url_user(&settings.amqp_url),
        &settings.centre_destination,
        &amqp::url_vhost(&settings.amqp_url),
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

async fn case(command: CaseCommand) -> anyhow::Result<ExitCode> {
    let (common, case_no, unit, note, photos) = match command {
        CaseCommand::Show {
            common,
            case_no,
            json,
        } => return show_case(&settings(&common)?, &case_no, json).await,
        CaseCommand::Find { common, filters } => {
            return cases(&settings(&common)?, filters).await;
        }
        CaseCommand::Respond {
            common,
            case_no,
            unit,
            note,
            photos,
        } => (common, case_no, unit, note, photos),
    };
    let settings = settings(&common)?;
    let registry = Arc::new(registry(&settings)?);
    let routing = crate::routing::Routing::load(&settings.routing_file()).map_err(|problems| {
        anyhow::anyhow!("cannot load routing rules:\n  {}", problems.join("\n  "))
    })?;
    let rules = crate::store::Rules {
        centre: settings.centre_destination.clone(),
        registry: registry.clone(),
        routing: Arc::new(routing),
        places: Arc::new(crate::places::NoGrids),
    };
    let response = crate::desk::Response { unit, note, photos };
    let update = crate::desk::response(&registry, &case_no, &response, chrono::Utc::now())
        .map_err(|refusal| anyhow::anyhow!("{}", refusal.reason))?;
    let store = open_store(&settings).await?;
    match store
        .desk_update(&update, &cli_actor().name, &rules)
        .await?
    {
        crate::store::Applied::CaseUpdated { case_no } => {
            println!("{case_no}: response recorded for {}", response.unit.trim());
            Ok(ExitCode::SUCCESS)
        }
        crate::store::Applied::Refused(refusal) => {
            eprintln!("gridhub: {}", refusal.reason);
            Ok(ExitCode::FAILURE)
        }
        other => anyhow::bail!("unexpected outcome: {other:?}"),
    }
}

/// `gridhub case show`: one case whole; the read is audited.
async fn show_case(settings: &Settings, case_no: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let Some(case) = store.case_detail(case_no, None).await? else {
        eprintln!("gridhub: no case {}", crate::message::printable(case_no));
        return Ok(ExitCode::FAILURE);
    };
    store
        .audit(&crate::store::audit::AuditRecord {
            actor: &cli_actor(),
            action: "read-case",
            filter: serde_json::json!({"case_no": case_no}),
            affected: 1,
            failed: 0,
            message_ids: Vec::new(),
            note: None,
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&case)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "{}  {}  {}",
        text(&case["case_no"]),
        text(&case["status"]),
        text(&case["title"])
    );
    println!(
        "  {} / {} / {}   {}",
        text(&case["channel"]),
        text(&case["nature"]),
        text(&case["category"]),
        text(&case["priority"])
    );
    println!(
        "  place      {}  ({} {} {})",
        text(&case["place"]["address"]),
        text(&case["street"]),
        text(&case["community"]),
        text(&case["grid_id"])
    );
    println!(
        "  lead       {}  (rule {})",
        text(&case["lead_unit"]),
        text(&case["routing_rule"])
    );
    println!("  received   {}", text(&case["received_at"]));
    for (key, label) in [
        ("sign_for_due_at", "sign for by"),
        ("due_at", "due"),
        ("closed_at", "closed"),
    ] {
        if let Some(at) = case["deadlines"][key].as_str() {
            println!("  {label:<10} {at}");
        }
    }
    for source in case["sources"].as_array().into_iter().flatten() {
        println!(
            "  source     {} {}",
            text(&source["connector"]),
            text(&source["ref"])
        );
    }
    println!("  timeline");
    for step in case["timeline"].as_array().into_iter().flatten() {
        let status = match (step["from_status"].as_str(), step["to_status"].as_str()) {
            (Some(from), Some(to)) if from != to => format!("{from} -> {to}"),
            (_, Some(to)) => to.to_owned(),
            _ => String::new(),
        };
        let on_behalf = step["on_behalf_of"]
            .as_str()
            .map(|u| format!(" for {u}"))
            .unwrap_or_default();
        println!(
            "    {}  {:<18} {:<24} {}{}{}",
            text(&step["at"]),
            text(&step["kind"]),
            status,
            text(&step["actor"]),
            on_behalf,
            step["note"]
                .as_str()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
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

async fn dead_letters(common: &Common) -> anyhow::Result<Office> {
    let settings = settings(common)?;
    let registry = registry(&settings)?;
    let store = open_store(&settings).await?;
    let mut trusted = settings.trusted_users.clone();
    trusted.push(amqp::url_user(&settings.amqp_url));
    Ok(Office::new(
        &settings.amqp_url,
        Names::new(&settings.namespace),
        store,
        Arc::new(registry),
        trusted,
        settings.dlq_scan_limit,
        None,
    )
    .with_tls(settings.amqp_tls()?))
}

fn require_filter(filter: &Filter, all: bool, verb: &str) -> anyhow::Result<()> {
    if filter.is_empty() && !all {
        anyhow::bail!(
            "{verb} what? give a filter (--connector, --stage, --reason, --since, --until, --group, --id, --message-id) or --all"
        );
    }
    Ok(())
}

async fn dlq(command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List {
            common,
            filter,
            json,
            limit,
        } => {
            let ops = dead_letters(&common).await?;
            let listing = ops.list(&filter.filter()).await;
            ops.close().await;
            let mut listing = listing?;
            listing.letters.truncate(limit);
            if json {
                println!("{}", serde_json::to_string_pretty(&listing.letters)?);
            } else {
                println!(
                    "{:<16} {:<16} {:<12} {:<14} {:<25} {:<3} REASON",
                    "ID", "CONNECTOR", "GROUP", "STAGE", "REFUSED_AT", "RPL"
                );
                for l in &listing.letters {
                    println!(
                        "{:<16} {:<16} {:<12} {:<14} {:<25} {:<3} {}",
                        l.id,
                        l.connector,
                        l.group,
                        l.stage,
                        l.refused_at.as_deref().unwrap_or("-"),
                        l.replays,
                        l.reason
                    );
                }
                eprintln!("{} dead letters", listing.letters.len());
            }
            truncated_warning(listing.truncated);
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Groups {
            common,
            filter,
            json,
        } => {
            let ops = dead_letters(&common).await?;
            let groups = ops.groups(&filter.filter()).await;
            ops.close().await;
            let (groups, truncated) = groups?;
            if json {
                println!("{}", serde_json::to_string_pretty(&groups)?);
            } else {
                println!(
                    "{:<12} {:>6} {:<16} {:<14} {:<25} {:<25} WHAT",
                    "GROUP", "COUNT", "CONNECTOR", "STAGE", "FIRST_SEEN", "LAST_SEEN"
                );
                let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or("-".to_owned(), |t| {
                        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                    })
                };
                for g in &groups {
                    let what = if g.schema_paths.is_empty() {
                        g.reason.clone()
                    } else {
                        format!("{} ({})", g.schema_paths.join(", "), g.kinds.join(", "))
                    };
                    println!(
                        "{:<12} {:>6} {:<16} {:<14} {:<25} {:<25} {}",
                        g.id,
                        g.count,
                        g.connector,
                        g.stage,
                        at(g.first_seen),
                        at(g.last_seen),
                        what
                    );
                }
            }
            truncated_warning(truncated);
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Show {
            common,
            connector,
            id,
            json,
        } => {
            let ops = dead_letters(&common).await?;
            let detail = ops.read(&connector, &id, &cli_actor()).await;
            ops.close().await;
            let Some(detail) = detail? else {
                eprintln!("gridhub: no dead letter {id} in {connector}'s DLQ");
                return Ok(ExitCode::FAILURE);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
                return Ok(ExitCode::SUCCESS);
            }
            let l = &detail.letter;
            println!("id:          {}", l.id);
            println!("group:       {}", l.group);
            println!("connector:   {}", l.connector);
            println!("routing key: {}", l.routing_key);
            println!("message_id:  {}", l.message_id.as_deref().unwrap_or("-"));
            println!("refused at:  {}", l.refused_at.as_deref().unwrap_or("-"));
            println!("replays:     {}", l.replays);
            println!("stage:       {}", l.stage);
            println!("reason:      {}", l.reason);
            if let Some(schema) = &l.schema {
                println!("schema:      {schema}");
            }
            for v in &l.violations {
                println!(
                    "  - {} ({}): {}",
                    if v.instance_path.is_empty() {
                        "/"
                    } else {
                        &v.instance_path
                    },
                    v.schema_path,
                    v.message
                );
            }
            println!(
                "properties:\n{}",
                serde_json::to_string_pretty(&detail.properties)?
            );
            println!("body ({} bytes):", l.size);
            println!("{}", detail.body.unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay {
            common,
            filter,
            all,
            json,
        } => {
            let filter = filter.filter();
            require_filter(&filter, all, "replay")?;
            let ops = dead_letters(&common).await?;
            let report = ops.replay(&filter, &cli_actor()).await;
            ops.close().await;
            let report = report?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "replayed {} of {} matching dead letters; {} left in the DLQ (not confirmed or not routed)",
                    report.done, report.matched, report.failed
                );
            }
            truncated_warning(report.truncated);
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        DlqCommand::Edit {
            common,
            connector,
            id,
            file,
            force,
        } => {
            let body = if file.as_os_str() == "-" {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)?;
                body
            } else {
                std::fs::read(&file)
                    .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?
            };
            let ops = dead_letters(&common).await?;
            let edited = ops.edit(&connector, &id, body, force, &cli_actor()).await;
            ops.close().await;
            match edited? {
                Edited::Replayed { .. } => {
                    println!("replayed {id} with the fixed body; the dead letter is removed");
                    Ok(ExitCode::SUCCESS)
                }
                Edited::WouldBeRefused { refusal } => {
                    println!(
                        "not replayed: the fixed body would be refused at stage {}: {}",
                        refusal.stage, refusal.reason
                    );
                    for v in &refusal.violations {
                        println!("  - {} ({}): {}", v.instance_path, v.schema_path, v.message);
                    }
                    println!("(--force replays it anyway)");
                    Ok(ExitCode::FAILURE)
                }
                Edited::NotFound => {
                    eprintln!("gridhub: no dead letter {id} in {connector}'s DLQ");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        DlqCommand::Purge {
            common,
            filter,
            all,
            yes,
        } => {
            let filter = filter.filter();
            require_filter(&filter, all, "purge")?;
            let ops = dead_letters(&common).await?;
            let result = purge(&ops, &filter, yes).await;
            ops.close().await;
            result
        }
        DlqCommand::Audit {
            common,
            json,
            limit,
        } => {
            let settings = settings(&common)?;
            let store = open_store(&settings).await?;
            let entries = store.audit_trail(limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!(
                    "{:<25} {:<24} {:<24} {:<16} {:>8} {:>6} FILTER",
                    "AT", "ACTOR", "FROM", "ACTION", "AFFECTED", "FAILED"
                );
                for e in &entries {
                    println!(
                        "{:<25} {:<24} {:<24} {:<16} {:>8} {:>6} {}",
                        e.at.format("%Y-%m-%dT%H:%M:%SZ"),
                        e.actor,
                        e.origin.as_deref().unwrap_or("-"),
                        e.action,
                        e.affected,
                        e.failed,
                        e.filter
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Shows how many dead letters would go, asks, then removes exactly those.
async fn purge(ops: &Office, filter: &Filter, yes: bool) -> anyhow::Result<ExitCode> {
    let listing = ops.list(filter).await?;
    let count = listing.letters.len();
    if count == 0 {
        println!("no dead letter matches; nothing purged");
        return Ok(ExitCode::SUCCESS);
    }
    let ids: HashSet<String> = listing.letters.iter().map(|l| l.id.clone()).collect();
    if !yes {
        ops.audit_request(&cli_actor(), filter, count).await;
        for g in crate::dlq::group(&listing.letters) {
            println!("{:>6}  {} {} {}", g.count, g.connector, g.stage, g.reason);
        }
        println!("{count} dead letters will be removed for good. Type `purge {count}` to confirm:");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != format!("purge {count}") {
            println!("not confirmed; nothing purged");
            return Ok(ExitCode::FAILURE);
        }
    }
    let report = ops.purge(filter, Some(&ids), &cli_actor()).await?;
    println!("purged {} dead letters", report.done);
    Ok(ExitCode::SUCCESS)
}

fn truncated_warning(truncated: bool) {
    if truncated {
        eprintln!(
            "gridhub: a DLQ holds more than dlq_scan_limit messages; only the first ones were read"
        );
    }
}

/// The case store, sealing and opening with the configured data keys.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Ok(Store::connect(&settings.database_url, 2)
        .await?
        .sealed(settings.seal()?))
}
