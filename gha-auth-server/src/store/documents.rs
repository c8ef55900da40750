//! Versioned documents saved with compare-and-set: the shared write path of the tables that hold
//! one sealed document per name (`key_state`, `link_key_state`, `broker_secrets`). Each has a
//! name column (`name` or `path`) and `version`, `document`, `updated_at` and `updated_by`.

use super::{Store, StoreError};

/// Result of a compare-and-set save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// Saved; the document now has this version.
    Saved(i64),
    /// Someone else saved first: the expected version is stale.
    Conflict,
}

/// The two statements of one document table (table names cannot be bound, so each table
/// spells its own).
pub(super) struct DocumentSql {
    /// Binds name, document, updated_at, updated_by; inserts version 1 unless the name exists.
    pub insert: &'static str,
    /// Binds new version, document, updated_at, updated_by, name, expected version.
    pub update: &'static str,
}

impl Store {
    /// Saves `document` as `name` if the stored version is still `expected` (`None`: the
    /// document must not exist yet). Exactly one of several concurrent savers wins.
    pub(super) async fn save_document(
        &self,
        sql: &DocumentSql,
        name: &str,
        expected: Option<i64>,
        document: &str,
        now: i64,
        node: &str,
    ) -> Result<SaveOutcome, StoreError> {
        let (query, version) = match expected {
            None => (
                sqlx::query(sql.insert)
                    .bind(name)
                    .bind(document)
                    .bind(now)
                    .bind(node),
                1,
            ),
            Some(expected) => (
                sqlx::query(sql.update)
                    .bind(expected + 1)
                    .bind(document)
                    .bind(now)
                    .bind(node)
                    .bind(name)
                    .bind(expected),
                expected + 1,
            ),
        };
        let result = query.execute(self.pool()).await?;
        Ok(if result.rows_affected() == 1 {
            SaveOutcome::Saved(version)
        } else {
            SaveOutcome::Conflict
        })
    }
}
