//! gridhub's pure core: what a message means, with no broker, database or
//! I/O runtime.
//!
//! A connector's configuration ([`connector`]) names its message types,
//! their JSON Schemas ([`schema`]) and jq mappings ([`mapping`]) to the
//! unified [`intent`]; the [`pipeline`] runs an [`message::Inbound`]
//! message through its named stages to an intent or a refusal with its
//! reason. [`lifecycle`] is the case's state machine, [`routing`] the
//! district's rules for who leads a case and by when, and [`privacy`] what
//! each destination may see of personal data; [`hints`] tells a sender, from
//! the schema alone, what a refused message should have been.
//!
//! Everything here is deterministic and testable without services; the
//! `gridhub` crate adds the carriers, the store and the service around it.

pub mod assessment;
pub mod calendar;
pub mod connector;
pub mod hints;
pub mod intent;
pub mod lifecycle;
pub mod mapping;
pub mod message;
pub mod pipeline;
pub mod privacy;
pub mod routing;
pub mod schema;
