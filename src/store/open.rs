//! Opening cases: place, route, find duplicates, record, dispatch.
//!
//! Everything per case that needs no database (placing, routing) is done in
//! memory; the batch then costs a fixed number of multi-row statements.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::events::{CaseView, Events};
use super::{Applied, Item, Rules, StoreError, case_no, outbox};
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
}

/// Open cases not seen before; returns one result per entry of `opens`.
pub(super) async fn open_cases(
    tx: &mut Transaction<'_, Postgres>,
    items: &[Item<'_>],
    opens: &[(usize, &OpenCase)],
    case_ids: &[Uuid],
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Vec<Applied>, StoreError> {
    // A ticket seen twice in one batch under different message ids opens one case.
    let mut seen_refs = HashSet::new();
    let fresh: Vec<(usize, &OpenCase)> = opens
        .iter()
        .copied()
        .filter(|(i, open)| seen_refs.insert((items[*i].connector, open.source_ref.as_str())))
        .collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO case_sources (connector, source_ref, case_id, message_id)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[])
         ON CONFLICT DO NOTHING
         RETURNING connector, source_ref",
    )
    .bind(
        fresh
            .iter()
            .map(|(i, _)| items[*i].connector)
            .collect::<Vec<_>>(),
    )
    .bind(
        fresh
            .iter()
            .map(|(_, o)| o.source_ref.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(fresh.iter().map(|(i, _)| case_ids[*i]).collect::<Vec<_>>())
    .bind(
        fresh
            .iter()
            .map(|(i, _)| items[*i].message_id.unwrap_or_default())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await?;
    let new_refs: HashSet<(String, String)> = rows.into_iter().collect();
    let fresh: Vec<(usize, &OpenCase)> = fresh
        .into_iter()
        .filter(|(i, o)| new_refs.contains(&(items[*i].connector.to_owned(), o.source_ref.clone())))
        .collect();

    let seqs: Vec<i64> = if fresh.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar("SELECT nextval('case_no_seq') FROM generate_series(1, $1)")
            .bind(fresh.len() as i64)
            .fetch_all(&mut **tx)
            .await?
    };

    let mut cases: Vec<NewCase<'_>> = fresh
        .iter()
        .zip(&seqs)
        .map(|((index, open), seq)| {
            let connector = items[*index].connector;
            let is_hotline = rules
                .registry
                .get(connector)
                .is_some_and(|c| c.config.kind == Kind::Hotline);
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
            }
        })
        .collect();

    find_duplicates(tx, &mut cases, rules).await?;
    for case in cases.iter_mut().filter(|c| c.parent.is_none()) {
        let route = rules.routing.route(
            case.open.category.as_deref(),
            &case.open.nature,
            case.location.placed(),
        );
        case.status = match route {
            Route::Answer { .. } => Status::Answered,
            Route::Dispatch { .. } => Status::Dispatched,
        };
        case.route = Some(route);
    }

    if !cases.is_empty() {
        insert(tx, &cases, rules, now).await?;
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
    if !duplicates.is_empty() {
        sqlx::query(
            "UPDATE inbox SET outcome = 'duplicate_source', case_id = NULL
             FROM UNNEST($1::text[], $2::text[]) AS d(connector, message_id)
             WHERE inbox.connector = d.connector AND inbox.message_id = d.message_id",
        )
        .bind(
            duplicates
                .iter()
                .map(|&i| items[i].connector)
                .collect::<Vec<_>>(),
        )
        .bind(
            duplicates
                .iter()
                .map(|&i| items[i].message_id.unwrap_or_default())
                .collect::<Vec<_>>(),
        )
        .execute(&mut **tx)
        .await?;
    }
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

/// An open case a new one may duplicate: id, case number, category, point, received.
type Candidate = (Uuid, String, String, (f64, f64), DateTime<Utc>);

/// Marks each new case that duplicates an open case (same category, within
/// the radius and the time window) as merged into the nearest one. Open
/// cases of the same categories are locked first (an advisory lock per
/// category), so two hubs opening duplicates at once cannot both miss each other.
async fn find_duplicates(
    tx: &mut Transaction<'_, Postgres>,
    cases: &mut [NewCase<'_>],
    rules: &Rules,
) -> Result<(), StoreError> {
    let mut categories: Vec<&str> = cases
        .iter()
        .filter(|c| c.open.place.lon.is_some())
        .filter_map(|c| c.open.category.as_deref())
        .collect();
    categories.sort_unstable();
    categories.dedup();
    if categories.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('gridhub.duplicates.' || c)) FROM unnest($1::text[]) AS c ORDER BY c")
        .bind(&categories)
        .execute(&mut **tx)
        .await?;
    let window = chrono::Duration::from_std(rules.routing.duplicate_window).unwrap_or_default();
    let earliest = cases
        .iter()
        .map(|c| c.open.received_at.to_utc())
        .min()
        .unwrap_or_default()
        - window;
    let open: Vec<(Uuid, String, String, f64, f64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, case_no, category, lon, lat, received_at FROM cases
         WHERE parent_case_id IS NULL AND status NOT IN ('closed', 'merged', 'rejected', 'answered')
           AND category = ANY($1) AND received_at >= $2 AND lon IS NOT NULL AND lat IS NOT NULL",
    )
    .bind(&categories)
    .bind(earliest)
    .fetch_all(&mut **tx)
    .await?;
    let radius = rules.routing.file.duplicates.radius_m;
    let mut candidates: Vec<Candidate> = open
        .into_iter()
        .map(|(id, no, category, lon, lat, at)| (id, no, category, (lon, lat), at))
        .collect();
    for case in cases.iter_mut() {
        let (Some(category), Some(lon), Some(lat)) = (
            case.open.category.as_deref(),
            case.open.place.lon,
            case.open.place.lat,
        ) else {
            continue;
        };
        let at = case.open.received_at.to_utc();
        let nearest = candidates
            .iter()
            .filter(|(_, _, c, _, t)| c == category && (at - *t).abs() <= window)
            .map(|(id, no, _, point, _)| (id, no, distance_m(*point, (lon, lat))))
            .filter(|(_, _, d)| *d <= radius)
            .min_by(|a, b| a.2.total_cmp(&b.2));
        match nearest {
            Some((id, no, _)) => {
                case.parent = Some((*id, no.clone()));
                case.status = Status::Merged;
            }
            // Later cases of the batch may merge into this one.
            None => candidates.push((
                case.id,
                case.case_no.clone(),
                category.to_owned(),
                (lon, lat),
                at,
            )),
        }
    }
    Ok(())
}

fn view(case: &NewCase<'_>, now: DateTime<Utc>, rules: &Rules) -> CaseView {
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
        .and_then(|_| chrono::Duration::from_std(rules.routing.deadline(&open.priority)).ok())
        .map(|d| now + d);
    CaseView {
        id: case.id,
        case_no: case.case_no.clone(),
        status: case.status.as_str().to_owned(),
        channel: open.channel.clone(),
        nature: open.nature.clone(),
        category: open.category.clone(),
        priority: open.priority.clone(),
        title: open.title.clone(),
        description: open.description.clone(),
        place: open.place.clone(),
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
        rework_count: 0,
        escalation_level: 0,
        satisfaction: None,
    }
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    cases: &[NewCase<'_>],
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let views: Vec<CaseView> = cases.iter().map(|c| view(c, now, rules)).collect();
    let sign_for = chrono::Duration::from_std(rules.routing.sign_for).unwrap_or_default();
    let dispatched =
        |v: &CaseView| v.lead_unit.is_some() && v.status == Status::Dispatched.as_str();
    let closed = |v: &CaseView| v.status == Status::Answered.as_str();
    sqlx::query(
        "INSERT INTO cases (id, case_no, status, channel, nature, category, priority, title, description,
                            attributes, media, address, street_given, community_given, lon, lat, received_at,
                            grid_id, community, street, located_by, unplaced, lead_unit, lead_connector,
                            assisting_units, dispatch_level, routing_rule, due_at, dispatched_at, accept_due_at,
                            parent_case_id, callback_wanted, closed_at)
         SELECT id, case_no, status, channel, nature, category, priority, title, description,
                attributes::jsonb, media::jsonb, address, street_given, community_given, lon, lat, received_at,
                grid_id, community, street, located_by, unplaced, lead_unit, lead_connector,
                ARRAY(SELECT jsonb_array_elements_text(assisting::jsonb)), dispatch_level, routing_rule, due_at,
                dispatched_at, accept_due_at, parent_case_id, callback_wanted, closed_at
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::float8[],
                     $16::float8[], $17::timestamptz[], $18::text[], $19::text[], $20::text[], $21::text[],
                     $22::bool[], $23::text[], $24::text[], $25::text[], $26::text[], $27::text[],
                     $28::timestamptz[], $29::timestamptz[], $30::timestamptz[], $31::uuid[], $32::bool[],
                     $33::timestamptz[])
           AS n(id, case_no, status, channel, nature, category, priority, title, description, attributes, media,
                address, street_given, community_given, lon, lat, received_at, grid_id, community, street,
                located_by, unplaced, lead_unit, lead_connector, assisting, dispatch_level, routing_rule, due_at,
                dispatched_at, accept_due_at, parent_case_id, callback_wanted, closed_at)",
    )
    .bind(views.iter().map(|v| v.id).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.case_no.as_str()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.status.as_str()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.channel.as_str()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.nature.as_str()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.category.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.priority.as_str()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.title.as_str()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.description.as_str()).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| Value::Object(c.open.attributes.clone()).to_string()).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| json!(c.open.media).to_string()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.place.address.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.place.street.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.place.community.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.place.lon).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.place.lat).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.received_at).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.grid_id.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.community.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.street.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.located_by.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.unplaced).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.lead_unit.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.lead_connector.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| json!(v.assisting_units).to_string()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.dispatch_level.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.routing_rule.as_deref()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| v.due_at).collect::<Vec<_>>())
    .bind(views.iter().map(|v| dispatched(v).then_some(now)).collect::<Vec<_>>())
    .bind(views.iter().map(|v| dispatched(v).then_some(now + sign_for)).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| c.parent.as_ref().map(|(id, _)| *id)).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| c.callback_wanted).collect::<Vec<_>>())
    .bind(views.iter().map(|v| closed(v).then_some(now)).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;

    let with_reporter: Vec<&NewCase<'_>> =
        cases.iter().filter(|c| c.open.reporter.is_some()).collect();
    if !with_reporter.is_empty() {
        let reporters: Vec<_> = with_reporter
            .iter()
            .map(|c| c.open.reporter.clone().unwrap_or_default())
            .collect();
        sqlx::query(
            "INSERT INTO reporters (case_id, connector, name, phone, id_number, anonymous, confidential, callback_consent)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bool[], $8::bool[])",
        )
        .bind(with_reporter.iter().map(|c| c.id).collect::<Vec<_>>())
        .bind(with_reporter.iter().map(|c| c.connector).collect::<Vec<_>>())
        .bind(reporters.iter().map(|r| r.name.as_deref()).collect::<Vec<_>>())
        .bind(reporters.iter().map(|r| r.phone.as_deref()).collect::<Vec<_>>())
        .bind(reporters.iter().map(|r| r.id_number.as_deref()).collect::<Vec<_>>())
        .bind(reporters.iter().map(|r| r.anonymous).collect::<Vec<_>>())
        .bind(reporters.iter().map(|r| r.confidential).collect::<Vec<_>>())
        .bind(reporters.iter().map(|r| r.callback_consent).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }

    // Events: opened, then dispatched / merged / answered.
    let mut event_case = Vec::new();
    let mut event_kind = Vec::new();
    let mut event_from: Vec<Option<&str>> = Vec::new();
    let mut event_to = Vec::new();
    let mut event_actor = Vec::new();
    let mut event_note: Vec<Option<String>> = Vec::new();
    let mut event_message = Vec::new();
    let mut event_connector = Vec::new();
    for (case, v) in cases.iter().zip(&views) {
        event_case.push(case.id);
        event_kind.push("opened");
        event_from.push(None);
        event_to.push(Status::Registered.as_str());
        event_actor.push(case.connector);
        event_note.push(None);
        event_connector.push(case.connector);
        event_message.push(case.message_id);
        if case.status != Status::Registered {
            event_case.push(case.id);
            event_kind.push(match case.status {
                Status::Merged => "merged",
                Status::Answered => "answered",
                _ => "dispatched",
            });
            event_from.push(Some(Status::Registered.as_str()));
            event_to.push(case.status.as_str());
            event_actor.push("gridhub");
            event_note.push(match case.status {
                Status::Merged => v
                    .parent_case_no
                    .as_ref()
                    .map(|p| format!("duplicate of {p}")),
                _ => v.routing_rule.as_ref().map(|r| format!("rule {r}")),
            });
            event_connector.push(case.connector);
            event_message.push(case.message_id);
        }
    }
    sqlx::query(
        "INSERT INTO case_events (case_id, kind, from_status, to_status, actor, note, connector, message_id)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::text[])",
    )
    .bind(&event_case)
    .bind(&event_kind)
    .bind(&event_from)
    .bind(&event_to)
    .bind(&event_actor)
    .bind(&event_note)
    .bind(&event_connector)
    .bind(&event_message)
    .execute(&mut **tx)
    .await?;

    let mut events = Events::new(&rules.centre, &rules.registry);
    for (case, v) in cases.iter().zip(&views) {
        let sources = vec![(case.connector.to_owned(), case.open.source_ref.clone())];
        let mut opened = v.clone();
        opened.status = Status::Registered.as_str().to_owned();
        events.status(&opened, "opened", &sources, json!({}));
        match case.status {
            Status::Merged => events.status(v, "merged", &sources, json!({})),
            Status::Answered => {
                events.status(v, "closed", &sources, json!({"resolution": "answered"}))
            }
            Status::Dispatched => {
                events.status(v, "dispatched", &sources, json!({}));
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
    outbox::insert(tx, &events.out).await
}
