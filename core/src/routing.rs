//! Routing rules as data: the dispatch catalogue (who leads which matters),
//! deadlines per priority, duplicate detection, and the fallback to the
//! district centre. Operators edit `deploy/routing.toml`; `gridhub check`
//! validates it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::calendar::Calendar;
use crate::intent::{Nature, Priority};

/// The rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    pub deadlines: Deadlines,
    pub duplicates: Duplicates,
    /// Every code of the dispatch catalogue.
    pub catalogue: Vec<CatalogueEntry>,
    pub units: Vec<Unit>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    pub fallback: Fallback,
}

/// Time limits, written like `2h`, `24h`, `7d`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    pub emergency: String,
    pub urgent: String,
    pub general: String,
    pub complex: String,
    /// A dispatched case should be signed for within this.
    pub sign_for: String,
    /// Overdue this long past its deadline, a case is supervised (督办).
    pub supervision_after: String,
    /// A hotline asked to call the reporter back (回访) should have done so
    /// within this of the request.
    #[serde(default = "default_callback")]
    pub callback: String,
    /// The share of its handling time after which the lead unit is warned
    /// (`case.deadline_warning`), between 0 and 1.
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
    /// The working-day calendar (deploy/calendar.toml), relative to this
    /// file. With one, a deadline in whole days (`7d`, `15d`) counts
    /// working days; without, every deadline counts the clock.
    #[serde(default)]
    pub calendar: Option<String>,
}

fn default_warn_at() -> f64 {
    0.8
}

fn default_callback() -> String {
    "48h".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duplicates {
    /// Same category within this distance of an open case, in metres.
    pub radius_m: f64,
    /// ... and received within this time of it.
    pub window: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    pub code: String,
    pub name: String,
}

/// A unit cases are dispatched to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub id: String,
    pub name: String,
    /// Connector that receives its dispatches.
    pub connector: String,
    /// `department` for a functional department; `grid`, `community`,
    /// `street` or `district` for the levels of the grid system.
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Department,
    Grid,
    Community,
    Street,
    District,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Department => "department",
            Level::Grid => "grid",
            Level::Community => "community",
            Level::Street => "street",
            Level::District => "district",
        }
    }
}

/// One row of the dispatch catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    /// Catalogue codes it covers; empty: any.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Natures it covers; empty: any.
    #[serde(default)]
    pub natures: Vec<String>,
    /// `dispatch` (default) or `answer` (answered at intake, not dispatched).
    #[serde(default)]
    pub action: RuleAction,
    /// Lead unit id (for dispatch).
    #[serde(default)]
    pub lead: Option<String>,
    /// Assisting unit ids.
    #[serde(default)]
    pub assist: Vec<String>,
    /// After a return (退单), dispatch here instead (改派); default the fallback.
    #[serde(default)]
    pub on_return: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    #[default]
    Dispatch,
    Answer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// Unit (normally the district centre) for what no rule covers, what
    /// cannot be placed, and what was returned with no `on_return`.
    pub lead: String,
}

/// Rules checked and ready to route.
#[derive(Debug, Clone)]
pub struct Routing {
    pub file: RulesFile,
    units: BTreeMap<String, Unit>,
    deadlines: BTreeMap<Priority, Duration>,
    /// The deadlines written in whole days: counted in working days when
    /// there is a calendar.
    working_days: BTreeMap<Priority, u32>,
    /// The working-day calendar the rules file names.
    pub calendar: Option<Calendar>,
    pub sign_for: Duration,
    pub supervision_after: Duration,
    pub callback: Duration,
    /// See [`Deadlines::warn_at`].
    pub warn_at: f64,
    pub duplicate_window: Duration,
}

/// Where a case goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Dispatch to a lead unit (and assisting units).
    Dispatch {
        rule: String,
        lead: Unit,
        assist: Vec<Unit>,
        /// The rule's lead is a grid-system level the case could not be placed
        /// at: it goes to the fallback for triage.
        unplaced: bool,
    },
    /// Answered at intake.
    Answer { rule: String },
}

/// What the router knows of the case's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    Grid,
    Community,
    Street,
    Nowhere,
}

impl Placed {
    /// The finest level known: a grid, else a community, else a street.
    pub fn of(grid: bool, community: bool, street: bool) -> Placed {
        match (grid, community, street) {
            (true, ..) => Placed::Grid,
            (_, true, _) => Placed::Community,
            (_, _, true) => Placed::Street,
            _ => Placed::Nowhere,
        }
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

impl Routing {
    /// Reads and checks a rules file; every problem is returned, naming the file.
    pub fn load(path: &Path) -> Result<Routing, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
        let file: RulesFile = toml::from_str(&text)
            .map_err(|e| vec![format!("{}: {}", path.display(), e.message())])?;
        let calendar = file
            .deadlines
            .calendar
            .as_ref()
            .map(|name| Calendar::load(&path.parent().unwrap_or(Path::new(".")).join(name)));
        let routing = Routing::new(file).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect::<Vec<_>>()
        });
        match (routing, calendar) {
            (Ok(mut routing), Some(Ok(calendar))) => {
                routing.calendar = Some(calendar);
                Ok(routing)
            }
            (Ok(routing), None) => Ok(routing),
            (Ok(_), Some(Err(problems))) => Err(problems),
            (Err(mut problems), calendar) => {
                problems.extend(calendar.and_then(Result::err).unwrap_or_default());
                Err(problems)
            }
        }
    }

    /// Checks the rules: units known, deadlines readable, every catalogue
    /// code and nature routed by exactly one most specific rule, no matter
    /// of a functional department pushed down to the grid system.
    pub fn new(file: RulesFile) -> Result<Routing, Vec<String>> {
        let mut problems = Vec::new();
        let mut parse = |name: &str, text: &str| match duration(text) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("deadline {name}: {e}"));
                Duration::ZERO
            }
        };
        let d = &file.deadlines;
        let working_days: BTreeMap<Priority, u32> = [
            (Priority::Emergency, &d.emergency),
            (Priority::Urgent, &d.urgent),
            (Priority::General, &d.general),
            (Priority::Complex, &d.complex),
        ]
        .into_iter()
        .filter_map(|(priority, text)| {
            let days = text.trim().strip_suffix('d')?.trim().parse().ok()?;
            Some((priority, days))
        })
        .collect();
        let deadlines: BTreeMap<Priority, Duration> = [
            (Priority::Emergency, parse("emergency", &d.emergency)),
            (Priority::Urgent, parse("urgent", &d.urgent)),
            (Priority::General, parse("general", &d.general)),
            (Priority::Complex, parse("complex", &d.complex)),
        ]
        .into_iter()
        .collect();
        let sign_for = parse("sign_for", &d.sign_for);
        let supervision_after = parse("supervision_after", &d.supervision_after);
        let callback = parse("callback", &d.callback);
        let duplicate_window = parse("duplicates.window", &file.duplicates.window);
        if !(d.warn_at > 0.0 && d.warn_at < 1.0) {
            problems.push(format!(
                "deadlines.warn_at is {}: a share of the handling time, between 0 and 1",
                d.warn_at
            ));
        }
        let warn_at = d.warn_at;
        let mut units = BTreeMap::new();
        for unit in &file.units {
            if units.insert(unit.id.clone(), unit.clone()).is_some() {
                problems.push(format!("unit {} is declared twice", unit.id));
            }
        }
        let catalogue: BTreeSet<&str> = file.catalogue.iter().map(|c| c.code.as_str()).collect();
        let known_unit = |id: &str, what: &str, problems: &mut Vec<String>| {
            if !units.contains_key(id) {
                problems.push(format!("{what}: unknown unit {id}"));
            }
        };
        known_unit(&file.fallback.lead, "fallback", &mut problems);
        let mut ids = BTreeSet::new();
        for rule in &file.rules {
            let what = format!("rule {}", rule.id);
            if !ids.insert(rule.id.as_str()) {
                problems.push(format!("{what} is declared twice"));
            }
            for code in rule
                .categories
                .iter()
                .filter(|c| !catalogue.contains(c.as_str()))
            {
                problems.push(format!("{what}: category {code} is not in the catalogue"));
            }
            for nature in rule.natures.iter().filter(|n| Nature::parse(n).is_none()) {
                problems.push(format!("{what}: unknown nature {nature}"));
            }
            match (rule.action, &rule.lead) {
                (RuleAction::Dispatch, None) => {
                    problems.push(format!("{what}: dispatch needs a lead unit"))
                }
                (RuleAction::Dispatch, Some(lead)) => known_unit(lead, &what, &mut problems),
                (RuleAction::Answer, Some(_)) => {
                    problems.push(format!("{what}: an answered matter has no lead unit"))
                }
                (RuleAction::Answer, None) => {}
            }
            for unit in rule.assist.iter().chain(&rule.on_return) {
                known_unit(unit, &what, &mut problems);
            }
        }
        let routing = Routing {
            units,
            deadlines,
            working_days,
            calendar: None,
            sign_for,
            supervision_after,
            callback,
            warn_at,
            duplicate_window,
            file,
        };
        problems.extend(routing.coverage_problems());
        if problems.is_empty() {
            Ok(routing)
        } else {
            Err(problems)
        }
    }

    /// Every (category, nature) pair must have one most specific rule, and
    /// a category a functional department leads must not be led by a level
    /// of the grid system under another rule.
    fn coverage_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut unrouted = BTreeSet::new();
        let mut department_owned: BTreeMap<&str, &str> = BTreeMap::new();
        for entry in &self.file.catalogue {
            for &nature in Nature::ALL {
                let best = self.best_rules(Some(&entry.code), nature);
                match best.as_slice() {
                    [] => {
                        unrouted.insert(entry.code.as_str());
                    }
                    [_] => {}
                    many => {
                        let ids: Vec<&str> = many.iter().map(|r| r.id.as_str()).collect();
                        problems.push(format!(
                            "rules {} overlap for category {} nature {nature}: make one more specific",
                            ids.join(" and "),
                            entry.code
                        ));
                    }
                }
                if let [rule] = best.as_slice()
                    && let Some(lead) = rule.lead.as_deref().and_then(|l| self.units.get(l))
                    && lead.level == Level::Department
                {
                    department_owned.insert(entry.code.as_str(), rule.id.as_str());
                }
            }
        }
        for code in unrouted {
            problems.push(format!("category {code} routes nowhere for some natures: add a rule (the fallback is for the unforeseen)"));
        }
        for entry in &self.file.catalogue {
            let Some(owner) = department_owned.get(entry.code.as_str()) else {
                continue;
            };
            for &nature in Nature::ALL {
                if let [rule] = self.best_rules(Some(&entry.code), nature).as_slice()
                    && let Some(lead) = rule.lead.as_deref().and_then(|l| self.units.get(l))
                    && matches!(lead.level, Level::Grid | Level::Community | Level::Street)
                {
                    problems.push(format!(
                        "rule {} pushes category {} down to the {} level, but rule {owner} gives it to a functional department",
                        rule.id,
                        entry.code,
                        lead.level.as_str()
                    ));
                    break;
                }
            }
        }
        problems
    }

    /// The matching rules of the highest specificity: category and nature,
    /// then nature only, then category only, then neither.
    fn best_rules(&self, category: Option<&str>, nature: Nature) -> Vec<&Rule> {
        let mut best: Vec<&Rule> = Vec::new();
        let mut best_score = 0;
        for rule in &self.file.rules {
            // A rule naming natures is more specific than one naming only
            // categories: "consultations are answered" beats "potholes go to 城管".
            let category_match = if rule.categories.is_empty() {
                Some(0)
            } else if category.is_some_and(|c| rule.categories.iter().any(|r| r == c)) {
                Some(1)
            } else {
                None
            };
            let nature_match = if rule.natures.is_empty() {
                Some(0)
            } else if rule.natures.iter().any(|n| n == nature.as_str()) {
                Some(2)
            } else {
                None
            };
            let (Some(c), Some(n)) = (category_match, nature_match) else {
                continue;
            };
            let score = c + n + 1;
            if score > best_score {
                best = vec![rule];
                best_score = score;
            } else if score == best_score {
                best.push(rule);
            }
        }
        best
    }

    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.get(id)
    }

    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    pub fn fallback(&self) -> &Unit {
        &self.units[&self.file.fallback.lead]
    }

    /// Handling deadline of a priority, as written (clock time).
    pub fn deadline(&self, priority: Priority) -> Duration {
        self.deadlines[&priority]
    }

    /// When a case of this priority dispatched at `from` is due: in working
    /// days for a deadline written in whole days when there is a calendar,
    /// else `from` plus the deadline.
    pub fn due_at(&self, priority: Priority, from: DateTime<Utc>) -> DateTime<Utc> {
        match (&self.calendar, self.working_days.get(&priority)) {
            (Some(calendar), Some(&days)) => calendar.add_working_days(from, days),
            _ => chrono::Duration::from_std(self.deadline(priority))
                .map(|d| from + d)
                .unwrap_or(from),
        }
    }

    /// A deadline moved by `days` (延期): working days when there is a
    /// calendar, else whole days of clock time.
    pub fn extend(&self, due_at: DateTime<Utc>, days: u16) -> DateTime<Utc> {
        match &self.calendar {
            Some(calendar) => calendar.add_working_days(due_at, days.into()),
            None => due_at + chrono::Duration::days(days.into()),
        }
    }

    /// Routes a case. A rule whose lead is a level of the grid system follows
    /// the case's place down as far as it is known (grid, else community,
    /// else street); a case that cannot be placed at all goes to the
    /// fallback, flagged unplaced: the hub never guesses a place.
    pub fn route(&self, category: Option<&str>, nature: Nature, placed: Placed) -> Route {
        let best = self.best_rules(category, nature);
        let Some(rule) = best.first() else {
            return Route::Dispatch {
                rule: "fallback".to_owned(),
                lead: self.fallback().clone(),
                assist: Vec::new(),
                unplaced: placed == Placed::Nowhere,
            };
        };
        if rule.action == RuleAction::Answer {
            return Route::Answer {
                rule: rule.id.clone(),
            };
        }
        let lead = &self.units[rule.lead.as_deref().unwrap_or_default()];
        let (lead, unplaced) = self.follow_place(lead, placed);
        let assist = rule
            .assist
            .iter()
            .filter_map(|id| self.units.get(id))
            .map(|unit| self.follow_place(unit, placed).0)
            .filter(|unit| unit.id != lead.id && unit.level != Level::District)
            .collect();
        Route::Dispatch {
            rule: rule.id.clone(),
            lead,
            assist,
            unplaced,
        }
    }

    /// Where a returned case goes next (改派).
    pub fn on_return(&self, rule: Option<&str>) -> &Unit {
        rule.and_then(|id| self.file.rules.iter().find(|r| r.id == id))
            .and_then(|r| r.on_return.as_deref())
            .and_then(|id| self.units.get(id))
            .unwrap_or_else(|| self.fallback())
    }

    fn follow_place(&self, unit: &Unit, placed: Placed) -> (Unit, bool) {
        let wanted = match unit.level {
            Level::Grid => [Placed::Grid, Placed::Community, Placed::Street].as_slice(),
            Level::Community => [Placed::Grid, Placed::Community, Placed::Street].as_slice(),
            Level::Street => [Placed::Grid, Placed::Community, Placed::Street].as_slice(),
            Level::Department | Level::District => {
                return (unit.clone(), placed == Placed::Nowhere);
            }
        };
        if !wanted.contains(&placed) {
            return (self.fallback().clone(), true);
        }
        // Go no lower than the rule asks, and no lower than the place is known.
        let level = match (unit.level, placed) {
            (Level::Grid, Placed::Grid) => Level::Grid,
            (Level::Grid | Level::Community, Placed::Grid | Placed::Community) => Level::Community,
            _ => Level::Street,
        };
        match self.units.values().find(|u| u.level == level) {
            Some(unit) => (unit.clone(), false),
            None => (self.fallback().clone(), true),
        }
    }
}

/// Problems between the rules and the connectors: every unit's connector
/// must exist and receive `case.dispatched`.
pub fn check_against(routing: &Routing, registry: &crate::connector::Registry) -> Vec<String> {
    let mut problems = Vec::new();
    for unit in routing.units() {
        match registry.get(&unit.connector) {
            None => problems.push(format!(
                "unit {}: unknown connector {}",
                unit.id, unit.connector
            )),
            Some(connector)
                if !connector
                    .config
                    .receives
                    .iter()
                    .any(|e| e == "case.dispatched") =>
            {
                problems.push(format!(
                    "unit {}: connector {} does not receive case.dispatched",
                    unit.id, unit.connector
                ))
            }
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(rules: &str) -> Result<Routing, Vec<String>> {
        routing_with("", rules)
    }

    /// The test rules with more `[deadlines]` entries.
    fn routing_with(deadlines: &str, rules: &str) -> Result<Routing, Vec<String>> {
        let text = format!(
            r#"
            [deadlines]
            emergency = "2h"
            urgent = "24h"
            general = "7d"
            complex = "15d"
            sign_for = "2h"
            supervision_after = "24h"
            {deadlines}
            [duplicates]
            radius_m = 50
            window = "72h"
            [fallback]
            lead = "centre"
            [[catalogue]]
            code = "road.pothole"
            name = "道路破损"
            [[catalogue]]
            code = "sanitation.garbage"
            name = "垃圾堆放"
            [[units]]
            id = "centre"
            name = "区中心"
            connector = "grid-platform"
            level = "district"
            [[units]]
            id = "grid"
            name = "网格"
            connector = "grid-platform"
            level = "grid"
            [[units]]
            id = "community"
            name = "社区"
            connector = "grid-platform"
            level = "community"
            [[units]]
            id = "street"
            name = "街乡"
            connector = "grid-platform"
            level = "street"
            [[units]]
            id = "cg"
            name = "城管"
            connector = "dept-urban-management"
            level = "department"
            {rules}
            "#
        );
        Routing::new(toml::from_str(&text).unwrap())
    }

    const GOOD: &str = r#"
        [[rules]]
        id = "answer"
        natures = ["consultation", "praise"]
        action = "answer"
        [[rules]]
        id = "pothole"
        categories = ["road.pothole"]
        lead = "cg"
        assist = ["street"]
        [[rules]]
        id = "garbage"
        categories = ["sanitation.garbage"]
        lead = "grid"
    "#;

    #[test]
    fn routes_by_category_and_nature() {
        let r = routing(GOOD).unwrap();
        match r.route(Some("road.pothole"), Nature::Complaint, Placed::Grid) {
            Route::Dispatch {
                lead,
                assist,
                unplaced,
                rule,
            } => {
                assert_eq!(
                    (lead.id.as_str(), rule.as_str(), unplaced),
                    ("cg", "pothole", false)
                );
                assert_eq!(assist[0].id, "street");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.route(Some("road.pothole"), Nature::Consultation, Placed::Grid),
            Route::Answer {
                rule: "answer".into()
            }
        );
        assert_eq!(r.deadline(Priority::Emergency), Duration::from_secs(7200));
    }

    #[test]
    fn callback_and_warning_deadlines_default_and_are_checked() {
        let r = routing(GOOD).unwrap();
        assert_eq!(r.callback, Duration::from_secs(48 * 3600));
        assert_eq!(r.warn_at, 0.8);
        let with =
            |warn_at: &str| routing_with(&format!("callback = \"3d\"\nwarn_at = {warn_at}"), GOOD);
        let r = with("0.75").unwrap();
        assert_eq!(
            (r.callback, r.warn_at),
            (Duration::from_secs(3 * 86400), 0.75)
        );
        let problems = with("1.5").unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("warn_at")),
            "{problems:?}"
        );
    }

    #[test]
    fn deadlines_in_days_count_working_days_by_the_bundled_calendar() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/routing.toml");
        let r = Routing::load(&path).unwrap();
        assert!(
            r.calendar.is_some(),
            "routing.toml names calendar.toml beside it"
        );
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let dispatched = at("2026-09-29T10:00:00+08:00");
        // 7 working days across the National Day holiday and its make-up Saturday.
        assert_eq!(
            r.due_at(Priority::General, dispatched),
            at("2026-10-14T10:00:00+08:00")
        );
        // Hours count the clock, holiday or not.
        assert_eq!(
            r.due_at(Priority::Emergency, dispatched),
            at("2026-09-29T12:00:00+08:00")
        );
        // Without a calendar, days are clock days.
        let plain = routing(GOOD).unwrap();
        assert_eq!(
            plain.due_at(Priority::General, dispatched),
            at("2026-10-06T10:00:00+08:00")
        );
    }

    #[test]
    fn grid_level_follows_the_place_and_never_guesses() {
        let r = routing(GOOD).unwrap();
        let lead = |placed| match r.route(Some("sanitation.garbage"), Nature::Report, placed) {
            Route::Dispatch { lead, unplaced, .. } => (lead.id, unplaced),
            other => panic!("{other:?}"),
        };
        assert_eq!(lead(Placed::Grid), ("grid".to_owned(), false));
        assert_eq!(lead(Placed::Community), ("community".to_owned(), false));
        assert_eq!(lead(Placed::Street), ("street".to_owned(), false));
        assert_eq!(lead(Placed::Nowhere), ("centre".to_owned(), true));
    }

    #[test]
    fn unrouted_categories_are_reported() {
        let problems = routing(
            r#"
            [[rules]]
            id = "pothole"
            categories = ["road.pothole"]
            lead = "cg"
            "#,
        )
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("category sanitation.garbage routes nowhere")),
            "{problems:?}"
        );
    }

    #[test]
    fn ambiguous_overlap_is_reported() {
        let problems = routing(&format!(
            "{GOOD}
            [[rules]]
            id = \"pothole-again\"
            categories = [\"road.pothole\"]
            lead = \"cg\"
            "
        ))
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("rules pothole and pothole-again overlap")),
            "{problems:?}"
        );
    }

    #[test]
    fn department_matters_are_not_pushed_down() {
        let problems = routing(&format!(
            "{GOOD}
            [[rules]]
            id = \"pothole-reports\"
            categories = [\"road.pothole\"]
            natures = [\"report\"]
            lead = \"grid\"
            "
        ))
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("pushes category road.pothole down")),
            "{problems:?}"
        );
    }

    #[test]
    fn unknown_units_and_bad_deadlines_are_reported() {
        let problems = routing(
            r#"
            [[rules]]
            id = "x"
            lead = "nobody"
            "#,
        )
        .unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("unknown unit nobody")),
            "{problems:?}"
        );
    }
}
