//! The planning commission's `grid-boundaries` messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{District, generate};

/// Grids per message by default: a message of 200 grids is about 140 KiB,
/// under the hub's 256 KiB limit on a body.
pub const DEFAULT_PER_MESSAGE: usize = 200;

/// The district's grids as the planning commission publishes them: message
/// type `grid-boundaries` of connector `dept-planning`, a GeoJSON
/// FeatureCollection with two extra members, `batch` (`id` `TZ-GRID-<seed>`,
/// `part` from 1, `parts`) and `addresses` (the known addresses of the
/// message's grids):
///
/// ```json
/// {"type": "FeatureCollection",
///  "batch": {"id": "TZ-GRID-2015", "part": 1, "parts": 10},
///  "features": [{"type": "Feature", "id": "YQ-004-02",
///    "geometry": {"type": "Polygon", "coordinates": [[[116.661234, 39.901234], ...]]},
///    "properties": {"grid_id": "YQ-004-02", "community": "玉桥东里社区",
///      "community_kind": "community", "street": "玉桥街道", "retired": false}}],
///  "addresses": [{"address": "玉桥街道玉桥东里社区5号楼", "grid_id": "YQ-004-02"}]}
/// ```
///
/// At most `per_message` features per message (at least one), in the order of
/// `district.grids`; coordinates have 6 decimals.
pub fn planning_messages(district: &District, per_message: usize) -> Vec<Value> {
    let per_message = per_message.max(1);
    let mut addresses: HashMap<&str, Vec<&str>> = HashMap::new();
    for (address, grid_id) in &district.addresses {
        addresses
            .entry(grid_id.as_str())
            .or_default()
            .push(address.as_str());
    }
    let parts = district.grids.len().div_ceil(per_message);
    district
        .grids
        .chunks(per_message)
        .enumerate()
        .map(|(k, grids)| {
            let features: Vec<Value> = grids
                .iter()
                .map(|grid| {
                    let ring: Vec<[f64; 2]> = grid
                        .polygon
                        .iter()
                        .map(|&[lon, lat]| [round6(lon), round6(lat)])
                        .collect();
                    json!({
                        "type": "Feature",
                        "id": grid.grid_id,
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "properties": {
                            "grid_id": grid.grid_id,
                            "community": grid.community,
                            "community_kind": grid.community_kind,
                            "street": grid.street,
                            "retired": false,
                        },
                    })
                })
                .collect();
            let known: Vec<Value> = grids
                .iter()
                .flat_map(|grid| {
                    addresses
                        .get(grid.grid_id.as_str())
                        .into_iter()
                        .flatten()
                        .map(|address| json!({"address": address, "grid_id": grid.grid_id}))
                })
                .collect();
            json!({
                "type": "FeatureCollection",
                "batch": {
                    "id": format!("TZ-GRID-{}", district.seed),
                    "part": k + 1,
                    "parts": parts,
                },
                "features": features,
                "addresses": known,
            })
        })
        .collect()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Generates the district from `seed` and writes its planning messages
/// ([`DEFAULT_PER_MESSAGE`] grids each) to `dir` as `grid-boundaries-01.json`,
/// `grid-boundaries-02.json`, …, compact JSON with a final newline. Creates
/// `dir` if needed and returns the paths written, in order.
pub fn write_planning_messages(dir: &Path, seed: u64) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let messages = planning_messages(&generate(seed), DEFAULT_PER_MESSAGE);
    let mut paths = Vec::with_capacity(messages.len());
    for (k, message) in messages.iter().enumerate() {
        let path = dir.join(format!("grid-boundaries-{:02}.json", k + 1));
        let mut body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
        body.push(b'\n');
        std::fs::write(&path, body)?;
        paths.push(path);
    }
    Ok(paths)
}
