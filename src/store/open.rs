//! Opening cases: place, route, find duplicates, record, dispatch.
//!
//! Everything per case that needs no database (placing, routing) is done in
//! memory; the batch then costs a fixed number of multi-row statements.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::backend::{lite_time, lite_uuid};
use super::duplicates::LockPlan;
use super::events::{CaseView, Events};
use super::inserts::PgInserts;
use super::seal::Seal;
use super::update::{CaseEvent, add_events, insert_events};
use super::{Applied, Item, Rules, StoreError, Tx, case_no, outbox};
use crate::connector::Kind;
use crate::intent::{OpenCase, Reporter};
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
    let (new_refs, seqs) = insert_sources(tx, &sources).await?;
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
    mark_duplicate_sources(tx, &duplicates).await?;
    Ok(results)
}

/// A source ticket to record for a new case.
struct SourceRow<'a> {
    connector: &'a str,
    source_ref: &'a str,
    case_id: Uuid,
    message_id: &'a str,
}

/// Records source tickets not seen before and draws a case number for each:
/// returns the (connector, source_ref) of those recorded now and as many
/// case number sequence values, in ascending order.
async fn insert_sources(
    tx: &mut Tx,
    rows: &[SourceRow<'_>],
) -> Result<(HashSet<(String, String)>, Vec<i64>), StoreError> {
    if rows.is_empty() {
        return Ok((HashSet::new(), Vec::new()));
    }
    match tx {
        Tx::Pg(tx) => {
            // The numbers are drawn in the same round trip, one per row
            // inserted.
            let inserted: Vec<(String, String, i64)> = sqlx::query_as(
                "WITH s AS (
                   INSERT INTO case_sources (connector, source_ref, case_id, message_id)
                   SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[])
                   ON CONFLICT DO NOTHING
                   RETURNING connector, source_ref)
                 SELECT connector, source_ref, nextval('case_no_seq') FROM s",
            )
            .bind(rows.iter().map(|r| r.connector).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.source_ref).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.case_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.message_id).collect::<Vec<_>>())
            .fetch_all(&mut **tx)
            .await?;
            let mut seqs: Vec<i64> = inserted.iter().map(|(_, _, seq)| *seq).collect();
            seqs.sort_unstable();
            let refs = inserted
                .into_iter()
                .map(|(connector, source_ref, _)| (connector, source_ref))
                .collect();
            Ok((refs, seqs))
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            let mut inserted = HashSet::new();
            for r in rows {
                let row: Option<(String, String)> = sqlx::query_as(
                    "INSERT INTO case_sources (connector, source_ref, case_id, message_id)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING
                     RETURNING connector, source_ref",
                )
                .bind(r.connector)
                .bind(r.source_ref)
                .bind(lite_uuid(r.case_id))
                .bind(r.message_id)
                .fetch_optional(&mut **tx)
                .await?;
                inserted.extend(row);
            }
            if inserted.is_empty() {
                return Ok((inserted, Vec::new()));
            }
            // A counter row stands in for the sequence; the write lock makes
            // the range this transaction's own.
            let n = inserted.len() as i64;
            let last: i64 = sqlx::query_scalar(
                "UPDATE counters SET value = value + $1 WHERE name = 'case_no' RETURNING value",
            )
            .bind(n)
            .fetch_one(&mut **tx)
            .await?;
            Ok((inserted, (last - n + 1..=last).collect()))
        }
    }
}

/// Records that these messages repeated a known ticket: (connector, message_id).
async fn mark_duplicate_sources(tx: &mut Tx, messages: &[(&str, &str)]) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Pg(tx) => {
            sqlx::query(
                "UPDATE inbox SET outcome = 'duplicate_source', case_id = NULL
                 FROM UNNEST($1::text[], $2::text[]) AS d(connector, message_id)
                 WHERE inbox.connector = d.connector AND inbox.message_id = d.message_id",
            )
            .bind(messages.iter().map(|(c, _)| *c).collect::<Vec<_>>())
            .bind(messages.iter().map(|(_, m)| *m).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            for (connector, message_id) in messages {
                sqlx::query(
                    "UPDATE inbox SET outcome = 'duplicate_source', case_id = NULL
                     WHERE connector = $1 AND message_id = $2",
                )
                .bind(*connector)
                .bind(*message_id)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
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
/// cases near the new ones are locked first (`duplicates::LockPlan`), so
/// two hubs opening duplicates at once cannot both miss each other.
async fn find_duplicates(
    tx: &mut Tx,
    cases: &mut [NewCase<'_>],
    rules: &Rules,
) -> Result<(), StoreError> {
    let radius = rules.routing.file.duplicates.radius_m;
    let located = cases.iter().filter_map(|c| {
        let place = &c.open.place;
        Some((c.open.category.as_deref()?, place.lon?, place.lat?))
    });
    let locks = LockPlan::new(located, radius);
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
    let open = open_candidates(tx, &locks, earliest).await?;
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

/// Takes the batch's duplicate locks and loads the open cases of its
/// categories received since `earliest`: (id, case number, category, lon,
/// lat, received).
async fn open_candidates(
    tx: &mut Tx,
    locks: &LockPlan,
    earliest: DateTime<Utc>,
) -> Result<Vec<(Uuid, String, String, f64, f64, DateTime<Utc>)>, StoreError> {
    match tx {
        Tx::Pg(tx) => {
            // The locks and the read in one round trip (migration 0007).
            Ok(
                sqlx::query_as("SELECT * FROM gridhub_duplicate_candidates($1, $2, $3, $4, $5)")
                    .bind(&locks.categories)
                    .bind(&locks.whole)
                    .bind(&locks.cell_categories)
                    .bind(&locks.cells)
                    .bind(earliest)
                    .fetch_all(&mut **tx)
                    .await?,
            )
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(tx) => {
            // No lock to take: the transaction already holds SQLite's one
            // write lock.
            let rows: Vec<(uuid::fmt::Hyphenated, String, String, f64, f64, DateTime<Utc>)> =
                sqlx::query_as(
                    "SELECT id, case_no, category, lon, lat, received_at FROM cases
                     WHERE parent_case_id IS NULL AND status NOT IN ('closed', 'merged', 'rejected', 'answered')
                       AND category IN (SELECT value FROM json_each($1)) AND received_at >= $2
                       AND lon IS NOT NULL AND lat IS NOT NULL",
                )
                .bind(json!(locks.categories).to_string())
                .bind(lite_time(earliest))
                .fetch_all(&mut **tx)
                .await?;
            Ok(rows
                .into_iter()
                .map(|(id, no, category, lon, lat, at)| {
                    (id.into_uuid(), no, category, lon, lat, at)
                })
                .collect())
        }
    }
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
        .and_then(|_| chrono::Duration::from_std(rules.routing.deadline(open.priority)).ok())
        .map(|d| now + d);
    CaseView {
        id: case.id,
        case_no: case.case_no.clone(),
        status: case.status.as_str().to_owned(),
        channel: open.channel.as_str().to_owned(),
        nature: open.nature.as_str().to_owned(),
        category: open.category.clone(),
        priority: open.priority.as_str().to_owned(),
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
    tx: &mut Tx,
    cases: &[NewCase<'_>],
    rules: &Rules,
    seal: &Seal,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let views: Vec<CaseView> = cases.iter().map(|c| view(c, now, rules)).collect();
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
    let reporters: Vec<(Uuid, &str, Reporter, Option<String>)> = cases
        .iter()
        .filter_map(|c| {
            c.open.reporter.as_ref().map(|r| {
                (
                    c.id,
                    c.connector,
                    seal.seal_reporter(c.id, r),
                    seal.phone_hash(r.phone.as_deref()),
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

    match tx {
        // Cases, reporters, case events and outbox rows in one round trip.
        Tx::Pg(tx) => {
            let mut inserts = PgInserts::new();
            add_cases(&mut inserts, &rows);
            add_reporters(&mut inserts, &reporters);
            add_events(&mut inserts, &case_events);
            outbox::add(&mut inserts, &events.out, seal);
            inserts.execute(tx).await
        }
        #[cfg(feature = "sqlite")]
        Tx::Lite(lite) => {
            insert_cases_lite(lite, &rows).await?;
            insert_reporters_lite(lite, &reporters).await?;
            insert_events(tx, &case_events).await?;
            outbox::insert(tx, &events.out, seal).await
        }
    }
}

/// A case row to insert: the case as events see it, and the rest.
struct CaseInsert<'a> {
    view: &'a CaseView,
    /// The description as stored, when it is sealed (`view`'s otherwise).
    description: Option<String>,
    /// JSON text.
    attributes: String,
    /// JSON text.
    media: String,
    /// JSON text: an array of unit ids.
    assisting: String,
    dispatched_at: Option<DateTime<Utc>>,
    accept_due_at: Option<DateTime<Utc>>,
    parent_case_id: Option<Uuid>,
    callback_wanted: bool,
    closed_at: Option<DateTime<Utc>>,
}

/// Case rows as one insert of a PostgreSQL statement; none if there are none.
impl CaseInsert<'_> {
    fn description(&self) -> &str {
        self.description
            .as_deref()
            .unwrap_or(&self.view.description)
    }
}

fn add_cases(inserts: &mut PgInserts, rows: &[CaseInsert<'_>]) {
    if rows.is_empty() {
        return;
    }
    let views = || rows.iter().map(|r| r.view);
    let columns = [
        inserts.column(views().map(|v| v.id).collect(), "uuid"),
        inserts.column(views().map(|v| v.case_no.as_str()).collect(), "text"),
        inserts.column(views().map(|v| v.status.as_str()).collect(), "text"),
        inserts.column(views().map(|v| v.channel.as_str()).collect(), "text"),
        inserts.column(views().map(|v| v.nature.as_str()).collect(), "text"),
        inserts.column(views().map(|v| v.category.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.priority.as_str()).collect(), "text"),
        inserts.column(views().map(|v| v.title.as_str()).collect(), "text"),
        inserts.column(rows.iter().map(CaseInsert::description).collect(), "text"),
        inserts.column(rows.iter().map(|r| r.attributes.as_str()).collect(), "text"),
        inserts.column(rows.iter().map(|r| r.media.as_str()).collect(), "text"),
        inserts.column(
            views().map(|v| v.place.address.as_deref()).collect(),
            "text",
        ),
        inserts.column(views().map(|v| v.place.street.as_deref()).collect(), "text"),
        inserts.column(
            views().map(|v| v.place.community.as_deref()).collect(),
            "text",
        ),
        inserts.column(views().map(|v| v.place.lon).collect(), "float8"),
        inserts.column(views().map(|v| v.place.lat).collect(), "float8"),
        inserts.column(views().map(|v| v.received_at).collect(), "timestamptz"),
        inserts.column(views().map(|v| v.grid_id.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.community.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.street.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.located_by.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.unplaced).collect(), "bool"),
        inserts.column(views().map(|v| v.lead_unit.as_deref()).collect(), "text"),
        inserts.column(
            views().map(|v| v.lead_connector.as_deref()).collect(),
            "text",
        ),
        inserts.column(rows.iter().map(|r| r.assisting.as_str()).collect(), "text"),
        inserts.column(
            views().map(|v| v.dispatch_level.as_deref()).collect(),
            "text",
        ),
        inserts.column(views().map(|v| v.routing_rule.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.due_at).collect(), "timestamptz"),
        inserts.column(
            rows.iter().map(|r| r.dispatched_at).collect(),
            "timestamptz",
        ),
        inserts.column(
            rows.iter().map(|r| r.accept_due_at).collect(),
            "timestamptz",
        ),
        inserts.column(rows.iter().map(|r| r.parent_case_id).collect(), "uuid"),
        inserts.column(rows.iter().map(|r| r.callback_wanted).collect(), "bool"),
        inserts.column(rows.iter().map(|r| r.closed_at).collect(), "timestamptz"),
    ];
    inserts.insert(format!(
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
         FROM UNNEST({})
           AS n(id, case_no, status, channel, nature, category, priority, title, description, attributes, media,
                address, street_given, community_given, lon, lat, received_at, grid_id, community, street,
                located_by, unplaced, lead_unit, lead_connector, assisting, dispatch_level, routing_rule, due_at,
                dispatched_at, accept_due_at, parent_case_id, callback_wanted, closed_at)",
        columns.join(", ")
    ));
}

#[cfg(feature = "sqlite")]
async fn insert_cases_lite(
    tx: &mut Transaction<'static, Sqlite>,
    rows: &[CaseInsert<'_>],
) -> Result<(), StoreError> {
    for r in rows {
        let v = r.view;
        sqlx::query(
            "INSERT INTO cases (id, case_no, status, channel, nature, category, priority, title, description,
                                attributes, media, address, street_given, community_given, lon, lat, received_at,
                                grid_id, community, street, located_by, unplaced, lead_unit, lead_connector,
                                assisting_units, dispatch_level, routing_rule, due_at, dispatched_at, accept_due_at,
                                parent_case_id, callback_wanted, closed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, json($10), json($11), $12, $13, $14, $15, $16, $17,
                     $18, $19, $20, $21, $22, $23, $24, json($25), $26, $27, $28, $29, $30, $31, $32, $33)",
        )
        .bind(lite_uuid(v.id))
        .bind(&v.case_no)
        .bind(&v.status)
        .bind(&v.channel)
        .bind(&v.nature)
        .bind(v.category.as_deref())
        .bind(&v.priority)
        .bind(&v.title)
        .bind(r.description())
        .bind(&r.attributes)
        .bind(&r.media)
        .bind(v.place.address.as_deref())
        .bind(v.place.street.as_deref())
        .bind(v.place.community.as_deref())
        .bind(v.place.lon)
        .bind(v.place.lat)
        .bind(lite_time(v.received_at))
        .bind(v.grid_id.as_deref())
        .bind(v.community.as_deref())
        .bind(v.street.as_deref())
        .bind(v.located_by.as_deref())
        .bind(v.unplaced)
        .bind(v.lead_unit.as_deref())
        .bind(v.lead_connector.as_deref())
        .bind(&r.assisting)
        .bind(v.dispatch_level.as_deref())
        .bind(v.routing_rule.as_deref())
        .bind(v.due_at.map(lite_time))
        .bind(r.dispatched_at.map(lite_time))
        .bind(r.accept_due_at.map(lite_time))
        .bind(r.parent_case_id.map(lite_uuid))
        .bind(r.callback_wanted)
        .bind(r.closed_at.map(lite_time))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Reporters, kept apart from their cases: (case id, connector, reporter
/// as stored, the keyed hash of its phone),
/// as one insert of a PostgreSQL statement; none if there are none.
fn add_reporters(inserts: &mut PgInserts, reporters: &[(Uuid, &str, Reporter, Option<String>)]) {
    if reporters.is_empty() {
        return;
    }
    let columns = [
        inserts.column(reporters.iter().map(|(id, ..)| *id).collect(), "uuid"),
        inserts.column(reporters.iter().map(|(_, c, ..)| *c).collect(), "text"),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.name.as_deref())
                .collect(),
            "text",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.phone.as_deref())
                .collect(),
            "text",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.id_number.as_deref())
                .collect(),
            "text",
        ),
        inserts.column(
            reporters.iter().map(|(_, _, r, _)| r.anonymous).collect(),
            "bool",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.confidential)
                .collect(),
            "bool",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.callback_consent)
                .collect(),
            "bool",
        ),
    ];
    let hashes = inserts.column(
        reporters.iter().map(|(.., hash)| hash.as_deref()).collect(),
        "text",
    );
    inserts.insert(format!(
        "INSERT INTO reporters (case_id, connector, name, phone, id_number, anonymous, confidential, callback_consent, phone_hash)
         SELECT * FROM UNNEST({}, {hashes})",
        columns.join(", ")
    ));
}

#[cfg(feature = "sqlite")]
/// Reporters, kept apart from their cases: (case id, connector, reporter).
async fn insert_reporters_lite(
    tx: &mut Transaction<'static, Sqlite>,
    reporters: &[(Uuid, &str, Reporter, Option<String>)],
) -> Result<(), StoreError> {
    for (id, connector, r, hash) in reporters {
        sqlx::query(
            "INSERT INTO reporters (case_id, connector, name, phone, id_number, anonymous, confidential, callback_consent, phone_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(lite_uuid(*id))
        .bind(*connector)
        .bind(r.name.as_deref())
        .bind(r.phone.as_deref())
        .bind(r.id_number.as_deref())
        .bind(r.anonymous)
        .bind(r.confidential)
        .bind(r.callback_consent)
        .bind(hash.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
