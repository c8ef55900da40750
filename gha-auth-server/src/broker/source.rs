//! Where secrets come from: Vault KV v2 ([`VaultKvSource`]) when `[vault]` is configured, else
//! the sealed local store ([`super::local::LocalSecrets`]). Both answer a versioned read.

use std::fmt;

use async_trait::async_trait;
use gha_auth::SecretString;
use gha_auth::broker::SecretData;
use gha_auth::vault::{Kv2, VaultError};
use serde_json::Value;
use thiserror::Error;

/// One secret as its source holds it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub(crate) struct SourcedSecret {
    /// Its version (KV v2 version, or the local store's), increasing on every write.
    pub(crate) version: u64,
    /// Its fields (values never print).
    pub(crate) data: SecretData,
}

/// A read failed. Messages never hold a value.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub(crate) enum SourceError {
    /// No such secret (or its latest version is deleted).
    #[error("no such secret")]
    NotFound,
    /// The source could not answer (unreachable, sealed, denied, corrupt): serve stale, then 503.
    #[error("secret source failed: {0}")]
    Failed(String),
}

/// A source of secrets.
#[async_trait]
pub(crate) trait SecretSource: Send + Sync + fmt::Debug {
    /// Reads the latest version of `path` (a valid secret path).
    async fn read(&self, path: &str) -> Result<SourcedSecret, SourceError>;

    /// A short description for logs and health, e.g. `vault kv (secret)` or `local (sqlite)`.
    fn describe(&self) -> String;
}

/// KV v2 in Vault, read with the authority's Vault session.
#[derive(Debug, Clone)]
pub(crate) struct VaultKvSource {
    kv: Kv2,
}

impl VaultKvSource {
    /// Reads from `kv`.
    pub(crate) fn new(kv: Kv2) -> Self {
        Self { kv }
    }
}

/// A KV value as a field value: strings as they are, other JSON as its text.
fn field_value(value: &Value) -> SecretString {
    match value {
        Value::String(text) => SecretString::from(text.as_str()),
        other => SecretString::new(other.to_string()),
    }
}

#[async_trait]
impl SecretSource for VaultKvSource {
    async fn read(&self, path: &str) -> Result<SourcedSecret, SourceError> {
        match self.kv.read(path).await {
            Ok(secret) => Ok(SourcedSecret {
                version: secret.metadata.version,
                data: secret
                    .data
                    .expose()
                    .iter()
                    .map(|(k, v)| (k.clone(), field_value(v)))
                    .collect(),
            }),
            Err(e) if e.is_not_found() => Err(SourceError::NotFound),
            Err(e) => Err(SourceError::Failed(vault_reason(&e))),
        }
    }

    fn describe(&self) -> String {
        format!("vault kv ({})", self.kv.mount())
    }
}

fn vault_reason(error: &VaultError) -> String {
    // VaultError messages carry paths and Vault's own messages, never values.
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_string_kv_values_become_their_json_text() {
        assert_eq!(field_value(&Value::from("pw")).expose(), "pw");
        assert_eq!(field_value(&Value::from(5432)).expose(), "5432");
        assert_eq!(field_value(&Value::Bool(true)).expose(), "true");
        assert_eq!(
            field_value(&serde_json::json!({"a": 1})).expose(),
            r#"{"a":1}"#
        );
    }
}
