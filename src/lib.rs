//! gridhub: the integration hub of a district's grid-based social service
//! management system.
//!
//! Messages from hotlines, departments and the grid platform arrive over AMQP,
//! are validated against their connector's JSON Schema, mapped to a unified
//! intent and recorded as unified cases in PostgreSQL. See
//! `docs/ARCHITECTURE.md` for the map of this crate.

// The pure core, under the names the rest of the crate has always used.
pub use gridhub_core::{
    assessment, calendar, connector, hints, intent, lifecycle, mapping, message, pipeline, privacy,
    routing, schema,
};

pub mod amqp;
pub mod assess;
#[cfg(feature = "tools")]
pub mod bench;
pub mod bundled;
pub mod bus;
pub mod carrier;
pub mod check;
pub mod cli;
pub mod contract;
#[cfg(feature = "tools")]
pub mod demo;
pub mod desk;
pub mod district;
pub mod dlq;
pub mod dryrun;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod places;
pub mod settings;
pub mod store;
pub mod telemetry;
