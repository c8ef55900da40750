//! Rows of the `link_key_state` table: one sealed, versioned document per link key, saved with
//! compare-and-set.

use super::documents::{DocumentSql, SaveOutcome};
use super::{Store, StoreError};

const SQL: DocumentSql = DocumentSql {
    insert: "INSERT INTO link_key_state (name, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
    update: "UPDATE link_key_state SET version = $1, document = $2, updated_at = $3, \
             updated_by = $4 WHERE name = $5 AND version = $6",
};

/// One stored link-key document (sealed by the caller).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct LinkKeyRow {
    /// The link key's name.
    pub name: String,
    /// Increases by one with every successful save.
    pub version: i64,
    /// The sealed document.
    pub document: String,
}

impl Store {
    /// The document of link key `name`, if any.
    pub async fn link_key_state(&self, name: &str) -> Result<Option<LinkKeyRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, version, document FROM link_key_state WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Saves the document of `name` if its version is still `expected` (`None`: it must not
    /// exist yet). Exactly one of several concurrent savers wins.
    pub async fn save_link_key_state(
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
