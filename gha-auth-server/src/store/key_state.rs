//! Rows of the `key_state` table: versioned, encrypted key documents with compare-and-set.

use super::documents::{DocumentSql, SaveOutcome};
use super::{Store, StoreError};

/// One stored key document (already encrypted by the caller).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct KeyStateRow {
    /// The document name, e.g. `signing-keys`.
    pub name: String,
    /// Increases by one with every successful save.
    pub version: i64,
    /// The sealed document (base64).
    pub document: String,
    /// Last save (Unix seconds).
    pub updated_at: i64,
    /// Which node saved it last.
    pub updated_by: String,
}

const SQL: DocumentSql = DocumentSql {
    insert: "INSERT INTO key_state (name, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
    update: "UPDATE key_state SET version = $1, document = $2, updated_at = $3, updated_by = $4 \
             WHERE name = $5 AND version = $6",
};

impl Store {
    /// The document called `name`, if any.
    pub async fn key_state(&self, name: &str) -> Result<Option<KeyStateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, version, document, updated_at, updated_by FROM key_state WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Saves `document` as `name` if the stored version is still `expected` (`None`: the
    /// document must not exist yet). Exactly one of several concurrent savers wins.
    pub async fn save_key_state(
        &self,
        name: &str,
        expected: Option<i64>,
        document: &str,
        now: i64,
        node: &str,
    ) -> Result<SaveOutcome, StoreError> {
        self.save_document(&SQL, name, expected, document, now, node)
            .await
    }
}
