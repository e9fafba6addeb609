//! Finding the grid of a point.

use std::collections::HashMap;

use geo::{Coord, Intersects, LineString, Point, Polygon};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use super::GridShape;

/// A grid as cases refer to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridRef {
    /// The grid's id, e.g. `YQ-004-02`.
    pub grid_id: String,
    /// Name of its community or village.
    pub community: String,
    /// Full name of its street or township.
    pub street: String,
}

/// A spatial index of grids: an R-tree of the polygons' bounding boxes, and
/// an exact point-in-polygon test on the few candidates it returns.
///
/// A point on the boundary of several grids (a shared edge or vertex) is in
/// the grid with the lowest id, so the answer never depends on the order of
/// the grids. A point outside every grid is in none.
pub struct GridIndex {
    refs: Vec<GridRef>,
    polygons: Vec<Polygon<f64>>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    by_id: HashMap<String, usize>,
}

impl GridIndex {
    /// Builds the index. A grid whose id repeats an earlier one is left out;
    /// a grid without any point is kept for [`GridIndex::get`] but contains
    /// no point.
    pub fn build(grids: Vec<GridShape>) -> GridIndex {
        let mut refs = Vec::with_capacity(grids.len());
        let mut polygons = Vec::with_capacity(grids.len());
        let mut boxes = Vec::with_capacity(grids.len());
        let mut by_id = HashMap::with_capacity(grids.len());
        for grid in grids {
            if by_id.contains_key(&grid.grid_id) {
                continue;
            }
            let k = refs.len();
            by_id.insert(grid.grid_id.clone(), k);
            let ring: Vec<Coord<f64>> = grid.polygon.iter().map(|&[x, y]| Coord { x, y }).collect();
            if let Some(first) = ring.first() {
                let (mut lo, mut hi) = ([first.x, first.y], [first.x, first.y]);
                for c in &ring {
                    lo = [lo[0].min(c.x), lo[1].min(c.y)];
                    hi = [hi[0].max(c.x), hi[1].max(c.y)];
                }
                boxes.push(GeomWithData::new(Rectangle::from_corners(lo, hi), k));
            }
            polygons.push(Polygon::new(LineString::new(ring), Vec::new()));
            refs.push(GridRef {
                grid_id: grid.grid_id,
                community: grid.community,
                street: grid.street,
            });
        }
        GridIndex {
            refs,
            polygons,
            tree: RTree::bulk_load(boxes),
            by_id,
        }
    }

    /// The grid that contains the point (longitude, latitude), if any.
    pub fn locate(&self, lon: f64, lat: f64) -> Option<&GridRef> {
        if !lon.is_finite() || !lat.is_finite() {
            return None;
        }
        let point = Point::new(lon, lat);
        self.tree
            .locate_all_at_point(&[lon, lat])
            .map(|candidate| candidate.data)
            .filter(|&k| self.polygons[k].intersects(&point))
            .map(|k| &self.refs[k])
            .min_by(|a, b| a.grid_id.cmp(&b.grid_id))
    }

    /// The grid with this id.
    pub fn get(&self, grid_id: &str) -> Option<&GridRef> {
        self.by_id.get(grid_id).map(|&k| &self.refs[k])
    }

    /// Number of grids.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether the index has no grid.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }
}
