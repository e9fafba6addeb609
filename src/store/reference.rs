//! Reference data: records shared onward (masked for each destination), and
//! the district's grid division.

use serde_json::json;

use super::backend::either;
use super::statements::GridUpsert;
use super::{Applied, Rules, Store, StoreError, Tx};
use crate::connector::Disclosure;
use crate::district::GridShape;
use crate::intent::{ShareRecords, UpdateGrids};
use crate::pipeline::{Refusal, Stage};
use crate::privacy;
use crate::store::OutboxEvent;

/// A `records.shared` event's payload, written straight from the records
/// received.
#[derive(serde::Serialize)]
struct Shared<'a> {
    dataset: &'a str,
    from: &'a str,
    source_message_id: &'a str,
    disclosure: Disclosure,
    records: Vec<privacy::Disclosed<'a>>,
}

/// Forwards shared records to each destination the sender's connector.toml
/// names for the dataset, disclosed as each destination's `privacy.records`
/// allows. The hub keeps them only in the outbox rows that carry them, which
/// are deleted once sent and past `outbox_retention_hours`. The events join
/// `out`, which the batch writes to the outbox in one statement.
pub(super) fn share(
    connector: &str,
    message_type: &str,
    message_id: &str,
    share: &ShareRecords,
    rules: &Rules,
    out: &mut Vec<OutboxEvent>,
) -> Applied {
    let Some(config) = rules.registry.get(connector) else {
        return Applied::Refused(Refusal::new(
            Stage::Apply,
            format!("unknown connector {connector}"),
        ));
    };
    let Some(shares) = config
        .config
        .shares
        .iter()
        .find(|s| s.dataset == share.dataset)
    else {
        return Applied::Refused(Refusal::new(
            Stage::Apply,
            format!(
                "connector {connector} does not share dataset {}",
                share.dataset
            ),
        ));
    };
    let personal = config
        .messages
        .get(message_type)
        .map_or(privacy::Personal::standard(), |m| &m.personal);
    for destination in &shares.to {
        let level = rules
            .registry
            .get(destination)
            .map(|c| c.config.privacy.records)
            .unwrap_or_default();
        let records: Vec<_> = share
            .records
            .iter()
            .map(|record| privacy::Disclosed {
                record,
                level,
                personal,
            })
            .collect();
        out.push(OutboxEvent::new(
            destination,
            "records.shared",
            &Shared {
                dataset: &share.dataset,
                from: connector,
                source_message_id: message_id,
                disclosure: level,
                records,
            },
        ));
    }
    Applied::RecordsShared {
        records: share.records.len(),
        destinations: shares.to.len(),
    }
}

/// Upserts grids and known addresses and bumps the reference version, so
/// every hub reloads its index.
pub(super) async fn update_grids(tx: &mut Tx, update: &UpdateGrids) -> Result<Applied, StoreError> {
    let grids: Vec<GridUpsert<'_>> = update
        .grids
        .iter()
        .map(|g| GridUpsert {
            grid_id: &g.grid_id,
            community: &g.community,
            community_kind: g.community_kind.as_deref(),
            street: &g.street,
            polygon: json!(g.polygon).to_string(),
            retired: g.retired,
        })
        .collect();
    tx.upsert_grids(&grids).await?;
    let mut addresses: Vec<(&str, &str)> = update
        .addresses
        .iter()
        .map(|a| (a.address.as_str(), a.grid_id.as_str()))
        .collect();
    // One row per address (a statement may not touch a row twice): the last wins.
    addresses.reverse();
    let mut seen = std::collections::HashSet::new();
    addresses.retain(|(a, _)| seen.insert(*a));
    tx.upsert_addresses(&addresses).await?;
    tx.bump_grid_version().await?;
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

impl GridRow {
    fn shape(self) -> GridShape {
        GridShape {
            grid_id: self.grid_id,
            community: self.community,
            community_kind: self.community_kind.unwrap_or_default(),
            street: self.street,
            polygon: self.polygon.0,
        }
    }
}

const GRID_VERSION: &str = "SELECT version FROM reference_versions WHERE name = 'grids'";
const GRIDS: &str = "SELECT grid_id, community, community_kind, street, polygon FROM grids WHERE NOT retired ORDER BY grid_id";
const ADDRESSES: &str = "SELECT address, grid_id FROM known_addresses ORDER BY address";

impl Store {
    /// Current version of the grid reference data.
    pub async fn grid_version(&self) -> Result<i64, StoreError> {
        Ok(either!(pool & self.pool, |pool| sqlx::query_scalar(
            GRID_VERSION
        )
        .fetch_one(pool)
        .await?))
    }

    /// The live grids of a community (in its street), or of a whole street
    /// when no community is given.
    pub async fn grids_of(
        &self,
        street: &str,
        community: Option<&str>,
    ) -> Result<Vec<GridShape>, StoreError> {
        let rows: Vec<GridRow> = either!(pool & self.pool, |pool| sqlx::query_as(
            "SELECT grid_id, community, community_kind, street, polygon FROM grids
             WHERE NOT retired AND street = $1 AND ($2 IS NULL OR community = $2)
             ORDER BY grid_id"
        )
        .bind(street)
        .bind(community)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(GridRow::shape).collect())
    }

    /// Loads every live grid and known address (one consistent snapshot).
    pub async fn load_grids(&self) -> Result<GridData, StoreError> {
        let (version, rows, addresses): (i64, Vec<GridRow>, Vec<(String, String)>) =
            either!(pool & self.pool, |pool| {
                let mut tx = pool.begin().await?;
                let version = sqlx::query_scalar(GRID_VERSION).fetch_one(&mut *tx).await?;
                let rows = sqlx::query_as(GRIDS).fetch_all(&mut *tx).await?;
                let addresses = sqlx::query_as(ADDRESSES).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                (version, rows, addresses)
            });
        Ok(GridData {
            version,
            grids: rows.into_iter().map(GridRow::shape).collect(),
            addresses,
        })
    }
}
