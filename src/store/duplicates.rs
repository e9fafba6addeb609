//! Which locks a batch takes before it looks for duplicates of its cases.
//!
//! Two transactions opening cases that may duplicate each other (same
//! category, within the radius) must not both miss the other: one waits
//! for the other's commit, then reads what it committed. A case can only
//! duplicate one within the radius, so the locks are per category and
//! place, and batches opening cases in different places do not wait for
//! each other:
//!
//! - every category the batch opens located cases in is locked *shared*,
//!   and then every cell of a fixed grid ([`CELL_SIDE_M`]) that the radius
//!   around each case touches is locked exclusively, per category. Two
//!   cases within the radius of each other both lock the cell of the later
//!   one, so their transactions take turns. The grid does not depend on the
//!   radius, so hubs with different radii (during a change of
//!   `routing.toml`) still meet: the later case's radius covers the earlier
//!   case's cell.
//! - a case whose radius touches more than three cells a side (a radius
//!   of the order of the grid, or a place near a pole) has its category
//!   locked whole.
//! - a category whose cells would take the batch past [`CELL_LOCKS`] (a full
//!   batch of tickets spread over the district) is locked *whole*,
//!   exclusively, and its cells are not locked: that excludes every other
//!   transaction of the category, as hubs before the cell locks did with
//!   the same lock, so hubs of both kinds exclude each other during a
//!   rolling upgrade.
//!
//! The lock keys are PostgreSQL's `hashtext` of these texts, so that every
//! hub computes the same ones (migrations 0006 and 0007):
//! `gridhub.duplicates.<category>` for a category, and the pair of it and
//! `<column>,<row>` for a cell. The grid is part of that protocol: hubs
//! with different grids must not run at once.
//!
//! The grid does not wrap at the antimeridian: two cases on either side of
//! longitude 180 would not meet. A district does not straddle it.

use std::collections::{BTreeMap, BTreeSet};

/// Metres in a degree of latitude on the sphere the hub measures distances
/// on (`open::distance_m`, radius 6,371 km).
const METRES_PER_DEGREE: f64 = 6_371_000.0 * std::f64::consts::PI / 180.0;

/// The side of a cell, in metres of latitude (a degree of longitude is
/// shorter away from the equator, so cells are narrower in metres than
/// tall).
pub const CELL_SIDE_M: f64 = 1000.0;

/// At most this many cell locks a batch; past it, categories are locked whole.
pub const CELL_LOCKS: usize = 128;

/// [`CELL_SIDE_M`] in degrees (of latitude, and of longitude alike).
const SIDE_DEG: f64 = CELL_SIDE_M / METRES_PER_DEGREE;

/// A case whose radius touches more cells than this per axis (a radius
/// of the order of the grid, or infinite) locks its category whole.
const MAX_CELLS_PER_AXIS: i64 = 3;

/// The locks one batch takes: categories shared or whole, and cells.
#[derive(Debug, Default, PartialEq)]
pub struct LockPlan {
    /// Every category with a located case, in order.
    pub categories: Vec<String>,
    /// Those locked whole (exclusively); the others are locked shared.
    pub whole: Vec<String>,
    /// (category, cell) locked exclusively, as parallel arrays.
    pub cell_categories: Vec<String>,
    pub cells: Vec<String>,
}

impl LockPlan {
    /// The plan for located cases: (category, longitude, latitude), with
    /// duplicates within `radius_m` metres.
    pub fn new<'a>(cases: impl IntoIterator<Item = (&'a str, f64, f64)>, radius_m: f64) -> Self {
        let grid = Grid::new(radius_m);
        let mut by_category: BTreeMap<&str, Option<BTreeSet<(i64, i64)>>> = BTreeMap::new();
        for (category, lon, lat) in cases {
            let cells = by_category
                .entry(category)
                .or_insert_with(|| Some(BTreeSet::new()));
            if let Some(set) = cells {
                match grid.cells_near(lon, lat) {
                    Some(near) => set.extend(near),
                    None => *cells = None,
                }
            }
        }
        let mut plan = LockPlan::default();
        let mut budget = CELL_LOCKS;
        for (category, cells) in by_category {
            plan.categories.push(category.to_owned());
            match cells {
                Some(cells) if cells.len() <= budget => {
                    budget -= cells.len();
                    for (column, row) in cells {
                        plan.cell_categories.push(category.to_owned());
                        plan.cells.push(format!("{column},{row}"));
                    }
                }
                _ => plan.whole.push(category.to_owned()),
            }
        }
        plan
    }

    /// Locks a category whole: for a case placed without a point (by
    /// address alone), whose duplicates are found by grid or community,
    /// which no cell covers. Its cells are not locked.
    pub fn lock_whole(&mut self, category: &str) {
        if let Err(at) = self
            .categories
            .binary_search_by(|c| c.as_str().cmp(category))
        {
            self.categories.insert(at, category.to_owned());
        }
        if !self.whole.iter().any(|c| c == category) {
            self.whole.push(category.to_owned());
            self.whole.sort();
        }
        let keep: Vec<bool> = self.cell_categories.iter().map(|c| c != category).collect();
        let mut k = keep.iter();
        self.cell_categories.retain(|_| *k.next().unwrap_or(&true));
        let mut k = keep.iter();
        self.cells.retain(|_| *k.next().unwrap_or(&true));
    }
}

/// The radius around a case, on the grid of [`SIDE_DEG`] degrees a side.
struct Grid {
    radius_m: f64,
}

impl Grid {
    fn new(radius_m: f64) -> Self {
        Grid {
            radius_m: radius_m.max(0.0),
        }
    }

    /// Every cell holding a point within the radius of (lon, lat), or None
    /// when that is more than [`MAX_CELLS_PER_AXIS`] a side or the radius
    /// reaches within a degree of a pole.
    fn cells_near(&self, lon: f64, lat: f64) -> Option<Vec<(i64, i64)>> {
        // Bounds of the radius in degrees, widened by 1% for the sphere's
        // curvature within it: a point within the radius differs by at
        // most `dlat` in latitude, and, at most `dlon` in longitude at the
        // highest latitude either point can have.
        let dlat = 1.01 * self.radius_m / METRES_PER_DEGREE;
        let highest = lat.abs() + dlat;
        if !highest.is_finite() || highest >= 89.0 {
            return None;
        }
        let highest = highest.to_radians();
        let dlon = dlat / highest.cos();
        let span = |low: f64, high: f64| {
            let (first, last) = ((low / SIDE_DEG).floor(), (high / SIDE_DEG).floor());
            (first.is_finite() && last.is_finite() && last - first < MAX_CELLS_PER_AXIS as f64)
                .then_some((first as i64, last as i64))
        };
        let (west, east) = span(lon - dlon, lon + dlon)?;
        let (south, north) = span(lat - dlat, lat + dlat)?;
        Some(
            (west..=east)
                .flat_map(|column| (south..=north).map(move |row| (column, row)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open::distance_m;

    /// The cell a point lies in.
    fn cell_of(lon: f64, lat: f64) -> (i64, i64) {
        (
            (lon / SIDE_DEG).floor() as i64,
            (lat / SIDE_DEG).floor() as i64,
        )
    }

    #[test]
    fn every_point_within_the_radius_lies_in_a_locked_cell() {
        let grid = Grid::new(50.0);
        // Around Tongzhou, and far north where a degree of longitude is short.
        for (lon, lat) in [(116.6562, 39.9097), (116.70, 39.8935), (25.0, 70.0)] {
            let near = grid.cells_near(lon, lat).expect("cells");
            assert!(near.len() <= 9, "{} cells", near.len());
            // Points on rings of 10 to 50 m, every 5 degrees of bearing.
            for ring in [10.0, 25.0, 49.9] {
                for step in 0..72 {
                    let bearing = f64::from(step * 5).to_radians();
                    let dlat = ring * bearing.cos() / METRES_PER_DEGREE;
                    let dlon = ring * bearing.sin() / (METRES_PER_DEGREE * lat.to_radians().cos());
                    let (plon, plat) = (lon + dlon, lat + dlat);
                    if distance_m((lon, lat), (plon, plat)) <= 50.0 {
                        assert!(
                            near.contains(&cell_of(plon, plat)),
                            "({plon}, {plat}) is {} m away and not covered",
                            distance_m((lon, lat), (plon, plat))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_case_locks_its_own_cell_and_no_more_than_four() {
        let grid = Grid::new(50.0);
        let (lon, lat) = (116.6562, 39.9097);
        let near = grid.cells_near(lon, lat).unwrap();
        assert!(near.contains(&cell_of(lon, lat)));
        // A radius much smaller than a cell spans at most two cells a side.
        assert!(near.len() <= 4, "{near:?}");
    }

    #[test]
    fn hubs_with_different_radii_lock_cells_of_one_grid() {
        // Case a opened by a hub with a 50 m radius; case b, 150 m north,
        // by one with 200 m: b's locks cover a's own cell.
        let (a, b) = (
            (116.6562, 39.9097),
            (116.6562, 39.9097 + 150.0 / METRES_PER_DEGREE),
        );
        // a's cell is one whatever a's hub's radius: no radius goes into it.
        let wide = Grid::new(200.0);
        assert!(
            wide.cells_near(b.0, b.1)
                .unwrap()
                .contains(&cell_of(a.0, a.1))
        );
    }

    #[test]
    fn near_a_pole_the_category_is_locked_whole() {
        let plan = LockPlan::new([("noise.construction", 0.0, 89.5)], 50.0);
        assert_eq!(plan.whole, ["noise.construction"]);
    }

    #[test]
    fn cases_far_apart_lock_different_cells_and_share_their_category() {
        let plan = LockPlan::new(
            [
                ("noise.construction", 116.6562, 39.9097),
                ("noise.construction", 116.7000, 39.8500),
                ("road.damage", 116.6562, 39.9097),
            ],
            50.0,
        );
        assert_eq!(plan.categories, ["noise.construction", "road.damage"]);
        assert!(plan.whole.is_empty());
        let cells_of = |category: &str| -> Vec<&String> {
            plan.cell_categories
                .iter()
                .zip(&plan.cells)
                .filter(|(c, _)| *c == category)
                .map(|(_, cell)| cell)
                .collect()
        };
        let (noise, road) = (cells_of("noise.construction"), cells_of("road.damage"));
        assert!(noise.len() >= 2 && !road.is_empty());
        // The same place in another category: the same cells, another lock.
        assert!(road.iter().all(|cell| noise.contains(cell)));
    }

    #[test]
    fn past_the_budget_a_category_is_locked_whole() {
        // Cases 1 km apart along a line: one to four cells each.
        let spread: Vec<_> = (0..200)
            .map(|n| ("noise.construction", 116.0 + f64::from(n) * 0.012, 39.9))
            .collect();
        let plan = LockPlan::new(spread.clone(), 50.0);
        assert_eq!(plan.whole, ["noise.construction"]);
        assert!(plan.cells.is_empty());
        // A category that fits keeps its cells beside one that does not.
        let mut mixed = spread;
        mixed.push(("road.damage", 116.6562, 39.9097));
        let plan = LockPlan::new(mixed, 50.0);
        assert_eq!(plan.whole, ["noise.construction"]);
        assert!(!plan.cells.is_empty());
        assert!(plan.cell_categories.iter().all(|c| c == "road.damage"));
        assert!(plan.cells.len() <= CELL_LOCKS);
    }

    #[test]
    fn a_case_without_a_point_locks_its_category_whole_and_no_cell_of_it() {
        let mut plan = LockPlan::new([("road", 116.7, 39.9), ("noise", 116.7, 39.9)], 50.0);
        assert!(plan.whole.is_empty());
        plan.lock_whole("noise");
        plan.lock_whole("garbage");
        plan.lock_whole("noise");
        assert_eq!(plan.categories, ["garbage", "noise", "road"]);
        assert_eq!(plan.whole, ["garbage", "noise"]);
        assert!(plan.cell_categories.iter().all(|c| c == "road"));
        assert_eq!(plan.cell_categories.len(), plan.cells.len());
        assert!(!plan.cells.is_empty());
    }

    #[test]
    fn a_radius_that_is_not_a_distance_locks_the_category_whole() {
        for radius in [f64::INFINITY, 1.0e9] {
            let plan = LockPlan::new([("noise.construction", 116.6562, 39.9097)], radius);
            assert_eq!(plan.whole, ["noise.construction"], "{radius}");
        }
        // A radius of 0 or below: the case's own cell.
        for radius in [0.0, -5.0, f64::NAN] {
            let plan = LockPlan::new([("noise.construction", 116.6562, 39.9097)], radius);
            assert!(plan.whole.is_empty(), "{radius}");
            assert_eq!(plan.cells.len(), 1, "{radius}");
        }
    }
}
