//! [`Services`]: the store, the keys and the registries opened on one configuration. The
//! server and every admin command open the same, so they work on the same data.

use std::sync::Arc;

use gha_auth::SharedClock;
use gha_auth::vault::{VaultError, VaultSession};
use thiserror::Error;

use crate::atrest::{AtRestError, MasterKey, create_private_dir};
use crate::audit::AuditLog;
use crate::broker::local::LocalSecrets;
use crate::clients::ClientRegistry;
use crate::config::{Config, ConfigError, ConfigProblem};
use crate::keys::{
    KeyManager, KeyManagerError, KeySettings, KeyStore, KeyStoreError, LocalKeyStore,
    VaultKeyStore, load_import_pem, load_or_create_pepper, node_name, schedule_from,
};
use crate::linkkeys::{LinkKeyStore, LinkKeysError, link_key_store};
use crate::store::{Store, StoreError};

/// Opening the services failed. Separate from request-time errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be created or written.
    #[error("the data directory {path} is not usable: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The master key failed.
    #[error(transparent)]
    AtRest(#[from] AtRestError),
    /// Vault could not be reached or logged in to.
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    /// The key store failed.
    #[error("key store: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// The signing keys failed.
    #[error("signing keys: {0}")]
    Keys(#[from] KeyManagerError),
    /// The link-key store failed.
    #[error(transparent)]
    LinkKeys(#[from] LinkKeysError),
    /// `keys.import_pem` is unusable.
    #[error("{0}")]
    ImportKey(String),
}

/// The store, keys and registries, opened on one configuration.
#[derive(Debug)]
#[non_exhaustive]
pub struct Services {
    /// The store.
    pub store: Store,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Where key documents live.
    pub key_store: Arc<dyn KeyStore>,
    /// Clients.
    pub clients: ClientRegistry,
    /// How signing keys are made and rotated (`[keys]`, `[tokens]`).
    pub key_settings: KeySettings,
    /// The Vault session, when Vault is configured.
    pub vault: Option<VaultSession>,
    /// Where link-key state lives (Vault KV v2, else sealed in the store).
    pub link_key_store: Arc<dyn LinkKeyStore>,
    /// The broker's local secrets (sealed in the store; served when Vault is not configured).
    pub broker_secrets: LocalSecrets,
    /// The clock everything was opened with.
    pub clock: SharedClock,
    /// Whether the signing keys live in Vault (then Vault's health matters to serving).
    pub keys_in_vault: bool,
    actor: String,
}

impl Services {
    /// Opens everything `config` describes. `actor` names this process in audit events
    /// (`cli`, `scheduler@host:pid`). The signing-key ring is created if missing, not advanced.
    pub async fn open(config: &Config, clock: SharedClock, actor: &str) -> Result<Self, OpenError> {
        create_private_dir(&config.data_dir)
            .and_then(|()| check_writable(&config.data_dir))
            .map_err(|source| OpenError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        let schedule = schedule_from(&config.keys, config.tokens.max_lifetime)
            .map_err(|e| invalid("keys", e.to_string()))?;
        let vault_config = crate::vault::vault_config(&config.vault)
            .map_err(|message| invalid("vault", message))?;
        let store = Store::open_with(
            &config.store_url(),
            config.store.max_connections,
            config.store.acquire_timeout.as_std(),
        )
        .await?;
        let master = Arc::new(MasterKey::load_or_create(&config.master_key_path())?);
        let vault = match vault_config {
            Some(vault_config) => {
                let session = VaultSession::start(&vault_config, clock.clone())?;
                session.ready(config.vault.request_timeout.as_std()).await?;
                Some(session)
            }
            None => None,
        };
        let keys_in_vault = vault.is_some() && config.keys_in_vault();
        let key_store: Arc<dyn KeyStore> = match (&vault, keys_in_vault) {
            (Some(session), true) => {
                let kv = session.kv2(&config.vault.kv_mount)?;
                Arc::new(VaultKeyStore::new(kv, &config.vault.key_prefix))
            }
            _ => Arc::new(LocalKeyStore::new(
                store.clone(),
                master.clone(),
                clock.clone(),
                node_name(),
            )),
        };
        let link_key_store = link_key_store(
            vault.as_ref().map(|session| {
                (
                    session,
                    config.vault.kv_mount.as_str(),
                    config.vault.link_key_prefix.as_str(),
                )
            }),
            &store,
            master.clone(),
            clock.clone(),
            actor,
        )?;
        let broker_secrets = LocalSecrets::new(store.clone(), master.clone(), clock.clone());
        let audit = Arc::new(AuditLog::new(store.clone(), clock.clone()));
        let pepper = Arc::new(load_or_create_pepper(&*key_store).await?);
        let initial_key = match &config.keys.import_pem {
            Some(path) => {
                Some(load_import_pem(path, config.dev_mode).map_err(OpenError::ImportKey)?)
            }
            None => None,
        };
        let key_settings = KeySettings::new(schedule, config.keys.algorithm.algorithm())
            .dev_mode(config.dev_mode)
            .initial_key(initial_key);
        let clients = ClientRegistry::new(
            store.clone(),
            pepper,
            audit.clone(),
            clock.clone(),
            config.tokens.max_lifetime.as_delta(),
        )
        .with_cache(
            config.clients.cache_ttl.as_delta(),
            config.clients.outage_window.as_delta(),
        );
        Ok(Self {
            store,
            audit,
            key_store,
            clients,
            key_settings,
            vault,
            link_key_store,
            broker_secrets,
            clock,
            keys_in_vault,
            actor: actor.to_owned(),
        })
    }

    /// The signing keys, creating the first one (with `keys.algorithm` of this configuration)
    /// when there is none: what the server does at start.
    pub async fn signing_keys(&self) -> Result<Arc<KeyManager>, OpenError> {
        Ok(Arc::new(
            KeyManager::open(
                self.key_store.clone(),
                self.key_settings.clone(),
                self.clock.clone(),
                self.audit.clone(),
                &self.actor,
            )
            .await?
            .with_change_notices(self.store.clone()),
        ))
    }

    /// The signing keys as the server keeps them, or `None` before it first ran: an admin
    /// command never makes the first key, so the server's configuration decides its algorithm.
    pub async fn existing_signing_keys(&self) -> Result<Option<Arc<KeyManager>>, OpenError> {
        Ok(KeyManager::load(
            self.key_store.clone(),
            self.key_settings.clone(),
            self.clock.clone(),
            self.audit.clone(),
            &self.actor,
        )
        .await?
        .map(|keys| Arc::new(keys.with_change_notices(self.store.clone()))))
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid(vec![ConfigProblem::new(key, message)])
}

/// Whether this process can create files in `dir` (an existing directory owned by someone else,
/// or on a read-only mount, fails here with its path rather than later in SQLite).
fn check_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".gha-auth-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
