//! The [`KeyStore`] seam: where the signing-key ring and the pepper live, with compare-and-set.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use gha_auth::{SecretBytes, SharedClock};
use thiserror::Error;

use crate::atrest::MasterKey;
pub(crate) use crate::store::CasOutcome;
use crate::store::{DocumentTable, SealedDocuments, SealedError, Store};

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

/// A key store failed (not a conflict: that is [`CasOutcome::Conflict`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The sealed documents in the store failed (database, wrong master key, corrupt document).
    #[error(transparent)]
    Local(#[from] SealedError),
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

/// The `key_state` table: one sealed document per [`KeyDocument`].
const KEY_STATE: DocumentTable = DocumentTable {
    sealed_as: "",
    select: "SELECT version, document, updated_at FROM key_state WHERE name = $1",
    insert: "INSERT INTO key_state (name, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
    update: "UPDATE key_state SET version = $1, document = $2, updated_at = $3, updated_by = $4 \
             WHERE name = $5 AND version = $6",
};

/// Key documents sealed (AES-256-GCM) with the master key, in the store's `key_state` table.
///
/// On embedded defaults the store is the SQLite file in the data directory, next to the master
/// key. Replicas on one PostgreSQL share the documents; they must share the master key file too.
#[derive(Debug, Clone)]
pub(crate) struct LocalKeyStore {
    documents: SealedDocuments,
    node: String,
}

impl LocalKeyStore {
    /// A key store over `store`, sealing with `master`; `node` names this process in the rows.
    pub(crate) fn new(
        store: Store,
        master: Arc<MasterKey>,
        clock: SharedClock,
        node: String,
    ) -> Self {
        Self {
            documents: SealedDocuments::new(store, master, clock, &KEY_STATE),
            node,
        }
    }

    /// The sealed rows, for checks that the documents are sealed at rest.
    #[cfg(test)]
    pub(crate) fn documents(&self) -> &SealedDocuments {
        &self.documents
    }
}

#[async_trait]
impl KeyStore for LocalKeyStore {
    async fn load(&self, doc: KeyDocument) -> Result<Option<Versioned>, KeyStoreError> {
        Ok(self
            .documents
            .load(doc.name())
            .await?
            .map(|loaded| Versioned {
                version: loaded.version,
                document: loaded.plain,
            }))
    }

    async fn save(
        &self,
        doc: KeyDocument,
        expected: Option<u64>,
        document: &SecretBytes,
    ) -> Result<CasOutcome, KeyStoreError> {
        Ok(self
            .documents
            .save(doc.name(), expected, document.expose(), &self.node)
            .await?)
    }

    fn describe(&self) -> String {
        format!("local ({})", self.documents.store().backend().name())
    }
}
