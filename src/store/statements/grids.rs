//! The `grids`, `known_addresses` and `reference_versions` tables: the
//! district's grid division as the grid platform publishes it.

use crate::store::backend::{either, lite_now};
use crate::store::{StoreError, Tx};

pub(in crate::store) struct GridUpsert<'a> {
    pub grid_id: &'a str,
    pub community: &'a str,
    pub community_kind: Option<&'a str>,
    pub street: &'a str,
    /// JSON text: the outer ring.
    pub polygon: String,
    pub retired: bool,
}

impl Tx {
    pub(in crate::store) async fn upsert_grids(
        &mut self,
        grids: &[GridUpsert<'_>],
    ) -> Result<(), StoreError> {
        if grids.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Pg(tx) => {
                sqlx::query(
                    "INSERT INTO grids (grid_id, community, community_kind, street, polygon, retired)
                     SELECT grid_id, community, community_kind, street, polygon::jsonb, retired
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[])
                       AS g(grid_id, community, community_kind, street, polygon, retired)
                     ON CONFLICT (grid_id) DO UPDATE SET community = EXCLUDED.community,
                         community_kind = EXCLUDED.community_kind, street = EXCLUDED.street,
                         polygon = EXCLUDED.polygon, retired = EXCLUDED.retired, updated_at = now()",
                )
                .bind(grids.iter().map(|g| g.grid_id).collect::<Vec<_>>())
                .bind(grids.iter().map(|g| g.community).collect::<Vec<_>>())
                .bind(grids.iter().map(|g| g.community_kind).collect::<Vec<_>>())
                .bind(grids.iter().map(|g| g.street).collect::<Vec<_>>())
                .bind(grids.iter().map(|g| g.polygon.as_str()).collect::<Vec<_>>())
                .bind(grids.iter().map(|g| g.retired).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                for g in grids {
                    sqlx::query(concat!(
                        "INSERT INTO grids (grid_id, community, community_kind, street, polygon, retired)
                         VALUES ($1, $2, $3, $4, json($5), $6)
                         ON CONFLICT (grid_id) DO UPDATE SET community = excluded.community,
                             community_kind = excluded.community_kind, street = excluded.street,
                             polygon = excluded.polygon, retired = excluded.retired, updated_at = ",
                        lite_now!()
                    ))
                    .bind(g.grid_id)
                    .bind(g.community)
                    .bind(g.community_kind)
                    .bind(g.street)
                    .bind(&g.polygon)
                    .bind(g.retired)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Known addresses: (address, grid_id), one row per address.
    pub(in crate::store) async fn upsert_addresses(
        &mut self,
        addresses: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if addresses.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Pg(tx) => {
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
            #[cfg(feature = "sqlite")]
            Tx::Lite(tx) => {
                for (address, grid_id) in addresses {
                    sqlx::query(concat!(
                        "INSERT INTO known_addresses (address, grid_id) VALUES ($1, $2)
                         ON CONFLICT (address) DO UPDATE SET grid_id = excluded.grid_id, updated_at = ",
                        lite_now!()
                    ))
                    .bind(*address)
                    .bind(*grid_id)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }

    pub(in crate::store) async fn bump_grid_version(&mut self) -> Result<(), StoreError> {
        either!(tx self, |tx, _uuid, _time| {
            sqlx::query("UPDATE reference_versions SET version = version + 1 WHERE name = 'grids'")
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }
}
