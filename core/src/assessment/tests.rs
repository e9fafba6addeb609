//! The assessment on a small fixture computed by hand: six cases received
//! in November 2026, every figure worked out in the comments.

use super::*;

const CONFIG: &str = r#"
[contact]
within = { emergency = "1h", urgent = "4h", general = "24h", complex = "24h" }
implied_by = ["respond"]
[satisfaction]
satisfied = ["satisfied", "basically_satisfied"]
[weights]
response = 20
solve = 30
satisfaction = 30
sign_for = 10
on_time = 10
[deductions]
supervision = 1
overdue = 0.5
"#;

fn config() -> Config {
    Config::parse(CONFIG).unwrap()
}

/// 2026-11-02 09:00 Beijing time plus `hours`.
fn t(hours: i64) -> DateTime<Utc> {
    midnight(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()) + chrono::Duration::hours(9 + hours)
}

const DAY: i64 = 24;

fn case(street: &str, priority: Priority, hours: i64) -> Case {
    Case {
        recorded_at: t(hours),
        priority: Some(priority),
        category: Some("C01".to_owned()),
        street: Some(street.to_owned()),
        community: Some(format!("{street}一社区")),
        ..Case::default()
    }
}

fn ev(hours: i64, kind: &str, to: &str, unit: Option<&str>, due: Option<i64>) -> Event {
    Event {
        at: t(hours),
        kind: kind.to_owned(),
        to_status: to.to_owned(),
        unit: unit.map(str::to_owned),
        due_at: due.map(t),
        ..Event::default()
    }
}

fn callback(hours: i64, to: &str, unit: &str, solved: bool, rating: &str) -> Event {
    Event {
        solved: Some(solved),
        satisfaction: Some(rating.to_owned()),
        ..ev(hours, "callback", to, Some(unit), None)
    }
}

const YQ: &str = "玉桥街道";
const YS: &str = "永顺镇";
const HOUSING: Option<&str> = Some("dept-housing");
const URBAN: Option<&str> = Some("dept-urban-management");

/// The six cases and their events.
fn fixture() -> Vec<(Case, Vec<Event>)> {
    vec![
        // A: housing, general (contact within 24 h), due in 7 days. Signed
        // for after 1 h, contacted after 3 h, responded on day 2, the
        // caller satisfied and solved on day 3: every rate yes; 72 h.
        (
            case(YQ, Priority::General, 0),
            vec![
                ev(0, "opened", "registered", None, None),
                ev(0, "dispatched", "dispatched", HOUSING, Some(7 * DAY)),
                ev(1, "accept", "accepted", HOUSING, Some(7 * DAY)),
                ev(3, "contact", "accepted", HOUSING, Some(7 * DAY)),
                ev(2 * DAY, "respond", "responded", HOUSING, Some(7 * DAY)),
                ev(2 * DAY, "callback", "callback", HOUSING, Some(7 * DAY)),
                callback(3 * DAY, "closed", "dept-housing", true, "satisfied"),
            ],
        ),
        // B: housing, urgent (contact within 4 h), due after 24 h. The
        // sign-for deadline passed (sign_for_overdue) before it was signed
        // for: late. No contact; the response (which counts as contact)
        // came 30 h after dispatch: late, and after the deadline: not on
        // time. A reminder at the deadline. Solved but unsatisfied; 48 h.
        (
            case(YQ, Priority::Urgent, DAY),
            vec![
                ev(DAY, "opened", "registered", None, None),
                ev(DAY, "dispatched", "dispatched", HOUSING, Some(2 * DAY)),
                ev(
                    DAY + 2,
                    "sign_for_overdue",
                    "dispatched",
                    HOUSING,
                    Some(2 * DAY),
                ),
                ev(DAY + 3, "accept", "accepted", HOUSING, Some(2 * DAY)),
                ev(2 * DAY, "reminder", "accepted", HOUSING, Some(2 * DAY)),
                ev(DAY + 30, "respond", "responded", HOUSING, Some(2 * DAY)),
                ev(DAY + 30, "callback", "callback", HOUSING, Some(2 * DAY)),
                callback(3 * DAY, "closed", "dept-housing", true, "unsatisfied"),
            ],
        ),
        // C: first to urban management, which signed for, contacted the
        // caller after 2 h and returned it (a return charged to urban
        // management); dispatched again to housing on day 3, due day 10.
        // Signed for at once; the first result failed verification (a
        // rework charged to housing), the second passed on day 8. No
        // callback: solved, no rating. On time (day 7 <= day 10); 144 h
        // from the first dispatch.
        (
            case(YQ, Priority::General, 2 * DAY),
            vec![
                ev(2 * DAY, "opened", "registered", None, None),
                ev(2 * DAY, "dispatched", "dispatched", URBAN, Some(9 * DAY)),
                ev(2 * DAY + 1, "accept", "accepted", URBAN, Some(9 * DAY)),
                ev(2 * DAY + 2, "contact", "accepted", URBAN, Some(9 * DAY)),
                ev(
                    2 * DAY + 3,
                    "return",
                    "return_pending",
                    URBAN,
                    Some(9 * DAY),
                ),
                ev(3 * DAY, "approve_return", "returned", URBAN, Some(9 * DAY)),
                ev(3 * DAY, "dispatched", "dispatched", HOUSING, Some(10 * DAY)),
                ev(3 * DAY + 1, "accept", "accepted", HOUSING, Some(10 * DAY)),
                ev(5 * DAY, "respond", "responded", HOUSING, Some(10 * DAY)),
                ev(5 * DAY, "verifying", "verifying", HOUSING, Some(10 * DAY)),
                ev(6 * DAY, "verify", "rework", HOUSING, Some(10 * DAY)),
                ev(7 * DAY, "respond", "responded", HOUSING, Some(10 * DAY)),
                ev(7 * DAY, "verifying", "verifying", HOUSING, Some(10 * DAY)),
                ev(8 * DAY, "verify", "closed", HOUSING, Some(10 * DAY)),
            ],
        ),
        // D: urban management, general, received day 20, due day 27 (29
        // November, before the cut-off). Never signed for (its deadline
        // passed), nobody contacted within 24 h, open past its deadline
        // at the cut-off: overdue, unsolved. A reminder at the deadline.
        (
            case(YS, Priority::General, 20 * DAY),
            vec![
                ev(20 * DAY, "opened", "registered", None, None),
                ev(20 * DAY, "dispatched", "dispatched", URBAN, Some(27 * DAY)),
                ev(
                    20 * DAY + 2,
                    "sign_for_overdue",
                    "dispatched",
                    URBAN,
                    Some(27 * DAY),
                ),
                ev(27 * DAY, "reminder", "dispatched", URBAN, Some(27 * DAY)),
            ],
        ),
        // E: a duplicate merged at intake: received, assessed for nothing.
        (
            case(YS, Priority::General, 21 * DAY),
            vec![
                ev(21 * DAY, "opened", "registered", None, None),
                ev(21 * DAY, "merged", "merged", None, None),
            ],
        ),
        // F: urban management, received 30 November 19:00, 5 h before
        // the cut-off: signed for after 30 min (on time); its contact
        // time and its deadline have not run out: neither judged. Its
        // response on 2 December is after the cut-off and not counted.
        (
            case(YS, Priority::General, 28 * DAY + 10),
            vec![
                ev(28 * DAY + 10, "opened", "registered", None, None),
                ev(
                    28 * DAY + 10,
                    "dispatched",
                    "dispatched",
                    URBAN,
                    Some(35 * DAY),
                ),
                ev(28 * DAY + 10, "accept", "accepted", URBAN, Some(35 * DAY)),
                ev(30 * DAY, "respond", "closed", URBAN, Some(35 * DAY)),
            ],
        ),
    ]
}

fn november() -> Period {
    Period::new(
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
    )
    .unwrap()
}

/// The cases the hub had recorded at `cut`, with their outcomes.
fn outcomes(cut: DateTime<Utc>) -> Vec<(Case, Outcome)> {
    let config = config();
    fixture()
        .into_iter()
        .filter_map(|(case, events)| {
            let outcome = summarise(&case, &events, cut, &config)?;
            Some((case, outcome))
        })
        .collect()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn each_case_is_judged_as_worked_out_by_hand() {
    let cut = november().end();
    let all = outcomes(cut);
    let [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map(|n| &all[n].1);
    assert_eq!(
        (a.signed_on_time, a.contacted_in_time, a.solved, a.satisfied),
        (Some(true), Some(true), Some(true), Some(true))
    );
    assert!(a.closed_on_time && close(a.handling_hours, 72.0));
    assert_eq!(
        (b.signed_on_time, b.contacted_in_time, b.solved, b.satisfied),
        (Some(false), Some(false), Some(true), Some(false))
    );
    assert!(b.closed && !b.closed_on_time && close(b.handling_hours, 48.0));
    assert_eq!(c.unit.as_deref(), HOUSING);
    assert_eq!(
        (c.signed_on_time, c.contacted_in_time, c.solved, c.satisfied),
        (Some(true), Some(true), Some(true), None)
    );
    assert!(c.closed_on_time && close(c.handling_hours, 144.0));
    assert_eq!(
        c.marks,
        vec![
            (URBAN.map(str::to_owned), Mark::Return),
            (HOUSING.map(str::to_owned), Mark::Rework)
        ]
    );
    assert_eq!(
        (d.signed_on_time, d.contacted_in_time, d.solved, d.overdue),
        (Some(false), Some(false), Some(false), true)
    );
    assert!(!e.assessable && e.unit.is_none());
    assert_eq!(
        (f.signed_on_time, f.contacted_in_time, f.solved, f.closed),
        (Some(true), None, None, false)
    );
}

#[test]
fn units_and_streets_add_up_as_worked_out_by_hand() {
    let config = config();
    let all = outcomes(november().end());
    let (units, total) = tally(all.iter().map(|(c, o)| (c, o)), By::Unit, &config);

    // Housing: A, B and C. Signed on time A, C of 3; contacted in time A,
    // C of 3; solved 3 of 3; satisfied A of the 2 rated (A, B); closed on
    // time A, C of 3. Hours 72, 48, 144: mean 88, 90th percentile (nearest
    // rank: the 3rd of 3) 144. C's rework and B's reminder.
    let housing = &units["dept-housing"];
    assert_eq!((housing.received, housing.assessable), (3, 3));
    assert_eq!((housing.signed_on_time, housing.sign_for_settled), (2, 3));
    assert_eq!((housing.contacted_in_time, housing.contact_settled), (2, 3));
    assert_eq!((housing.solved, housing.solve_settled), (3, 3));
    assert_eq!((housing.satisfied, housing.rated), (1, 2));
    assert_eq!((housing.closed, housing.closed_on_time), (3, 2));
    assert_eq!(
        (
            housing.returns,
            housing.rework,
            housing.reminders,
            housing.supervisions
        ),
        (0, 1, 1, 0)
    );
    assert!(close(housing.handling_hours_avg, 88.0));
    assert!(close(housing.handling_hours_p90, 144.0));
    // Score: (20 x 2/3 + 30 x 1 + 30 x 1/2 + 10 x 2/3 + 10 x 2/3) / 100
    // x 100 = 71.67, nothing deducted.
    assert!(close(housing.score, 215.0 / 3.0));

    // Urban management: D and F (C went to housing; E has no unit).
    // Signed on time F of D, F; contacted in time 0 of D (F not yet
    // judged); solved 0 of D; no rating; closed on time 0 of 1; D overdue.
    // The return of C is charged to it, and D's reminder.
    let urban = &units["dept-urban-management"];
    assert_eq!((urban.received, urban.assessable), (2, 2));
    assert_eq!((urban.signed_on_time, urban.sign_for_settled), (1, 2));
    assert_eq!((urban.contacted_in_time, urban.contact_settled), (0, 1));
    assert_eq!((urban.solved, urban.solve_settled), (0, 1));
    assert_eq!(urban.rated, 0);
    assert_eq!(urban.satisfaction_rate, None);
    assert_eq!((urban.overdue, urban.returns, urban.reminders), (1, 1, 1));
    // Score: without a satisfaction rate the weights are 20 + 30 + 10 + 10
    // = 70; (20 x 0 + 30 x 0 + 10 x 1/2 + 10 x 0) / 70 x 100 = 7.14, less
    // 0.5 for the overdue case: 6.64.
    assert!(close(urban.score, 500.0 / 70.0 - 0.5));

    // The district: all six received, five assessable.
    assert_eq!((total.received, total.assessable), (6, 5));
    assert_eq!((total.returns, total.rework, total.reminders), (1, 1, 2));

    let ranking = rank(units, &config);
    let order: Vec<_> = ranking.iter().map(|(r, k, _)| (*r, k.as_str())).collect();
    assert_eq!(
        order,
        [
            (Some(1), "dept-housing"),
            (Some(2), "dept-urban-management")
        ]
    );

    // By street: Yuqiao has A, B, C (and C's return); Yongshun D, E, F.
    let (streets, _) = tally(all.iter().map(|(c, o)| (c, o)), By::Street, &config);
    assert_eq!(streets[YQ].received, 3);
    assert_eq!(streets[YQ].returns, 1);
    assert_eq!((streets[YS].received, streets[YS].assessable), (3, 2));
    assert!(close(streets[YS].score, 500.0 / 70.0 - 0.5));
}

#[test]
fn a_closed_month_recomputed_later_is_the_same() {
    // What happens after the cut-off (F's response on 2 December) changes
    // nothing of November, whenever it is computed.
    let config = config();
    let november = november();
    let now = november.end() + chrono::Duration::days(40);
    let first = outcomes(november.cut(november.end()));
    let later = outcomes(november.cut(now));
    assert_eq!(
        first.iter().map(|(_, o)| o).collect::<Vec<_>>(),
        later.iter().map(|(_, o)| o).collect::<Vec<_>>()
    );
    let (a, _) = tally(first.iter().map(|(c, o)| (c, o)), By::Unit, &config);
    let (b, _) = tally(later.iter().map(|(c, o)| (c, o)), By::Unit, &config);
    assert_eq!(a, b);
    // On 27 November F had not been received: it is in no figure.
    assert_eq!(outcomes(t(25 * DAY)).len(), 5);
}

#[test]
fn periods_default_to_last_month_and_compare_with_the_one_before() {
    let now = t(3 * DAY);
    let last = Period::last_month(now);
    assert_eq!(
        (last.from.to_string(), last.to.to_string()),
        ("2026-10-01".to_owned(), "2026-10-31".to_owned())
    );
    let previous = last.previous();
    assert_eq!(previous.from.to_string(), "2026-09-01");
    assert_eq!(previous.to.to_string(), "2026-09-30");
    // Ten days: the ten before.
    let days = Period::new(
        NaiveDate::from_ymd_opt(2026, 11, 11).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
    )
    .unwrap();
    assert_eq!(days.previous().from.to_string(), "2026-11-01");
    // Beijing midnight is 16:00 UTC the day before.
    assert_eq!(november().start().to_rfc3339(), "2026-10-31T16:00:00+00:00");
    let months: Vec<_> = november()
        .trailing_months(3)
        .iter()
        .map(|m| m.month_label())
        .collect();
    assert_eq!(months, ["2026-09", "2026-10", "2026-11"]);
    assert!(Period::new(days.to, days.from).is_err());
}

#[test]
fn hot_spots_count_by_category_place_and_month() {
    let mut cases: Vec<Case> = fixture().into_iter().map(|(c, _)| c).collect();
    // One October case in Yuqiao's community: Yongshun rose from 0 to 3,
    // Yuqiao from 1 to 3.
    cases.push(Case {
        recorded_at: t(-10 * DAY),
        category: None,
        ..case(YQ, Priority::General, 0)
    });
    let spots = hotspots(
        &cases,
        |c| c.street.as_deref(),
        november(),
        november().previous(),
        10,
    );
    assert_eq!(spots.top_places[0].count, 3);
    assert_eq!(
        spots.top_categories,
        [Count {
            key: "C01".into(),
            count: 6
        }]
    );
    assert_eq!(spots.rising[0].place, YS);
    assert_eq!((spots.rising[0].count, spots.rising[0].rise), (3, 3));
    assert_eq!(spots.rising[1].rise, 2);
    assert!(
        spots
            .cells
            .iter()
            .any(|c| c.month == "2026-10" && c.category == UNCATEGORISED && c.count == 1)
    );
}

#[test]
fn the_file_is_checked() {
    let problems = Config::parse(
        r#"
[contact]
within = { emergency = "1h", urgent = "soon" }
implied_by = ["verify"]
[satisfaction]
satisfied = ["happy"]
[weights]
response = -1
solve = 0
satisfaction = 0
sign_for = 0
on_time = 0
"#,
    )
    .unwrap_err()
    .join("\n");
    for expected in [
        "contact.within.urgent",
        "no time for general",
        "\"verify\" is not a step",
        "\"happy\" is not a callback's rating",
        "weights: each is a number 0 or more",
    ] {
        assert!(problems.contains(expected), "{expected} in {problems}");
    }
    for file in ["assessment.toml", "dev/demo-assessment.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(file);
        let shipped = Config::load(&path);
        assert!(shipped.is_ok(), "{file}: {shipped:?}");
    }
}
