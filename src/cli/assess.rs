//! `gridhub assess` and `gridhub hotspots`: the command centre's figures
//! from the command line (src/assess.rs computes them).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::Args;

use super::open_store;
use crate::assess::{self, Ask, decimal, rate};
use crate::settings::Settings;

/// The period and rows asked for.
#[derive(Debug, Args)]
pub struct Period {
    /// First day, Beijing time (YYYY-MM-DD). With --to: that period; alone:
    /// its calendar month. Default: last calendar month.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day, included.
    #[arg(long)]
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct AssessArgs {
    #[command(flatten)]
    pub period: Period,
    /// Rows: unit, street (streets and townships) or community.
    #[arg(long, default_value = "street")]
    pub by: String,
    /// Print the whole assessment as JSON (as GET /api/assessment).
    #[arg(long, conflicts_with_all = ["csv", "html"])]
    pub json: bool,
    /// Print the report as CSV.
    #[arg(long, conflicts_with = "html")]
    pub csv: bool,
    /// Print the report as a printable HTML page.
    #[arg(long)]
    pub html: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub(super) async fn assess(settings: &Settings, args: AssessArgs) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let ask = Ask {
        from: args.period.from,
        to: args.period.to,
        by: Some(args.by.clone()),
    };
    let period = ask.period(now).map_err(anyhow::Error::msg)?;
    let by = ask.by().map_err(anyhow::Error::msg)?;
    let config = assess::load_config(&settings.assessment_file())?;
    let routing = crate::routing::Routing::load(&settings.routing_file()).map_err(|problems| {
        anyhow::anyhow!("cannot load routing rules:\n  {}", problems.join("\n  "))
    })?;
    let store = open_store(settings).await?;
    let assessment = assess::assess(&store, &config, &routing, period, by, now).await?;
    let output = if args.json {
        serde_json::to_vec_pretty(&assessment)?
    } else if args.csv {
        assessment.to_csv()?
    } else if args.html {
        assessment.to_html().into_bytes()
    } else {
        text(&assessment).into_bytes()
    };
    match &args.out {
        Some(path) => std::fs::write(path, output)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The ranking as a table.
fn text(a: &assess::Assessment) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} – {} by {} (previous {} – {}); rates in %, the previous period's in brackets",
        a.period.from,
        a.period.to,
        a.by.as_str(),
        a.previous.from,
        a.previous.to
    );
    let _ = writeln!(
        out,
        "{:>4} {:<24} {:>13} {:>13} {:>13} {:>13} {:>8} {:>7} {:>7} {:>7}",
        "RANK",
        "NAME",
        "SCORE",
        "响应率",
        "解决率",
        "满意率",
        "RECEIVED",
        "OVERDUE",
        "RETURNS",
        "督办"
    );
    let line = |out: &mut String,
                rank: String,
                name: &str,
                f: &crate::assessment::Figures,
                p: &crate::assessment::Figures| {
        let pair = |now: String, before: String| format!("{now:>5} ({before:>5})");
        let _ = writeln!(
            out,
            "{:>4} {:<24} {:>13} {:>13} {:>13} {:>13} {:>8} {:>7} {:>7} {:>7}",
            rank,
            name,
            pair(decimal(f.score), decimal(p.score)),
            pair(rate(f.response_rate), rate(p.response_rate)),
            pair(rate(f.solve_rate), rate(p.solve_rate)),
            pair(rate(f.satisfaction_rate), rate(p.satisfaction_rate)),
            f.received,
            f.overdue,
            f.returns,
            f.supervisions
        );
    };
    for row in &a.rows {
        let rank = row
            .rank
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into());
        line(&mut out, rank, &row.name, &row.current, &row.previous);
    }
    line(
        &mut out,
        String::new(),
        "全区 (district)",
        &a.total.current,
        &a.total.previous,
    );
    out
}

#[derive(Debug, Args)]
pub struct HotspotArgs {
    #[command(flatten)]
    pub period: Period,
    /// Places: grid, community or street.
    #[arg(long, default_value = "community")]
    pub by: String,
    /// Print them as JSON (as GET /api/hotspots).
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn hotspots(settings: &Settings, args: HotspotArgs) -> anyhow::Result<ExitCode> {
    let ask = Ask {
        from: args.period.from,
        to: args.period.to,
        by: None,
    };
    let period = ask.period(Utc::now()).map_err(anyhow::Error::msg)?;
    let store = open_store(settings).await?;
    let report = assess::hotspots(&store, period, Some(&args.by))
        .await?
        .map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} – {} by {} (previous {} – {})",
        period.from, period.to, report.by, report.previous.from, report.previous.to
    );
    println!("\nMOST CASES");
    for p in &report.top_places {
        println!("{:>6}  {}", p.count, p.name);
    }
    println!("\nCATEGORIES");
    for c in &report.top_categories {
        println!("{:>6}  {}", c.count, c.category);
    }
    println!("\nRISING (now / before)");
    for r in &report.rising {
        println!("{:>+6}  {} ({} / {})", r.rise, r.name, r.count, r.previous);
    }
    Ok(ExitCode::SUCCESS)
}
