//! The `cases` table: load and lock a case, write a lifecycle change or a
//! callback's result, find open duplicate candidates, insert new cases.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::inserts::PgInserts;
use crate::intent::UpdateCase;
use crate::lifecycle::HANDLING;
use crate::store::backend::{either, lite_now, lite_time, lite_uuid};
use crate::store::duplicates::LockPlan;
use crate::store::{StoreError, Tx};

/// A case as updates read and write it and events describe it.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(in crate::store) struct CaseRow {
    pub id: Uuid,
    pub case_no: String,
    pub status: String,
    pub channel: String,
    pub nature: String,
    pub category: Option<String>,
    pub priority: String,
    pub title: String,
    pub description: String,
    pub address: Option<String>,
    pub street_given: Option<String>,
    pub community_given: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub grid_id: Option<String>,
    pub community: Option<String>,
    pub street: Option<String>,
    pub located_by: Option<String>,
    pub unplaced: bool,
    pub lead_unit: Option<String>,
    pub lead_connector: Option<String>,
    pub dispatch_level: Option<String>,
    pub assisting_units: Vec<String>,
    pub routing_rule: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub parent_case_no: Option<String>,
    pub received_at: DateTime<Utc>,
    pub rework_count: i32,
    pub return_count: i32,
    pub escalation_level: i16,
    pub satisfaction: Option<String>,
    pub callback_wanted: bool,
    /// When the source hotlines were asked to have called the reporter back by.
    pub callback_due_at: Option<DateTime<Utc>>,
    /// JSON text: a callback result kept while the grid verifies on site.
    pub held_callback: Option<String>,
    /// JSON text: the lead unit's extension or suspension request waiting
    /// for the centre.
    pub pending_request: Option<String>,
    /// When a suspended case's clock stopped.
    pub suspended_at: Option<DateTime<Utc>>,
}

/// The clocks a lifecycle change restarts or stops besides the row's own
/// values.
#[derive(Debug, Default)]
pub(in crate::store) struct Clocks {
    /// A re-dispatch: the dispatch clocks start again, sign-for due then.
    pub accept_due_at: Option<DateTime<Utc>>,
    /// A callback was asked for: its clock starts.
    pub callback_requested: bool,
    /// The deadline moved (a suspension ended): warned and overdue again
    /// only against the new one.
    pub deadline_moved: bool,
    /// A request the lead unit made is settled (or moot).
    pub request_settled: bool,
}

/// A case's JSON columns.
pub(in crate::store) enum CaseJson {
    /// A callback result kept while the grid verifies on site.
    HeldCallback,
    /// The lead unit's extension or suspension request waiting for the
    /// centre.
    PendingRequest,
}

/// A value bound on SQLite (any, when the build has no SQLite).
#[cfg(feature = "sqlite")]
pub(in crate::store) trait LiteValue<'q>:
    sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>
{
}
#[cfg(feature = "sqlite")]
impl<'q, T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>> LiteValue<'q> for T {}
#[cfg(not(feature = "sqlite"))]
pub(in crate::store) trait LiteValue<'q> {}
#[cfg(not(feature = "sqlite"))]
impl<T> LiteValue<'_> for T {}

pub(in crate::store) const CASE_COLUMNS: &str = "c.id, c.case_no, c.status, c.channel, c.nature, c.category, c.priority, c.title,
    c.description, c.address, c.street_given, c.community_given, c.lon, c.lat, c.grid_id, c.community, c.street,
    c.located_by, c.unplaced, c.lead_unit, c.lead_connector, c.dispatch_level, c.assisting_units, c.routing_rule,
    c.due_at, p.case_no AS parent_case_no, c.received_at, c.rework_count, c.return_count, c.escalation_level,
    c.satisfaction, c.callback_wanted, c.callback_due_at, CAST(c.held_callback AS TEXT) AS held_callback,
    CAST(c.pending_request AS TEXT) AS pending_request, c.suspended_at";

#[cfg(feature = "sqlite")]
/// Reads a case row from SQLite, whose columns hold uuids, times and
/// arrays as text.
fn lite_case_row(row: &SqliteRow) -> Result<CaseRow, sqlx::Error> {
    Ok(CaseRow {
        id: row.try_get::<uuid::fmt::Hyphenated, _>("id")?.into_uuid(),
        case_no: row.try_get("case_no")?,
        status: row.try_get("status")?,
        channel: row.try_get("channel")?,
        nature: row.try_get("nature")?,
        category: row.try_get("category")?,
        priority: row.try_get("priority")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        address: row.try_get("address")?,
        street_given: row.try_get("street_given")?,
        community_given: row.try_get("community_given")?,
        lon: row.try_get("lon")?,
        lat: row.try_get("lat")?,
        grid_id: row.try_get("grid_id")?,
        community: row.try_get("community")?,
        street: row.try_get("street")?,
        located_by: row.try_get("located_by")?,
        unplaced: row.try_get("unplaced")?,
        lead_unit: row.try_get("lead_unit")?,
        lead_connector: row.try_get("lead_connector")?,
        dispatch_level: row.try_get("dispatch_level")?,
        assisting_units: row.try_get::<Json<Vec<String>>, _>("assisting_units")?.0,
        routing_rule: row.try_get("routing_rule")?,
        due_at: row.try_get("due_at")?,
        parent_case_no: row.try_get("parent_case_no")?,
        received_at: row.try_get("received_at")?,
        rework_count: row.try_get("rework_count")?,
        return_count: row.try_get("return_count")?,
        escalation_level: row.try_get("escalation_level")?,
        satisfaction: row.try_get("satisfaction")?,
        callback_wanted: row.try_get("callback_wanted")?,
        callback_due_at: row.try_get("callback_due_at")?,
        held_callback: row.try_get("held_callback")?,
        pending_request: row.try_get("pending_request")?,
        suspended_at: row.try_get("suspended_at")?,
    })
}

/// How a case is named when loaded.
pub(in crate::store) enum CaseKey<'a> {
    /// By case number, locked for the transaction.
    Number(&'a str),
    /// By a source's ticket id (connector, source_ref), locked for the transaction.
    Source(&'a str, &'a str),
    /// By id, not locked (the caller already holds the row).
    Id(Uuid),
}

impl Tx {
    pub(in crate::store) async fn case_row(
        &mut self,
        key: CaseKey<'_>,
    ) -> Result<Option<CaseRow>, StoreError> {
        match self {
            Tx::Pg(tx) => Ok(match key {
                CaseKey::Number(case_no) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                     WHERE c.case_no = $1 FOR UPDATE OF c"
                )))
                .bind(case_no)
                .fetch_optional(&mut **tx)
                .await?,
                CaseKey::Source(source, source_ref) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                     WHERE c.id = (SELECT case_id FROM case_sources WHERE connector = $1 AND source_ref = $2)
                     FOR UPDATE OF c"
                )))
                .bind(source)
                .bind(source_ref)
                .fetch_optional(&mut **tx)
                .await?,
                CaseKey::Id(id) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id WHERE c.id = $1"
                )))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?,
            }),
            // No row locks on SQLite: the transaction holds the one write lock.
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                let row = match key {
                    CaseKey::Number(case_no) => sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                         WHERE c.case_no = $1"
                    )))
                    .bind(case_no)
                    .fetch_optional(&mut **tx)
                    .await?,
                    CaseKey::Source(source, source_ref) => sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
                         WHERE c.id = (SELECT case_id FROM case_sources WHERE connector = $1 AND source_ref = $2)"
                    )))
                    .bind(source)
                    .bind(source_ref)
                    .fetch_optional(&mut **tx)
                    .await?,
                    CaseKey::Id(id) => sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id WHERE c.id = $1"
                    )))
                    .bind(lite_uuid(id))
                    .fetch_optional(&mut **tx)
                    .await?,
                };
                Ok(row.as_ref().map(lite_case_row).transpose()?)
            }
        }
    }

    /// Writes a lifecycle change of `next` (the case as it is now, its
    /// deadline and suspension included), restarting the clocks `clocks`
    /// names.
    pub(in crate::store) async fn write_case(
        &mut self,
        next: &CaseRow,
        now: DateTime<Utc>,
        clocks: &Clocks,
    ) -> Result<(), StoreError> {
        either!(tx self, |tx, uuid, time| {
            sqlx::query(
                "UPDATE cases SET status = $2, status_changed_at = $3, updated_at = $3, version = version + 1,
                        lead_unit = $4, lead_connector = $5, dispatch_level = $6, due_at = $7,
                        escalation_level = $8, rework_count = $9, return_count = $10, satisfaction = $11,
                        dispatched_at = CASE WHEN $12 THEN $3 ELSE dispatched_at END,
                        accept_due_at = CASE WHEN $12 THEN $13 ELSE accept_due_at END,
                        overdue = CASE WHEN $12 OR $16 THEN false ELSE overdue END,
                        accept_overdue = CASE WHEN $12 THEN false ELSE accept_overdue END,
                        deadline_warned = CASE WHEN $12 OR $16 THEN false ELSE deadline_warned END,
                        closed_at = CASE WHEN $2 = 'closed' THEN $3 ELSE NULL END,
                        callback_due_at = $14,
                        callback_overdue = CASE WHEN $15 THEN false ELSE callback_overdue END,
                        suspended_at = $17,
                        pending_request = CASE WHEN $18 THEN NULL ELSE pending_request END,
                        routing_rule = $19
                 WHERE id = $1",
            )
            .bind(uuid(next.id))
            .bind(&next.status)
            .bind(time(now))
            .bind(&next.lead_unit)
            .bind(&next.lead_connector)
            .bind(&next.dispatch_level)
            .bind(next.due_at.map(time))
            .bind(next.escalation_level)
            .bind(next.rework_count)
            .bind(next.return_count)
            .bind(&next.satisfaction)
            .bind(clocks.accept_due_at.is_some())
            .bind(time(clocks.accept_due_at.unwrap_or(now)))
            .bind(next.callback_due_at.map(time))
            .bind(clocks.callback_requested)
            .bind(clocks.deadline_moved)
            .bind(next.suspended_at.map(time))
            .bind(clocks.request_settled)
            .bind(&next.routing_rule)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    pub(in crate::store) async fn record_callback(
        &mut self,
        row: &CaseRow,
        update: &UpdateCase,
        next: Option<&CaseRow>,
    ) -> Result<(), StoreError> {
        let satisfaction = next
            .and_then(|n| n.satisfaction.clone())
            .or(update.satisfaction.clone());
        either!(tx self, |tx, uuid, time| {
            sqlx::query(
                "UPDATE cases SET contacted = COALESCE($2, contacted), solved = COALESCE($3, solved),
                        satisfaction = COALESCE($4, satisfaction), updated_at = $5
                 WHERE id = $1",
            )
            .bind(uuid(row.id))
            .bind(update.contacted)
            .bind(update.solved)
            .bind(satisfaction)
            .bind(time(Utc::now()))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// Takes the batch's duplicate locks and loads the open cases of its
    /// categories received since `earliest` that a new case may duplicate:
    /// those with a point, and those placed in one of `grids` or
    /// `communities` (by address alone, say), with their caller's keyed hash.
    pub(in crate::store) async fn open_candidates(
        &mut self,
        locks: &LockPlan,
        earliest: DateTime<Utc>,
        grids: &[String],
        communities: &[String],
    ) -> Result<Vec<OpenCandidate>, StoreError> {
        match self {
            Tx::Pg(tx) => {
                // The locks and the read in one round trip (migration 0017).
                Ok(sqlx::query_as(
                    "SELECT * FROM gridhub_duplicate_candidates_by_place($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&locks.categories)
                .bind(&locks.whole)
                .bind(&locks.cell_categories)
                .bind(&locks.cells)
                .bind(earliest)
                .bind(grids)
                .bind(communities)
                .fetch_all(&mut **tx)
                .await?)
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                // No lock to take: the transaction already holds SQLite's one
                // write lock.
                let rows: Vec<LiteCandidate> = sqlx::query_as(
                    "SELECT o.id, o.case_no, o.category, o.lon, o.lat, o.received_at, o.grid_id, o.community,
                            (SELECT r.phone_hash FROM reporters r WHERE r.case_id = o.id LIMIT 1)
                     FROM cases o
                     WHERE o.parent_case_id IS NULL AND o.status NOT IN ('closed', 'merged', 'rejected', 'answered')
                       AND o.category IN (SELECT value FROM json_each($1)) AND o.received_at >= $2
                       AND ((o.lon IS NOT NULL AND o.lat IS NOT NULL)
                            OR o.grid_id IN (SELECT value FROM json_each($3))
                            OR o.community IN (SELECT value FROM json_each($4)))",
                )
                .bind(json!(locks.categories).to_string())
                .bind(lite_time(earliest))
                .bind(json!(grids).to_string())
                .bind(json!(communities).to_string())
                .fetch_all(&mut **tx)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(
                            id,
                            case_no,
                            category,
                            lon,
                            lat,
                            received_at,
                            grid_id,
                            community,
                            caller,
                        )| {
                            OpenCandidate {
                                id: id.into_uuid(),
                                case_no,
                                category,
                                lon,
                                lat,
                                received_at,
                                grid_id,
                                community,
                                caller,
                            }
                        },
                    )
                    .collect())
            }
        }
    }
}

/// An open case a new one may duplicate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(in crate::store) struct OpenCandidate {
    pub id: Uuid,
    pub case_no: String,
    pub category: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub received_at: DateTime<Utc>,
    pub grid_id: Option<String>,
    pub community: Option<String>,
    /// The keyed hash of its caller's phone.
    #[sqlx(rename = "phone_hash")]
    pub caller: Option<String>,
}

#[cfg(feature = "sqlite")]
type LiteCandidate = (
    uuid::fmt::Hyphenated,
    String,
    String,
    Option<f64>,
    Option<f64>,
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A case row to insert: the case as events see it, and the rest.
pub(in crate::store) struct CaseInsert<'a> {
    pub view: &'a CaseRow,
    /// The description as stored, when it is sealed (`view`'s otherwise).
    pub description: Option<String>,
    /// JSON text.
    pub attributes: String,
    /// JSON text.
    pub media: String,
    /// JSON text: an array of unit ids.
    pub assisting: String,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub accept_due_at: Option<DateTime<Utc>>,
    pub parent_case_id: Option<Uuid>,
    pub callback_wanted: bool,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Case rows as one insert of a PostgreSQL statement; none if there are none.
impl CaseInsert<'_> {
    fn description(&self) -> &str {
        self.description
            .as_deref()
            .unwrap_or(&self.view.description)
    }
}

pub(in crate::store) fn add(inserts: &mut PgInserts, rows: &[CaseInsert<'_>]) {
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
        inserts.column(views().map(|v| v.address.as_deref()).collect(), "text"),
        inserts.column(views().map(|v| v.street_given.as_deref()).collect(), "text"),
        inserts.column(
            views().map(|v| v.community_given.as_deref()).collect(),
            "text",
        ),
        inserts.column(views().map(|v| v.lon).collect(), "float8"),
        inserts.column(views().map(|v| v.lat).collect(), "float8"),
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
pub(in crate::store) async fn insert_lite(
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
        .bind(v.address.as_deref())
        .bind(v.street_given.as_deref())
        .bind(v.community_given.as_deref())
        .bind(v.lon)
        .bind(v.lat)
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

impl Tx {
    /// Raises the escalation level of cases past their handling deadline (1 at
    /// the deadline, 2 once overdue by `supervision`), at most 1000 a scan;
    /// returns (case id, old level, new level). On PostgreSQL cases another
    /// scanner holds are skipped.
    pub(in crate::store) async fn raise_overdue(
        &mut self,
        now: DateTime<Utc>,
        supervision: chrono::Duration,
    ) -> Result<Vec<(Uuid, i16, i16)>, StoreError> {
        let handling: Vec<&str> = HANDLING.iter().map(|s| s.as_str()).collect();
        match self {
            Tx::Pg(tx) => Ok(sqlx::query_as(
                "WITH due AS (
                    SELECT id, escalation_level AS old,
                           CASE WHEN due_at + $3 <= $1 THEN 2 ELSE 1 END::int2 AS new
                    FROM cases
                    WHERE status = ANY($2) AND due_at <= $1
                      AND escalation_level < CASE WHEN due_at + $3 <= $1 THEN 2 ELSE 1 END
                    ORDER BY due_at LIMIT 1000
                    FOR UPDATE SKIP LOCKED)
                 UPDATE cases c SET overdue = true, escalation_level = due.new, updated_at = now()
                 FROM due WHERE c.id = due.id
                 RETURNING c.id, due.old, due.new",
            )
            .bind(now)
            .bind(&handling)
            .bind(supervision)
            .fetch_all(&mut **tx)
            .await?),
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                // Times are fixed-width text: comparing them compares the times.
                let due: Vec<(uuid::fmt::Hyphenated, i16, i16)> = sqlx::query_as(
                    "SELECT id, escalation_level, CASE WHEN due_at <= $3 THEN 2 ELSE 1 END FROM cases
                     WHERE status IN (SELECT value FROM json_each($2)) AND due_at <= $1
                       AND escalation_level < CASE WHEN due_at <= $3 THEN 2 ELSE 1 END
                     ORDER BY due_at LIMIT 1000",
                )
                .bind(lite_time(now))
                .bind(serde_json::to_string(&handling).unwrap_or_default())
                .bind(lite_time(now - supervision))
                .fetch_all(&mut **tx)
                .await?;
                let mut raised = Vec::with_capacity(due.len());
                for (id, old, new) in due {
                    sqlx::query(concat!(
                        "UPDATE cases SET overdue = 1, escalation_level = $2, updated_at = ",
                        lite_now!(),
                        " WHERE id = $1"
                    ))
                    .bind(id)
                    .bind(new)
                    .execute(&mut **tx)
                    .await?;
                    raised.push((id.into_uuid(), old, new));
                }
                Ok(raised)
            }
        }
    }

    /// Sets columns of one case: `pg` and `lite` are each backend's SET
    /// list, with `$2` the value given for it; `updated_at` is set too.
    async fn set_case<'q, P, L>(
        &mut self,
        case_id: Uuid,
        pg: &str,
        pg_value: P,
        lite: &str,
        lite_value: L,
    ) -> Result<(), StoreError>
    where
        P: 'q + Send + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        L: 'q + Send + LiteValue<'q>,
    {
        match self {
            Tx::Pg(tx) => {
                let sql = format!("UPDATE cases SET {pg}, updated_at = now() WHERE id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(case_id)
                    .bind(pg_value)
                    .execute(&mut **tx)
                    .await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                let sql = format!(
                    "UPDATE cases SET {lite}, updated_at = {} WHERE id = $1",
                    lite_now!()
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(lite_uuid(case_id))
                    .bind(lite_value)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        #[cfg(not(feature = "sqlite"))]
        let _ = (lite, lite_value);
        Ok(())
    }

    /// Sets one of a case's JSON columns to the text given, or clears it.
    pub(in crate::store) async fn set_case_json(
        &mut self,
        case_id: Uuid,
        column: CaseJson,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let name = match column {
            CaseJson::HeldCallback => "held_callback",
            CaseJson::PendingRequest => "pending_request",
        };
        let (pg, lite) = (format!("{name} = $2::jsonb"), format!("{name} = json($2)"));
        self.set_case(case_id, &pg, value, &lite, value).await
    }

    /// Moves a case's deadline (延期), settling the request waiting when
    /// `settles`: the warning and the escalations count again against the
    /// new deadline.
    pub(in crate::store) async fn extend_deadline(
        &mut self,
        case_id: Uuid,
        due_at: DateTime<Utc>,
        settles: bool,
    ) -> Result<(), StoreError> {
        let set = if settles {
            "due_at = $2, overdue = false, deadline_warned = false, escalation_level = 0, \
             pending_request = NULL"
        } else {
            "due_at = $2, overdue = false, deadline_warned = false, escalation_level = 0"
        };
        self.set_case(case_id, set, due_at, set, lite_time(due_at))
            .await
    }

    /// Moves a case's sign-for deadline by `by` (a suspension ended while
    /// it waited to be signed for).
    pub(in crate::store) async fn shift_sign_for(
        &mut self,
        case_id: Uuid,
        by: chrono::TimeDelta,
    ) -> Result<(), StoreError> {
        let secs = by.num_milliseconds() as f64 / 1000.0;
        let pg =
            "accept_due_at = accept_due_at + make_interval(secs => $2), accept_overdue = false";
        let lite = concat!(
            "accept_due_at = strftime('%Y-%m-%dT%H:%M:%f000Z', julianday(accept_due_at) + $2 / 86400.0), ",
            "accept_overdue = 0"
        );
        self.set_case(case_id, pg, secs, lite, secs).await
    }

    /// Takes the duplicate lock of a category whole, as intake does for a
    /// case without a point (PostgreSQL; SQLite's one writer needs none).
    pub(in crate::store) async fn lock_duplicates_of(
        &mut self,
        category: &str,
    ) -> Result<(), StoreError> {
        match self {
            Tx::Pg(tx) => {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('gridhub.duplicates.' || $1))")
                    .bind(category)
                    .execute(&mut **tx)
                    .await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(_) => {}
        }
        Ok(())
    }

    /// Flags cases in handling past `share` of their handling time (from
    /// dispatch to the deadline) and not yet past the deadline, at most
    /// 1000 a scan; returns their ids. On PostgreSQL cases another scanner
    /// holds are skipped.
    pub(in crate::store) async fn flag_deadline_warnings(
        &mut self,
        now: DateTime<Utc>,
        share: f64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let handling: Vec<&str> = HANDLING.iter().map(|s| s.as_str()).collect();
        match self {
            Tx::Pg(tx) => {
                let rows: Vec<(Uuid,)> = sqlx::query_as(
                    "WITH due AS (
                        SELECT id FROM cases
                        WHERE status = ANY($2) AND NOT deadline_warned AND due_at > $1
                          AND dispatched_at + (due_at - dispatched_at) * $3 <= $1
                        ORDER BY due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
                     UPDATE cases c SET deadline_warned = true, updated_at = now() FROM due WHERE c.id = due.id
                     RETURNING c.id",
                )
                .bind(now)
                .bind(&handling)
                .bind(share)
                .fetch_all(&mut **tx)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                let rows: Vec<(uuid::fmt::Hyphenated,)> = sqlx::query_as(concat!(
                    "UPDATE cases SET deadline_warned = 1, updated_at = ",
                    lite_now!(),
                    " WHERE id IN (SELECT id FROM cases
                         WHERE status IN (SELECT value FROM json_each($2)) AND NOT deadline_warned
                           AND due_at > $1
                           AND julianday(dispatched_at)
                               + (julianday(due_at) - julianday(dispatched_at)) * $3 <= julianday($1)
                         ORDER BY due_at LIMIT 1000)
                     RETURNING id"
                ))
                .bind(lite_time(now))
                .bind(serde_json::to_string(&handling).unwrap_or_default())
                .bind(share)
                .fetch_all(&mut **tx)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id.into_uuid()).collect())
            }
        }
    }

    /// Makes a case part of another (`Some`), or lets it go on its own.
    pub(in crate::store) async fn set_parent(
        &mut self,
        case_id: Uuid,
        parent: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let set = "parent_case_id = $2";
        self.set_case(case_id, set, parent, set, parent.map(lite_uuid))
            .await
    }

    /// The cases merged into `from` become part of `to` (a case merged by
    /// hand takes its own duplicates along).
    pub(in crate::store) async fn reparent(
        &mut self,
        from: Uuid,
        to: Uuid,
    ) -> Result<(), StoreError> {
        either!(tx self, |tx, uuid, _time| {
            sqlx::query("UPDATE cases SET parent_case_id = $2 WHERE parent_case_id = $1")
                .bind(uuid(from))
                .bind(uuid(to))
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Raises a case's escalation level to `level` (never lowers it).
    pub(in crate::store) async fn raise_escalation(
        &mut self,
        case_id: Uuid,
        level: i16,
    ) -> Result<(), StoreError> {
        let pg = "escalation_level = GREATEST(escalation_level, $2)";
        let lite = "escalation_level = MAX(escalation_level, $2)";
        self.set_case(case_id, pg, level, lite, level).await
    }

    /// Sets a case's assisting units (协办), by unit id.
    pub(in crate::store) async fn set_assisting(
        &mut self,
        case_id: Uuid,
        units: &[String],
    ) -> Result<(), StoreError> {
        let lite = json!(units).to_string();
        let (pg_set, lite_set) = ("assisting_units = $2", "assisting_units = json($2)");
        self.set_case(case_id, pg_set, units, lite_set, lite).await
    }

    /// Flags the cases past a deadline the scanner flags once, at most 1000
    /// a scan; returns their ids. On PostgreSQL cases another scanner holds
    /// are skipped.
    pub(in crate::store) async fn flag_past(
        &mut self,
        due: Due,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let (status, at, flag) = due.columns();
        match self {
            Tx::Pg(tx) => {
                let rows: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "WITH due AS (
                        SELECT id FROM cases WHERE status = '{status}' AND {at} <= $1 AND NOT {flag}
                        ORDER BY {at} LIMIT 1000 FOR UPDATE SKIP LOCKED)
                     UPDATE cases c SET {flag} = true, updated_at = now() FROM due WHERE c.id = due.id
                     RETURNING c.id"
                )))
                .bind(now)
                .fetch_all(&mut **tx)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                let rows: Vec<(uuid::fmt::Hyphenated,)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "UPDATE cases SET {flag} = 1, updated_at = {}
                     WHERE id IN (SELECT id FROM cases
                         WHERE status = '{status}' AND {at} <= $1 AND NOT {flag}
                         ORDER BY {at} LIMIT 1000)
                     RETURNING id",
                        lite_now!()
                    )))
                    .bind(lite_time(now))
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(rows.into_iter().map(|(id,)| id.into_uuid()).collect())
            }
        }
    }
}

/// A deadline the overdue scanner flags once.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) enum Due {
    /// A dispatched case not signed for in `sign_for`.
    SignFor,
    /// A callback not made by `callback_due_at`.
    Callback,
}

impl Due {
    /// The status the deadline runs in, its column and the flag set once past it.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Due::SignFor => ("dispatched", "accept_due_at", "accept_overdue"),
            Due::Callback => ("callback", "callback_due_at", "callback_overdue"),
        }
    }
}
