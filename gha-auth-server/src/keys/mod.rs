//! Signing keys on the server: the [`KeyStore`] seam, the [`KeyManager`] that moves the ring
//! through `next → active → retired → removed`, the rotation scheduler, and the pepper.
//!
//! The lifecycle itself is pure and lives in [`gha_auth::keys::KeyRing`]; this module adds
//! storage with compare-and-set, audit events and the clock-driven task.

mod cli;
pub(crate) mod config;
mod health;
mod manager;
mod metrics;
mod scheduler;
mod store;
mod vault;

use std::path::Path;

use gha_auth::apikey::Pepper;
use gha_auth::keys::{KeySchedule, ScheduleError, SigningKey, is_dev_key};

use crate::settings::Duration;

pub(crate) use cli::{KeysCommand, emergency_text, list_text, rotated_text, run as run_cli};
pub(crate) use config::KeysConfig;
pub(crate) use health::SigningKeysCheck;
pub(crate) use manager::{KeyManager, KeyManagerError, KeySettings, follow_changes};
pub(crate) use metrics::{describe_metrics, update_gauges};
pub(crate) use scheduler::run_scheduler;
pub(crate) use store::{CasOutcome, KeyDocument, KeyStore, KeyStoreError, LocalKeyStore};
pub(crate) use vault::VaultKeyStore;

/// The key schedule the configuration describes, validated.
///
/// Retired keys stay published for `tokens.max_lifetime + keys.leeway + keys.jwks_max_age`: the
/// shortest time that keeps every token verifiable until it expires, even by a verifier whose
/// cached JWKS is as old as allowed.
pub(crate) fn schedule_from(
    keys: &KeysConfig,
    max_token_lifetime: Duration,
) -> Result<KeySchedule, ScheduleError> {
    let max_token_lifetime = max_token_lifetime.as_delta();
    let schedule = KeySchedule {
        rotation_period: keys.rotation_period.as_delta(),
        publish_ahead: keys.publish_ahead.as_delta(),
        max_token_lifetime,
        leeway: keys.leeway.as_delta(),
        jwks_max_age: keys.jwks_max_age.as_delta(),
        retain_retired: max_token_lifetime + keys.leeway.as_delta() + keys.jwks_max_age.as_delta(),
    };
    schedule.validate()?;
    Ok(schedule)
}

/// Reads `keys.import_pem`, refusing a development key outside dev mode.
pub(crate) fn load_import_pem(path: &Path, dev_mode: bool) -> Result<SigningKey, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read keys.import_pem {}: {e}", path.display()))?;
    let key = SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| format!("keys.import_pem {}: {e}", path.display()))?;
    if is_dev_key(key.kid()) && !dev_mode {
        return Err(format!(
            "keys.import_pem {} is a published development key; it is refused unless dev_mode = true",
            path.display()
        ));
    }
    Ok(key)
}

/// Loads the pepper from `store`, creating it on first start. Concurrent first starts agree on
/// one pepper (compare-and-set).
pub(crate) async fn load_or_create_pepper(store: &dyn KeyStore) -> Result<Pepper, KeyStoreError> {
    let corrupt = |_| KeyStoreError::Backend("stored pepper is unusable".into());
    for _ in 0..3 {
        if let Some(doc) = store.load(KeyDocument::Pepper).await? {
            return Pepper::new(doc.document.expose().to_vec()).map_err(corrupt);
        }
        let pepper = Pepper::generate().map_err(corrupt)?;
        let document = gha_auth::SecretBytes::new(pepper.expose().to_vec());
        if let CasOutcome::Saved(_) = store.save(KeyDocument::Pepper, None, &document).await? {
            return Ok(pepper);
        }
    }
    Err(KeyStoreError::Backend("could not create the pepper".into()))
}

/// A name for this process in key-state rows and audit events: host and process id.
pub(crate) fn node_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{}:{}", crate::audit::clean(&host), std::process::id())
}

#[cfg(test)]
mod tests;
