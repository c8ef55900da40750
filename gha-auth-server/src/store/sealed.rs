//! [`SealedDocuments`]: one sealed, versioned document per name in a table, saved with
//! compare-and-set. The signing keys and pepper, each link key's state and the broker's local
//! secrets are kept this way, each feature in a table of its own ([`DocumentTable`], its SQL).
//!
//! A document is sealed with the master key (AES-256-GCM) under associated data that names the
//! table's kind and the row, so a document copied to another row or table does not open.

use std::fmt;
use std::sync::Arc;

use gha_auth::{SecretBytes, SharedClock};
use thiserror::Error;

use super::{Store, StoreError};
use crate::atrest::{AtRestError, MasterKey};

/// The statements of one document table. Table names cannot be bound, so each table spells its
/// own; every table has a name column, `version`, `document`, `updated_at` and `updated_by`.
#[derive(Debug)]
pub(crate) struct DocumentTable {
    /// Prefix of the associated data a document is sealed under (`<prefix><name>`).
    pub sealed_as: &'static str,
    /// Binds the name; selects version, document, updated_at.
    pub select: &'static str,
    /// Binds name, document, updated_at, updated_by; inserts version 1 unless the name exists.
    pub insert: &'static str,
    /// Binds new version, document, updated_at, updated_by, name, expected version.
    pub update: &'static str,
}

/// What a compare-and-set save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CasOutcome {
    /// Saved at this new version.
    Saved(u64),
    /// Another writer saved first; reload and decide again.
    Conflict,
}

/// A document as read: its version and plain text.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct SealedDocument {
    /// Increases by one with every save; pass it back to [`SealedDocuments::save`].
    pub version: u64,
    /// The opened document. Secret.
    pub plain: SecretBytes,
    /// When it was last saved (Unix seconds).
    pub updated_at: i64,
}

/// Reading or saving a sealed document failed (a conflict is [`CasOutcome::Conflict`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SealedError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening failed (wrong master key, a document moved from another row).
    #[error(transparent)]
    AtRest(#[from] AtRestError),
}

/// Sealed documents of one table.
#[derive(Clone)]
pub(crate) struct SealedDocuments {
    store: Store,
    master: Arc<MasterKey>,
    clock: SharedClock,
    table: &'static DocumentTable,
}

impl fmt::Debug for SealedDocuments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedDocuments")
            .field("table", &self.table.sealed_as)
            .finish_non_exhaustive()
    }
}

impl SealedDocuments {
    /// Documents of `table` in `store`, sealed with `master`.
    pub(crate) fn new(
        store: Store,
        master: Arc<MasterKey>,
        clock: SharedClock,
        table: &'static DocumentTable,
    ) -> Self {
        Self {
            store,
            master,
            clock,
            table,
        }
    }

    /// The store the table is in.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    fn sealed_as(&self, name: &str) -> String {
        format!("{}{name}", self.table.sealed_as)
    }

    /// The document called `name`, opened, or `None` if it was never saved.
    pub(crate) async fn load(&self, name: &str) -> Result<Option<SealedDocument>, SealedError> {
        let Some((version, document, updated_at)) = self.raw(name).await? else {
            return Ok(None);
        };
        let plain = self.master.open(&self.sealed_as(name), &document)?;
        let version = u64::try_from(version).map_err(|_| StoreError::Corrupt {
            table: self.table.sealed_as,
            message: "negative version".into(),
        })?;
        Ok(Some(SealedDocument {
            version,
            plain,
            updated_at,
        }))
    }

    /// Seals `plain` and saves it as `name` if the stored version is still `expected` (`None`:
    /// the document must not exist yet); `writer` names who saved it. Exactly one of several
    /// concurrent savers wins.
    pub(crate) async fn save(
        &self,
        name: &str,
        expected: Option<u64>,
        plain: &[u8],
        writer: &str,
    ) -> Result<CasOutcome, SealedError> {
        let sealed = self.master.seal(&self.sealed_as(name), plain)?;
        let now = self.clock.unix_seconds();
        let (query, version) = match expected {
            None => (
                sqlx::query(self.table.insert)
                    .bind(name)
                    .bind(sealed)
                    .bind(now)
                    .bind(writer),
                1,
            ),
            Some(expected) => {
                let expected = i64::try_from(expected).unwrap_or(i64::MAX);
                (
                    sqlx::query(self.table.update)
                        .bind(expected.saturating_add(1))
                        .bind(sealed)
                        .bind(now)
                        .bind(writer)
                        .bind(name)
                        .bind(expected),
                    expected.saturating_add(1),
                )
            }
        };
        let result = query
            .execute(self.store.pool())
            .await
            .map_err(StoreError::from)?;
        Ok(if result.rows_affected() == 1 {
            CasOutcome::Saved(u64::try_from(version).unwrap_or(0))
        } else {
            CasOutcome::Conflict
        })
    }

    /// The row as stored (version, sealed document, updated_at): for checks that a document
    /// is sealed at rest.
    pub(crate) async fn raw(&self, name: &str) -> Result<Option<(i64, String, i64)>, StoreError> {
        Ok(sqlx::query_as(self.table.select)
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?)
    }
}
