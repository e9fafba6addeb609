//! The working-day calendar: which days are worked in Beijing, for the
//! deadlines counted in working days (7 and 15 days, by 12345 practice).
//!
//! Monday to Friday are working days and weekends are not, except as the
//! calendar file says: the public holidays (法定节假日 and the days taken
//! with them) and the weekend days worked to make up for them (调休), year by
//! year, as the State Council publishes them each autumn. A year the file
//! does not list counts weekdays only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, Utc, Weekday};
use serde::Deserialize;

/// The calendar file (`deploy/calendar.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    #[serde(default)]
    pub years: Vec<YearEntry>,
}

/// One year's arrangement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearEntry {
    pub year: i32,
    /// Where the dates come from (the notice's title).
    pub source: String,
    /// Days off: every day of each holiday period, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Weekend days worked (调休), `YYYY-MM-DD`.
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// A checked calendar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
    /// The years listed, with their source.
    years: BTreeMap<i32, String>,
}

impl Calendar {
    /// Reads and checks a calendar file; every problem is returned.
    pub fn load(path: &Path) -> Result<Calendar, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
        let file: CalendarFile = toml::from_str(&text)
            .map_err(|e| vec![format!("{}: {}", path.display(), e.message())])?;
        Calendar::new(file).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }

    /// Checks a calendar: dates that read, each in the year it is listed
    /// under, a year listed once, no day both off and worked, and make-up
    /// days that fall on a weekend (a weekday is worked anyway).
    pub fn new(file: CalendarFile) -> Result<Calendar, Vec<String>> {
        let mut problems = Vec::new();
        let mut calendar = Calendar::default();
        for entry in &file.years {
            if calendar
                .years
                .insert(entry.year, entry.source.clone())
                .is_some()
            {
                problems.push(format!("year {} is listed twice", entry.year));
            }
            let mut dates = |what: &str, list: &[String]| -> Vec<NaiveDate> {
                list.iter()
                    .filter_map(|text| match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                        Ok(date) if date.year() == entry.year => Some(date),
                        Ok(_) => {
                            problems.push(format!(
                                "year {}: {what} {text} is in another year",
                                entry.year
                            ));
                            None
                        }
                        Err(error) => {
                            problems.push(format!("year {}: {what} {text:?}: {error}", entry.year));
                            None
                        }
                    })
                    .collect()
            };
            let holidays = dates("holiday", &entry.holidays);
            let workdays = dates("make-up working day", &entry.workdays);
            for day in &workdays {
                if !is_weekend(*day) {
                    problems.push(format!(
                        "year {}: make-up working day {day} is a {}, worked anyway",
                        entry.year,
                        day.weekday()
                    ));
                }
                if holidays.contains(day) {
                    problems.push(format!(
                        "year {}: {day} is both a holiday and worked",
                        entry.year
                    ));
                }
            }
            calendar.holidays.extend(holidays);
            calendar.workdays.extend(workdays);
        }
        if problems.is_empty() {
            Ok(calendar)
        } else {
            Err(problems)
        }
    }

    /// Whether a day is worked.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        !is_weekend(day) && !self.holidays.contains(&day)
    }

    /// The years that list no make-up working day (调休): most likely their
    /// State Council arrangement is not entered yet, only the statutory
    /// days. `gridhub check` warns of them.
    pub fn unarranged_years(&self) -> Vec<i32> {
        self.years
            .keys()
            .copied()
            .filter(|year| !self.workdays.iter().any(|day| day.year() == *year))
            .collect()
    }

    /// The years the calendar lists.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// `days` working days after `from`: the same Beijing clock time on the
    /// `days`-th working day after `from`'s day (a case dispatched on a
    /// holiday starts counting on the next working day).
    pub fn add_working_days(&self, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
        let local = from.with_timezone(&beijing);
        let mut day = local.date_naive();
        let mut counted = 0;
        // Bounded: a year has well over `days` working days for any
        // deadline a rules file names.
        while counted < days {
            day = day + Days::new(1);
            if self.is_working_day(day) {
                counted += 1;
            }
        }
        let due = day.and_time(local.time());
        match due.and_local_timezone(beijing) {
            chrono::LocalResult::Single(at) => at.to_utc(),
            _ => from,
        }
    }
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn bundled() -> Calendar {
        let text = include_str!("../../deploy/calendar.toml");
        Calendar::new(toml::from_str(text).unwrap()).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_bundled_calendar_reads_and_knows_the_golden_week() {
        let c = bundled();
        assert!(c.years().any(|y| y == 2026) && c.years().any(|y| y == 2027));
        // 国庆 2026: 1 to 7 October off; Sunday 20 September and Saturday
        // 10 October worked.
        assert!((1..=7).all(|d| !c.is_working_day(day(&format!("2026-10-0{d}")))));
        assert!(c.is_working_day(day("2026-09-20")));
        assert!(c.is_working_day(day("2026-10-10")));
        assert!(c.is_working_day(day("2026-10-09")));
        assert!(!c.is_working_day(day("2026-10-11")), "an ordinary Sunday");
        // 2027 holds its statutory days only, until its arrangement is entered.
        assert_eq!(c.unarranged_years(), [2027]);
    }

    #[test]
    fn working_days_skip_weekends_and_holidays_and_count_make_up_days() {
        let c = bundled();
        // Tuesday 29 September 2026, 10:00 in Beijing: 7 working days are
        // 30 Sep, 8, 9, 10 (a Saturday worked), 12, 13, 14 October.
        let due = c.add_working_days(at("2026-09-29T10:00:00+08:00"), 7);
        assert_eq!(due, at("2026-10-14T10:00:00+08:00"));
        // An ordinary week: Monday plus 7 working days is the Wednesday after next.
        let due = c.add_working_days(at("2026-11-02T09:30:00+08:00"), 7);
        assert_eq!(due, at("2026-11-11T09:30:00+08:00"));
        // Dispatched on a holiday evening: counting starts on the next working day.
        let due = c.add_working_days(at("2026-10-03T21:00:00+08:00"), 1);
        assert_eq!(due, at("2026-10-08T21:00:00+08:00"));
        // A year the file does not list counts weekdays only.
        let due = Calendar::default().add_working_days(at("2030-01-04T08:00:00+08:00"), 1);
        assert_eq!(due, at("2030-01-07T08:00:00+08:00"), "Friday to Monday");
    }

    #[test]
    fn a_calendar_with_mistakes_names_each() {
        let file: CalendarFile = toml::from_str(
            r#"
            [[years]]
            year = 2026
            source = "test"
            holidays = ["2026-10-01", "2027-01-01", "2026-13-01"]
            workdays = ["2026-10-01", "2026-10-08"]
            [[years]]
            year = 2026
            source = "again"
            holidays = []
            "#,
        )
        .unwrap();
        let problems = Calendar::new(file).unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "year 2026 is listed twice",
            "holiday 2027-01-01 is in another year",
            "holiday \"2026-13-01\"",
            "2026-10-01 is both a holiday and worked",
            "make-up working day 2026-10-08 is a Thu",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }
}
