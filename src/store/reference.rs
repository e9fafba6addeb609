//! Reference data: records shared onward (masked for each destination), and
//! the district's grid division.

use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};

use super::{Applied, Rules, StoreError, outbox};
use crate::district::GridShape;
use crate::intent::{ShareRecords, UpdateGrids};
use crate::pipeline::{Refusal, Stage};
use crate::privacy;
use crate::store::OutboxEvent;

/// Forwards shared records to each destination the sender's connector.toml
/// names for the dataset, disclosed as each destination's `privacy.records`
/// allows. The hub keeps none of them.
pub(super) async fn share(
    tx: &mut Transaction<'_, Postgres>,
    connector: &str,
    message_id: &str,
    share: &ShareRecords,
    rules: &Rules,
) -> Result<Applied, StoreError> {
    let Some(config) = rules.registry.get(connector) else {
        return Ok(Applied::Refused(Refusal::new(
            Stage::Apply,
            format!("unknown connector {connector}"),
        )));
    };
    let Some(shares) = config
        .config
        .shares
        .iter()
        .find(|s| s.dataset == share.dataset)
    else {
        return Ok(Applied::Refused(Refusal::new(
            Stage::Apply,
            format!(
                "connector {connector} does not share dataset {}",
                share.dataset
            ),
        )));
    };
    let mut events = Vec::new();
    for destination in &shares.to {
        let level = rules
            .registry
            .get(destination)
            .map(|c| c.config.privacy.records)
            .unwrap_or_default();
        let records: Vec<Value> = share
            .records
            .iter()
            .map(|record| Value::Object(privacy::disclose(record, level)))
            .collect();
        events.push(OutboxEvent::new(
            destination,
            "records.shared",
            json!({
                "dataset": share.dataset,
                "from": connector,
                "source_message_id": message_id,
                "disclosure": level,
                "records": records,
            }),
        ));
    }
    outbox::insert(tx, &events).await?;
    Ok(Applied::RecordsShared {
        records: share.records.len(),
        destinations: shares.to.len(),
    })
}

/// Upserts grids and known addresses and bumps the reference version, so
/// every hub reloads its index.
pub(super) async fn update_grids(
    tx: &mut Transaction<'_, Postgres>,
    update: &UpdateGrids,
) -> Result<Applied, StoreError> {
    if !update.grids.is_empty() {
        sqlx::query(
            "INSERT INTO grids (grid_id, community, community_kind, street, polygon, retired)
             SELECT grid_id, community, community_kind, street, polygon::jsonb, retired
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[])
               AS g(grid_id, community, community_kind, street, polygon, retired)
             ON CONFLICT (grid_id) DO UPDATE SET community = EXCLUDED.community,
                 community_kind = EXCLUDED.community_kind, street = EXCLUDED.street,
                 polygon = EXCLUDED.polygon, retired = EXCLUDED.retired, updated_at = now()",
        )
        .bind(
            update
                .grids
                .iter()
                .map(|g| g.grid_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            update
                .grids
                .iter()
                .map(|g| g.community.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            update
                .grids
                .iter()
                .map(|g| g.community_kind.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            update
                .grids
                .iter()
                .map(|g| g.street.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            update
                .grids
                .iter()
                .map(|g| json!(g.polygon).to_string())
                .collect::<Vec<_>>(),
        )
        .bind(update.grids.iter().map(|g| g.retired).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !update.addresses.is_empty() {
        let mut addresses: Vec<(&str, &str)> = update
            .addresses
            .iter()
            .map(|a| (a.address.as_str(), a.grid_id.as_str()))
            .collect();
        // One row per address (a statement may not touch a row twice): the last wins.
        addresses.reverse();
        let mut seen = std::collections::HashSet::new();
        addresses.retain(|(a, _)| seen.insert(*a));
        sqlx::query(
            "INSERT INTO known_addresses (address, grid_id)
             SELECT * FROM UNNEST($1::text[], $2::text[])
             ON CONFLICT (address) DO UPDATE SET grid_id = EXCLUDED.grid_id, updated_at = now()",
        )
        .bind(addresses.iter().map(|(a, _)| *a).collect::<Vec<_>>())
        .bind(addresses.iter().map(|(_, g)| *g).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE reference_versions SET version = version + 1 WHERE name = 'grids'")
        .execute(&mut **tx)
        .await?;
    Ok(Applied::GridsUpdated {
        grids: update.grids.len(),
    })
}

/// The grid reference data, for building the hub's index.
#[derive(Debug, Clone, Default)]
pub struct GridData {
    pub version: i64,
    pub grids: Vec<GridShape>,
    /// (address, grid_id)
    pub addresses: Vec<(String, String)>,
}

#[derive(sqlx::FromRow)]
struct GridRow {
    grid_id: String,
    community: String,
    community_kind: Option<String>,
    street: String,
    polygon: sqlx::types::Json<Vec<[f64; 2]>>,
}

/// Current version of the grid reference data.
pub async fn grid_version(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM reference_versions WHERE name = 'grids'")
            .fetch_one(pool)
            .await?,
    )
}

/// Loads every live grid and known address.
pub async fn load_grids(pool: &PgPool) -> Result<GridData, StoreError> {
    let mut tx = pool.begin().await?;
    let version: i64 =
        sqlx::query_scalar("SELECT version FROM reference_versions WHERE name = 'grids'")
            .fetch_one(&mut *tx)
            .await?;
    let rows: Vec<GridRow> = sqlx::query_as(
        "SELECT grid_id, community, community_kind, street, polygon FROM grids WHERE NOT retired ORDER BY grid_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let addresses: Vec<(String, String)> =
        sqlx::query_as("SELECT address, grid_id FROM known_addresses ORDER BY address")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(GridData {
        version,
        grids: rows
            .into_iter()
            .map(|row| GridShape {
                grid_id: row.grid_id,
                community: row.community,
                community_kind: row.community_kind.unwrap_or_default(),
                street: row.street,
                polygon: row.polygon.0,
            })
            .collect(),
        addresses,
    })
}
