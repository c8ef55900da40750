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
use crate::atrest::{AtRestError, MasterKey};
use crate::keys::CasOutcome;
use crate::store::{SaveOutcome, Store, StoreError};

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
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening failed (wrong master key, corrupt document).
    #[error(transparent)]
    AtRest(#[from] AtRestError),
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
pub async fn update<T>(
    store: &dyn LinkKeyStore,
    name: &str,
    mut change: impl FnMut(&mut LinkKeyState) -> Result<T, Stale> + Send,
) -> Result<Result<(T, VersionedState), Stale>, LinkKeyStoreError> {
    for _ in 0..16 {
        let (expected, mut state) = match store.load(name).await? {
            Some(loaded) => (Some(loaded.version), loaded.state),
            None => (None, LinkKeyState::empty(name)),
        };
        let value = match change(&mut state) {
            Ok(value) => value,
            Err(stale) => return Ok(Err(stale)),
        };
        match store.save(name, expected, &state).await? {
            CasOutcome::Saved(version) => {
                return Ok(Ok((value, VersionedState { version, state })));
            }
            _ => tracing::debug!(name, "link-key state changed concurrently; reloading"),
        }
    }
    Err(LinkKeyStoreError::Contended(name.to_owned()))
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

/// Link-key documents sealed with the master key in the store's `link_key_state` table.
///
/// Replicas on one PostgreSQL share the documents; they must share the master key file too.
#[derive(Debug, Clone)]
pub struct LocalLinkKeyStore {
    store: Store,
    master: Arc<MasterKey>,
    clock: SharedClock,
    node: String,
}

impl LocalLinkKeyStore {
    /// A link-key store over `store`, sealing with `master`; `node` names the writer in rows.
    pub fn new(store: Store, master: Arc<MasterKey>, clock: SharedClock, node: String) -> Self {
        Self {
            store,
            master,
            clock,
            node,
        }
    }

    /// The associated data the document is sealed under: binds the row to its name.
    fn sealed_name(name: &str) -> String {
        format!("link-key/{name}")
    }
}

#[async_trait]
impl LinkKeyStore for LocalLinkKeyStore {
    async fn load(&self, name: &str) -> Result<Option<VersionedState>, LinkKeyStoreError> {
        let Some(row) = self.store.link_key_state(name).await? else {
            return Ok(None);
        };
        let plain = self.master.open(&Self::sealed_name(name), &row.document)?;
        let state = LinkKeyState::from_json(plain.expose()).map_err(|message| {
            LinkKeyStoreError::Corrupt {
                name: name.to_owned(),
                message,
            }
        })?;
        let version = u64::try_from(row.version).map_err(|_| LinkKeyStoreError::Corrupt {
            name: name.to_owned(),
            message: "negative version".into(),
        })?;
        Ok(Some(VersionedState {
            version,
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
        let sealed = self.master.seal(&Self::sealed_name(name), &json)?;
        let expected = expected.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let outcome = self
            .store
            .save_link_key_state(
                name,
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
