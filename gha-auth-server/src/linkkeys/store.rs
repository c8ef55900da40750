//! The [`LinkKeyStore`] seam: where each link key's [`LinkKeyState`] lives, with compare-and-set
//! on a version so that of several replicas exactly one records each rotation step.
//!
//! - [`VaultLinkKeyStore`]: Vault KV v2 at `<prefix>/<name>`, saves with `cas` (used whenever
//!   Vault is configured);
//! - [`LocalLinkKeyStore`]: the store's `link_key_state` table, the document sealed with the
//!   master key (AES-256-GCM, the row name bound in), like the signing keys.
//!
//! [`update`] is the read-modify-write loop every writer uses: reload on a conflict, and stop
//! without writing when the transition's guard says the state moved on.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use gha_auth::SharedClock;
use gha_auth::vault::{Kv2, VaultError};
use thiserror::Error;

use super::machine::Stale;
use super::model::{DOCUMENT_VERSION, LinkKeyState};
use crate::atrest::MasterKey;
use crate::store::{
    CasOutcome, Change, DocumentTable, SealedDocuments, SealedError, Store, Versioned,
    read_modify_write,
};

/// A link-key document and the version it was read at.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VersionedState {
    /// Pass it back to [`LinkKeyStore::save`].
    pub version: u64,
    /// The state (holds the keys: never log it whole).
    pub state: LinkKeyState,
}

/// A link-key store failed (a conflict is [`CasOutcome::Conflict`], not an error). Messages
/// carry no secret.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkKeyStoreError {
    /// The sealed documents in the store failed (database, wrong master key, corrupt document).
    #[error(transparent)]
    Local(#[from] SealedError),
    /// Vault failed.
    #[error("vault: {0}")]
    Vault(String),
    /// The stored document cannot be read by this version.
    #[error("link key {name}: {message}")]
    Corrupt {
        /// The link key.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Too many concurrent writers in a row.
    #[error("link key {0}: too many concurrent updates, try again")]
    Contended(String),
}

/// Where link-key documents live.
#[async_trait]
pub trait LinkKeyStore: Send + Sync + fmt::Debug {
    /// The document of `name` and its version, or `None` if it was never saved.
    async fn load(&self, name: &str) -> Result<Option<VersionedState>, LinkKeyStoreError>;

    /// Saves `state` if the stored version is still `expected` (`None`: only if there is none).
    async fn save(
        &self,
        name: &str,
        expected: Option<u64>,
        state: &LinkKeyState,
    ) -> Result<CasOutcome, LinkKeyStoreError>;

    /// A short description for logs, health and `status`, e.g. `vault (secret/gha-auth/link-keys)`.
    fn describe(&self) -> String;
}

/// Read-modify-write of `name` with compare-and-set: applies `change` to the latest state (an
/// empty one if none is stored) and saves it; on a conflict starts over (up to 16 times). A
/// guard failure (`Err(Stale)`) writes nothing and is returned as `Ok(Err(..))`.
pub(crate) async fn update<T: Send>(
    store: &dyn LinkKeyStore,
    name: &str,
    mut change: impl FnMut(&mut LinkKeyState) -> Result<T, Stale> + Send,
) -> Result<Result<(T, VersionedState), Stale>, LinkKeyStoreError> {
    let written = read_modify_write(
        &OneLinkKey { store, name },
        |state| {
            Ok(match change(state) {
                Ok(value) => Change::Save(Ok(value)),
                Err(stale) => Change::Keep(Err(stale)),
            })
        },
        || LinkKeyStoreError::Contended(name.to_owned()),
    )
    .await?;
    Ok(written.value.map(|value| {
        let state = VersionedState {
            version: written.version.unwrap_or(0),
            state: written.document,
        };
        (value, state)
    }))
}

/// One link key's document in a [`LinkKeyStore`] (an empty state until first saved).
struct OneLinkKey<'a> {
    store: &'a dyn LinkKeyStore,
    name: &'a str,
}

#[async_trait]
impl Versioned for OneLinkKey<'_> {
    type Document = LinkKeyState;
    type Error = LinkKeyStoreError;

    async fn load(&self) -> Result<(Option<u64>, LinkKeyState), LinkKeyStoreError> {
        Ok(match self.store.load(self.name).await? {
            Some(loaded) => (Some(loaded.version), loaded.state),
            None => (None, LinkKeyState::empty(self.name)),
        })
    }

    async fn save(
        &self,
        expected: Option<u64>,
        state: &LinkKeyState,
    ) -> Result<CasOutcome, LinkKeyStoreError> {
        self.store.save(self.name, expected, state).await
    }
}

fn check_loaded(name: &str, state: LinkKeyState) -> Result<LinkKeyState, LinkKeyStoreError> {
    if state.format != DOCUMENT_VERSION || state.name != name {
        return Err(LinkKeyStoreError::Corrupt {
            name: name.to_owned(),
            message: format!(
                "document is format {} for {:?}; expected format {DOCUMENT_VERSION} for {name:?}",
                state.format, state.name
            ),
        });
    }
    Ok(state)
}

/// The `link_key_state` table: one sealed document per link key.
const LINK_KEY_STATE: DocumentTable = DocumentTable {
    sealed_as: "link-key/",
    select: "SELECT version, document, updated_at FROM link_key_state WHERE name = $1",
    insert: "INSERT INTO link_key_state (name, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
    update: "UPDATE link_key_state SET version = $1, document = $2, updated_at = $3, \
             updated_by = $4 WHERE name = $5 AND version = $6",
};

/// Link-key documents sealed with the master key in the store's `link_key_state` table.
///
/// Replicas on one PostgreSQL share the documents; they must share the master key file too.
#[derive(Debug, Clone)]
pub struct LocalLinkKeyStore {
    documents: SealedDocuments,
    node: String,
}

impl LocalLinkKeyStore {
    /// A link-key store over `store`, sealing with `master`; `node` names the writer in rows.
    pub fn new(store: Store, master: Arc<MasterKey>, clock: SharedClock, node: String) -> Self {
        Self {
            documents: SealedDocuments::new(store, master, clock, &LINK_KEY_STATE),
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
impl LinkKeyStore for LocalLinkKeyStore {
    async fn load(&self, name: &str) -> Result<Option<VersionedState>, LinkKeyStoreError> {
        let Some(loaded) = self.documents.load(name).await? else {
            return Ok(None);
        };
        let state = LinkKeyState::from_json(loaded.plain.expose()).map_err(|message| {
            LinkKeyStoreError::Corrupt {
                name: name.to_owned(),
                message,
            }
        })?;
        Ok(Some(VersionedState {
            version: loaded.version,
            state: check_loaded(name, state)?,
        }))
    }

    async fn save(
        &self,
        name: &str,
        expected: Option<u64>,
        state: &LinkKeyState,
    ) -> Result<CasOutcome, LinkKeyStoreError> {
        let json = state.to_json().map_err(|e| LinkKeyStoreError::Corrupt {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
        Ok(self
            .documents
            .save(name, expected, &json, &self.node)
            .await?)
    }

    fn describe(&self) -> String {
        format!("local ({})", self.documents.store().backend().name())
    }
}

/// Link-key documents in Vault KV v2, one secret per link key at `<prefix>/<name>`, the fields
/// of [`LinkKeyState`] as the secret's data. Vault encrypts them at rest and guards them by policy.
#[derive(Debug, Clone)]
pub struct VaultLinkKeyStore {
    kv: Kv2,
    prefix: String,
}

impl VaultLinkKeyStore {
    /// A store on `kv` under `prefix` (e.g. `gha-auth/link-keys`).
    pub fn new(kv: Kv2, prefix: &str) -> Self {
        Self {
            kv,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
}

fn vault_error(e: &VaultError) -> LinkKeyStoreError {
    LinkKeyStoreError::Vault(e.to_string())
}

#[async_trait]
impl LinkKeyStore for VaultLinkKeyStore {
    async fn load(&self, name: &str) -> Result<Option<VersionedState>, LinkKeyStoreError> {
        match self
            .kv
            .read_as::<LinkKeyState>(&self.path(name), None)
            .await
        {
            Ok(secret) => Ok(Some(VersionedState {
                version: secret.metadata.version,
                state: check_loaded(name, secret.data)?,
            })),
            Err(VaultError::NotFound { .. }) => Ok(None),
            Err(e) => Err(vault_error(&e)),
        }
    }

    async fn save(
        &self,
        name: &str,
        expected: Option<u64>,
        state: &LinkKeyState,
    ) -> Result<CasOutcome, LinkKeyStoreError> {
        let path = self.path(name);
        // `cas = 0`: only if the secret does not exist. (A secret whose latest version was
        // deleted by hand must be destroyed with its metadata before it can be started over.)
        let cas = expected.unwrap_or(0);
        match self.kv.write(&path, state, Some(cas)).await {
            Ok(version) => Ok(CasOutcome::Saved(version.version)),
            Err(e) if e.is_cas_conflict() => Ok(CasOutcome::Conflict),
            Err(e) => Err(vault_error(&e)),
        }
    }

    fn describe(&self) -> String {
        format!("vault ({}/{})", self.kv.mount(), self.prefix)
    }
}
