use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use robust::{Coord, orient2d};

use super::*;

fn district() -> &'static District {
    static DISTRICT: OnceLock<District> = OnceLock::new();
    DISTRICT.get_or_init(|| generate(DEFAULT_SEED))
}

fn coord([x, y]: [f64; 2]) -> Coord<f64> {
    Coord { x, y }
}

/// A closed ring's signed area (shoelace): positive when counter-clockwise.
fn signed_area(ring: &[[f64; 2]]) -> f64 {
    ring.windows(2)
        .map(|e| e[0][0] * e[1][1] - e[1][0] * e[0][1])
        .sum::<f64>()
        / 2.0
}

/// A closed ring's centroid (of its area).
fn centroid(ring: &[[f64; 2]]) -> [f64; 2] {
    let a = signed_area(ring);
    let (mut x, mut y) = (0.0, 0.0);
    for e in ring.windows(2) {
        let cross = e[0][0] * e[1][1] - e[1][0] * e[0][1];
        x += (e[0][0] + e[1][0]) * cross;
        y += (e[0][1] + e[1][1]) * cross;
    }
    [x / (6.0 * a), y / (6.0 * a)]
}

/// Whether segments ab and cd share a point (exact orientations).
fn segments_meet(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let o = |p, q, r| orient2d(coord(p), coord(q), coord(r)).signum();
    let on = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| {
        o(p, q, r) == 0.0
            && (p[0].min(q[0])..=p[0].max(q[0])).contains(&r[0])
            && (p[1].min(q[1])..=p[1].max(q[1])).contains(&r[1])
    };
    let (d1, d2, d3, d4) = (o(a, b, c), o(a, b, d), o(c, d, a), o(c, d, b));
    (d1 * d2 < 0.0 && d3 * d4 < 0.0) || on(a, b, c) || on(a, b, d) || on(c, d, a) || on(c, d, b)
}

/// A closed ring is simple: at least three distinct points, no edge of
/// length zero, and no two edges meeting except neighbours at their
/// shared vertex.
fn is_simple(ring: &[[f64; 2]]) -> bool {
    let edges: Vec<_> = ring.windows(2).map(|e| (e[0], e[1])).collect();
    let n = edges.len();
    n >= 3
        && ring.first() == ring.last()
        && edges.iter().all(|(a, b)| a != b)
        && (0..n).all(|i| {
            (i + 1..n).all(|j| {
                let neighbours = j == i + 1 || (i == 0 && j == n - 1);
                let ((a, b), (c, d)) = (edges[i], edges[j]);
                if neighbours {
                    // They meet only at their shared vertex unless the
                    // second folds back along the first.
                    let (shared, p, q) = if j == i + 1 { (b, a, d) } else { (a, b, c) };
                    let towards = (p[0] - shared[0]) * (q[0] - shared[0])
                        + (p[1] - shared[1]) * (q[1] - shared[1]);
                    orient2d(coord(p), coord(shared), coord(q)) != 0.0 || towards < 0.0
                } else {
                    !segments_meet(a, b, c, d)
                }
            })
        })
}

#[test]
fn the_geometry_helpers_measure_a_square_and_refuse_a_bow_tie() {
    let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]];
    assert_eq!(signed_area(&square), 4.0);
    assert_eq!(centroid(&square), [1.0, 1.0]);
    assert!(is_simple(&square));
    let bow_tie = [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]];
    assert!(!is_simple(&bow_tie));
    let spike = [
        [0.0, 0.0],
        [2.0, 0.0],
        [3.0, 0.0],
        [2.0, 0.0],
        [2.0, 2.0],
        [0.0, 0.0],
    ];
    assert!(!is_simple(&spike));
    let touching = [
        [0.0, 0.0],
        [4.0, 0.0],
        [2.0, 2.0],
        [4.0, 4.0],
        [2.0, 0.0],
        [0.0, 0.0],
    ];
    assert!(!is_simple(&touching));
}

/// An edge between two exact points (their bits).
type Edge = ((u64, u64), (u64, u64));

fn key([x, y]: [f64; 2]) -> (u64, u64) {
    (x.to_bits(), y.to_bits())
}

#[test]
fn counts_are_those_of_the_district() {
    let d = district();
    assert_eq!(d.streets.len(), 15);
    assert_eq!(d.communities.len(), 587);
    let urban = d
        .communities
        .iter()
        .filter(|c| c.kind == "community")
        .count();
    let villages = d.communities.iter().filter(|c| c.kind == "village").count();
    assert_eq!((urban, villages), (112, 475));
    assert_eq!(d.grids.len(), 1809);
    for street in &d.streets[..4] {
        assert!(
            d.communities
                .iter()
                .filter(|c| c.street == street.name)
                .all(|c| c.kind == "community"),
            "{} is urban",
            street.name
        );
    }
    let per_grid = d.addresses.len() as f64 / d.grids.len() as f64;
    assert!(
        (2.5..=3.5).contains(&per_grid),
        "{per_grid} addresses per grid"
    );
}

#[test]
fn ids_names_and_references_are_consistent() {
    let d = district();
    let communities: HashMap<&str, &Community> =
        d.communities.iter().map(|c| (c.code.as_str(), c)).collect();
    assert_eq!(
        communities.len(),
        d.communities.len(),
        "community codes are unique"
    );
    let mut ids = HashSet::new();
    for grid in &d.grids {
        assert!(ids.insert(grid.grid_id.as_str()), "{} twice", grid.grid_id);
        let id = grid.grid_id.as_bytes();
        assert!(
            id.len() <= 32
                && id
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-')
        );
        let (code, number) = grid.grid_id.rsplit_once('-').unwrap();
        assert_eq!(number.len(), 2);
        let community = communities[code];
        assert_eq!(community.name, grid.community);
        assert_eq!(community.kind, grid.community_kind);
        assert_eq!(community.street, grid.street);
        assert!(
            grid.grid_id
                .starts_with(&format!("{}-", community.street_code))
        );
    }
    for street in &d.streets {
        let names: Vec<&str> = d
            .communities
            .iter()
            .filter(|c| c.street == street.name)
            .map(|c| c.name.as_str())
            .collect();
        let unique: HashSet<&&str> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "names unique within {}",
            street.name
        );
        for name in &names {
            assert!(name.ends_with("社区") || name.ends_with('村'), "{name}");
        }
    }
    let addresses: HashSet<&str> = d.addresses.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(addresses.len(), d.addresses.len(), "addresses are unique");
    assert!(d.addresses.iter().all(|(_, id)| ids.contains(id.as_str())));
}

#[test]
fn geometry_stays_in_the_box_and_the_old_town_is_central() {
    let d = district();
    for grid in &d.grids {
        assert!(grid.polygon.len() >= 5);
        assert_eq!(
            grid.polygon.first(),
            grid.polygon.last(),
            "{} is closed",
            grid.grid_id
        );
        for &[lon, lat] in &grid.polygon {
            assert!((116.55..=116.95).contains(&lon) && (39.70..=40.05).contains(&lat));
            assert_eq!(lon, (lon * 1e6).round() / 1e6);
        }
        if ["中仓街道", "新华街道", "北苑街道", "玉桥街道"].contains(&grid.street.as_str())
        {
            let [x, y] = centroid(&grid.polygon);
            assert!((116.63..=116.71).contains(&x) && (39.88..=39.93).contains(&y));
        }
    }
}

/// The grids tile the district: every ring is counter-clockwise and simple,
/// every edge is shared with at most one other grid (in the opposite
/// direction), the unshared edges form one closed outline, and the grids'
/// areas add up to the area inside that outline.
#[test]
fn grids_tile_the_district() {
    let d = district();
    let mut edges: HashMap<Edge, usize> = HashMap::new();
    let mut total = 0.0;
    for grid in &d.grids {
        assert!(
            is_simple(&grid.polygon),
            "{} is a simple polygon",
            grid.grid_id
        );
        let area = signed_area(&grid.polygon);
        assert!(area > 0.0, "{} is counter-clockwise", grid.grid_id);
        total += area;
        for pair in grid.polygon.windows(2) {
            let count = edges.entry((key(pair[0]), key(pair[1]))).or_default();
            *count += 1;
            assert_eq!(*count, 1, "{}: an edge overlaps another grid", grid.grid_id);
        }
    }
    let outline: HashMap<(u64, u64), (u64, u64)> = edges
        .keys()
        .filter(|(a, b)| !edges.contains_key(&(*b, *a)))
        .map(|&(a, b)| (a, b))
        .collect();
    let unshared = edges
        .keys()
        .filter(|(a, b)| !edges.contains_key(&(*b, *a)))
        .count();
    assert_eq!(outline.len(), unshared, "the outline never touches itself");
    let start = *outline.keys().min().unwrap();
    let mut ring = vec![start];
    let mut at = outline[&start];
    while at != start {
        ring.push(at);
        at = outline[&at];
        assert!(ring.len() <= outline.len());
    }
    assert_eq!(ring.len(), outline.len(), "one outline, no holes");
    ring.push(start);
    let ring: Vec<[f64; 2]> = ring
        .iter()
        .map(|&(x, y)| [f64::from_bits(x), f64::from_bits(y)])
        .collect();
    let area = signed_area(&ring);
    assert!((area - total).abs() < 1e-9, "outline {area}, grids {total}");
    // About 800 km² (a degree² is about 85.3 × 111.2 km² here).
    let km2 = total * 85.3 * 111.2;
    assert!((700.0..950.0).contains(&km2), "{km2} km²");
}

#[test]
fn counts_hold_for_other_seeds() {
    for seed in [0, 1, 42, u64::MAX] {
        let d = generate(seed);
        assert_eq!(d.grids.len(), 1809, "seed {seed}");
        assert_eq!(d.communities.len(), 587, "seed {seed}");
        let urban = d
            .communities
            .iter()
            .filter(|c| c.kind == "community")
            .count();
        assert_eq!(urban, 112, "seed {seed}");
        assert!(
            d.grids
                .iter()
                .all(|g| g.grid_id.len() == g.grid_id.find('-').unwrap() + 7)
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = serde_json::to_vec(&generate(7)).unwrap();
    let b = serde_json::to_vec(&generate(7)).unwrap();
    assert_eq!(a, b);
    let c = generate(8);
    assert_eq!(c.grids.len(), 1809);
    assert_eq!(c.communities.len(), 587);
    assert_ne!(a, serde_json::to_vec(&c).unwrap());
    assert_eq!(
        serde_json::to_vec(district()).unwrap(),
        serde_json::to_vec(&generate(DEFAULT_SEED)).unwrap()
    );
}

#[test]
fn planning_messages_have_the_published_shape() {
    let d = district();
    let messages = planning_messages(d, DEFAULT_PER_MESSAGE);
    assert_eq!(messages.len(), 10);
    let mut features = 0;
    let mut addresses = 0;
    for (k, message) in messages.iter().enumerate() {
        let size = serde_json::to_vec(message).unwrap().len();
        assert!(size < 200 * 1024, "part {} is {size} bytes", k + 1);
        assert_eq!(message["type"], "FeatureCollection");
        assert_eq!(
            message["batch"],
            serde_json::json!({"id": "TZ-GRID-2015", "part": k + 1, "parts": 10})
        );
        let list = message["features"].as_array().unwrap();
        assert!(list.len() <= DEFAULT_PER_MESSAGE);
        let ids: HashSet<&str> = list.iter().map(|f| f["id"].as_str().unwrap()).collect();
        for feature in list {
            assert_eq!(feature["type"], "Feature");
            assert_eq!(feature["geometry"]["type"], "Polygon");
            assert_eq!(feature["properties"]["grid_id"], feature["id"]);
            assert_eq!(feature["properties"]["retired"], false);
            let keys: Vec<&String> = feature["properties"].as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 5);
            let ring = feature["geometry"]["coordinates"][0].as_array().unwrap();
            assert_eq!(ring.first(), ring.last());
        }
        for address in message["addresses"].as_array().unwrap() {
            assert!(ids.contains(address["grid_id"].as_str().unwrap()));
            assert!(address["address"].is_string());
        }
        features += list.len();
        addresses += message["addresses"].as_array().unwrap().len();
    }
    assert_eq!(features, d.grids.len());
    assert_eq!(addresses, d.addresses.len());
    let first = &messages[0]["features"][0];
    let grid = &d.grids[0];
    assert_eq!(first["id"], grid.grid_id.as_str());
    assert_eq!(first["properties"]["community"], grid.community.as_str());
    assert_eq!(first["properties"]["street"], grid.street.as_str());
    assert_eq!(
        first["geometry"]["coordinates"][0][0][0],
        grid.polygon[0][0]
    );
    assert_eq!(planning_messages(d, 500).len(), 4);
}

#[test]
fn planning_messages_are_written_as_numbered_files() {
    let dir = std::env::temp_dir().join(format!("gridhub-district-{}", std::process::id()));
    let paths = write_planning_messages(&dir, 3).unwrap();
    assert_eq!(paths.len(), 10);
    assert!(paths[0].ends_with("grid-boundaries-01.json"));
    assert!(paths[9].ends_with("grid-boundaries-10.json"));
    let body = std::fs::read(&paths[4]).unwrap();
    let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(message["batch"]["id"], "TZ-GRID-3");
    assert_eq!(message["batch"]["part"], 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_index_finds_every_grid_from_its_centroid() {
    let d = district();
    let index = GridIndex::build(d.grids.clone());
    assert_eq!(index.len(), 1809);
    let started = std::time::Instant::now();
    for grid in &d.grids {
        let [x, y] = centroid(&grid.polygon);
        let found = index.locate(x, y).expect("a grid");
        assert_eq!(found.grid_id, grid.grid_id);
        assert_eq!(found.community, grid.community);
        assert_eq!(found.street, grid.street);
    }
    let per_lookup = started.elapsed() / d.grids.len() as u32;
    // Microseconds in a release build; generous for an unoptimised one.
    assert!(per_lookup.as_micros() < 200, "{per_lookup:?} per lookup");
}

#[test]
fn points_outside_the_district_are_in_no_grid() {
    let index = GridIndex::build(district().grids.clone());
    for (lon, lat) in [
        (116.40, 39.90),   // Tiananmen
        (116.551, 39.701), // the box's corner, outside the outline
        (116.949, 40.049),
        (0.0, 0.0),
        (f64::NAN, 39.9),
    ] {
        assert_eq!(index.locate(lon, lat), None, "{lon}, {lat}");
    }
}

#[test]
fn a_shared_vertex_belongs_to_the_lowest_grid_id() {
    let d = district();
    let index = GridIndex::build(d.grids.clone());
    // A vertex shared by several grids.
    let mut owners: HashMap<(u64, u64), Vec<&str>> = HashMap::new();
    for grid in &d.grids {
        for &point in &grid.polygon[1..] {
            owners.entry(key(point)).or_default().push(&grid.grid_id);
        }
    }
    let mut checked = 0;
    for grid in d.grids.iter().step_by(37) {
        let [lon, lat] = grid.polygon[0];
        let lowest = owners[&key(grid.polygon[0])].iter().min().unwrap();
        assert_eq!(index.locate(lon, lat).unwrap().grid_id, *lowest);
        checked += 1;
    }
    assert!(checked > 40);
    assert_eq!(index.get("YQ-001-01").unwrap().street, "玉桥街道");
    assert_eq!(index.get("YQ-999-01"), None);
}

#[test]
fn the_index_answers_the_same_whatever_the_order() {
    let d = district();
    let mut reversed = d.grids.clone();
    reversed.reverse();
    let (a, b) = (
        GridIndex::build(d.grids.clone()),
        GridIndex::build(reversed),
    );
    for grid in d.grids.iter().step_by(11) {
        for &[lon, lat] in &grid.polygon {
            assert_eq!(a.locate(lon, lat), b.locate(lon, lat));
        }
    }
}

fn shape(grid_id: &str, community: &str, street: &str) -> GridShape {
    GridShape {
        grid_id: grid_id.to_owned(),
        community: community.to_owned(),
        community_kind: if community.ends_with('村') {
            "village"
        } else {
            "community"
        }
        .to_owned(),
        street: street.to_owned(),
        polygon: vec![
            [116.6, 39.9],
            [116.61, 39.9],
            [116.61, 39.91],
            [116.6, 39.9],
        ],
    }
}

fn gazetteer() -> Gazetteer {
    let grids = [
        shape("LY-001-01", "大稿村", "梨园镇"),
        shape("LY-002-01", "小稿村", "梨园镇"),
        shape("LY-003-01", "王庄村", "梨园镇"),
        shape("SZ-001-01", "小堡村", "宋庄镇"),
        shape("SZ-002-01", "大王庄村", "宋庄镇"),
        shape("HX-001-01", "王庄村", "漷县镇"),
        shape("ZJW-001-01", "王庄村", "张家湾镇"),
        shape("YQ-004-02", "玉桥东里社区", "玉桥街道"),
        shape("YJW-001-01", "渠头村", "于家务回族乡"),
    ];
    let addresses = [
        ("梨园镇大稿村23号".to_owned(), "LY-001-01".to_owned()),
        (
            "玉桥街道玉桥东里社区5号楼".to_owned(),
            "YQ-004-02".to_owned(),
        ),
        ("宋庄镇小堡村1号".to_owned(), "XX-001-01".to_owned()),
    ];
    Gazetteer::build(&grids, &addresses)
}

fn grid(id: &str) -> Option<Placement> {
    let (community, street) = match id {
        "LY-001-01" => ("大稿村", "梨园镇"),
        _ => ("玉桥东里社区", "玉桥街道"),
    };
    Some(Placement::Grid(GridRef {
        grid_id: id.to_owned(),
        community: community.to_owned(),
        street: street.to_owned(),
    }))
}

fn community(community: &str, street: &str) -> Option<Placement> {
    Some(Placement::Community {
        community: community.to_owned(),
        street: street.to_owned(),
    })
}

fn street(street: &str) -> Option<Placement> {
    Some(Placement::Street {
        street: street.to_owned(),
    })
}

#[test]
fn normalising_removes_spaces_width_and_the_city() {
    for (text, expected) in [
        ("  梨园镇 大稿村 23号 ", "梨园镇大稿村23号"),
        ("梨园镇大稿村２３号", "梨园镇大稿村23号"),
        ("北京市通州区梨园镇大稿村23号", "梨园镇大稿村23号"),
        ("北京通州区梨园镇", "梨园镇"),
        ("北京市梨园镇", "梨园镇"),
        ("通州区　梨园镇", "梨园镇"),
        ("ＡＢｃ１", "ABc1"),
        ("梨园镇通州区", "梨园镇通州区"),
    ] {
        assert_eq!(Gazetteer::normalise(text), expected, "{text}");
    }
}

#[test]
fn a_known_address_gives_its_grid() {
    let g = gazetteer();
    assert_eq!(
        g.place(Some("梨园镇大稿村23号"), None, None),
        grid("LY-001-01")
    );
    assert_eq!(
        g.place(
            Some(" 北京市通州区梨园镇大稿村２３号"),
            Some("宋庄镇"),
            None
        ),
        grid("LY-001-01")
    );
    assert_eq!(
        g.place(Some("玉桥街道玉桥东里社区5号楼"), None, None),
        grid("YQ-004-02")
    );
    // An address whose grid is unknown is not known.
    assert_eq!(
        g.place(Some("宋庄镇小堡村1号"), None, None),
        community("小堡村", "宋庄镇")
    );
}

#[test]
fn a_community_given_or_in_the_address_gives_the_community() {
    let g = gazetteer();
    assert_eq!(
        g.place(Some("梨园镇大稿村99号"), None, None),
        community("大稿村", "梨园镇")
    );
    assert_eq!(
        g.place(None, None, Some("小稿村")),
        community("小稿村", "梨园镇")
    );
    assert_eq!(
        g.place(Some("大稿村东口"), None, None),
        community("大稿村", "梨园镇")
    );
    assert_eq!(
        g.place(Some("某处"), None, Some(" 小堡村 ")),
        community("小堡村", "宋庄镇")
    );
    // An unknown community name given: the address decides.
    assert_eq!(
        g.place(Some("小稿村南"), None, Some("不知村")),
        community("小稿村", "梨园镇")
    );
    assert_eq!(
        g.place(Some("玉桥东里社区3号楼"), None, None),
        community("玉桥东里社区", "玉桥街道")
    );
}

#[test]
fn the_longest_community_name_wins() {
    let g = gazetteer();
    // 大王庄村 contains 王庄村, which exists in three streets.
    assert_eq!(
        g.place(Some("大王庄村8号"), None, None),
        community("大王庄村", "宋庄镇")
    );
}

#[test]
fn a_name_in_several_streets_needs_the_street() {
    let g = gazetteer();
    assert_eq!(g.place(Some("王庄村8号"), None, None), None);
    assert_eq!(g.place(None, None, Some("王庄村")), None);
    assert_eq!(
        g.place(Some("王庄村8号"), Some("漷县镇"), None),
        community("王庄村", "漷县镇")
    );
    assert_eq!(
        g.place(None, Some("张家湾"), Some("王庄村")),
        community("王庄村", "张家湾镇")
    );
    assert_eq!(
        g.place(Some("梨园地区王庄村8号"), None, None),
        community("王庄村", "梨园镇")
    );
    // The community is not in the street named: only the street is sure.
    assert_eq!(
        g.place(None, Some("宋庄镇"), Some("王庄村")),
        street("宋庄镇")
    );
    assert_eq!(
        g.place(None, Some("宋庄镇"), Some("大稿村")),
        street("宋庄镇")
    );
}

#[test]
fn a_street_given_or_in_the_address_gives_the_street() {
    let g = gazetteer();
    assert_eq!(g.place(None, Some("梨园镇"), None), street("梨园镇"));
    assert_eq!(g.place(None, Some("梨园"), None), street("梨园镇"));
    assert_eq!(g.place(None, Some("梨园地区"), None), street("梨园镇"));
    assert_eq!(
        g.place(None, Some("北京市通州区玉桥街道"), None),
        street("玉桥街道")
    );
    assert_eq!(g.place(None, Some("于家务"), None), street("于家务回族乡"));
    assert_eq!(
        g.place(None, Some("于家务乡"), None),
        street("于家务回族乡")
    );
    assert_eq!(g.place(Some("梨园镇某小区"), None, None), street("梨园镇"));
    assert_eq!(g.place(Some("通州区梨园"), None, None), street("梨园镇"));
    assert_eq!(
        g.place(Some("玉桥街道运河边"), None, None),
        street("玉桥街道")
    );
    assert_eq!(g.place(Some("某路"), Some("宋庄"), None), street("宋庄镇"));
}

#[test]
fn a_short_name_inside_another_word_is_not_a_street() {
    let g = gazetteer();
    assert_eq!(g.place(None, Some("梨园路"), None), None);
    assert_eq!(g.place(Some("梨园路5号"), None, None), None);
    assert_eq!(g.place(Some("玉桥东路5号"), None, None), None);
}

#[test]
fn an_address_naming_several_streets_names_none() {
    let g = gazetteer();
    assert_eq!(g.place(Some("梨园镇往宋庄镇方向"), None, None), None);
    assert_eq!(
        g.place(Some("梨园镇往宋庄镇方向"), Some("宋庄"), None),
        street("宋庄镇")
    );
}

#[test]
fn nothing_known_is_unplaced() {
    let g = gazetteer();
    assert_eq!(g.place(None, None, None), None);
    assert_eq!(g.place(Some(""), Some("  "), Some("")), None);
    assert_eq!(
        g.place(Some("朝阳区建国路1号"), Some("建外街道"), Some("某社区")),
        None
    );
}

#[test]
fn every_generated_address_is_placed_in_its_grid() {
    let d = district();
    let g = Gazetteer::build(&d.grids, &d.addresses);
    let index = GridIndex::build(d.grids.clone());
    for (address, grid_id) in d.addresses.iter().step_by(7) {
        let placed = g.place(Some(address), None, None);
        assert_eq!(
            placed,
            Some(Placement::Grid(index.get(grid_id).unwrap().clone()))
        );
    }
}
