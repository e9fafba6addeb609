//! `gridhub cases` and `gridhub case`: finding and reading cases, and the
//! district centre's desk.

use super::*;
use crate::intent::Action;

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
    /// Dispatch (派单) or re-dispatch (改派) a case to a chosen unit, with
    /// assisting units; its deadlines start again.
    Dispatch {
        #[command(flatten)]
        act: ActArgs,
        #[command(flatten)]
        to: UnitArgs,
    },
    /// Review a unit's return (退单审核): approve it (dispatched again, to
    /// --unit or the rule's on_return, deadlines restarted) or reject it
    /// (back to the unit, its deadline kept).
    ReviewReturn {
        #[command(flatten)]
        act: ActArgs,
        /// Approve the return.
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        /// Reject the return.
        #[arg(long)]
        reject: bool,
        #[command(flatten)]
        to: UnitArgs,
    },
    /// Extend the deadline (延期) by --days, or by the days the lead unit
    /// asked for; or --reject the unit's extension request.
    Extend {
        #[command(flatten)]
        act: ActArgs,
        /// Days the deadline moves (working days with a calendar).
        #[arg(long, conflicts_with = "reject")]
        days: Option<u16>,
        /// Decline the unit's request instead.
        #[arg(long)]
        reject: bool,
    },
    /// Suspend the case (挂起): its clock stops until `resume`. Or --reject
    /// the unit's suspension request.
    Suspend {
        #[command(flatten)]
        act: ActArgs,
        /// Decline the unit's request instead.
        #[arg(long)]
        reject: bool,
    },
    /// Resume a suspended case (恢复): back where it was, its deadline moved
    /// by the time it stood.
    Resume {
        #[command(flatten)]
        act: ActArgs,
    },
    /// Merge the case into another open case (并单): its sources hear
    /// `case.merged` and follow that case from then on.
    Merge {
        #[command(flatten)]
        act: ActArgs,
        /// The case it becomes part of (TZ...).
        #[arg(long)]
        into: String,
    },
    /// Split a merged case back out (拆单): dispatched on its own, to --unit
    /// or as the routing rules say.
    Split {
        #[command(flatten)]
        act: ActArgs,
        #[command(flatten)]
        to: UnitArgs,
    },
    /// Remind the lead unit by hand (催办).
    Remind {
        #[command(flatten)]
        act: ActArgs,
    },
    /// Supervise the case by hand (督办).
    Supervise {
        #[command(flatten)]
        act: ActArgs,
    },
    /// Close the case (结案), with a reason.
    Close {
        #[command(flatten)]
        act: ActArgs,
    },
    /// Reopen a closed case (重启), with a reason: dispatched again to its lead unit.
    Reopen {
        #[command(flatten)]
        act: ActArgs,
    },
}

/// A dispatcher's action at the desk (`gridhub case dispatch` and the rest).
#[derive(Debug, Args)]
pub struct ActArgs {
    #[command(flatten)]
    common: Common,
    /// The case number (TZ...).
    case_no: String,
    /// Why (required but for remind, supervise, extend and resume); it goes
    /// on the timeline.
    #[arg(long)]
    reason: Option<String>,
}

/// Where a dispatcher sends a case.
#[derive(Debug, Args)]
pub struct UnitArgs {
    /// The unit it goes to, by id (deploy/routing.toml).
    #[arg(long)]
    unit: Option<String>,
    /// An assisting unit (协办), by id; repeat for more.
    #[arg(long = "assist")]
    assist: Vec<String>,
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

pub(super) async fn cases(settings: &Settings, filters: CaseFilters) -> anyhow::Result<ExitCode> {
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

pub(super) async fn case(command: CaseCommand) -> anyhow::Result<ExitCode> {
    let (act, action) = match command {
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
        } => return respond(common, case_no, unit, note, photos).await,
        CaseCommand::Dispatch { act, to } => {
            return desk_act(act, Action::Dispatch, to, Desk::Nothing).await;
        }
        CaseCommand::ReviewReturn {
            act, approve, to, ..
        } => {
            let action = if approve {
                Action::ApproveReturn
            } else {
                Action::RejectReturn
            };
            return desk_act(act, action, to, Desk::Nothing).await;
        }
        CaseCommand::Extend { act, days, reject } => {
            let action = if reject {
                Action::RejectRequest
            } else {
                Action::Extend
            };
            return desk_act(act, action, none(), Desk::Days(days)).await;
        }
        CaseCommand::Suspend { act, reject } => {
            let action = if reject {
                Action::RejectRequest
            } else {
                Action::Suspend
            };
            return desk_act(act, action, none(), Desk::Nothing).await;
        }
        CaseCommand::Merge { act, into } => {
            return desk_act(act, Action::Merge, none(), Desk::Into(into)).await;
        }
        CaseCommand::Split { act, to } => {
            return desk_act(act, Action::Split, to, Desk::Nothing).await;
        }
        CaseCommand::Resume { act } => (act, Action::Resume),
        CaseCommand::Remind { act } => (act, Action::Remind),
        CaseCommand::Supervise { act } => (act, Action::Supervise),
        CaseCommand::Close { act } => (act, Action::Close),
        CaseCommand::Reopen { act } => (act, Action::Reopen),
    };
    desk_act(act, action, none(), Desk::Nothing).await
}

/// `gridhub case respond`: a response recorded for a unit with no system.
async fn respond(
    common: Common,
    case_no: String,
    unit: String,
    note: String,
    photos: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let settings = settings(&common)?;
    let rules = desk_rules(&settings)?;
    let response = crate::desk::Response { unit, note, photos };
    let update = crate::desk::response(&rules.registry, &case_no, &response, chrono::Utc::now());
    let case_no = match desk_step(&settings, &rules, update, false).await? {
        Ok((_, case_no)) => case_no,
        Err(code) => return Ok(code),
    };
    println!("{case_no}: response recorded for {}", response.unit.trim());
    Ok(ExitCode::SUCCESS)
}

/// Runs a desk step, a dispatcher's (`centre`) or one recorded for a unit:
/// the store and the case it updated, or the exit code of its refusal,
/// printed with its reason.
async fn desk_step(
    settings: &Settings,
    rules: &crate::store::Rules,
    update: Result<crate::intent::UpdateCase, crate::pipeline::Refusal>,
    centre: bool,
) -> anyhow::Result<Result<(crate::store::Store, String), ExitCode>> {
    let update = update.map_err(|refusal| anyhow::anyhow!("{}", refusal.reason))?;
    let store = open_store(settings).await?;
    let actor = cli_actor().name;
    let applied = if centre {
        store.centre_update(&update, &actor, rules).await?
    } else {
        store.desk_update(&update, &actor, rules).await?
    };
    match applied {
        crate::store::Applied::CaseUpdated { case_no } => Ok(Ok((store, case_no))),
        crate::store::Applied::Refused(refusal) => {
            eprintln!("gridhub: {}", refusal.reason);
            Ok(Err(ExitCode::FAILURE))
        }
        other => anyhow::bail!("unexpected outcome: {other:?}"),
    }
}

fn none() -> UnitArgs {
    UnitArgs {
        unit: None,
        assist: Vec::new(),
    }
}

/// What the desk's steps need to run through the lifecycle.
fn desk_rules(settings: &Settings) -> anyhow::Result<crate::store::Rules> {
    let registry = Arc::new(registry(settings)?);
    let routing = crate::routing::Routing::load(&settings.routing_file()).map_err(|problems| {
        anyhow::anyhow!("cannot load routing rules:\n  {}", problems.join("\n  "))
    })?;
    Ok(crate::store::Rules {
        centre: settings.centre_destination.clone(),
        registry,
        routing: Arc::new(routing),
        places: Arc::new(crate::places::NoGrids),
    })
}

/// A dispatcher's action from the command line; you are the actor.
/// What else an action names.
enum Desk {
    Nothing,
    /// extend: the days.
    Days(Option<u16>),
    /// merge: the case it goes into.
    Into(String),
}

async fn desk_act(
    args: ActArgs,
    action: Action,
    to: UnitArgs,
    more: Desk,
) -> anyhow::Result<ExitCode> {
    let settings = settings(&args.common)?;
    let rules = desk_rules(&settings)?;
    let act = crate::desk::Act {
        action,
        unit: to.unit,
        assist: to.assist,
        days: match more {
            Desk::Days(days) => days,
            _ => None,
        },
        into: match more {
            Desk::Into(into) => Some(into),
            _ => None,
        },
        reason: args.reason,
    };
    let update = crate::desk::act(&rules.registry, &args.case_no, &act, chrono::Utc::now());
    let (store, case_no) = match desk_step(&settings, &rules, update, true).await? {
        Ok(updated) => updated,
        Err(code) => return Ok(code),
    };
    let status = store
        .case(&case_no, None)
        .await?
        .and_then(|case| case["status"].as_str().map(str::to_owned))
        .unwrap_or_default();
    println!("{case_no}: {} recorded; now {status}", action.as_str());
    Ok(ExitCode::SUCCESS)
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
        ("sign_for_due_at", "sign for"),
        ("due_at", "due"),
        ("callback_due_at", "callback"),
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

/// `gridhub callbacks`: what each hotline still owes.
pub(super) async fn callbacks(
    settings: &Settings,
    hotline: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let registry = registry(settings)?;
    let is_hotline = |id: &str| registry.is(id, crate::connector::Kind::Hotline);
    if let Some(id) = hotline
        && !is_hotline(id)
    {
        anyhow::bail!("no such hotline: {id}");
    }
    let store = open_store(settings).await?;
    let owed: Vec<_> = store
        .callbacks_owed(hotline, 5000)
        .await?
        .into_iter()
        .filter(|c| is_hotline(&c.connector))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&owed)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:<14} {:<26} {:<20} {:<8} TITLE",
        "CASE", "HOTLINE", "TICKET", "DUE", "OVERDUE"
    );
    for c in &owed {
        println!(
            "{:<16} {:<14} {:<26} {:<20} {:<8} {}",
            c.case_no,
            c.connector,
            c.ticket_id,
            c.callback_due_at
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            if c.overdue { "yes" } else { "" },
            c.title
        );
    }
    println!("{} callbacks owed", owed.len());
    Ok(ExitCode::SUCCESS)
}
