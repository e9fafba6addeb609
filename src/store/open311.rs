//! Read side of the Open311 endpoint (`http::open311`): a token's case, and
//! the cases its connectors opened, as the few columns Open311 shows. No
//! reporter is read here; a sealed (confidential) description is left out.

use chrono::{DateTime, Utc};

use super::backend::lite_time;
use super::seal::Seal;
use super::{Pool, Store, StoreError};

/// Statuses Open311 calls `closed`: the matter is over for the reporter.
pub const CLOSED: [&str; 3] = ["closed", "rejected", "answered"];

/// What became of a request, by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// The hub opened (or merged) a case for it.
    Case(String),
    /// The hub refused it (its dead letter names why).
    Refused,
}

/// Which of the endpoint's cases to list: every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Case numbers; when given, the other filters are not applied.
    pub ids: Vec<String>,
    /// Catalogue codes (service_code).
    pub codes: Vec<String>,
    /// Received at or after.
    pub from: Option<DateTime<Utc>>,
    /// Received at or before.
    pub to: Option<DateTime<Utc>>,
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    pub limit: i64,
}

/// One case as Open311 shows it. Times are UTC, `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub case_no: String,
    /// The case's status, or its parent's for a merged case.
    pub status: String,
    pub category: Option<String>,
    /// `None` when sealed (a confidential complainant's).
    pub description: Option<String>,
    pub lead_unit: Option<String>,
    pub received_at: String,
    pub updated_at: String,
    pub due_at: Option<String>,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub media_url: Option<String>,
    /// The latest note of the case's events by a unit, a hotline or the
    /// desk (the hub's own, such as the routing rule, are not news).
    pub note: Option<String>,
    pub parent_case_no: Option<String>,
}

/// The effective status: a merged case goes as its parent goes.
const STATUS: &str =
    "CASE WHEN c.status = 'merged' AND p.status IS NOT NULL THEN p.status ELSE c.status END";

impl Store {
    /// The case a request published under `token` (its message_id) opened,
    /// looked up in the inbox of each of `connectors`; `None` while the hub
    /// has not taken it yet.
    pub async fn open311_token(
        &self,
        connectors: &[String],
        token: &str,
    ) -> Result<Option<TokenState>, StoreError> {
        let sql = "SELECT i.outcome, c.case_no FROM inbox i LEFT JOIN cases c ON c.id = i.case_id
                   WHERE i.connector = $1 AND i.message_id = $2";
        for connector in connectors {
            let row: Option<(String, Option<String>)> = match &self.pool {
                Pool::Pg(pool) => {
                    sqlx::query_as(sql)
                        .bind(connector)
                        .bind(token)
                        .fetch_optional(pool)
                        .await?
                }
                #[cfg(feature = "sqlite")]
                Pool::Lite(pool) => {
                    sqlx::query_as(sql)
                        .bind(connector)
                        .bind(token)
                        .fetch_optional(pool)
                        .await?
                }
            };
            match row {
                Some((_, Some(case_no))) => return Ok(Some(TokenState::Case(case_no))),
                Some((outcome, None)) if outcome == "refused" => {
                    return Ok(Some(TokenState::Refused));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The cases one of `connectors` is a source of that `filter` finds,
    /// newest first, at most `filter.limit`.
    pub async fn open311_requests(
        &self,
        connectors: &[String],
        filter: &RequestFilter,
    ) -> Result<Vec<RequestRow>, StoreError> {
        if connectors.is_empty() {
            return Ok(Vec::new());
        }
        let pg = matches!(self.pool, Pool::Pg(_));
        let mut binds: Vec<String> = Vec::new();
        let list = |values: &[String], binds: &mut Vec<String>| {
            let mut places = Vec::with_capacity(values.len());
            for value in values {
                binds.push(value.clone());
                places.push(format!("${}", binds.len()));
            }
            places.join(", ")
        };
        let mut conditions = vec![format!(
            "EXISTS (SELECT 1 FROM case_sources s WHERE s.case_id = c.id AND s.connector IN ({}))",
            list(connectors, &mut binds)
        )];
        let time = |binds: &mut Vec<String>, at: DateTime<Utc>| {
            binds.push(lite_time(at));
            match pg {
                true => format!("CAST(${} AS timestamptz)", binds.len()),
                false => format!("${}", binds.len()),
            }
        };
        if !filter.ids.is_empty() {
            conditions.push(format!("c.case_no IN ({})", list(&filter.ids, &mut binds)));
        } else {
            if !filter.codes.is_empty() {
                conditions.push(format!(
                    "c.category IN ({})",
                    list(&filter.codes, &mut binds)
                ));
            }
            if let Some(from) = filter.from {
                let p = time(&mut binds, from);
                conditions.push(format!("c.received_at >= {p}"));
            }
            if let Some(to) = filter.to {
                let p = time(&mut binds, to);
                conditions.push(format!("c.received_at <= {p}"));
            }
            let closed = CLOSED.map(|s| format!("'{s}'")).join(", ");
            match filter.open {
                Some(true) => conditions.push(format!("({STATUS}) NOT IN ({closed})")),
                Some(false) => conditions.push(format!("({STATUS}) IN ({closed})")),
                None => {}
            }
        }
        // Times as `YYYY-MM-DDTHH:MM:SSZ` on both backends (SQLite keeps
        // them as fixed-width UTC text already).
        let (at, media): (fn(&str) -> String, &str) = match pg {
            true => (
                |column| {
                    format!(
                        "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                    )
                },
                "c.media->0->>'url'",
            ),
            false => (
                |column| format!("substr({column}, 1, 19) || 'Z'"),
                "json_extract(c.media, '$[0].url')",
            ),
        };
        let sql = format!(
            "SELECT c.case_no, {STATUS} AS status, c.category, c.description, c.lead_unit,
                    {} AS received_at, {} AS updated_at, {} AS due_at,
                    c.address, c.lat, c.lon, {media} AS media_url,
                    (SELECT e.note FROM case_events e WHERE e.case_id = c.id AND e.actor <> 'gridhub'
                       AND e.note IS NOT NULL AND e.note <> '' ORDER BY e.id DESC LIMIT 1) AS note,
                    p.case_no AS parent_case_no
             FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
             WHERE {}
             ORDER BY c.received_at DESC, c.case_no DESC
             LIMIT {}",
            at("c.received_at"),
            at("c.updated_at"),
            at("c.due_at"),
            conditions.join(" AND "),
            filter.limit.clamp(1, 1000),
        );
        let sql = sqlx::AssertSqlSafe(sql);
        let mut rows: Vec<RequestRow> = match &self.pool {
            Pool::Pg(pool) => {
                let mut query = sqlx::query_as::<_, RequestRow>(sql);
                for bind in binds {
                    query = query.bind(bind);
                }
                query.fetch_all(pool).await?
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let mut query = sqlx::query_as::<_, RequestRow>(sql);
                for bind in binds {
                    query = query.bind(bind);
                }
                query.fetch_all(pool).await?
            }
        };
        for row in &mut rows {
            if row.description.as_deref().is_some_and(Seal::is_sealed) {
                row.description = None;
            }
        }
        Ok(rows)
    }
}
