//! Rows of the `broker_secrets` table: the broker's local secrets, one sealed, versioned document
//! per path, written with compare-and-set.

use super::documents::{DocumentSql, SaveOutcome};
use super::{Store, StoreError};

const SQL: DocumentSql = DocumentSql {
    insert: "INSERT INTO broker_secrets (path, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (path) DO NOTHING",
    update: "UPDATE broker_secrets SET version = $1, document = $2, updated_at = $3, \
             updated_by = $4 WHERE path = $5 AND version = $6",
};

/// One stored secret (its document sealed by the caller).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct BrokerSecretRow {
    /// The secret's path.
    pub path: String,
    /// Increases by one with every write.
    pub version: i64,
    /// The sealed document.
    pub document: String,
    /// When it was last written (Unix seconds).
    pub updated_at: i64,
}

impl Store {
    /// The secret at `path`, if any.
    pub async fn broker_secret(&self, path: &str) -> Result<Option<BrokerSecretRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT path, version, document, updated_at FROM broker_secrets WHERE path = $1",
        )
        .bind(path)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Every stored path with its version and write time (documents left out), sorted by path.
    pub async fn broker_secret_paths(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT path, version, updated_at FROM broker_secrets ORDER BY path")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Saves the document of `path` if its version is still `expected` (`None`: it must not
    /// exist yet). Exactly one of several concurrent writers wins.
    pub async fn save_broker_secret(
        &self,
        path: &str,
        expected: Option<i64>,
        document: &str,
        now: i64,
        writer: &str,
    ) -> Result<SaveOutcome, StoreError> {
        self.save_document(&SQL, path, expected, document, now, writer)
            .await
    }
}
