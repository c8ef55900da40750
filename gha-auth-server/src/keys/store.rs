//! The [`KeyStore`] seam: where the signing-key ring and the pepper live, with compare-and-set.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use gha_auth::{SecretBytes, SharedClock};
use thiserror::Error;

use crate::atrest::{AtRestError, MasterKey};
use crate::store::{SaveOutcome, Store, StoreError};

/// A document kept in a [`KeyStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyDocument {
    /// The signing-key ring ([`gha_auth::keys::KeyRing::to_stored`]).
    SigningKeys,
    /// The pepper for keyed hashes of client secrets and refresh tokens.
    Pepper,
}

impl KeyDocument {
    /// The stable name: the row in the local store, the path suffix in Vault KV v2.
    pub fn name(self) -> &'static str {
        match self {
            KeyDocument::SigningKeys => "signing-keys",
            KeyDocument::Pepper => "pepper",
        }
    }
}

/// A document and the version it was read at.
#[derive(Debug)]
#[non_exhaustive]
pub struct Versioned {
    /// Increases by one with every save; pass it back to [`KeyStore::save`].
    pub version: u64,
    /// The plaintext document. Secret.
    pub document: SecretBytes,
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

/// A key store failed (not a conflict: that is [`CasOutcome::Conflict`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The underlying database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening failed (wrong master key, corrupt document).
    #[error(transparent)]
    AtRest(#[from] AtRestError),
    /// Another backend (e.g. Vault) failed; the message carries no secret.
    #[error("key store backend: {0}")]
    Backend(String),
}

/// Where key documents live, with compare-and-set on a version so that of several replicas
/// exactly one wins each change.
///
/// The local implementation is [`LocalKeyStore`] (sealed with the master key, in the store's
/// `key_state` table). A Vault KV v2 implementation maps [`KeyDocument::name`] to a secret path
/// and the version to KV v2's `cas` parameter.
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The document and its version, or `None` if it was never saved.
    async fn load(&self, doc: KeyDocument) -> Result<Option<Versioned>, KeyStoreError>;

    /// Saves `document` if the stored version is still `expected` (`None`: only if the document
    /// does not exist yet).
    async fn save(
        &self,
        doc: KeyDocument,
        expected: Option<u64>,
        document: &SecretBytes,
    ) -> Result<CasOutcome, KeyStoreError>;

    /// A short description for logs and health output, e.g. `local (sqlite)`.
    fn describe(&self) -> String;
}

/// Key documents sealed (AES-256-GCM) with the master key, in the store's `key_state` table.
///
/// On embedded defaults the store is the SQLite file in the data directory, next to the master
/// key. Replicas on one PostgreSQL share the documents; they must share the master key file too.
#[derive(Debug, Clone)]
pub struct LocalKeyStore {
    store: Store,
    master: Arc<MasterKey>,
    clock: SharedClock,
    node: String,
}

impl LocalKeyStore {
    /// A key store over `store`, sealing with `master`; `node` names this process in the rows.
    pub fn new(store: Store, master: Arc<MasterKey>, clock: SharedClock, node: String) -> Self {
        Self {
            store,
            master,
            clock,
            node,
        }
    }
}

#[async_trait]
impl KeyStore for LocalKeyStore {
    async fn load(&self, doc: KeyDocument) -> Result<Option<Versioned>, KeyStoreError> {
        let Some(row) = self.store.key_state(doc.name()).await? else {
            return Ok(None);
        };
        let document = self.master.open(doc.name(), &row.document)?;
        let version = u64::try_from(row.version).map_err(|_| {
            KeyStoreError::Store(StoreError::Corrupt {
                table: "key_state",
                message: "negative version".into(),
            })
        })?;
        Ok(Some(Versioned { version, document }))
    }

    async fn save(
        &self,
        doc: KeyDocument,
        expected: Option<u64>,
        document: &SecretBytes,
    ) -> Result<CasOutcome, KeyStoreError> {
        let sealed = self.master.seal(doc.name(), document.expose())?;
        let expected = expected.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let outcome = self
            .store
            .save_key_state(
                doc.name(),
                expected,
                &sealed,
                self.clock.unix_seconds(),
                &self.node,
            )
            .await?;
        Ok(match outcome {
            SaveOutcome::Saved(version) => CasOutcome::Saved(u64::try_from(version).unwrap_or(0)),
            _ => CasOutcome::Conflict,
        })
    }

    fn describe(&self) -> String {
        format!("local ({})", self.store.backend().name())
    }
}
