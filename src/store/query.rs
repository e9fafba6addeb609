//! Read side: what the CLI and, later, the console show.

use serde_json::Value;

use super::{Pool, Store, StoreError};

impl Store {
    /// The most recent cases as unified-case JSON (schemas/hub/case.v1.json),
    /// newest first. No personal data: reporters are not included.
    pub async fn cases(&self, limit: i64) -> Result<Vec<Value>, StoreError> {
        let pool = match &self.pool {
            Pool::Pg(pool) => pool,
            Pool::Lite(pool) => return lite_cases(pool, limit).await,
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
             ORDER BY c.created_at DESC, c.case_no DESC
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }
}

/// The same JSON from SQLite: JSON columns go in with `json()`, booleans
/// (integers there) as JSON booleans.
async fn lite_cases(pool: &sqlx::SqlitePool, limit: i64) -> Result<Vec<Value>, StoreError> {
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
         ORDER BY c.created_at DESC, c.case_no DESC
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(v,)| v.0).collect())
}
