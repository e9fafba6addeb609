//! The assessment as the CLI, the API, the console and the monthly report
//! give it: a period's figures per row beside the previous period's, the
//! ranking, the month-by-month line and overdue cases by unit; hot spots;
//! the report as CSV and as a printable HTML page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::assessment::{self, By, Case, Config, Figures, Outcome, Period};
use crate::http::markup::escape;
use crate::routing::Routing;
use crate::store::{Store, StoreError};

/// The months of the month-by-month line.
const TRAILING_MONTHS: u32 = 6;
/// Entries of each hot-spot list.
const HOTSPOT_LIMIT: usize = 10;

/// What is asked: the period (default: last calendar month), the rows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub by: Option<String>,
}

impl Ask {
    /// The period asked for: both ends, or the calendar month of the one
    /// given, or last month.
    pub fn period(&self, now: DateTime<Utc>) -> Result<Period, String> {
        match (self.from, self.to) {
            (Some(from), Some(to)) => Period::new(from, to),
            (Some(day), None) | (None, Some(day)) => Ok(Period::month_of(day)),
            (None, None) => Ok(Period::last_month(now)),
        }
    }

    pub fn by(&self) -> Result<By, String> {
        match self.by.as_deref() {
            None => Ok(By::default()),
            Some(text) => By::parse(text)
                .ok_or_else(|| format!("by: {text:?} is not one of unit, street, community")),
        }
    }
}

/// A period's assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub by: By,
    pub period: Period,
    pub previous: Period,
    /// When the figures were taken: the period's end, or now while it runs.
    pub cut: DateTime<Utc>,
    pub rows: Vec<Row>,
    pub total: Pair,
    pub months: Vec<Month>,
    pub overdue_by_unit: Vec<Overdue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `None`: too few cases to rank, or nothing to score.
    pub rank: Option<u32>,
    pub key: String,
    pub name: String,
    pub current: Figures,
    pub previous: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub current: Figures,
    pub previous: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Month {
    pub month: String,
    pub received: u64,
    pub response_rate: Option<f64>,
    pub solve_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub score: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overdue {
    pub unit: String,
    pub name: String,
    pub overdue: u64,
}

/// Computes a period's assessment as of `now`.
pub async fn assess(
    store: &Store,
    config: &Config,
    routing: &Routing,
    period: Period,
    by: By,
    now: DateTime<Utc>,
) -> Result<Assessment, StoreError> {
    let previous = period.previous();
    let months = period.trailing_months(TRAILING_MONTHS);
    let earliest = months[0].start().min(previous.start());
    let cut = period.cut(now);
    // Each case judged as it is read, in each period it belongs to: the
    // events are dropped once judged.
    let mut judged: Vec<Judged> = Vec::new();
    store
        .assessment_history(earliest, period.end(), cut, |case, events| {
            let at = |p: Period| {
                p.contains(case.recorded_at)
                    .then(|| assessment::summarise(&case, &events, p.cut(now), config))
                    .flatten()
            };
            let (current, before) = (at(period), at(previous));
            let month = months
                .iter()
                .position(|m| m.contains(case.recorded_at))
                .and_then(|i| Some((i, at(months[i])?)));
            if current.is_some() || before.is_some() || month.is_some() {
                judged.push(Judged {
                    case,
                    current,
                    previous: before,
                    month,
                });
            }
        })
        .await?;
    let current: Vec<(&Case, &Outcome)> = judged
        .iter()
        .filter_map(|j| Some((&j.case, j.current.as_ref()?)))
        .collect();
    let before: Vec<(&Case, &Outcome)> = judged
        .iter()
        .filter_map(|j| Some((&j.case, j.previous.as_ref()?)))
        .collect();
    let (rows, total) = assessment::tally(current.iter().copied(), by, config);
    let (previous_rows, previous_total) = assessment::tally(before.iter().copied(), by, config);
    let name = |key: &str| match by {
        By::Unit => unit_name(routing, key),
        _ => key.to_owned(),
    };
    let rows = assessment::rank(rows, config)
        .into_iter()
        .map(|(rank, key, current)| Row {
            rank,
            name: name(&key),
            previous: previous_rows.get(&key).cloned().unwrap_or_default(),
            key,
            current,
        })
        .collect();
    let mut overdue: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, outcome) in &current {
        if let (true, Some(unit)) = (outcome.overdue, &outcome.unit) {
            *overdue.entry(unit).or_default() += 1;
        }
    }
    let mut overdue_by_unit: Vec<Overdue> = overdue
        .into_iter()
        .map(|(unit, overdue)| Overdue {
            name: unit_name(routing, unit),
            unit: unit.to_owned(),
            overdue,
        })
        .collect();
    overdue_by_unit.sort_by(|a, b| b.overdue.cmp(&a.overdue).then(a.unit.cmp(&b.unit)));
    let months = months
        .iter()
        .enumerate()
        .map(|(i, month)| {
            let judged = judged.iter().filter_map(|j| match &j.month {
                Some((m, outcome)) if *m == i => Some((&j.case, outcome)),
                _ => None,
            });
            let (_, f) = assessment::tally(judged, by, config);
            Month {
                month: month.month_label(),
                received: f.received,
                response_rate: f.response_rate,
                solve_rate: f.solve_rate,
                satisfaction_rate: f.satisfaction_rate,
                score: f.score,
            }
        })
        .collect();
    Ok(Assessment {
        by,
        period,
        previous,
        cut,
        rows,
        total: Pair {
            current: total,
            previous: previous_total,
        },
        months,
        overdue_by_unit,
    })
}

/// A unit's name in the routing rules, or its id.
fn unit_name(routing: &Routing, id: &str) -> String {
    routing
        .unit(id)
        .map(|u| u.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

/// A case judged in each period of an assessment it belongs to.
struct Judged {
    case: Case,
    current: Option<Outcome>,
    previous: Option<Outcome>,
    /// Its month of the month-by-month line, by position.
    month: Option<(usize, Outcome)>,
}

/// Hot spots of a period against the one before, by grid, community or street.
#[derive(Debug, Clone, Serialize)]
pub struct HotspotReport {
    pub by: String,
    pub period: Period,
    pub previous: Period,
    pub cells: Vec<HotCell>,
    pub top_places: Vec<HotPlace>,
    pub top_categories: Vec<HotCategory>,
    pub rising: Vec<HotRise>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HotCell {
    pub category: String,
    pub place: String,
    pub name: String,
    pub month: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HotPlace {
    pub place: String,
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HotCategory {
    pub category: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HotRise {
    pub place: String,
    pub name: String,
    pub count: u64,
    pub previous: u64,
    pub rise: u64,
}

/// Places hot spots are counted by.
pub const HOTSPOT_PLACES: [&str; 3] = ["grid", "community", "street"];

/// Counts a period's cases by category, place and month.
pub async fn hotspots(
    store: &Store,
    period: Period,
    by: Option<&str>,
) -> Result<Result<HotspotReport, String>, StoreError> {
    let by = by.unwrap_or("community");
    let place: fn(&Case) -> Option<&str> = match by {
        "grid" => |c| c.grid.as_deref(),
        "community" => |c| c.community.as_deref(),
        "street" => |c| c.street.as_deref(),
        other => {
            return Ok(Err(format!(
                "by: {other:?} is not one of grid, community, street"
            )));
        }
    };
    let previous = period.previous();
    let cases = store.received_cases(previous.start(), period.end()).await?;
    let spots = assessment::hotspots(&cases, place, period, previous, HOTSPOT_LIMIT);
    Ok(Ok(HotspotReport {
        by: by.to_owned(),
        period,
        previous,
        cells: spots
            .cells
            .into_iter()
            .map(|c| HotCell {
                name: c.place.clone(),
                category: c.category,
                place: c.place,
                month: c.month,
                count: c.count,
            })
            .collect(),
        top_places: spots
            .top_places
            .into_iter()
            .map(|c| HotPlace {
                name: c.key.clone(),
                place: c.key,
                count: c.count,
            })
            .collect(),
        top_categories: spots
            .top_categories
            .into_iter()
            .map(|c| HotCategory {
                category: c.key,
                count: c.count,
            })
            .collect(),
        rising: spots
            .rising
            .into_iter()
            .map(|r| HotRise {
                name: r.place.clone(),
                place: r.place,
                count: r.count,
                previous: r.previous,
                rise: r.rise,
            })
            .collect(),
    }))
}

/// A column of the report: its name and how it reads a row's figures.
type Column = (&'static str, fn(&Figures) -> String);

/// The columns of the report.
const COLUMNS: [Column; 20] = [
    ("received", |f| f.received.to_string()),
    ("assessable", |f| f.assessable.to_string()),
    ("signed_on_time", |f| f.signed_on_time.to_string()),
    ("sign_for_rate", |f| rate(f.sign_for_rate)),
    ("contacted_in_time", |f| f.contacted_in_time.to_string()),
    ("response_rate", |f| rate(f.response_rate)),
    ("solved", |f| f.solved.to_string()),
    ("solve_rate", |f| rate(f.solve_rate)),
    ("satisfied", |f| f.satisfied.to_string()),
    ("satisfaction_rate", |f| rate(f.satisfaction_rate)),
    ("closed_on_time", |f| f.closed_on_time.to_string()),
    ("on_time_rate", |f| rate(f.on_time_rate)),
    ("overdue", |f| f.overdue.to_string()),
    ("returns", |f| f.returns.to_string()),
    ("rework", |f| f.rework.to_string()),
    ("reminders", |f| f.reminders.to_string()),
    ("supervisions", |f| f.supervisions.to_string()),
    ("handling_hours_avg", |f| decimal(f.handling_hours_avg)),
    ("handling_hours_p90", |f| decimal(f.handling_hours_p90)),
    ("score", |f| decimal(f.score)),
];

/// A rate as a percentage with one decimal; empty when nothing to count.
pub fn rate(value: Option<f64>) -> String {
    value
        .map(|v| format!("{:.1}", v * 100.0))
        .unwrap_or_default()
}

pub fn decimal(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.1}")).unwrap_or_default()
}

impl Assessment {
    /// The report as CSV: one line per row and one for the district, each
    /// figure of the period, then the previous period's. Rates are
    /// percentages.
    pub fn to_csv(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut head = vec![
            "rank".to_owned(),
            self.by.as_str().to_owned(),
            "name".to_owned(),
        ];
        head.extend(COLUMNS.iter().map(|(name, _)| (*name).to_owned()));
        head.extend(COLUMNS.iter().map(|(name, _)| format!("previous_{name}")));
        out.write_record(&head)?;
        let line = |rank: String, key: &str, name: &str, current: &Figures, previous: &Figures| {
            let mut record = vec![rank, key.to_owned(), name.to_owned()];
            record.extend(COLUMNS.iter().map(|(_, get)| get(current)));
            record.extend(COLUMNS.iter().map(|(_, get)| get(previous)));
            record
        };
        for row in &self.rows {
            let rank = row.rank.map(|r| r.to_string()).unwrap_or_default();
            out.write_record(line(rank, &row.key, &row.name, &row.current, &row.previous))?;
        }
        out.write_record(line(
            String::new(),
            "(district)",
            "全区",
            &self.total.current,
            &self.total.previous,
        ))?;
        Ok(out.into_inner()?)
    }

    /// The report as a printable HTML page (self-contained: no script, no
    /// outside resource).
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        let title = format!(
            "考评报告 / Assessment {} – {} (by {})",
            self.period.from,
            self.period.to,
            self.by.as_str()
        );
        let _ = write!(
            page,
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font:12px sans-serif;margin:2em}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #999;padding:2px 6px;text-align:right}}\
             td:nth-child(2),th:nth-child(2){{text-align:left}}\
             @media print{{body{{margin:0}}}}</style></head><body><h1>{}</h1>\
             <p>Previous period {} – {}. Figures taken at {} (UTC). Rates in %; \
             the previous period's in brackets.</p><table><thead><tr><th>#</th><th>{}</th>",
            escape(&title),
            escape(&title),
            self.previous.from,
            self.previous.to,
            self.cut.format("%Y-%m-%d %H:%M"),
            escape(self.by.as_str()),
        );
        for (name, _) in &COLUMNS {
            let _ = write!(page, "<th>{}</th>", escape(name));
        }
        page.push_str("</tr></thead><tbody>");
        let mut line = |rank: String, name: &str, current: &Figures, previous: &Figures| {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td>",
                escape(&rank),
                escape(name)
            );
            for (_, get) in &COLUMNS {
                let _ = write!(
                    page,
                    "<td>{} <small>({})</small></td>",
                    escape(&get(current)),
                    escape(&get(previous))
                );
            }
            page.push_str("</tr>");
        };
        for row in &self.rows {
            let rank = row.rank.map(|r| r.to_string()).unwrap_or_default();
            line(rank, &row.name, &row.current, &row.previous);
        }
        line(
            String::new(),
            "全区 (district)",
            &self.total.current,
            &self.total.previous,
        );
        page.push_str("</tbody></table><h2>月度 / Month by month</h2><table><thead><tr><th>month</th><th>received</th><th>response_rate</th><th>solve_rate</th><th>satisfaction_rate</th><th>score</th></tr></thead><tbody>");
        for m in &self.months {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.month),
                m.received,
                rate(m.response_rate),
                rate(m.solve_rate),
                rate(m.satisfaction_rate),
                decimal(m.score)
            );
        }
        page.push_str("</tbody></table></body></html>\n");
        page
    }
}

/// Reads `deploy/assessment.toml` (or the settings' file).
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|problems| {
        anyhow::anyhow!("cannot load the assessment:\n  {}", problems.join("\n  "))
    })
}
