//! Where a case is: the grid, community and street/township it belongs to,
//! and how the hub knows.

use serde::Serialize;

use crate::district::{Gazetteer, GridIndex, GridRef, Placement};
use crate::intent::Place;

/// How a case was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocatedBy {
    /// Its coordinates fall in a grid's boundary.
    Coordinates,
    /// The source named the grid (a grid worker's report).
    GridGiven,
    /// Its address is a known address of a grid.
    KnownAddress,
    /// Only its community/village could be found (from the address text).
    Community,
    /// Only its street/township could be found.
    Street,
    /// Nothing matched: it goes to the district centre's triage.
    Unplaced,
}

impl LocatedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            LocatedBy::Coordinates => "coordinates",
            LocatedBy::GridGiven => "grid_given",
            LocatedBy::KnownAddress => "known_address",
            LocatedBy::Community => "community",
            LocatedBy::Street => "street",
            LocatedBy::Unplaced => "unplaced",
        }
    }
}

/// The result of placing a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub grid_id: Option<String>,
    pub community: Option<String>,
    pub street: Option<String>,
    pub located_by: LocatedBy,
}

impl Location {
    pub fn unplaced() -> Location {
        Location {
            grid_id: None,
            community: None,
            street: None,
            located_by: LocatedBy::Unplaced,
        }
    }

    /// What routing knows of the place.
    pub fn placed(&self) -> crate::routing::Placed {
        crate::routing::Placed::of(
            self.grid_id.is_some(),
            self.community.is_some(),
            self.street.is_some(),
        )
    }
}

/// Places cases. Implemented over the district's grid reference data.
pub trait Locate: Send + Sync {
    fn locate(&self, place: &Place) -> Location;
}

/// Before any grid data has arrived: nothing can be placed.
pub struct NoGrids;

impl Locate for NoGrids {
    fn locate(&self, _place: &Place) -> Location {
        Location::unplaced()
    }
}

/// Loads the grid data and builds the locator: (version, locator).
pub async fn load(
    store: &crate::store::Store,
) -> Result<(i64, std::sync::Arc<dyn Locate>), crate::store::StoreError> {
    let data = store.load_grids().await?;
    Ok((data.version, from_data(data)))
}

/// Builds the locator from loaded grid data; with no grids, nothing can be placed.
pub fn from_data(data: crate::store::reference::GridData) -> std::sync::Arc<dyn Locate> {
    if data.grids.is_empty() {
        return std::sync::Arc::new(NoGrids);
    }
    let shapes = data.grids;
    let gazetteer = Gazetteer::build(&shapes, &data.addresses);
    std::sync::Arc::new(Places {
        index: GridIndex::build(shapes),
        gazetteer,
    })
}

/// The district's grids behind a spatial index, and its gazetteer.
pub struct Places {
    index: GridIndex,
    gazetteer: Gazetteer,
}

impl Places {
    pub fn new(index: GridIndex, gazetteer: Gazetteer) -> Places {
        Places { index, gazetteer }
    }
}

fn at_grid(grid: &GridRef, located_by: LocatedBy) -> Location {
    Location {
        grid_id: Some(grid.grid_id.clone()),
        community: Some(grid.community.clone()),
        street: Some(grid.street.clone()),
        located_by,
    }
}

impl Locate for Places {
    /// A grid the source names, then coordinates, then the gazetteer (known
    /// address, community, street); otherwise unplaced, never guessed.
    fn locate(&self, place: &Place) -> Location {
        if let Some(grid) = place.grid_id.as_deref().and_then(|id| self.index.get(id)) {
            return at_grid(grid, LocatedBy::GridGiven);
        }
        if let (Some(lon), Some(lat)) = (place.lon, place.lat)
            && let Some(grid) = self.index.locate(lon, lat)
        {
            return at_grid(grid, LocatedBy::Coordinates);
        }
        match self.gazetteer.place(
            place.address.as_deref(),
            place.street.as_deref(),
            place.community.as_deref(),
        ) {
            Some(Placement::Grid(grid)) => at_grid(&grid, LocatedBy::KnownAddress),
            Some(Placement::Community { community, street }) => Location {
                grid_id: None,
                community: Some(community),
                street: Some(street),
                located_by: LocatedBy::Community,
            },
            Some(Placement::Street { street }) => Location {
                grid_id: None,
                community: None,
                street: Some(street),
                located_by: LocatedBy::Street,
            },
            None => Location::unplaced(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::district;

    fn places() -> (Places, district::District) {
        let d = district::generate(district::DEFAULT_SEED);
        let gazetteer = Gazetteer::build(&d.grids, &d.addresses);
        (Places::new(GridIndex::build(d.grids.clone()), gazetteer), d)
    }

    #[test]
    fn coordinates_given_grids_and_addresses_place_a_case() {
        let (places, d) = places();
        let grid = &d.grids[100];
        let (lon, lat) = grid.polygon[..grid.polygon.len() - 1]
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        let n = (grid.polygon.len() - 1) as f64;
        let by_point = places.locate(&Place {
            lon: Some(lon / n),
            lat: Some(lat / n),
            ..Place::default()
        });
        assert_eq!(by_point.grid_id.as_deref(), Some(grid.grid_id.as_str()));
        assert_eq!(by_point.located_by, LocatedBy::Coordinates);
        let given = places.locate(&Place {
            grid_id: Some(grid.grid_id.clone()),
            ..Place::default()
        });
        assert_eq!(given.located_by, LocatedBy::GridGiven);
        let (address, grid_id) = &d.addresses[7];
        let known = places.locate(&Place {
            address: Some(format!("北京市通州区{address}")),
            ..Place::default()
        });
        assert_eq!(known.grid_id.as_ref(), Some(grid_id));
        assert_eq!(known.located_by, LocatedBy::KnownAddress);
    }

    #[test]
    fn nothing_matching_is_unplaced() {
        let (places, _) = places();
        let nowhere = places.locate(&Place {
            address: Some("某地某处".into()),
            lon: Some(120.0),
            lat: Some(30.0),
            ..Place::default()
        });
        assert_eq!(nowhere, Location::unplaced());
    }
}

/// The district's places as the hub knows them now: read by every batch
/// and every scan, replaced when the grid data changes. Cheap to clone.
#[derive(Clone)]
pub struct Current(std::sync::Arc<std::sync::RwLock<std::sync::Arc<dyn Locate>>>);

impl Current {
    pub fn new(places: std::sync::Arc<dyn Locate>) -> Current {
        Current(std::sync::Arc::new(std::sync::RwLock::new(places)))
    }

    /// The places now. A writer that panicked left the places it last set
    /// whole (replacing an `Arc` cannot be seen half done): they are read.
    pub fn get(&self) -> std::sync::Arc<dyn Locate> {
        match self.0.read() {
            Ok(places) => places.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, places: std::sync::Arc<dyn Locate>) {
        let mut slot = match self.0.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = places;
    }
}
