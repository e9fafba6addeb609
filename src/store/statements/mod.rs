//! The store's statements: methods on [`Tx`], one file per table group,
//! each with its PostgreSQL and its SQLite form side by side. The flow
//! (what a batch does: `apply_batch`, `open.rs`, `update.rs`) calls them and
//! holds no SQL.
//!
//! On PostgreSQL a batch's rows of one table go in one multi-row statement,
//! and the rows of a newly opened case (the case, its reporter, its first
//! events, its outbox rows) in one round trip ([`Tx::insert_opened`]); on
//! SQLite, in process, each row is one prepared statement.

mod case_events;
mod cases;
mod dead_letters;
mod grids;
mod inbox;
mod inserts;
mod outbox;
mod reporters;
mod sources;

pub(super) use case_events::{CaseEvent, Facts, Response};
pub(super) use cases::{CaseInsert, CaseJson, CaseKey, CaseRow, Clocks, Due, OpenCandidate};
pub(super) use dead_letters::Refused;
pub(super) use grids::GridUpsert;
pub(super) use inbox::InboxClaim;
pub(super) use reporters::NewReporter;
pub(super) use sources::SourceRow;
#[cfg(test)]
pub(super) use {inserts::PgInserts, outbox::add as add_outbox};

use super::outbox::OutboxEvent;
use super::seal::Seal;
use super::{StoreError, Tx};

impl Tx {
    /// Inserts newly opened cases with their reporters, their first case
    /// events and the outbox rows they cause.
    pub(in crate::store) async fn insert_opened(
        &mut self,
        cases: &[CaseInsert<'_>],
        reporters: &[NewReporter<'_>],
        events: &[CaseEvent<'_>],
        outbox: &[OutboxEvent],
        seal: &Seal,
    ) -> Result<(), StoreError> {
        match self {
            Tx::Pg(tx) => {
                let mut inserts = inserts::PgInserts::new();
                cases::add(&mut inserts, cases);
                reporters::add(&mut inserts, reporters);
                case_events::add(&mut inserts, events);
                outbox::add(&mut inserts, outbox, seal);
                inserts.execute(tx).await
            }
            #[cfg(feature = "sqlite")]
            Tx::Lite(lite) => {
                cases::insert_lite(lite, cases).await?;
                reporters::insert_lite(lite, reporters).await?;
                self.insert_events(events).await?;
                self.insert_outbox(outbox, seal).await
            }
        }
    }
}
