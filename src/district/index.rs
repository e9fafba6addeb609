//! Finding the grid of a point.

use std::collections::HashMap;

use robust::{Coord, orient2d};
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
    rings: Vec<Vec<[f64; 2]>>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    by_id: HashMap<String, usize>,
}

impl GridIndex {
    /// Builds the index. A grid whose id repeats an earlier one is left out;
    /// a grid without any point is kept for [`GridIndex::get`] but contains
    /// no point.
    pub fn build(grids: Vec<GridShape>) -> GridIndex {
        let mut refs = Vec::with_capacity(grids.len());
        let mut rings = Vec::with_capacity(grids.len());
        let mut boxes = Vec::with_capacity(grids.len());
        let mut by_id = HashMap::with_capacity(grids.len());
        for grid in grids {
            if by_id.contains_key(&grid.grid_id) {
                continue;
            }
            let k = refs.len();
            by_id.insert(grid.grid_id.clone(), k);
            let mut ring = grid.polygon;
            if let Some(&first) = ring.first() {
                let (mut lo, mut hi) = (first, first);
                for &[x, y] in &ring {
                    lo = [lo[0].min(x), lo[1].min(y)];
                    hi = [hi[0].max(x), hi[1].max(y)];
                }
                boxes.push(GeomWithData::new(Rectangle::from_corners(lo, hi), k));
                if ring.last() != Some(&first) {
                    ring.push(first);
                }
            }
            rings.push(ring);
            refs.push(GridRef {
                grid_id: grid.grid_id,
                community: grid.community,
                street: grid.street,
            });
        }
        GridIndex {
            refs,
            rings,
            tree: RTree::bulk_load(boxes),
            by_id,
        }
    }

    /// The grid that contains the point (longitude, latitude), if any.
    pub fn locate(&self, lon: f64, lat: f64) -> Option<&GridRef> {
        if !lon.is_finite() || !lat.is_finite() {
            return None;
        }
        self.tree
            .locate_all_at_point(&[lon, lat])
            .map(|candidate| candidate.data)
            .filter(|&k| ring_contains(&self.rings[k], [lon, lat]))
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

/// Whether a closed ring (first point repeated last) contains a point, its
/// boundary included: a winding number, with each side test an exact
/// orientation (Shewchuk's adaptive predicate), so a point on a shared edge
/// is found on it in both grids and never falls between them.
pub(super) fn ring_contains(ring: &[[f64; 2]], point: [f64; 2]) -> bool {
    let at = |[x, y]: [f64; 2]| Coord { x, y };
    let p = at(point);
    let mut winding = 0i32;
    for edge in ring.windows(2) {
        let ([ax, ay], [bx, by]) = (edge[0], edge[1]);
        let side = orient2d(at(edge[0]), at(edge[1]), p);
        if side == 0.0
            && (ax.min(bx)..=ax.max(bx)).contains(&point[0])
            && (ay.min(by)..=ay.max(by)).contains(&point[1])
        {
            return true;
        }
        if ay <= point[1] {
            if by > point[1] && side > 0.0 {
                winding += 1;
            }
        } else if by <= point[1] && side < 0.0 {
            winding -= 1;
        }
    }
    winding != 0
}

#[cfg(test)]
mod tests {
    use super::ring_contains;

    /// An L: concave, with a vertex level with the test points.
    const L: [[f64; 2]; 7] = [
        [0.0, 0.0],
        [2.0, 0.0],
        [2.0, 1.0],
        [1.0, 1.0],
        [1.0, 2.0],
        [0.0, 2.0],
        [0.0, 0.0],
    ];

    #[test]
    fn inside_outside_and_in_the_notch() {
        assert!(ring_contains(&L, [0.5, 0.5]));
        assert!(ring_contains(&L, [0.5, 1.5]));
        assert!(ring_contains(&L, [1.5, 0.5]));
        assert!(!ring_contains(&L, [1.5, 1.5]), "the notch is outside");
        assert!(!ring_contains(&L, [3.0, 0.5]));
        assert!(!ring_contains(&L, [-0.1, 1.0]));
        // A ray from these points passes through the vertices (2,1) and (1,2).
        assert!(ring_contains(&L, [0.5, 1.0]));
        assert!(!ring_contains(&L, [-1.0, 2.0]));
        assert!(!ring_contains(&L, [2.5, 1.0]));
    }

    #[test]
    fn the_boundary_is_inside() {
        for point in [
            [1.0, 0.0],
            [2.0, 0.5],
            [1.5, 1.0],
            [1.0, 1.5],
            [0.0, 2.0],
            [0.0, 0.0],
        ] {
            assert!(ring_contains(&L, point), "{point:?}");
        }
        // On the line of an edge, beyond its end.
        assert!(!ring_contains(&L, [3.0, 0.0]));
        assert!(!ring_contains(&L, [1.0, 2.5]));
    }

    #[test]
    fn orientation_and_degenerate_rings() {
        let mut clockwise = L;
        clockwise.reverse();
        assert!(ring_contains(&clockwise, [0.5, 1.5]));
        assert!(!ring_contains(&clockwise, [1.5, 1.5]));
        assert!(!ring_contains(&[], [0.0, 0.0]));
    }
}
