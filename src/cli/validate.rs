//! `gridhub validate`: the dry run offline, for a department's CI. It
//! reads the connectors, schemas and routing rules the settings name and
//! places cases on the bundled district (the one `gridhub demo` runs on);
//! it needs no broker and no database.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use crate::dryrun::{Judge, Trial};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The connector the messages are published as.
    #[arg(long)]
    pub connector: String,
    /// Their message type (routing key `<connector>.<type>`).
    #[arg(long = "type")]
    pub message_type: String,
    /// The AMQP `type` property they would carry, choosing the version of
    /// the type's format: `v2`. Default none: the oldest live version.
    #[arg(long = "amqp-type", value_name = "VERSION")]
    pub version: Option<String>,
    /// The AMQP `content_type` they would carry. Default none, which the
    /// hub reads as JSON.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Print the verdicts as JSON (one array), as the endpoint gives them.
    #[arg(long)]
    pub json: bool,
    /// The message bodies, one file each.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(settings: &Settings, args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let registry = super::registry(settings)?;
    let routing = crate::routing::Routing::load(&settings.routing_file()).map_err(|problems| {
        anyhow::anyhow!(
            "cannot load the routing rules:\n  {}",
            problems.join("\n  ")
        )
    })?;
    let Some(connector) = registry.get(&args.connector) else {
        let known: Vec<&str> = registry.connectors.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no such connector: {} (known: {})",
            args.connector,
            known.join(", ")
        );
    };
    if !connector.messages.contains_key(&args.message_type) {
        let known: Vec<&str> = connector.messages.keys().map(String::as_str).collect();
        anyhow::bail!(
            "connector {} has no message type {} (it has: {})",
            args.connector,
            args.message_type,
            known.join(", ")
        );
    }
    let places = bundled_places();
    let judge = Judge {
        registry: &registry,
        routing: &routing,
        places: places.as_ref(),
    };
    let now = chrono::Utc::now();
    let mut verdicts = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let body = std::fs::read(file)
            .map_err(|error| anyhow::anyhow!("{}: cannot read: {error}", file.display()))?;
        let verdict = judge.judge(
            Trial {
                connector: &args.connector,
                message_type: &args.message_type,
                version: args.version.as_deref(),
                content_type: args.content_type.as_deref(),
                body,
            },
            now,
        );
        verdicts.push((file, verdict));
    }
    let refused = verdicts
        .iter()
        .filter(|(_, v)| v["accepted"] != true)
        .count();
    if args.json {
        let all: Vec<Value> = verdicts
            .iter()
            .map(|(file, verdict)| {
                let mut verdict = verdict.clone();
                verdict["file"] = file.display().to_string().into();
                verdict
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for (file, verdict) in &verdicts {
            print!("{}", describe(&file.display().to_string(), verdict));
        }
        println!(
            "{} file(s): {} accepted, {refused} refused",
            verdicts.len(),
            verdicts.len() - refused
        );
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The district `gridhub demo` and the samples run on.
fn bundled_places() -> std::sync::Arc<dyn crate::places::Locate> {
    let district = crate::district::generate(crate::district::DEFAULT_SEED);
    crate::places::from_data(crate::store::reference::GridData {
        version: 0,
        grids: district.grids,
        addresses: district.addresses,
    })
}

/// A verdict for people: a few lines per file.
pub fn describe(file: &str, verdict: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = String::new();
    let version = match verdict["deprecated"].as_str() {
        Some(date) => format!("{} (deprecated: goes {date})", text(&verdict["version"])),
        None => text(&verdict["version"]),
    };
    if verdict["accepted"] != true {
        out.push_str(&format!(
            "{file}: REFUSED at {} ({version})\n",
            text(&verdict["refused_at"])
        ));
        for violation in verdict["violations"].as_array().into_iter().flatten() {
            let path = match violation["path"].as_str() {
                Some("") | None => "/",
                Some(path) => path,
            };
            out.push_str(&format!("  {path}: {}\n", text(&violation["message"])));
        }
        return out;
    }
    let becomes = &verdict["becomes"];
    out.push_str(&format!("{file}: accepted ({version})\n"));
    match becomes["kind"].as_str() {
        Some("case") => {
            let place = &becomes["place"];
            out.push_str(&format!(
                "  a case: {} {} ({}), priority {}\n  placed: grid {}, {}, {} (by {})\n",
                text(&becomes["nature"]),
                text(&becomes["category"]),
                text(&becomes["category_name"]),
                text(&becomes["priority"]),
                text(&place["grid"]),
                text(&place["community"]),
                text(&place["street"]),
                text(&place["located_by"]),
            ));
            match becomes["status"].as_str() {
                Some("answered") => out.push_str(&format!(
                    "  answered at intake (rule {})\n",
                    text(&becomes["rule"])
                )),
                _ => {
                    let lead = &becomes["lead_unit"];
                    out.push_str(&format!(
                        "  dispatched by rule {} to {} ({}, {}){}\n  deadline: {}, signed for within {}\n",
                        text(&becomes["rule"]),
                        text(&lead["name"]),
                        text(&lead["id"]),
                        text(&lead["level"]),
                        if becomes["unplaced"] == true {
                            ", unplaced: for the centre's triage"
                        } else {
                            ""
                        },
                        text(&becomes["deadline"]["handling"]),
                        text(&becomes["deadline"]["sign_for_within"]),
                    ));
                }
            }
        }
        Some("step") => out.push_str(&format!(
            "  step {} on case {}\n",
            text(&becomes["action"]),
            becomes["case"]["case_no"]
                .as_str()
                .or(becomes["case"]["source_ref"].as_str())
                .unwrap_or("-"),
        )),
        Some("records") => {
            let to: Vec<String> = becomes["to"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    format!(
                        "{} ({} personal data)",
                        text(&t["connector"]),
                        text(&t["personal_data"])
                    )
                })
                .collect();
            out.push_str(&format!(
                "  {} record(s) of {} shared with {}\n",
                becomes["records"],
                text(&becomes["dataset"]),
                if to.is_empty() {
                    "nobody".to_owned()
                } else {
                    to.join(", ")
                }
            ));
        }
        Some("grids") => out.push_str(&format!(
            "  {} grid(s) ({} retired), {} known address(es)\n",
            becomes["grids"], becomes["retired"], becomes["addresses"]
        )),
        _ => {}
    }
    out
}
