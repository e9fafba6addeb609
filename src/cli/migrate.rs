//! `gridhub migrate`: the case store's migrations as a deploy step.

use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;
use crate::store::schema::{self, Mode};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// List the pending migrations (version and description) and change
    /// nothing, not even create a missing database.
    #[arg(long)]
    pub dry_run: bool,
    /// The database (postgres://..., or sqlite:...); default the settings'
    /// database_url (or GRIDHUB_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

/// Applies (or lists) the pending migrations under the migration lock;
/// an error, exit 1, on a schema this build must not touch.
pub async fn migrate(settings: &Settings, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.as_deref().unwrap_or(&settings.database_url);
    let mode = match args.dry_run {
        true => Mode::DryRun,
        false => Mode::Migrate,
    };
    let outcome = schema::run(url, mode).await?;
    let plan = &outcome.plan;
    if let Some(waited) = outcome.waited {
        eprintln!(
            "waited {:.1} s for another process's migration",
            waited.as_secs_f64()
        );
    }
    let current = match (plan.no_database, plan.current) {
        (true, _) => "the database does not exist yet".to_owned(),
        (false, None) => "no migration applied yet".to_owned(),
        (false, Some(version)) => format!("database at version {version}"),
    };
    println!(
        "{current}; this gridhub's schema is version {}",
        plan.latest
    );
    let listed = match mode {
        Mode::DryRun => &plan.pending,
        _ => &outcome.applied,
    };
    if listed.is_empty() {
        println!("up to date: nothing to apply");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}:",
        match mode {
            Mode::DryRun => "would apply",
            _ => "applied",
        }
    );
    for version in listed {
        println!("  {:>4}  {}", version.version, version.description);
    }
    if mode == Mode::Migrate {
        println!("database at version {}", plan.latest);
    }
    Ok(ExitCode::SUCCESS)
}
