//! The deterministic generator of the district's reference data.
//!
//! Geometry is a lattice of jittered shared vertices. The old town (the four
//! streets) is cut into fine cells of about 250 m; the rest of the district
//! into coarse cells of 3 × 3 fine units (about 770 m). Every cell is one
//! grid, and its ring lists every lattice point on its border, so a coarse
//! cell beside fine cells has the same vertices on their common border:
//! neighbouring grids share their edges exactly and the grids tile the
//! district without gaps or overlaps. A lattice point moves at most 0.22 of a
//! fine unit in each axis, which keeps every fine quadrilateral convex (the
//! cross product of two adjacent edges stays above 1 − 4 × 0.22 > 0).
//!
//! Counts are exact by construction: the old town has 24 × 21 = 504 fine
//! cells, and exactly 1,809 − 504 coarse cells are taken, those nearest
//! inside a fixed outline of the district. Cells go to streets by a weighted
//! Voronoi assignment whose weights are balanced towards each street's share;
//! each street's cells are cut into exactly as many runs as the street has
//! communities and villages (the table [`STREETS`]), each run grown from the
//! first free cell in Hilbert-curve order through its free neighbours.
//! The seed moves the vertices and chooses run lengths, names and addresses;
//! the outline and the streets' territories do not depend on it.

use std::collections::HashMap;

use super::names::names_for_street;
use super::rng::{Rng, hash, unit};
use super::{Community, District, GridShape, Street};

/// A street or township: code, name, short name, kind, number of urban
/// communities, number of villages, and where its seat is (lon, lat).
pub(crate) struct StreetSpec {
    pub code: &'static str,
    pub name: &'static str,
    pub short: &'static str,
    pub kind: &'static str,
    pub communities: usize,
    pub villages: usize,
    pub seat: (f64, f64),
}

const fn spec(
    code: &'static str,
    name: &'static str,
    short: &'static str,
    kind: &'static str,
    communities: usize,
    villages: usize,
    seat: (f64, f64),
) -> StreetSpec {
    StreetSpec {
        code,
        name,
        short,
        kind,
        communities,
        villages,
        seat,
    }
}

/// The 15 streets and townships. The four streets come first: they share the
/// old town's fine cells. 84 + 28 = 112 urban communities, 475 villages.
pub(crate) const STREETS: [StreetSpec; 15] = [
    spec("ZC", "中仓街道", "中仓", "street", 22, 0, (116.668, 39.897)),
    spec("XH", "新华街道", "新华", "street", 18, 0, (116.662, 39.920)),
    spec("BY", "北苑街道", "北苑", "street", 20, 0, (116.642, 39.905)),
    spec("YQ", "玉桥街道", "玉桥", "street", 24, 0, (116.693, 39.890)),
    spec("YS", "永顺镇", "永顺", "town", 8, 14, (116.668, 39.950)),
    spec("LY", "梨园镇", "梨园", "town", 10, 16, (116.615, 39.880)),
    spec("SZ", "宋庄镇", "宋庄", "town", 3, 51, (116.735, 39.985)),
    spec("HX", "漷县镇", "漷县", "town", 0, 64, (116.790, 39.790)),
    spec(
        "ZJW",
        "张家湾镇",
        "张家湾",
        "town",
        2,
        58,
        (116.705, 39.840),
    ),
    spec(
        "MJQ",
        "马驹桥镇",
        "马驹桥",
        "town",
        2,
        48,
        (116.590, 39.765),
    ),
    spec("XJ", "西集镇", "西集", "town", 0, 59, (116.880, 39.840)),
    spec("TH", "台湖镇", "台湖", "town", 2, 44, (116.600, 39.815)),
    spec(
        "YLD",
        "永乐店镇",
        "永乐店",
        "town",
        0,
        38,
        (116.800, 39.715),
    ),
    spec("LC", "潞城镇", "潞城", "town", 1, 55, (116.780, 39.905)),
    spec(
        "YJW",
        "于家务回族乡",
        "于家务",
        "township",
        0,
        28,
        (116.690, 39.760),
    ),
];

/// Number of grids.
pub(crate) const GRIDS: usize = 1809;

// The lattice: fine unit DX × DY degrees from (LON0, LAT0); a coarse cell is
// COARSE × COARSE fine units; COLS × ROWS coarse cells cover the box.
const LON0: f64 = 116.552;
const LAT0: f64 = 39.702;
const DX: f64 = 0.003;
const DY: f64 = 0.0023;
const COARSE: u32 = 3;
const COLS: u32 = 44;
const ROWS: u32 = 50;
const JITTER: f64 = 0.22;
// The old town, in coarse cells: columns and rows, inclusive.
const CORE_COLS: (u32, u32) = (9, 16);
const CORE_ROWS: (u32, u32) = (26, 32);
const URBAN_STREETS: usize = 4;

// Kilometres per degree at the district's latitude.
const KM_LON: f64 = 85.3;
const KM_LAT: f64 = 111.2;

/// A rough outline of the district (lon, lat), counter-clockwise.
const OUTLINE: &[(f64, f64)] = &[
    (116.660, 40.040),
    (116.700, 40.045),
    (116.790, 40.040),
    (116.830, 39.990),
    (116.900, 39.930),
    (116.940, 39.870),
    (116.935, 39.800),
    (116.890, 39.745),
    (116.840, 39.705),
    (116.760, 39.705),
    (116.700, 39.715),
    (116.640, 39.730),
    (116.565, 39.745),
    (116.558, 39.790),
    (116.575, 39.840),
    (116.600, 39.875),
    (116.612, 39.930),
    (116.625, 39.985),
];

/// One cell of the lattice: a square of `size` fine units whose lower-left
/// lattice point is (i, j).
#[derive(Clone, Copy)]
struct Cell {
    i: u32,
    j: u32,
    size: u32,
}

impl Cell {
    /// The centre in fine units.
    fn centre(&self) -> (f64, f64) {
        let half = f64::from(self.size) / 2.0;
        (f64::from(self.i) + half, f64::from(self.j) + half)
    }

    /// The centre in kilometres from the lattice origin, without jitter.
    fn centre_km(&self) -> (f64, f64) {
        let (x, y) = self.centre();
        (x * DX * KM_LON, y * DY * KM_LAT)
    }

    /// The position on a Hilbert curve over cells of this size.
    fn hilbert(&self) -> u64 {
        hilbert(256, self.i / self.size, self.j / self.size)
    }

    /// The lattice points of the border, counter-clockwise from the
    /// lower-left corner, without the closing point.
    fn border(&self) -> Vec<(u32, u32)> {
        let (i, j, s) = (self.i, self.j, self.size);
        let mut points = Vec::with_capacity(4 * s as usize);
        points.extend((0..s).map(|k| (i + k, j)));
        points.extend((0..s).map(|k| (i + s, j + k)));
        points.extend((0..s).map(|k| (i + s - k, j + s)));
        points.extend((0..s).map(|k| (i, j + s - k)));
        points
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The jittered, rounded position of lattice point (i, j).
fn vertex(seed: u64, i: u32, j: u32) -> [f64; 2] {
    let jx = (unit(hash(&[seed, 1, u64::from(i), u64::from(j)])) - 0.5) * 2.0 * JITTER;
    let jy = (unit(hash(&[seed, 2, u64::from(i), u64::from(j)])) - 0.5) * 2.0 * JITTER;
    [
        round6(LON0 + (f64::from(i) + jx) * DX),
        round6(LAT0 + (f64::from(j) + jy) * DY),
    ]
}

/// Index of (x, y) on a Hilbert curve over an n × n square (n a power of 2).
fn hilbert(n: u32, mut x: u32, mut y: u32) -> u64 {
    let mut d = 0u64;
    let mut s = n / 2;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += u64::from(s) * u64::from(s) * u64::from((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

/// Signed distance in kilometres from `p` to the outline: negative inside.
fn outline_distance(p: (f64, f64)) -> f64 {
    let km = |(lon, lat): (f64, f64)| ((lon - LON0) * KM_LON, (lat - LAT0) * KM_LAT);
    let (px, py) = p;
    let mut inside = false;
    let mut best = f64::INFINITY;
    for k in 0..OUTLINE.len() {
        let (ax, ay) = km(OUTLINE[k]);
        let (bx, by) = km(OUTLINE[(k + 1) % OUTLINE.len()]);
        if (ay > py) != (by > py) && px < ax + (py - ay) * (bx - ax) / (by - ay) {
            inside = !inside;
        }
        let (dx, dy) = (bx - ax, by - ay);
        let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        let (ex, ey) = (ax + t * dx - px, ay + t * dy - py);
        best = best.min((ex * ex + ey * ey).sqrt());
    }
    if inside { -best } else { best }
}

/// The district's cells: the old town's fine cells, then the coarse cells
/// nearest inside the outline, `GRIDS` in all.
fn district_cells() -> (Vec<Cell>, Vec<Cell>) {
    let mut core = Vec::new();
    for cj in CORE_ROWS.0..=CORE_ROWS.1 {
        for ci in CORE_COLS.0..=CORE_COLS.1 {
            for dj in 0..COARSE {
                for di in 0..COARSE {
                    core.push(Cell {
                        i: ci * COARSE + di,
                        j: cj * COARSE + dj,
                        size: 1,
                    });
                }
            }
        }
    }
    let in_core = |ci: u32, cj: u32| {
        (CORE_COLS.0..=CORE_COLS.1).contains(&ci) && (CORE_ROWS.0..=CORE_ROWS.1).contains(&cj)
    };
    let mut candidates: Vec<(f64, Cell)> = Vec::new();
    for cj in 0..ROWS {
        for ci in 0..COLS {
            if in_core(ci, cj) {
                continue;
            }
            let cell = Cell {
                i: ci * COARSE,
                j: cj * COARSE,
                size: COARSE,
            };
            let (x, y) = cell.centre_km();
            // A fixed wobble so the edge of the district is not a smooth line.
            let wobble = (unit(hash(&[7, u64::from(ci), u64::from(cj)])) - 0.5) * 0.8;
            candidates.push((outline_distance((x, y)) + wobble, cell));
        }
    }
    // Stable sort: equal distances keep row-major order.
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rural = candidates
        .into_iter()
        .take(GRIDS - core.len())
        .map(|(_, cell)| cell)
        .collect();
    (core, rural)
}

/// Assigns cells to streets (indexes into `streets`) by an additively
/// weighted Voronoi diagram of the seats, with weights balanced so that each
/// street's share of cells follows its number of communities and villages.
fn assign(cells: &[Cell], streets: &[usize]) -> Vec<usize> {
    let seats: Vec<(f64, f64)> = streets
        .iter()
        .map(|&s| {
            let (lon, lat) = STREETS[s].seat;
            ((lon - LON0) * KM_LON, (lat - LAT0) * KM_LAT)
        })
        .collect();
    let units: Vec<usize> = streets
        .iter()
        .map(|&s| STREETS[s].communities + STREETS[s].villages)
        .collect();
    let total_units: usize = units.iter().sum();
    let targets: Vec<f64> = units
        .iter()
        .map(|&u| cells.len() as f64 * u as f64 / total_units as f64)
        .collect();
    let centres: Vec<(f64, f64)> = cells.iter().map(Cell::centre_km).collect();
    let mut weights = vec![0.0; streets.len()];
    let mut owner = vec![0; cells.len()];
    for round in 0..400 {
        let mut counts = vec![0usize; streets.len()];
        for (c, &(x, y)) in centres.iter().enumerate() {
            let mut best = (f64::INFINITY, 0);
            for (s, &(sx, sy)) in seats.iter().enumerate() {
                let d = ((x - sx) * (x - sx) + (y - sy) * (y - sy)).sqrt() - weights[s];
                if d < best.0 {
                    best = (d, s);
                }
            }
            owner[c] = best.1;
            counts[best.1] += 1;
        }
        if round == 399 {
            break;
        }
        let step = 0.05 * (1.0 - f64::from(round) / 400.0);
        for s in 0..streets.len() {
            weights[s] += step * (targets[s] - counts[s] as f64) / targets[s].sqrt();
        }
    }
    owner.iter().map(|&k| streets[k]).collect()
}

/// Splits `n` items into `parts` runs of at least one item, with lengths
/// varied by the random stream.
fn run_lengths(n: usize, parts: usize, rng: &mut Rng) -> Vec<usize> {
    assert!(
        parts >= 1 && n >= parts,
        "{n} cells for {parts} communities"
    );
    let weights: Vec<f64> = (0..parts).map(|_| 0.5 + rng.unit()).collect();
    let sum: f64 = weights.iter().sum();
    let spare = n - parts;
    let shares: Vec<f64> = weights.iter().map(|w| spare as f64 * w / sum).collect();
    let mut lengths: Vec<usize> = shares.iter().map(|s| 1 + s.floor() as usize).collect();
    let mut left = n - lengths.iter().sum::<usize>();
    // Largest remainders first; ties by position.
    let mut order: Vec<usize> = (0..parts).collect();
    order.sort_by(|&a, &b| {
        let ra = shares[a] - shares[a].floor();
        let rb = shares[b] - shares[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for k in order {
        if left == 0 {
            break;
        }
        lengths[k] += 1;
        left -= 1;
    }
    lengths
}

/// Cuts a street's cells (in Hilbert order, all of one size) into exactly
/// `lengths.len()` runs of about the given lengths. Each run starts at the
/// first free cell in Hilbert order and grows through free neighbours, lowest
/// Hilbert position first. A run that finds no free neighbour before its
/// length stops there (it is one connected piece) and hands what it lacks to
/// the next run; the last run takes every cell left, so only it may be in
/// several pieces.
fn grow_runs(cells: &[Cell], lengths: &[usize]) -> Vec<Vec<Cell>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let at: HashMap<(u32, u32), usize> = cells
        .iter()
        .enumerate()
        .map(|(k, c)| ((c.i, c.j), k))
        .collect();
    let mut free = vec![true; cells.len()];
    let mut first_free = 0;
    let mut runs = Vec::with_capacity(lengths.len());
    let mut owed = 0;
    for (r, &length) in lengths.iter().enumerate() {
        let last = r + 1 == lengths.len();
        let target = if last {
            cells.len() - runs.iter().map(Vec::len).sum::<usize>()
        } else {
            length + owed
        };
        let mut run = Vec::with_capacity(target);
        let mut frontier = BinaryHeap::new();
        while run.len() < target {
            let next = loop {
                match frontier.pop() {
                    Some(Reverse(k)) if free[k] => break Some(k),
                    Some(_) => continue,
                    None if run.is_empty() || last => {
                        while !free[first_free] {
                            first_free += 1;
                        }
                        break Some(first_free);
                    }
                    None => break None,
                }
            };
            let Some(k) = next else { break };
            free[k] = false;
            let c = cells[k];
            run.push(c);
            let s = c.size;
            let neighbours = [
                (c.i.wrapping_sub(s), c.j),
                (c.i + s, c.j),
                (c.i, c.j.wrapping_sub(s)),
                (c.i, c.j + s),
            ];
            for n in neighbours {
                if let Some(&m) = at.get(&n).filter(|&&m| free[m]) {
                    frontier.push(Reverse(m));
                }
            }
        }
        owed = target - run.len();
        runs.push(run);
    }
    runs
}

/// Generates the district's reference data from a seed.
pub(crate) fn generate(seed: u64) -> District {
    let (core, rural) = district_cells();
    let core_owner = assign(&core, &(0..URBAN_STREETS).collect::<Vec<_>>());
    let rural_owner = assign(&rural, &(URBAN_STREETS..STREETS.len()).collect::<Vec<_>>());
    let mut by_street: Vec<Vec<Cell>> = vec![Vec::new(); STREETS.len()];
    for (cell, owner) in core
        .iter()
        .zip(&core_owner)
        .chain(rural.iter().zip(&rural_owner))
    {
        by_street[*owner].push(*cell);
    }

    let mut district = District {
        seed,
        streets: Vec::new(),
        communities: Vec::new(),
        grids: Vec::with_capacity(GRIDS),
        addresses: Vec::new(),
    };
    let mut vertices: HashMap<(u32, u32), [f64; 2]> = HashMap::new();
    for (s, spec) in STREETS.iter().enumerate() {
        district.streets.push(Street {
            code: spec.code.to_owned(),
            name: spec.name.to_owned(),
            short_name: spec.short.to_owned(),
            kind: spec.kind.to_owned(),
        });
        let mut cells = std::mem::take(&mut by_street[s]);
        cells.sort_by_key(|c| (c.hilbert(), c.i, c.j));
        let parts = spec.communities + spec.villages;
        let mut rng = Rng::new(&[seed, 10, s as u64]);
        let lengths = run_lengths(cells.len(), parts, &mut rng);
        let runs = grow_runs(&cells, &lengths);
        // The runs nearest the seat are the urban communities.
        let (seat_x, seat_y) = ((spec.seat.0 - LON0) / DX, (spec.seat.1 - LAT0) / DY);
        let mut by_distance: Vec<(f64, usize)> = runs
            .iter()
            .enumerate()
            .map(|(k, run)| {
                let n = run.len() as f64;
                let (x, y) = run.iter().fold((0.0, 0.0), |(x, y), c| {
                    let (cx, cy) = c.centre();
                    (x + cx / n, y + cy / n)
                });
                let (dx, dy) = ((x - seat_x) * DX * KM_LON, (y - seat_y) * DY * KM_LAT);
                (dx * dx + dy * dy, k)
            })
            .collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut urban = vec![false; parts];
        for &(_, k) in by_distance.iter().take(spec.communities) {
            urban[k] = true;
        }
        let mut names_rng = Rng::new(&[seed, 11, s as u64]);
        let names = names_for_street(spec.code, &urban, &mut names_rng);
        let mut address_rng = Rng::new(&[seed, 12, s as u64]);
        for (k, run) in runs.iter().enumerate() {
            let code = format!("{}-{:03}", spec.code, k + 1);
            let kind = if urban[k] { "community" } else { "village" };
            district.communities.push(Community {
                code: code.clone(),
                name: names[k].clone(),
                kind: kind.to_owned(),
                street: spec.name.to_owned(),
                street_code: spec.code.to_owned(),
            });
            let mut number = 0;
            assert!(run.len() <= 99, "{code}: {} grids", run.len());
            for (g, cell) in run.iter().enumerate() {
                let grid_id = format!("{code}-{:02}", g + 1);
                let mut polygon: Vec<[f64; 2]> = cell
                    .border()
                    .into_iter()
                    .map(|(i, j)| *vertices.entry((i, j)).or_insert_with(|| vertex(seed, i, j)))
                    .collect();
                polygon.push(polygon[0]);
                for _ in 0..2 + address_rng.below(3) {
                    number += 1 + address_rng.below(3);
                    let address = if urban[k] {
                        format!("{}{}{number}号楼", spec.name, names[k])
                    } else {
                        format!("{}{}{number}号", spec.name, names[k])
                    };
                    district.addresses.push((address, grid_id.clone()));
                }
                district.grids.push(GridShape {
                    grid_id,
                    community: names[k].clone(),
                    community_kind: kind.to_owned(),
                    street: spec.name.to_owned(),
                    polygon,
                });
            }
        }
    }
    district
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hilbert_visits_every_cell_once() {
        let mut seen: Vec<u64> = (0..16)
            .flat_map(|x| (0..16).map(move |y| hilbert(16, x, y)))
            .collect();
        seen.sort();
        assert_eq!(seen, (0..256).collect::<Vec<_>>());
    }

    #[test]
    fn run_lengths_add_up() {
        let mut rng = Rng::new(&[1]);
        for (n, parts) in [(10, 10), (100, 7), (504, 84), (3, 1)] {
            let lengths = run_lengths(n, parts, &mut rng);
            assert_eq!(lengths.len(), parts);
            assert_eq!(lengths.iter().sum::<usize>(), n);
            assert!(lengths.iter().all(|&l| l >= 1));
        }
    }

    #[test]
    fn every_street_has_room_for_its_communities() {
        let (core, rural) = district_cells();
        assert_eq!(core.len() + rural.len(), GRIDS);
        let core_owner = assign(&core, &(0..URBAN_STREETS).collect::<Vec<_>>());
        let rural_owner = assign(&rural, &(URBAN_STREETS..STREETS.len()).collect::<Vec<_>>());
        let mut counts = [0usize; 15];
        for &s in core_owner.iter().chain(&rural_owner) {
            counts[s] += 1;
        }
        for (s, spec) in STREETS.iter().enumerate() {
            let units = spec.communities + spec.villages;
            assert!(
                counts[s] >= 2 * units,
                "{}: {} cells for {units} communities",
                spec.code,
                counts[s]
            );
        }
    }
}
