//! The `reporters` table: who reported a case, stored sealed, apart from it.

#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::inserts::PgInserts;
use crate::intent::Reporter;
use crate::store::backend::{either, lite_uuid};
use crate::store::seal::Seal;
use crate::store::{StoreError, Tx};

/// A reporter to insert: (case id, connector, reporter as stored, the
/// keyed hash of its phone).
pub(in crate::store) type NewReporter<'a> = (Uuid, &'a str, Reporter, Option<String>);

impl Tx {
    /// The case's reporter, opened (stored sealed: store/seal.rs).
    pub(in crate::store) async fn reporter(
        &mut self,
        case_id: Uuid,
        seal: &Seal,
    ) -> Result<Option<Reporter>, StoreError> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
            bool,
            bool,
        );
        let stored: Option<Row> = either!(tx self, |tx, uuid, _time| sqlx::query_as(
            "SELECT name, phone, id_number, anonymous, confidential, callback_consent FROM reporters
             WHERE case_id = $1 LIMIT 1",
        )
        .bind(uuid(case_id))
        .fetch_optional(&mut **tx)
        .await?);
        Ok(stored.map(
            |(name, phone, id_number, anonymous, confidential, callback_consent)| {
                let stored = Reporter {
                    name,
                    phone,
                    id_number,
                    anonymous,
                    confidential,
                    callback_consent,
                };
                seal.open_reporter(case_id, stored)
            },
        ))
    }
}

/// Reporters, kept apart from their cases: (case id, connector, reporter
/// as stored, the keyed hash of its phone),
/// as one insert of a PostgreSQL statement; none if there are none.
pub(in crate::store) fn add(
    inserts: &mut PgInserts,
    reporters: &[(Uuid, &str, Reporter, Option<String>)],
) {
    if reporters.is_empty() {
        return;
    }
    let columns = [
        inserts.column(reporters.iter().map(|(id, ..)| *id).collect(), "uuid"),
        inserts.column(reporters.iter().map(|(_, c, ..)| *c).collect(), "text"),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.name.as_deref())
                .collect(),
            "text",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.phone.as_deref())
                .collect(),
            "text",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.id_number.as_deref())
                .collect(),
            "text",
        ),
        inserts.column(
            reporters.iter().map(|(_, _, r, _)| r.anonymous).collect(),
            "bool",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.confidential)
                .collect(),
            "bool",
        ),
        inserts.column(
            reporters
                .iter()
                .map(|(_, _, r, _)| r.callback_consent)
                .collect(),
            "bool",
        ),
    ];
    let hashes = inserts.column(
        reporters.iter().map(|(.., hash)| hash.as_deref()).collect(),
        "text",
    );
    inserts.insert(format!(
        "INSERT INTO reporters (case_id, connector, name, phone, id_number, anonymous, confidential, callback_consent, phone_hash)
         SELECT * FROM UNNEST({}, {hashes})",
        columns.join(", ")
    ));
}

#[cfg(feature = "sqlite")]
/// Reporters, kept apart from their cases: (case id, connector, reporter).
pub(in crate::store) async fn insert_lite(
    tx: &mut Transaction<'static, Sqlite>,
    reporters: &[(Uuid, &str, Reporter, Option<String>)],
) -> Result<(), StoreError> {
    for (id, connector, r, hash) in reporters {
        sqlx::query(
            "INSERT INTO reporters (case_id, connector, name, phone, id_number, anonymous, confidential, callback_consent, phone_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(lite_uuid(*id))
        .bind(*connector)
        .bind(r.name.as_deref())
        .bind(r.phone.as_deref())
        .bind(r.id_number.as_deref())
        .bind(r.anonymous)
        .bind(r.confidential)
        .bind(r.callback_consent)
        .bind(hash.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
