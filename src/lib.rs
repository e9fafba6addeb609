//! gridhub: the integration hub of a district's grid-based social service
//! management system.
//!
//! Messages from hotlines, departments and the grid platform arrive over AMQP,
//! are validated against their connector's JSON Schema, mapped to a unified
//! intent and recorded as unified cases in PostgreSQL. See
//! `docs/ARCHITECTURE.md` for the map of this crate.

pub mod amqp;
pub mod bench;
pub mod bus;
pub mod carrier;
pub mod check;
pub mod cli;
pub mod connector;
pub mod demo;
pub mod desk;
pub mod district;
pub mod dlq;
pub mod http;
pub mod hub;
pub mod intent;
pub mod lifecycle;
pub mod mapping;
pub mod message;
pub mod metrics;
pub mod pipeline;
pub mod places;
pub mod privacy;
pub mod routing;
pub mod schema;
pub mod settings;
pub mod store;
pub mod telemetry;
