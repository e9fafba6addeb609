//! Several multi-row inserts sent to PostgreSQL as one statement.
//!
//! Each insert is `INSERT ... SELECT ... FROM UNNEST($n::type[], ...)` with
//! one array parameter per column. [`PgInserts`] numbers the parameters
//! across all of them and sends them as one statement, the first ones as
//! data-modifying `WITH` queries: one round trip to the server instead of
//! one each. Within a statement PostgreSQL runs them with one snapshot, in
//! no set order, and checks foreign keys at its end, so the inserts of one
//! statement must not read each other's rows (a row referencing one
//! inserted beside it is fine).

use std::fmt::Write;

use sqlx::postgres::PgArguments;
use sqlx::{Arguments, Encode, Postgres, Transaction, Type};

use crate::store::StoreError;

/// Inserts gathered for one statement.
#[derive(Default)]
pub(in crate::store) struct PgInserts {
    inserts: Vec<String>,
    args: PgArguments,
    error: Option<sqlx::error::BoxDynError>,
}

impl PgInserts {
    pub fn new() -> PgInserts {
        PgInserts::default()
    }

    /// Binds one column's values as an array parameter; returns its
    /// placeholder with its cast, such as `$3::text[]`.
    pub fn column<'q, T>(&mut self, values: Vec<T>, sql_type: &str) -> String
    where
        Vec<T>: Encode<'q, Postgres> + Type<Postgres>,
    {
        if let Err(error) = self.args.add(values)
            && self.error.is_none()
        {
            // Reported by `execute`, which then sends nothing.
            self.error = Some(error);
        }
        format!("${}::{sql_type}[]", self.args.len())
    }

    /// Adds an insert written with the placeholders [`PgInserts::column`]
    /// returned. It must not have a `RETURNING` clause.
    pub fn insert(&mut self, sql: String) {
        self.inserts.push(sql);
    }

    /// The one statement: every insert but the last as a `WITH` query.
    fn statement(&self) -> Option<String> {
        let (last, first) = self.inserts.split_last()?;
        let mut sql = String::with_capacity(self.inserts.iter().map(|i| i.len() + 16).sum());
        for (n, insert) in first.iter().enumerate() {
            let lead = if n == 0 { "WITH" } else { "," };
            let _ = write!(sql, "{lead} i{n} AS ({insert})");
        }
        if !first.is_empty() {
            sql.push(' ');
        }
        sql.push_str(last);
        Some(sql)
    }

    /// Sends every insert as one statement; nothing if there is none.
    pub async fn execute(self, tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        if let Some(error) = self.error {
            return Err(sqlx::Error::Encode(error).into());
        }
        let Some(sql) = self.statement() else {
            return Ok(());
        };
        sqlx::query_with(sqlx::AssertSqlSafe(sql), self.args)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_inserts() {
        let mut inserts = PgInserts::new();
        let a = inserts.column(vec![1_i64, 2], "int8");
        let b = inserts.column(vec!["x", "y"], "text");
        let c = inserts.column(vec![true], "bool");
        assert_eq!(
            (a.as_str(), b.as_str(), c.as_str()),
            ("$1::int8[]", "$2::text[]", "$3::bool[]")
        );
        assert!(inserts.error.is_none());
    }

    #[test]
    fn inserts_but_the_last_become_with_queries() {
        let mut inserts = PgInserts::new();
        assert_eq!(inserts.statement(), None);
        inserts.insert("INSERT INTO a SELECT 1".into());
        assert_eq!(
            inserts.statement().as_deref(),
            Some("INSERT INTO a SELECT 1")
        );
        inserts.insert("INSERT INTO b SELECT 2".into());
        inserts.insert("INSERT INTO c SELECT 3".into());
        assert_eq!(
            inserts.statement().as_deref(),
            Some(
                "WITH i0 AS (INSERT INTO a SELECT 1), i1 AS (INSERT INTO b SELECT 2) INSERT INTO c SELECT 3"
            )
        );
    }
}
