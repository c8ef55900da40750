//! The configured link keys of one process: a [`Rotator`] per `[link_keys.<name>]`, the store
//! they share, and their `/HealthCheck` component.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gha_auth::SharedClock;
use gha_auth::vault::{VaultError, VaultSession};
use serde_json::{Value, json};

use super::alert::AlertWebhook;
use super::driver::{DriverSettings, Rotator};
use super::machine;
use super::store::{LinkKeyStore, LocalLinkKeyStore, VaultLinkKeyStore};
use super::{AlertsConfig, LinkKeyConfig};
use crate::atrest::MasterKey;
use crate::audit::AuditLog;
use crate::health::{ComponentHealth, HealthCheck, HealthStatus};
use crate::store::Store;
use crate::targets::{TargetDeps, TargetError, build_target};

/// One configured link key.
#[derive(Debug)]
#[non_exhaustive]
pub struct LinkKeyEntry {
    /// Its configuration.
    pub config: LinkKeyConfig,
    /// Its rotation driver (and, through it, its store).
    pub rotator: Arc<Rotator>,
}

/// Every configured link key.
#[derive(Debug)]
pub struct LinkKeys {
    entries: BTreeMap<String, LinkKeyEntry>,
    clock: SharedClock,
}

/// The link keys could not be set up. Separate from rotation-time errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkKeysError {
    /// `[alerts]` is unusable.
    #[error("{0}")]
    Alerts(String),
    /// A link key's target is unusable.
    #[error("link_keys.{name}.target: {source}")]
    Target {
        /// The link key.
        name: String,
        /// What is wrong with its target.
        source: TargetError,
    },
    /// Vault (where link-key state lives when it is configured) failed.
    #[error("link-key store in vault: {0}")]
    Vault(#[from] VaultError),
}

/// Where link-key state lives: Vault KV v2 (`kv_mount`, under `prefix`) when Vault is
/// configured, else sealed in the store.
pub(crate) fn link_key_store(
    vault: Option<(&VaultSession, &str, &str)>,
    store: &Store,
    master: Arc<MasterKey>,
    clock: SharedClock,
    node: &str,
) -> Result<Arc<dyn LinkKeyStore>, LinkKeysError> {
    Ok(match vault {
        Some((session, kv_mount, prefix)) => {
            let kv = session.kv2(kv_mount)?;
            Arc::new(VaultLinkKeyStore::new(kv, prefix))
        }
        None => Arc::new(LocalLinkKeyStore::new(
            store.clone(),
            master,
            clock,
            node.to_owned(),
        )),
    })
}

/// A name for one process's link-key driver: the node plus randomness, so two in-process
/// servers (tests) or a restarted process never pass for each other.
pub(crate) fn driver_node(node: &str) -> String {
    use ring::rand::SecureRandom;
    let mut random = [0u8; 3];
    let _ = ring::rand::SystemRandom::new().fill(&mut random);
    format!("{node}#{}", hex::encode(random))
}

impl LinkKeys {
    /// Builds a driver and its target for every `[link_keys.<name>]`.
    pub async fn open(
        link_keys: &BTreeMap<String, LinkKeyConfig>,
        alerts: &AlertsConfig,
        store: Arc<dyn LinkKeyStore>,
        vault: Option<VaultSession>,
        clock: SharedClock,
        audit: Arc<AuditLog>,
        node: &str,
    ) -> Result<Self, LinkKeysError> {
        let alerts = match alerts.url().map_err(LinkKeysError::Alerts)? {
            Some(url) => Some(
                AlertWebhook::new(url, alerts.timeout.as_std(), alerts.attempts)
                    .map_err(LinkKeysError::Alerts)?,
            ),
            None => None,
        };
        let mut entries = BTreeMap::new();
        for (name, link_key) in link_keys {
            let mut deps = TargetDeps::new(clock.clone());
            if let Some(session) = &vault {
                deps = deps.with_vault(session.clone());
            }
            let target = build_target(&link_key.target, deps)
                .await
                .map_err(|source| LinkKeysError::Target {
                    name: name.clone(),
                    source,
                })?;
            let settings =
                DriverSettings::new(link_key.policy(), link_key.check_interval.as_delta());
            let rotator = Rotator::new(
                name,
                settings,
                store.clone(),
                target,
                clock.clone(),
                audit.clone(),
                driver_node(node),
            )
            .with_alerts(alerts.clone());
            entries.insert(
                name.clone(),
                LinkKeyEntry {
                    config: link_key.clone(),
                    rotator: Arc::new(rotator),
                },
            );
        }
        Ok(Self { entries, clock })
    }

    /// The link key `name`, if configured.
    pub fn get(&self, name: &str) -> Option<&LinkKeyEntry> {
        self.entries.get(name)
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Starts every driver; each stops when `shutdown()` completes.
    pub fn spawn<F, S>(&self, shutdown: S) -> Vec<tokio::task::JoinHandle<()>>
    where
        S: Fn() -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.entries
            .values()
            .map(|entry| tokio::spawn(entry.rotator.clone().run(shutdown())))
            .collect()
    }
}

/// The `/HealthCheck` component: degraded while a rotation is failing, a driver cannot reach its
/// store, a key has no CURRENT, or a rotation is overdue.
#[async_trait]
impl HealthCheck for LinkKeys {
    fn name(&self) -> &'static str {
        "link_keys"
    }

    async fn check(&self) -> ComponentHealth {
        let now = self.clock.now();
        let mut worst = HealthStatus::Healthy;
        let mut keys = serde_json::Map::new();
        for (name, entry) in &self.entries {
            let (status, detail) = entry_health(entry, now);
            worst = worst.max(status);
            keys.insert(name.clone(), detail);
        }
        ComponentHealth::new(worst).with_details(json!({ "keys": keys }))
    }
}

fn entry_health(entry: &LinkKeyEntry, now: DateTime<Utc>) -> (HealthStatus, Value) {
    let status = entry.rotator.status();
    let policy = entry.rotator.policy();
    let Some(state) = &status.state else {
        return (
            HealthStatus::Degraded,
            json!({"status": HealthStatus::Degraded, "error": status.last_error
                .unwrap_or_else(|| "not loaded yet".into())}),
        );
    };
    let rotation = state.rotation.as_ref();
    let failing = rotation.and_then(|r| r.last_error.clone());
    let due = machine::rotation_due(state, policy);
    // Overdue: the rotation should have finished by now even allowing for the publish-ahead wait
    // and a check interval.
    let overdue =
        due.is_some_and(|due| now > due + policy.publish_ahead + policy.claim_timeout * 2);
    let level =
        if failing.is_some() || status.last_error.is_some() || state.current.is_none() || overdue {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
    (
        level,
        json!({
            "status": level,
            "current": state.current.as_ref().map(|k| &k.id),
            "pending": state.pending.as_ref().map(|k| &k.id),
            "previous": state.previous.as_ref().map(|k| json!({"id": k.id, "expires_at": k.expires_at})),
            "last_rotated_at": state.last_rotated_at,
            "next_rotation_at": due,
            "rotation": rotation.map(|r| json!({
                "id": r.id, "step": r.step, "failures": r.failures,
                "last_error": r.last_error, "next_attempt": r.next_attempt,
            })),
            "store_error": status.last_error,
            "target": entry.rotator.target_description(),
            "checked_at": status.checked_at,
        }),
    )
}
