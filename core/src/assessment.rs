//! The command centre's assessment (考评): how well each unit, street or
//! township and community handled the cases received in a period, on the
//! three rates of Beijing's 12345 practice (响应率 contacted in time,
//! 解决率 solved, 满意率 satisfied) and the counts beside them, with a
//! weighted score and a ranking. docs/ASSESSMENT.md states every formula.
//!
//! Everything is computed from case events recorded before the period's
//! cut-off (its end, or now while it runs), each carrying the unit and the
//! deadline in force once it was recorded and a callback's verdict. So
//! recomputing a closed period gives the same figures, whatever happened to
//! its cases since. [`summarise`] turns one case's events into its
//! [`Outcome`] at a cut-off; [`tally`] adds outcomes up into [`Figures`];
//! [`Config`] is `deploy/assessment.toml`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::intent::Priority;
use crate::lifecycle::{HANDLING, Status};

/// The values a callback gives for satisfaction (the intent schema's).
pub const SATISFACTIONS: [&str; 3] = ["satisfied", "basically_satisfied", "unsatisfied"];

/// Steps of the lead unit that may count as first contact besides
/// `contact` itself.
pub const CONTACT_STEPS: [&str; 3] = ["accept", "progress", "respond"];

/// `deploy/assessment.toml`, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// How soon after the first dispatch the reporter must be contacted,
    /// by priority.
    pub contact_within: HashMap<Priority, Duration>,
    /// Steps that count as contact when no `contact` came first.
    pub contact_implied_by: Vec<String>,
    /// Satisfaction values counted as satisfied.
    pub satisfied: Vec<String>,
    pub weights: Weights,
    pub deductions: Deductions,
    /// Rows with fewer cases received are listed but not ranked.
    pub min_cases: u64,
}

/// The score's weights of the five rates.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub response: f64,
    pub solve: f64,
    pub satisfaction: f64,
    pub sign_for: f64,
    pub on_time: f64,
}

/// Points taken off the score.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deductions {
    /// For each supervision (督办) received.
    #[serde(default)]
    pub supervision: f64,
    /// For each case overdue at the cut-off.
    #[serde(default)]
    pub overdue: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    contact: ContactFile,
    satisfaction: SatisfactionFile,
    weights: Weights,
    #[serde(default)]
    deductions: Deductions,
    #[serde(default)]
    ranking: RankingFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactFile {
    within: BTreeMap<String, String>,
    #[serde(default)]
    implied_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SatisfactionFile {
    satisfied: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RankingFile {
    #[serde(default)]
    min_cases: u64,
}

impl Config {
    /// Reads and checks the file; every problem is returned, naming it.
    pub fn load(path: &Path) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
        Config::parse(&text).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }

    pub fn parse(text: &str) -> Result<Config, Vec<String>> {
        let file: File = toml::from_str(text).map_err(|e| vec![e.message().to_owned()])?;
        let mut problems = Vec::new();
        let mut contact_within = HashMap::new();
        for (name, text) in &file.contact.within {
            match (Priority::parse(name), humantime::parse_duration(text)) {
                (None, _) => problems.push(format!(
                    "contact.within: unknown priority {name:?} (one of {})",
                    names(Priority::ALL.iter().map(|p| p.as_str()))
                )),
                (_, Err(e)) => problems.push(format!("contact.within.{name}: {text:?}: {e}")),
                (Some(priority), Ok(d)) => {
                    contact_within.insert(priority, d);
                }
            }
        }
        for priority in Priority::ALL {
            if !file.contact.within.contains_key(priority.as_str()) {
                problems.push(format!("contact.within: no time for {priority}"));
            }
        }
        for step in &file.contact.implied_by {
            if !CONTACT_STEPS.contains(&step.as_str()) {
                problems.push(format!(
                    "contact.implied_by: {step:?} is not a step of the lead unit ({})",
                    names(CONTACT_STEPS)
                ));
            }
        }
        for value in &file.satisfaction.satisfied {
            if !SATISFACTIONS.contains(&value.as_str()) {
                problems.push(format!(
                    "satisfaction.satisfied: {value:?} is not a callback's rating ({})",
                    names(SATISFACTIONS)
                ));
            }
        }
        if file.satisfaction.satisfied.is_empty() {
            problems.push("satisfaction.satisfied: no rating counts as satisfied".to_owned());
        }
        let w = file.weights;
        let weights = [w.response, w.solve, w.satisfaction, w.sign_for, w.on_time];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            problems.push("weights: each is a number 0 or more".to_owned());
        } else if weights.iter().sum::<f64>() <= 0.0 {
            problems.push("weights: at least one is more than 0".to_owned());
        }
        let d = file.deductions;
        if [d.supervision, d.overdue]
            .iter()
            .any(|p| !p.is_finite() || *p < 0.0)
        {
            problems.push("deductions: each is a number 0 or more".to_owned());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            contact_within,
            contact_implied_by: file.contact.implied_by,
            satisfied: file.satisfaction.satisfied,
            weights: file.weights,
            deductions: file.deductions,
            min_cases: file.ranking.min_cases,
        })
    }

    fn contact_within(&self, priority: Option<Priority>) -> Duration {
        let priority = priority.unwrap_or(Priority::General);
        self.contact_within
            .get(&priority)
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

fn names<'a>(all: impl IntoIterator<Item = &'a str>) -> String {
    all.into_iter().collect::<Vec<_>>().join(", ")
}

/// What the assessment knows of a case that events do not carry: its
/// place, category and priority (fixed at intake), and its lead unit and
/// deadline now, for cases whose events were recorded before events
/// carried them.
#[derive(Debug, Clone, Default)]
pub struct Case {
    pub received_at: DateTime<Utc>,
    pub priority: Option<Priority>,
    pub category: Option<String>,
    pub street: Option<String>,
    pub community: Option<String>,
    pub grid: Option<String>,
    pub lead_unit: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
}

/// One case event, as the assessment reads it.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub to_status: String,
    /// The case's lead unit once the event was recorded.
    pub unit: Option<String>,
    /// The handling deadline in force once the event was recorded.
    pub due_at: Option<DateTime<Utc>>,
    /// A callback's verdict.
    pub solved: Option<bool>,
    pub satisfaction: Option<String>,
}

/// A count charged to the unit the case was with when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// 退单.
    Return,
    /// 返工: the on-site verification failed.
    Rework,
    /// 催办, by the scanner at the deadline or by hand.
    Reminder,
    /// 督办, by the scanner once long overdue or by hand.
    Supervision,
}

/// One case at a cut-off. `None` in a judgement: not settled yet (the
/// time allowed has not run out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The unit assessed for the case: its lead unit at the cut-off.
    pub unit: Option<String>,
    /// Dispatched to a unit and not merged, rejected or answered: the
    /// rates count it.
    pub assessable: bool,
    /// The last dispatch signed for before its sign-for deadline.
    pub signed_on_time: Option<bool>,
    /// Signed for at all.
    pub signed_for: bool,
    /// The reporter first contacted within `contact.within` of the first dispatch.
    pub contacted_in_time: Option<bool>,
    /// Solved: closed with no callback saying otherwise. Settled once closed
    /// or once its deadline passed.
    pub solved: Option<bool>,
    pub closed: bool,
    /// Closed, its last response made by the deadline then in force.
    pub closed_on_time: bool,
    /// The last callback's rating, counted satisfied or not.
    pub satisfied: Option<bool>,
    /// Still being handled, past its deadline, at the cut-off.
    pub overdue: bool,
    /// From first dispatch to closing.
    pub handling_hours: Option<f64>,
    /// Returns, reworks, reminders and supervisions, each with the unit
    /// charged.
    pub marks: Vec<(Option<String>, Mark)>,
}

/// One case's outcome at `cut`, from its events in the order recorded.
/// Events at or after `cut` are left out; `None`: the hub had not recorded
/// the case yet (a ticket that says it was received in the period but
/// arrived after its cut-off belongs to no figure of it).
pub fn summarise(
    case: &Case,
    events: &[Event],
    cut: DateTime<Utc>,
    config: &Config,
) -> Option<Outcome> {
    let events: Vec<&Event> = events.iter().filter(|e| e.at < cut).collect();
    if events.is_empty() {
        return None;
    }
    // A case dispatched before events carried the unit and deadline falls
    // back to the case's own.
    let legacy = events.iter().any(|e| is_dispatch(e))
        && !events
            .iter()
            .any(|e| e.unit.is_some() || e.due_at.is_some());
    let status = events
        .last()
        .and_then(|e| Status::parse(&e.to_status))
        .unwrap_or(Status::Registered);
    let latest = events
        .iter()
        .rev()
        .find(|e| e.unit.is_some() || e.due_at.is_some());
    let (unit, due_at) = match latest {
        Some(e) => (e.unit.clone(), e.due_at),
        None if legacy => (case.lead_unit.clone(), case.due_at),
        None => (None, None),
    };
    let first_dispatch = events.iter().find(|e| is_dispatch(e)).map(|e| e.at);
    let last_dispatch = events.iter().rposition(|e| is_dispatch(e));
    let assessable = first_dispatch.is_some()
        && !matches!(
            status,
            Status::Merged | Status::Rejected | Status::Answered | Status::Registered
        );

    let mut outcome = Outcome {
        unit: unit.clone(),
        assessable,
        ..Outcome::default()
    };
    for e in &events {
        let mark = match e.kind.as_str() {
            "return" => Some(Mark::Return),
            "verify" if e.to_status == Status::Rework.as_str() => Some(Mark::Rework),
            "reminder" | "remind" => Some(Mark::Reminder),
            "supervision" | "supervise" => Some(Mark::Supervision),
            _ => None,
        };
        if let Some(mark) = mark {
            let charged = if legacy { unit.clone() } else { e.unit.clone() };
            outcome.marks.push((charged, mark));
        }
    }
    let (Some(first_dispatch), Some(last_dispatch)) = (first_dispatch, last_dispatch) else {
        return Some(outcome);
    };

    // Sign-for (签收) of the last dispatch: on time unless the scanner
    // recorded its deadline passing first.
    let after = &events[last_dispatch + 1..];
    let accepted = after
        .iter()
        .position(|e| e.to_status == Status::Accepted.as_str());
    let late = after.iter().position(|e| e.kind == "sign_for_overdue");
    outcome.signed_for = accepted.is_some();
    outcome.signed_on_time = match (accepted, late) {
        (Some(a), Some(l)) => Some(a < l),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    };

    // 响应率: the first contact, against the time allowed from the first dispatch.
    let contact_due = chrono::Duration::from_std(config.contact_within(case.priority))
        .ok()
        .and_then(|within| first_dispatch.checked_add_signed(within))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let contacted = events
        .iter()
        .find(|e| e.kind == "contact" || config.contact_implied_by.contains(&e.kind));
    outcome.contacted_in_time = match contacted {
        Some(e) => Some(e.at <= contact_due),
        None if cut > contact_due => Some(false),
        None => None,
    };

    // Closing, on time, and solved.
    outcome.closed = status == Status::Closed;
    let closed_at = events
        .iter()
        .rev()
        .find(|e| e.to_status == Status::Closed.as_str())
        .map(|e| e.at);
    let verdict = events
        .iter()
        .rev()
        .find(|e| e.kind == "callback" && (e.solved.is_some() || e.satisfaction.is_some()));
    if outcome.closed {
        let on_time = match events.iter().rev().find(|e| e.kind == "respond") {
            Some(respond) => respond
                .due_at
                .or(if legacy { due_at } else { None })
                .is_none_or(|due| respond.at <= due),
            None => closed_at.zip(due_at).is_none_or(|(at, due)| at <= due),
        };
        outcome.closed_on_time = on_time;
        outcome.solved = Some(verdict.and_then(|v| v.solved) != Some(false));
        outcome.handling_hours =
            closed_at.map(|at| (at - first_dispatch).num_seconds() as f64 / 3600.0);
    } else if due_at.is_some_and(|due| due < cut) && status.is_open() {
        outcome.solved = Some(false);
    }
    outcome.satisfied = verdict
        .and_then(|v| v.satisfaction.as_ref())
        .map(|s| config.satisfied.contains(s));
    outcome.overdue =
        HANDLING.contains(&status) && due_at.is_some_and(|due| due < cut) && assessable;
    Some(outcome)
}

/// A dispatch to a unit (派单, 改派): at intake, by the centre, after an
/// approved return, a reopening or a split. Not a reminder or a rejected
/// return that leaves a case at `dispatched`, nor a resumption.
fn is_dispatch(e: &Event) -> bool {
    e.to_status == Status::Dispatched.as_str()
        && matches!(e.kind.as_str(), "dispatched" | "dispatch" | "split")
}

/// A period's figures for one row (a unit, a street, a community) or the whole district.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Cases received in the period (for a unit: those it was assessed for).
    pub received: u64,
    /// Cases dispatched and still its own (not merged): what the rates count.
    pub assessable: u64,
    pub signed_for: u64,
    pub signed_on_time: u64,
    /// Sign-fors settled: signed for, or their deadline passed.
    pub sign_for_settled: u64,
    pub sign_for_rate: Option<f64>,
    pub contacted_in_time: u64,
    pub contact_settled: u64,
    /// 响应率.
    pub response_rate: Option<f64>,
    pub solved: u64,
    /// Closed, or open past their deadline.
    pub solve_settled: u64,
    /// 解决率.
    pub solve_rate: Option<f64>,
    /// Callbacks that gave a rating.
    pub rated: u64,
    pub satisfied: u64,
    /// 满意率.
    pub satisfaction_rate: Option<f64>,
    pub closed: u64,
    pub closed_on_time: u64,
    pub on_time_rate: Option<f64>,
    /// Open past their deadline at the cut-off.
    pub overdue: u64,
    pub returns: u64,
    pub rework: u64,
    pub reminders: u64,
    pub supervisions: u64,
    pub handling_hours_avg: Option<f64>,
    pub handling_hours_p90: Option<f64>,
    /// 0 to 100.
    pub score: Option<f64>,
}

/// Which rows a tally makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Unit,
    #[default]
    Street,
    Community,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Unit => "unit",
            By::Street => "street",
            By::Community => "community",
        }
    }

    pub fn parse(text: &str) -> Option<By> {
        [By::Unit, By::Street, By::Community]
            .into_iter()
            .find(|b| b.as_str() == text)
    }

    /// The row a case's figures go to; `None`: no row (a case no unit had).
    fn row_of<'a>(self, case: &'a Case, outcome: &'a Outcome) -> Option<&'a str> {
        match self {
            By::Unit => outcome.unit.as_deref(),
            By::Street => Some(case.street.as_deref().unwrap_or(UNPLACED)),
            By::Community => Some(case.community.as_deref().unwrap_or(UNPLACED)),
        }
    }
}

/// The row of cases with no street or community.
pub const UNPLACED: &str = "(unplaced)";

/// Adds outcomes up, per row and for the whole district (the `None` key).
pub fn tally<'a>(
    cases: impl IntoIterator<Item = (&'a Case, &'a Outcome)>,
    by: By,
    config: &Config,
) -> (BTreeMap<String, Figures>, Figures) {
    let mut rows: BTreeMap<String, Counter> = BTreeMap::new();
    let mut total = Counter::default();
    for (case, outcome) in cases {
        total.add(outcome);
        total.marks(outcome.marks.iter().map(|(_, m)| *m));
        if let Some(row) = by.row_of(case, outcome) {
            rows.entry(row.to_owned()).or_default().add(outcome);
        }
        match by {
            // Marks go to the unit charged, which may not be the unit
            // assessed for the case (a return goes to the unit that returned it).
            By::Unit => {
                for (unit, mark) in &outcome.marks {
                    if let Some(unit) = unit {
                        rows.entry(unit.clone()).or_default().marks([*mark]);
                    }
                }
            }
            _ => {
                if let Some(row) = by.row_of(case, outcome) {
                    let marks = outcome.marks.iter().map(|(_, m)| *m);
                    rows.entry(row.to_owned()).or_default().marks(marks);
                }
            }
        }
    }
    let rows = rows
        .into_iter()
        .map(|(key, counter)| (key, counter.figures(config)))
        .collect();
    (rows, total.figures(config))
}

#[derive(Default)]
struct Counter {
    figures: Figures,
    hours: Vec<f64>,
}

impl Counter {
    fn add(&mut self, o: &Outcome) {
        let f = &mut self.figures;
        f.received += 1;
        if !o.assessable {
            return;
        }
        f.assessable += 1;
        let count = |judged: Option<bool>, yes: &mut u64, settled: &mut u64| {
            if let Some(judged) = judged {
                *settled += 1;
                *yes += u64::from(judged);
            }
        };
        count(
            o.signed_on_time,
            &mut f.signed_on_time,
            &mut f.sign_for_settled,
        );
        count(
            o.contacted_in_time,
            &mut f.contacted_in_time,
            &mut f.contact_settled,
        );
        count(o.solved, &mut f.solved, &mut f.solve_settled);
        count(o.satisfied, &mut f.satisfied, &mut f.rated);
        f.signed_for += u64::from(o.signed_for);
        f.closed += u64::from(o.closed);
        f.closed_on_time += u64::from(o.closed_on_time);
        f.overdue += u64::from(o.overdue);
        self.hours.extend(o.handling_hours);
    }

    fn marks(&mut self, marks: impl IntoIterator<Item = Mark>) {
        let f = &mut self.figures;
        for mark in marks {
            match mark {
                Mark::Return => f.returns += 1,
                Mark::Rework => f.rework += 1,
                Mark::Reminder => f.reminders += 1,
                Mark::Supervision => f.supervisions += 1,
            }
        }
    }

    fn figures(mut self, config: &Config) -> Figures {
        let mut f = self.figures;
        let rate = |yes: u64, of: u64| (of > 0).then(|| yes as f64 / of as f64);
        f.sign_for_rate = rate(f.signed_on_time, f.sign_for_settled);
        f.response_rate = rate(f.contacted_in_time, f.contact_settled);
        f.solve_rate = rate(f.solved, f.solve_settled);
        f.satisfaction_rate = rate(f.satisfied, f.rated);
        f.on_time_rate = rate(f.closed_on_time, f.solve_settled);
        self.hours.sort_by(f64::total_cmp);
        if !self.hours.is_empty() {
            f.handling_hours_avg = Some(self.hours.iter().sum::<f64>() / self.hours.len() as f64);
            // Nearest rank.
            let rank = (self.hours.len() as f64 * 0.9).ceil() as usize;
            f.handling_hours_p90 = Some(self.hours[rank.max(1) - 1]);
        }
        f.score = score(&f, config);
        f
    }
}

/// The weighted score: the rates that have something to count, weighted
/// (weights of the others left out), as 0 to 100, less the deductions.
pub fn score(f: &Figures, config: &Config) -> Option<f64> {
    let w = config.weights;
    let parts = [
        (w.response, f.response_rate),
        (w.solve, f.solve_rate),
        (w.satisfaction, f.satisfaction_rate),
        (w.sign_for, f.sign_for_rate),
        (w.on_time, f.on_time_rate),
    ];
    let weight: f64 = parts
        .iter()
        .filter(|(_, r)| r.is_some())
        .map(|(w, _)| w)
        .sum();
    if weight <= 0.0 {
        return None;
    }
    let rated: f64 = parts.iter().filter_map(|(w, r)| r.map(|r| w * r)).sum();
    let d = config.deductions;
    let deducted = d.supervision * f.supervisions as f64 + d.overdue * f.overdue as f64;
    Some(((100.0 * rated / weight) - deducted).clamp(0.0, 100.0))
}

/// Rows in ranking order: score, highest first; rows with fewer cases than
/// `min_cases` or no score are listed last, unranked.
pub fn rank(
    rows: BTreeMap<String, Figures>,
    config: &Config,
) -> Vec<(Option<u32>, String, Figures)> {
    let ranked = |f: &Figures| f.score.is_some() && f.received >= config.min_cases.max(1);
    let mut rows: Vec<(String, Figures)> = rows.into_iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| {
        ranked(b)
            .cmp(&ranked(a))
            .then(b.score.unwrap_or(-1.0).total_cmp(&a.score.unwrap_or(-1.0)))
            .then(b.received.cmp(&a.received))
            .then(ka.cmp(kb))
    });
    let mut place = 0;
    rows.into_iter()
        .map(|(key, f)| {
            let rank = ranked(&f).then(|| {
                place += 1;
                place
            });
            (rank, key, f)
        })
        .collect()
}

/// Beijing time, in which the district's days and months run.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A period of whole days, Beijing time, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The calendar month before the one `now` is in.
    pub fn last_month(now: DateTime<Utc>) -> Period {
        let today = now.with_timezone(&beijing()).date_naive();
        let this = today.with_day(1).expect("every month has a first day");
        let from = this - Months::new(1);
        Period {
            from,
            to: this - Days::new(1),
        }
    }

    /// The calendar month a day is in.
    pub fn month_of(day: NaiveDate) -> Period {
        let from = day.with_day(1).expect("every month has a first day");
        Period {
            from,
            to: from + Months::new(1) - Days::new(1),
        }
    }

    /// Checked: `from` not after `to`, at most ten years.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, String> {
        if from > to {
            return Err(format!("the period starts ({from}) after it ends ({to})"));
        }
        if (to - from).num_days() > 3660 {
            return Err("a period is at most ten years".to_owned());
        }
        Ok(Period { from, to })
    }

    /// Its first instant.
    pub fn start(self) -> DateTime<Utc> {
        midnight(self.from)
    }

    /// The instant after its last day: its cut-off once it has passed.
    pub fn end(self) -> DateTime<Utc> {
        midnight(self.to + Days::new(1))
    }

    /// Whole calendar months, from the first of one to the last of another.
    fn months(self) -> Option<u32> {
        let next = self.to + Days::new(1);
        (self.from.day() == 1 && next.day() == 1).then(|| {
            let months = (next.year() - self.from.year()) * 12 + next.month() as i32
                - self.from.month() as i32;
            months as u32
        })
    }

    /// The period before, as long: the same number of calendar months
    /// when the period is whole months, else the same number of days.
    pub fn previous(self) -> Period {
        match self.months() {
            Some(n) => Period {
                from: self.from - Months::new(n),
                to: self.from - Days::new(1),
            },
            None => {
                let days = (self.to - self.from).num_days() as u64 + 1;
                Period {
                    from: self.from - Days::new(days),
                    to: self.from - Days::new(1),
                }
            }
        }
    }

    /// The `n` calendar months ending with the one this period ends in.
    pub fn trailing_months(self, n: u32) -> Vec<Period> {
        let last = Period::month_of(self.to);
        (0..n)
            .rev()
            .map(|back| Period::month_of(last.from - Months::new(back)))
            .collect()
    }

    /// When its figures are taken: its end, or `now` while it runs.
    pub fn cut(self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.end().min(now)
    }

    /// `YYYY-MM` of its first day.
    pub fn month_label(self) -> String {
        self.from.format("%Y-%m").to_string()
    }

    pub fn contains(self, at: DateTime<Utc>) -> bool {
        self.start() <= at && at < self.end()
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    beijing()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("a fixed offset has one midnight")
        .to_utc()
}

/// The month (Beijing time) an instant falls in, as `YYYY-MM`.
pub fn month_of(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format("%Y-%m").to_string()
}

/// Hot spots (主动治理): where and what recurs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hotspots {
    /// Cases by category, place and month, over both periods.
    pub cells: Vec<Cell>,
    /// The places with the most cases in the period.
    pub top_places: Vec<Count>,
    /// The categories with the most cases in the period.
    pub top_categories: Vec<Count>,
    /// The places whose count rose most against the previous period.
    pub rising: Vec<Rise>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub category: String,
    pub place: String,
    pub month: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rise {
    pub place: String,
    pub count: u64,
    pub previous: u64,
    pub rise: u64,
}

/// Uncategorised cases.
pub const UNCATEGORISED: &str = "(uncategorised)";

/// Counts cases received in `period` and `previous` by category and place
/// (`place_of` picks the grid, community or street); the top lists hold at
/// most `limit` entries each.
pub fn hotspots(
    cases: &[Case],
    place_of: impl Fn(&Case) -> Option<&str>,
    period: Period,
    previous: Period,
    limit: usize,
) -> Hotspots {
    let mut cells: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut places: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut categories: HashMap<&str, u64> = HashMap::new();
    for case in cases {
        let current = period.contains(case.received_at);
        if !current && !previous.contains(case.received_at) {
            continue;
        }
        let place = place_of(case).unwrap_or(UNPLACED);
        let category = case.category.as_deref().unwrap_or(UNCATEGORISED);
        *cells
            .entry((
                category.to_owned(),
                place.to_owned(),
                month_of(case.received_at),
            ))
            .or_default() += 1;
        let counts = places.entry(place).or_default();
        if current {
            counts.0 += 1;
            *categories.entry(category).or_default() += 1;
        } else {
            counts.1 += 1;
        }
    }
    let top = |counts: Vec<(&str, u64)>| {
        let mut counts: Vec<Count> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(key, count)| Count {
                key: key.to_owned(),
                count,
            })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        counts.truncate(limit);
        counts
    };
    let mut rising: Vec<Rise> = places
        .iter()
        .filter(|(_, (now, before))| now > before)
        .map(|(place, (now, before))| Rise {
            place: (*place).to_owned(),
            count: *now,
            previous: *before,
            rise: now - before,
        })
        .collect();
    rising.sort_by(|a, b| b.rise.cmp(&a.rise).then(a.place.cmp(&b.place)));
    rising.truncate(limit);
    Hotspots {
        cells: cells
            .into_iter()
            .map(|((category, place, month), count)| Cell {
                category,
                place,
                month,
                count,
            })
            .collect(),
        top_places: top(places.iter().map(|(p, (n, _))| (*p, *n)).collect()),
        top_categories: top(categories.into_iter().collect()),
        rising,
    }
}

#[cfg(test)]
mod tests;
