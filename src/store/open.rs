//! Opening cases: place, route, find duplicates, record, dispatch.
//!
//! Everything per case that needs no database (placing, routing) is done in
//! memory; the batch then costs a fixed number of multi-row statements.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::duplicates::LockPlan;
use super::events::Events;
use super::seal::Seal;
use super::statements::CaseRow;
use super::statements::{CaseEvent, CaseInsert, Facts, NewReporter, OpenCandidate, SourceRow};
use super::{Applied, Item, Rules, StoreError, Tx, case_no};
use crate::connector::Kind;
use crate::intent::OpenCase;
use crate::lifecycle::Status;
use crate::places::Location;
use crate::routing::Route;

/// A case about to be recorded.
struct NewCase<'a> {
    index: usize,
    open: &'a OpenCase,
    connector: &'a str,
    message_id: &'a str,
    id: Uuid,
    case_no: String,
    location: Location,
    status: Status,
    route: Option<Route>,
    parent: Option<(Uuid, String)>,
    callback_wanted: bool,
    /// The keyed hash of the reporter's phone (store/seal.rs): stored with
    /// the reporter, and matched against open cases' callers.
    caller: Option<String>,
}

/// Open cases not seen before; returns one result per entry of `opens`.
pub(super) async fn open_cases(
    tx: &mut Tx,
    items: &[Item<'_>],
    opens: &[(usize, &OpenCase)],
    case_ids: &[Uuid],
    rules: &Rules,
    seal: &Seal,
    now: DateTime<Utc>,
) -> Result<Vec<Applied>, StoreError> {
    // A ticket seen twice in one batch under different message ids opens one case.
    let mut seen_refs = HashSet::new();
    let fresh: Vec<(usize, &OpenCase)> = opens
        .iter()
        .copied()
        .filter(|(i, open)| seen_refs.insert((items[*i].connector, open.source_ref.as_str())))
        .collect();
    let sources: Vec<SourceRow<'_>> = fresh
        .iter()
        .map(|(i, open)| SourceRow {
            connector: items[*i].connector,
            source_ref: open.source_ref.as_str(),
            case_id: case_ids[*i],
            message_id: items[*i].message_id.unwrap_or_default(),
        })
        .collect();
    let (new_refs, seqs) = tx.insert_sources(&sources).await?;
    let fresh: Vec<(usize, &OpenCase)> = fresh
        .into_iter()
        .filter(|(i, o)| new_refs.contains(&(items[*i].connector.to_owned(), o.source_ref.clone())))
        .collect();

    debug_assert_eq!(fresh.len(), seqs.len(), "one case number per new source");
    let mut cases: Vec<NewCase<'_>> = fresh
        .iter()
        .zip(&seqs)
        .map(|((index, open), seq)| {
            let connector = items[*index].connector;
            let is_hotline = rules.registry.is(connector, Kind::Hotline);
            NewCase {
                index: *index,
                open,
                connector,
                message_id: items[*index].message_id.unwrap_or_default(),
                id: case_ids[*index],
                case_no: case_no(&open.received_at, *seq),
                location: rules.places.locate(&open.place),
                status: Status::Registered,
                route: None,
                parent: None,
                callback_wanted: is_hotline
                    && open
                        .reporter
                        .as_ref()
                        .is_some_and(|r| r.callback_consent && !r.anonymous),
                caller: seal.phone_hash(open.reporter.as_ref().and_then(|r| r.phone.as_deref())),
            }
        })
        .collect();

    find_duplicates(tx, &mut cases, rules).await?;
    for case in cases.iter_mut().filter(|c| c.parent.is_none()) {
        let route = rules.routing.route(
            case.open.category.as_deref(),
            case.open.nature,
            case.location.placed(),
        );
        case.status = match route {
            Route::Answer { .. } => Status::Answered,
            Route::Dispatch { .. } => Status::Dispatched,
        };
        case.route = Some(route);
    }

    if !cases.is_empty() {
        insert(tx, &cases, rules, seal, now).await?;
    }

    // One result per open, in order.
    let numbers: HashMap<usize, &str> = cases
        .iter()
        .map(|c| (c.index, c.case_no.as_str()))
        .collect();
    let mut results = Vec::with_capacity(opens.len());
    let mut duplicates = Vec::new();
    for &(index, _) in opens {
        match numbers.get(&index) {
            Some(number) => results.push(Applied::CaseOpened {
                case_no: (*number).to_owned(),
            }),
            None => {
                duplicates.push(index);
                results.push(Applied::DuplicateSource);
            }
        }
    }
    let duplicates: Vec<(&str, &str)> = duplicates
        .iter()
        .map(|&i| (items[i].connector, items[i].message_id.unwrap_or_default()))
        .collect();
    tx.mark_duplicate_sources(&duplicates).await?;
    Ok(results)
}

/// Distance in metres between two WGS84 points (haversine).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lon1, lat1) = (a.0.to_radians(), a.1.to_radians());
    let (lon2, lat2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

/// Marks each new case that duplicates an open case as merged into it.
/// The rule, with the same category, within the time window and into a
/// case still open:
///
/// - a case with a point merges into the nearest case with a point within
///   the radius; failing that, into a case of its grid placed without a
///   point (by address alone);
/// - a case placed without a point merges into a case of its grid, or,
///   placed only to a community, of its community.
///
/// Among several by grid or community, one from the same caller (the keyed
/// hash of the phone) comes first, then the latest. Open cases near the
/// new ones are locked first (`duplicates::LockPlan`; a case without a
/// point locks its category whole), so two hubs opening duplicates at once
/// cannot both miss each other.
async fn find_duplicates(
    tx: &mut Tx,
    cases: &mut [NewCase<'_>],
    rules: &Rules,
) -> Result<(), StoreError> {
    let radius = rules.routing.file.duplicates.radius_m;
    let point = |c: &NewCase<'_>| Some((c.open.place.lon?, c.open.place.lat?));
    let by_place = |c: &NewCase<'_>| c.location.grid_id.is_some() || c.location.community.is_some();
    let located = cases.iter().filter_map(|c| {
        let (lon, lat) = point(c)?;
        Some((c.open.category.as_deref()?, lon, lat))
    });
    let mut locks = LockPlan::new(located, radius);
    for case in cases.iter() {
        if let Some(category) = case.open.category.as_deref()
            && point(case).is_none()
            && by_place(case)
        {
            locks.lock_whole(category);
        }
    }
    if locks.categories.is_empty() {
        return Ok(());
    }
    let window = chrono::Duration::from_std(rules.routing.duplicate_window).unwrap_or_default();
    let earliest = cases
        .iter()
        .map(|c| c.open.received_at.to_utc())
        .min()
        .unwrap_or_default()
        - window;
    let mut grids: Vec<String> = cases
        .iter()
        .filter_map(|c| c.location.grid_id.clone())
        .collect();
    let mut communities: Vec<String> = cases
        .iter()
        .filter_map(|c| c.location.community.clone())
        .collect();
    grids.sort();
    grids.dedup();
    communities.sort();
    communities.dedup();
    let mut candidates = tx
        .open_candidates(&locks, earliest, &grids, &communities)
        .await?;
    for case in cases.iter_mut() {
        let Some(category) = case.open.category.as_deref() else {
            continue;
        };
        let here = point(case);
        if here.is_none() && !by_place(case) {
            continue;
        }
        let at = case.open.received_at.to_utc();
        let caller = case.caller.clone();
        let alike =
            |c: &&OpenCandidate| c.category == category && (at - c.received_at).abs() <= window;
        let nearest = here.and_then(|here| {
            candidates
                .iter()
                .filter(alike)
                .filter_map(|c| Some((c, distance_m((c.lon?, c.lat?), here))))
                .filter(|(_, d)| *d <= radius)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(c, _)| c)
        });
        // By grid (or, placed only to a community, by community): only
        // cases without a point for a case with one.
        let same_place =
            |c: &&OpenCandidate| match (&case.location.grid_id, &case.location.community) {
                (Some(grid), _) => c.grid_id.as_ref() == Some(grid),
                (None, Some(community)) => c.community.as_ref() == Some(community),
                (None, None) => false,
            };
        let by_place = || {
            candidates
                .iter()
                .filter(alike)
                .filter(|c| here.is_none() || c.lon.is_none() || c.lat.is_none())
                .filter(same_place)
                .max_by_key(|c| (caller.is_some() && c.caller == caller, c.received_at))
        };
        match nearest.or_else(by_place) {
            Some(parent) => {
                case.parent = Some((parent.id, parent.case_no.clone()));
                case.status = Status::Merged;
            }
            // Later cases of the batch may merge into this one.
            None => candidates.push(OpenCandidate {
                id: case.id,
                case_no: case.case_no.clone(),
                category: category.to_owned(),
                lon: here.map(|p| p.0),
                lat: here.map(|p| p.1),
                received_at: at,
                grid_id: case.location.grid_id.clone(),
                community: case.location.community.clone(),
                caller,
            }),
        }
    }
    Ok(())
}

fn view(case: &NewCase<'_>, now: DateTime<Utc>, rules: &Rules) -> CaseRow {
    let open = case.open;
    let (lead, assist, rule, unplaced) = match &case.route {
        Some(Route::Dispatch {
            rule,
            lead,
            assist,
            unplaced,
        }) => (
            Some(lead.clone()),
            assist.iter().map(|u| u.id.clone()).collect(),
            Some(rule.clone()),
            *unplaced,
        ),
        Some(Route::Answer { rule }) => (None, Vec::new(), Some(rule.clone()), false),
        None => (
            None,
            Vec::new(),
            None,
            case.location.placed() == crate::routing::Placed::Nowhere,
        ),
    };
    let due_at = lead
        .as_ref()
        .map(|_| rules.routing.due_at(open.priority, now));
    CaseRow {
        id: case.id,
        case_no: case.case_no.clone(),
        status: case.status.as_str().to_owned(),
        channel: open.channel.as_str().to_owned(),
        nature: open.nature.as_str().to_owned(),
        category: open.category.clone(),
        priority: open.priority.as_str().to_owned(),
        title: open.title.clone(),
        description: open.description.clone(),
        address: open.place.address.clone(),
        street_given: open.place.street.clone(),
        community_given: open.place.community.clone(),
        lon: open.place.lon,
        lat: open.place.lat,
        grid_id: case.location.grid_id.clone(),
        community: case.location.community.clone(),
        street: case.location.street.clone(),
        located_by: Some(case.location.located_by.as_str().to_owned()),
        unplaced,
        lead_unit: lead.as_ref().map(|u| u.id.clone()),
        lead_connector: lead.as_ref().map(|u| u.connector.clone()),
        dispatch_level: lead.as_ref().map(|u| u.level.as_str().to_owned()),
        assisting_units: assist,
        routing_rule: rule,
        due_at,
        parent_case_no: case.parent.as_ref().map(|(_, no)| no.clone()),
        received_at: open.received_at.to_utc(),
        callback_wanted: case.callback_wanted,
        ..CaseRow::default()
    }
}

async fn insert(
    tx: &mut Tx,
    cases: &[NewCase<'_>],
    rules: &Rules,
    seal: &Seal,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let views: Vec<CaseRow> = cases.iter().map(|c| view(c, now, rules)).collect();
    let sign_for = chrono::Duration::from_std(rules.routing.sign_for).unwrap_or_default();
    let rows: Vec<CaseInsert<'_>> = cases
        .iter()
        .zip(&views)
        .map(|(c, v)| {
            let dispatched = v.lead_unit.is_some() && v.status == Status::Dispatched.as_str();
            let closed = v.status == Status::Answered.as_str();
            CaseInsert {
                view: v,
                // A confidential complainant's own words are personal data.
                description: match &c.open.reporter {
                    Some(r) if r.confidential => {
                        seal.seal(c.id, "description", Some(&v.description))
                    }
                    _ => None,
                },
                attributes: Value::Object(c.open.attributes.clone()).to_string(),
                media: json!(c.open.media).to_string(),
                assisting: json!(v.assisting_units).to_string(),
                dispatched_at: dispatched.then_some(now),
                accept_due_at: dispatched.then_some(now + sign_for),
                parent_case_id: c.parent.as_ref().map(|(id, _)| *id),
                callback_wanted: c.callback_wanted,
                closed_at: closed.then_some(now),
            }
        })
        .collect();
    // Stored sealed, with the keyed hash of the phone (store/seal.rs).
    let reporters: Vec<NewReporter<'_>> = cases
        .iter()
        .filter_map(|c| {
            c.open.reporter.as_ref().map(|r| {
                (
                    c.id,
                    c.connector,
                    seal.seal_reporter(c.id, r),
                    c.caller.clone(),
                )
            })
        })
        .collect();

    // Events: opened, then dispatched / merged / answered.
    let mut case_events = Vec::new();
    for (case, v) in cases.iter().zip(&views) {
        case_events.push(CaseEvent {
            case_id: case.id,
            kind: "opened",
            from_status: None,
            to_status: Status::Registered.as_str(),
            actor: case.connector,
            note: None,
            connector: Some(case.connector),
            message_id: Some(case.message_id),
            media: None,
            on_behalf_of: None,
            facts: Facts::default(),
        });
        if case.status != Status::Registered {
            case_events.push(CaseEvent {
                case_id: case.id,
                kind: match case.status {
                    Status::Merged => "merged",
                    Status::Answered => "answered",
                    _ => "dispatched",
                },
                from_status: Some(Status::Registered.as_str()),
                to_status: case.status.as_str(),
                actor: "gridhub",
                note: match case.status {
                    Status::Merged => v
                        .parent_case_no
                        .as_ref()
                        .map(|p| format!("duplicate of {p}")),
                    _ => v.routing_rule.as_ref().map(|r| format!("rule {r}")),
                },
                connector: Some(case.connector),
                message_id: Some(case.message_id),
                media: None,
                on_behalf_of: None,
                facts: Facts::of(v),
            });
        }
    }

    let mut events = Events::new(&rules.centre, &rules.registry);
    for (case, v) in cases.iter().zip(&views) {
        let sources = vec![(case.connector.to_owned(), case.open.source_ref.clone())];
        let registered = Status::Registered.as_str();
        events.status(v, registered, "opened", &sources, json!({}));
        match case.status {
            Status::Merged => events.status(v, &v.status, "merged", &sources, json!({})),
            Status::Answered => {
                let answered = json!({"resolution": "answered"});
                events.status(v, &v.status, "closed", &sources, answered)
            }
            Status::Dispatched => {
                events.status(v, &v.status, "dispatched", &sources, json!({}));
                if let Some(Route::Dispatch { lead, assist, .. }) = &case.route {
                    events.send_to_unit(
                        &lead.connector,
                        "dispatched",
                        v,
                        case.open.reporter.as_ref(),
                        json!({"role": "lead"}),
                    );
                    for unit in assist {
                        events.send_to_unit(
                            &unit.connector,
                            "dispatched",
                            v,
                            None,
                            json!({"role": "assist", "unit": unit.id}),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    tx.insert_opened(&rows, &reporters, &case_events, &events.out, seal)
        .await
}
