//! Read side: finding cases and reading one whole, for the CLI, the API
//! and the console.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backend::lite_time;
use super::seal::Seal;
use super::{Pool, Store, StoreError};

/// Which cases to list: every filter given must hold. Newest first. No
/// `Debug`: it can hold a caller's phone.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    pub status: Option<String>,
    pub street: Option<String>,
    pub community: Option<String>,
    pub grid: Option<String>,
    /// A unit's id (its connector or a unit of the grid system).
    pub lead_unit: Option<String>,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub overdue: Option<bool>,
    /// Received at or after.
    pub received_from: Option<DateTime<Utc>>,
    /// Received before.
    pub received_to: Option<DateTime<Utc>>,
    /// Words in the title or the description (a confidential complainant's
    /// description is sealed and not searched).
    pub text: Option<String>,
    /// Any of the case's sources' ticket ids.
    pub ticket: Option<String>,
    /// A caller's phone: matched through its keyed hash
    /// (`Seal::phone_hash`), so the plaintext is neither stored nor sent to
    /// the database. Finds nothing without data keys.
    #[serde(skip_serializing)]
    pub phone: Option<String>,
    /// Cases skipped (paging).
    #[serde(default)]
    pub offset: i64,
    /// Most cases (1 to 1000; default 50).
    pub limit: Option<i64>,
}

impl CaseQuery {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

/// A value bound into a [`CaseQuery`]'s statement.
enum Bind {
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Int(i64),
    List(Vec<String>),
}

/// A WHERE clause and its values, `$1`, `$2`... in order (both backends
/// number parameters the same way).
struct Clause {
    pg: bool,
    sql: String,
    binds: Vec<Bind>,
}

impl Clause {
    fn new(pg: bool) -> Clause {
        Clause {
            pg,
            sql: "TRUE".to_owned(),
            binds: Vec::new(),
        }
    }

    /// Adds `bind` and returns its placeholder.
    fn bind(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    fn and(&mut self, condition: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
    }

    fn equal(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            let p = self.bind(Bind::Text(value.clone()));
            self.and(&format!("{column} = {p}"));
        }
    }

    fn filters(&mut self, query: &CaseQuery, phone_hash: Option<String>, scope: Option<&[String]>) {
        self.equal("c.status", &query.status);
        self.equal("c.street", &query.street);
        self.equal("c.community", &query.community);
        self.equal("c.grid_id", &query.grid);
        self.equal("c.lead_unit", &query.lead_unit);
        self.equal("c.channel", &query.channel);
        self.equal("c.category", &query.category);
        if let Some(overdue) = query.overdue {
            let p = self.bind(Bind::Bool(overdue));
            self.and(&format!("c.overdue = {p}"));
        }
        if let Some(from) = query.received_from {
            let p = self.bind(Bind::Time(from));
            self.and(&format!("c.received_at >= {p}"));
        }
        if let Some(to) = query.received_to {
            let p = self.bind(Bind::Time(to));
            self.and(&format!("c.received_at < {p}"));
        }
        if let Some(text) = query
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let p = self.bind(Bind::Text(text.to_owned()));
            let find = if self.pg { "strpos" } else { "instr" };
            self.and(&format!(
                "({find}(c.title, {p}) > 0 OR ({find}(c.description, {p}) > 0 \
                 AND c.description NOT LIKE 'gh1:%'))"
            ));
        }
        if let Some(ticket) = &query.ticket {
            let p = self.bind(Bind::Text(ticket.clone()));
            self.and(&format!(
                "EXISTS (SELECT 1 FROM case_sources s WHERE s.case_id = c.id AND s.source_ref = {p})"
            ));
        }
        if query.phone.is_some() {
            // No hash (no keys, or no digits): nothing matches.
            let p = self.bind(Bind::Text(phone_hash.unwrap_or_default()));
            self.and(&format!(
                "EXISTS (SELECT 1 FROM reporters r WHERE r.case_id = c.id AND r.phone_hash = {p})"
            ));
        }
        if let Some(scope) = scope {
            let p = self.bind(Bind::List(scope.to_vec()));
            if self.pg {
                self.and(&format!(
                    "(c.lead_unit = ANY({p}) OR c.assisting_units && {p}
                      OR EXISTS (SELECT 1 FROM case_sources s WHERE s.case_id = c.id AND s.connector = ANY({p})))"
                ));
            } else {
                self.and(&format!(
                    "(c.lead_unit IN (SELECT value FROM json_each({p}))
                      OR EXISTS (SELECT 1 FROM json_each(c.assisting_units) a
                                 WHERE a.value IN (SELECT value FROM json_each({p})))
                      OR EXISTS (SELECT 1 FROM case_sources s
                                 WHERE s.case_id = c.id AND s.connector IN (SELECT value FROM json_each({p}))))"
                ));
            }
        }
    }
}

/// The unified case as JSON (schemas/hub/case.v1.json), from `cases c`
/// joined to its parent `p`.
const PG_CASE: &str = "jsonb_build_object(
    'case_no', c.case_no, 'id', c.id, 'status', c.status, 'channel', c.channel,
    'nature', c.nature, 'category', c.category, 'priority', c.priority,
    'title', c.title, 'description', c.description, 'attributes', c.attributes,
    'media', c.media,
    'place', jsonb_build_object('address', c.address, 'street', c.street_given,
                                'community', c.community_given, 'lon', c.lon, 'lat', c.lat),
    'grid_id', c.grid_id, 'community', c.community, 'street', c.street,
    'located_by', c.located_by,
    'lead_unit', c.lead_unit, 'assisting_units', to_jsonb(c.assisting_units),
    'dispatch_level', c.dispatch_level, 'routing_rule', c.routing_rule,
    'due_at', c.due_at, 'overdue', c.overdue, 'escalation_level', c.escalation_level,
    'rework_count', c.rework_count, 'satisfaction', c.satisfaction,
    'parent_case_no', p.case_no,
    'received_at', c.received_at, 'created_at', c.created_at, 'updated_at', c.updated_at,
    'sources', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                             'connector', s.connector, 'ref', s.source_ref, 'message_id', s.message_id)
                             ORDER BY s.received_at)
                         FROM case_sources s WHERE s.case_id = c.id), '[]'::jsonb))";

/// The same JSON from SQLite: JSON columns go in with `json()`, booleans
/// (integers there) as JSON booleans.
const LITE_CASE: &str = "json_object(
    'case_no', c.case_no, 'id', c.id, 'status', c.status, 'channel', c.channel,
    'nature', c.nature, 'category', c.category, 'priority', c.priority,
    'title', c.title, 'description', c.description, 'attributes', json(c.attributes),
    'media', json(c.media),
    'place', json_object('address', c.address, 'street', c.street_given,
                         'community', c.community_given, 'lon', c.lon, 'lat', c.lat),
    'grid_id', c.grid_id, 'community', c.community, 'street', c.street,
    'located_by', c.located_by,
    'lead_unit', c.lead_unit, 'assisting_units', json(c.assisting_units),
    'dispatch_level', c.dispatch_level, 'routing_rule', c.routing_rule,
    'due_at', c.due_at, 'overdue', json(CASE WHEN c.overdue THEN 'true' ELSE 'false' END),
    'escalation_level', c.escalation_level,
    'rework_count', c.rework_count, 'satisfaction', c.satisfaction,
    'parent_case_no', p.case_no,
    'received_at', c.received_at, 'created_at', c.created_at, 'updated_at', c.updated_at,
    'sources', (SELECT json_group_array(json_object(
                       'connector', s.connector, 'ref', s.source_ref, 'message_id', s.message_id))
                FROM (SELECT * FROM case_sources WHERE case_id = c.id ORDER BY received_at) s))";

/// A case's dispatched, sign-for, due and closed times, as a backend reads
/// them.
/// dispatched, sign-for due, due, closed, callback due, suspended at; the
/// pending request (JSON text).
type Deadlines<At> = (
    Option<At>,
    Option<At>,
    Option<At>,
    Option<At>,
    Option<At>,
    Option<At>,
    Option<String>,
);

/// A `case_events` row as a backend reads it: at, kind, from and to status,
/// actor, on behalf of, note, connector, message id, media (JSON text).
type StepRow<At> = (
    At,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One step of a case's timeline (`case_events`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    /// Who acted: a connector, `gridhub`, or a desk user.
    pub actor: String,
    /// The unit a desk step was recorded for.
    pub on_behalf_of: Option<String>,
    pub note: Option<String>,
    pub connector: Option<String>,
    pub message_id: Option<String>,
    pub media: Option<Value>,
}

impl Store {
    /// The newest cases, at most `limit`; with `scope`, only those that
    /// concern one of these connectors (as lead unit, assisting unit or
    /// source). Unified-case JSON (schemas/hub/case.v1.json), without
    /// reporters.
    pub async fn cases(
        &self,
        limit: i64,
        scope: Option<&[String]>,
    ) -> Result<Vec<Value>, StoreError> {
        let query = CaseQuery {
            limit: Some(limit),
            ..CaseQuery::default()
        };
        self.find_cases(&query, scope).await
    }

    /// Whether cases can be found by a caller's phone (data keys are
    /// configured to hash it with).
    pub fn finds_phones(&self) -> bool {
        self.seal.is_on()
    }

    /// The cases `query` finds, newest first, a page of them; with `scope`,
    /// only those that concern one of these connectors.
    pub async fn find_cases(
        &self,
        query: &CaseQuery,
        scope: Option<&[String]>,
    ) -> Result<Vec<Value>, StoreError> {
        let pg = matches!(self.pool, Pool::Pg(_));
        let mut clause = Clause::new(pg);
        let hash = self.seal.phone_hash(query.phone.as_deref());
        clause.filters(query, hash, scope);
        let limit = clause.bind(Bind::Int(query.limit()));
        let offset = clause.bind(Bind::Int(query.offset.max(0)));
        let sql = format!(
            "SELECT {} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
             WHERE {} ORDER BY c.created_at DESC, c.case_no DESC LIMIT {limit} OFFSET {offset}",
            if pg { PG_CASE } else { LITE_CASE },
            clause.sql,
        );
        let mut cases = self.case_rows(&sql, clause.binds).await?;
        cases
            .iter_mut()
            .for_each(|case| self.open_description(case));
        Ok(cases)
    }

    /// One case whole: the unified case with its timeline (`timeline`,
    /// oldest first) and its deadlines. `None` if there is no such case or
    /// it is outside `scope`.
    pub async fn case_detail(
        &self,
        case_no: &str,
        scope: Option<&[String]>,
    ) -> Result<Option<Value>, StoreError> {
        let Some(mut case) = self.case(case_no, scope).await? else {
            return Ok(None);
        };
        let id = case["id"].as_str().unwrap_or_default().to_owned();
        let (deadlines, timeline) = self.timeline(&id).await?;
        if let Value::Object(map) = &mut case {
            map.insert("deadlines".to_owned(), deadlines);
            map.insert(
                "timeline".to_owned(),
                serde_json::to_value(timeline).unwrap_or_default(),
            );
        }
        Ok(Some(case))
    }

    /// One case as unified-case JSON, without its timeline; `None` if there
    /// is no such case or it is outside `scope`.
    pub async fn case(
        &self,
        case_no: &str,
        scope: Option<&[String]>,
    ) -> Result<Option<Value>, StoreError> {
        let pg = matches!(self.pool, Pool::Pg(_));
        let mut clause = Clause::new(pg);
        clause.filters(&CaseQuery::default(), None, scope);
        let p = clause.bind(Bind::Text(case_no.to_owned()));
        clause.and(&format!("c.case_no = {p}"));
        let sql = format!(
            "SELECT {} FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id WHERE {}",
            if pg { PG_CASE } else { LITE_CASE },
            clause.sql,
        );
        let Some(mut case) = self.case_rows(&sql, clause.binds).await?.pop() else {
            return Ok(None);
        };
        self.open_description(&mut case);
        Ok(Some(case))
    }

    async fn case_rows(&self, sql: &str, binds: Vec<Bind>) -> Result<Vec<Value>, StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(match &self.pool {
            Pool::Pg(pool) => {
                let mut query = sqlx::query_scalar::<_, Value>(sql);
                for bind in binds {
                    query = match bind {
                        Bind::Text(v) => query.bind(v),
                        Bind::Bool(v) => query.bind(v),
                        Bind::Time(v) => query.bind(v),
                        Bind::Int(v) => query.bind(v),
                        Bind::List(v) => query.bind(v),
                    };
                }
                query.fetch_all(pool).await?
            }
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let mut query = sqlx::query_scalar::<_, sqlx::types::Json<Value>>(sql);
                for bind in binds {
                    query = match bind {
                        Bind::Text(v) => query.bind(v),
                        Bind::Bool(v) => query.bind(v),
                        Bind::Time(v) => query.bind(lite_time(v)),
                        Bind::Int(v) => query.bind(v),
                        Bind::List(v) => query.bind(serde_json::to_string(&v).unwrap_or_default()),
                    };
                }
                query
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|v| v.0)
                    .collect()
            }
        })
    }

    /// A case's deadlines and its timeline, by its id.
    async fn timeline(&self, id: &str) -> Result<(Value, Vec<Step>), StoreError> {
        let deadlines_sql =
            "SELECT dispatched_at, accept_due_at, due_at, closed_at, callback_due_at,
                suspended_at, CAST(pending_request AS text) FROM cases WHERE id = $1";
        let steps_sql =
            "SELECT at, kind, from_status, to_status, actor, on_behalf_of, note, connector,
                    message_id, CAST(media AS text) FROM case_events WHERE case_id = $1 ORDER BY id";
        let (deadlines, rows): (Deadlines<DateTime<Utc>>, Vec<StepRow<DateTime<Utc>>>) = match &self
            .pool
        {
            Pool::Pg(pool) => {
                let id: uuid::Uuid = id.parse().map_err(|_| StoreError::Permanent {
                    code: "decode".to_owned(),
                })?;
                (
                    sqlx::query_as(deadlines_sql)
                        .bind(id)
                        .fetch_one(pool)
                        .await?,
                    sqlx::query_as(steps_sql).bind(id).fetch_all(pool).await?,
                )
            }
            // Times are text there: one that does not parse is a corrupt
            // row, named.
            #[cfg(feature = "sqlite")]
            Pool::Lite(pool) => {
                let time = |t: String| {
                    t.parse::<DateTime<Utc>>()
                        .map_err(|_| StoreError::Permanent {
                            code: format!("corrupt row: a time of case {id} is {t:?}"),
                        })
                };
                let optional = |t: Option<String>| t.map(time).transpose();
                let (a, b, c, d, e, f, request): Deadlines<String> = sqlx::query_as(deadlines_sql)
                    .bind(id)
                    .fetch_one(pool)
                    .await?;
                let rows: Vec<StepRow<String>> =
                    sqlx::query_as(steps_sql).bind(id).fetch_all(pool).await?;
                let mut steps = Vec::with_capacity(rows.len());
                for r in rows {
                    steps.push((time(r.0)?, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9));
                }
                (
                    (
                        optional(a)?,
                        optional(b)?,
                        optional(c)?,
                        optional(d)?,
                        optional(e)?,
                        optional(f)?,
                        request,
                    ),
                    steps,
                )
            }
        };
        let (
            dispatched_at,
            accept_due_at,
            due_at,
            closed_at,
            callback_due_at,
            suspended_at,
            request,
        ) = deadlines;
        // The lead unit's extension or suspension request waiting for the centre.
        let request = request.and_then(|text| serde_json::from_str::<Value>(&text).ok());
        let deadlines = serde_json::json!({
            "dispatched_at": dispatched_at,
            "sign_for_due_at": accept_due_at,
            "due_at": due_at,
            "closed_at": closed_at,
            "callback_due_at": callback_due_at,
            "suspended_at": suspended_at,
            "pending_request": request,
        });
        let steps = rows
            .into_iter()
            .map(|r| Step {
                at: r.0,
                kind: r.1,
                from_status: r.2,
                to_status: r.3,
                actor: r.4,
                on_behalf_of: r.5,
                note: r.6,
                connector: r.7,
                message_id: r.8,
                media: r.9.and_then(|m| serde_json::from_str(&m).ok()),
            })
            .collect();
        Ok((deadlines, steps))
    }

    /// A confidential complainant's description is sealed at rest: opened
    /// here, or left out (and the failure logged) when it does not open.
    fn open_description(&self, case: &mut Value) {
        let id = case["id"].as_str().and_then(|id| id.parse().ok());
        let (Some(id), Some(Value::String(stored))) = (id, case.get_mut("description")) else {
            return;
        };
        if !Seal::is_sealed(stored) {
            return;
        }
        match self.seal.open(id, "description", Some(stored)) {
            Ok(opened) => *stored = opened.unwrap_or_default(),
            Err(error) => {
                tracing::error!(case_id = %id, error = %error, "cannot open a case's description");
                stored.clear();
            }
        }
    }
}
