//! Read side: what the CLI and, later, the console show.

use serde_json::Value;

use super::{Pool, Store, StoreError};

impl Store {
    /// The most recent cases as unified-case JSON (schemas/hub/case.v1.json),
    /// newest first. No personal data: reporters are not included.
    /// The newest cases, at most `limit`; with `scope`, only those that
    /// concern one of these connectors (as lead unit, assisting unit or
    /// source).
    pub async fn cases(
        &self,
        limit: i64,
        scope: Option<&[String]>,
    ) -> Result<Vec<Value>, StoreError> {
        let pool = match &self.pool {
            Pool::Pg(pool) => pool,
            Pool::Lite(pool) => {
                let mut cases = lite_cases(pool, limit, scope).await?;
                cases
                    .iter_mut()
                    .for_each(|case| self.open_description(case));
                return Ok(cases);
            }
        };
        let rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT jsonb_build_object(
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
                                     FROM case_sources s WHERE s.case_id = c.id), '[]'::jsonb)
             )
             FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
             WHERE $2::text[] IS NULL OR c.lead_unit = ANY($2) OR c.assisting_units && $2
                OR EXISTS (SELECT 1 FROM case_sources s WHERE s.case_id = c.id AND s.connector = ANY($2))
             ORDER BY c.created_at DESC, c.case_no DESC
             LIMIT $1",
        )
        .bind(limit)
        .bind(scope)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(mut case,)| {
                self.open_description(&mut case);
                case
            })
            .collect())
    }

    /// A confidential complainant's description is sealed at rest: opened
    /// here, or left out (and the failure logged) when it does not open.
    fn open_description(&self, case: &mut Value) {
        let id = case["id"].as_str().and_then(|id| id.parse().ok());
        let (Some(id), Some(Value::String(stored))) = (id, case.get_mut("description")) else {
            return;
        };
        match self.seal.open(id, "description", Some(stored)) {
            Ok(opened) => *stored = opened.unwrap_or_default(),
            Err(error) => {
                tracing::error!(case_id = %id, error = %error, "cannot open a case's description");
                stored.clear();
            }
        }
    }
}

/// The same JSON from SQLite: JSON columns go in with `json()`, booleans
/// (integers there) as JSON booleans.
async fn lite_cases(
    pool: &sqlx::SqlitePool,
    limit: i64,
    scope: Option<&[String]>,
) -> Result<Vec<Value>, StoreError> {
    let rows: Vec<(sqlx::types::Json<Value>,)> = sqlx::query_as(
        "SELECT json_object(
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
                        FROM (SELECT * FROM case_sources WHERE case_id = c.id ORDER BY received_at) s)
         )
         FROM cases c LEFT JOIN cases p ON p.id = c.parent_case_id
         WHERE $2 IS NULL OR c.lead_unit IN (SELECT value FROM json_each($2))
            OR EXISTS (SELECT 1 FROM json_each(c.assisting_units) a
                       WHERE a.value IN (SELECT value FROM json_each($2)))
            OR EXISTS (SELECT 1 FROM case_sources s
                       WHERE s.case_id = c.id AND s.connector IN (SELECT value FROM json_each($2)))
         ORDER BY c.created_at DESC, c.case_no DESC
         LIMIT $1",
    )
    .bind(limit)
    .bind(scope.map(|s| serde_json::to_string(s).unwrap_or_default()))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(v,)| v.0).collect())
}
