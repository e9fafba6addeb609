//! The district's reference data: its streets and townships, communities and
//! villages, grids with their boundaries, and known addresses.
//!
//! - [`generate`] makes a realistic, deterministic data set for Tongzhou
//!   (15 streets and townships, 587 communities and villages, 1,809 grids)
//!   for samples, tests and load runs;
//! - [`planning_messages`] turns it into the planning commission's
//!   `grid-boundaries` messages (connector `dept-planning`), and
//!   [`write_planning_messages`] writes them to files;
//! - [`GridIndex`] finds the grid of a point;
//! - [`Gazetteer`] places an address, a community or a street name.
//!
//! Nothing here does I/O except [`write_planning_messages`].

mod gazetteer;
#[cfg(feature = "tools")]
mod generate;
mod index;
#[cfg(feature = "tools")]
mod names;
#[cfg(feature = "tools")]
mod planning;
#[cfg(feature = "tools")]
pub(crate) mod rng;

use serde::{Deserialize, Serialize};

pub use gazetteer::{Gazetteer, Placement};
pub use index::{GridIndex, GridRef};
#[cfg(feature = "tools")]
pub use planning::{DEFAULT_PER_MESSAGE, planning_messages, write_planning_messages};

/// The seed the command line uses unless told otherwise.
#[cfg(feature = "tools")]
pub const DEFAULT_SEED: u64 = 2015;

/// A street (街道) or township (镇, 乡).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Street {
    /// Code used in grid ids, e.g. `YQ`.
    pub code: String,
    /// Full name, e.g. `玉桥街道`, `梨园镇`, `于家务回族乡`.
    pub name: String,
    /// Name without its kind, e.g. `玉桥`, `梨园`, `于家务`.
    pub short_name: String,
    /// `street` (街道), `town` (镇) or `township` (乡).
    pub kind: String,
}

/// An urban community (社区) or a village (村).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Community {
    /// Street code and number, e.g. `YQ-004`; the prefix of its grids' ids.
    pub code: String,
    /// Name, unique within its street, e.g. `玉桥东里社区`, `大稿村`.
    pub name: String,
    /// `community` or `village`.
    pub kind: String,
    /// Full name of its street.
    pub street: String,
    /// Code of its street.
    pub street_code: String,
}

/// One grid (网格) and its boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridShape {
    /// `<STREETCODE>-<community 3 digits>-<grid 2 digits>`, e.g. `YQ-004-02`.
    pub grid_id: String,
    /// Name of its community or village.
    pub community: String,
    /// `community` or `village`.
    pub community_kind: String,
    /// Full name of its street or township.
    pub street: String,
    /// Outer ring, `[lon, lat]` (WGS 84, 6 decimals), counter-clockwise and
    /// closed (the first point is repeated last).
    pub polygon: Vec<[f64; 2]>,
}

/// The district's reference data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct District {
    /// The seed it was generated from (it names the planning batch).
    pub seed: u64,
    /// The 15 streets and townships, streets first.
    pub streets: Vec<Street>,
    /// Communities and villages, by street, then by number.
    pub communities: Vec<Community>,
    /// Grids, by street, community and number. They tile the district: every
    /// point of it is in exactly one grid, apart from shared edges.
    pub grids: Vec<GridShape>,
    /// Known addresses and their grid ids, e.g. (`梨园镇大稿村23号`, `LY-007-02`).
    pub addresses: Vec<(String, String)>,
}

/// Generates Tongzhou's reference data: the 15 streets and townships of 2015,
/// 587 communities and villages (112 urban communities, 475 villages) and
/// 1,809 grids inside 116.55-116.95 E, 39.70-40.05 N, with about three known
/// addresses per grid.
///
/// The same seed gives the same data, to the byte, on every machine. The
/// counts and the tiling hold for every seed; the seed moves the boundaries
/// a little and chooses names, community sizes and addresses.
#[cfg(feature = "tools")]
pub fn generate(seed: u64) -> District {
    generate::generate(seed)
}

/// What `gridhub district` can do.
#[cfg(feature = "tools")]
#[derive(Debug, clap::Subcommand)]
pub enum DistrictCommand {
    /// Write a generated district as the planning commission's
    /// `grid-boundaries` messages (`grid-boundaries-NN.json`).
    Generate {
        /// Seed of the generator; the same seed gives the same files.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// Folder to write to (created if missing).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[cfg(all(test, feature = "tools"))]
mod tests;
