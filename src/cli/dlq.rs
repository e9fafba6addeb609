//! `gridhub dlq`: the dead-letter office from the command line.

use super::*;

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

async fn dead_letters(common: &Common) -> anyhow::Result<Office> {
    let settings = settings(common)?;
    let registry = registry(&settings)?;
    let store = open_store(&settings).await?;
    let mut trusted = settings.trusted_users.clone();
    trusted.push(amqp::url_user(&settings.broker_url()));
    Ok(Office::on_brokers(
        settings.brokers()?,
        Names::new(&settings.namespace),
        store,
        Arc::new(registry),
        trusted,
        settings.dlq_scan_limit,
        None,
    ))
}

fn require_filter(filter: &Filter, all: bool, verb: &str) -> anyhow::Result<()> {
    if filter.is_empty() && !all {
        anyhow::bail!(
            "{verb} what? give a filter (--connector, --stage, --reason, --since, --until, --group, --id, --message-id) or --all"
        );
    }
    Ok(())
}

pub(super) async fn dlq(command: DlqCommand) -> anyhow::Result<ExitCode> {
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
