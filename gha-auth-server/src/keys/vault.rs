//! [`VaultKeyStore`]: key documents in Vault KV v2, one secret per [`KeyDocument`] at
//! `<key_prefix>/<name>`, with the document version mapped to the KV v2 version and saves made
//! with `cas` so that of several replicas exactly one wins each change.
//!
//! The document is stored base64-encoded under the field `document`. Vault encrypts it at rest
//! and guards it by policy, so it is not sealed again with the master key: replicas then share
//! nothing but Vault and the database.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gha_auth::SecretBytes;
use gha_auth::vault::{Kv2, KvData, VaultError};
use zeroize::Zeroizing;

use super::store::{CasOutcome, KeyDocument, KeyStore, KeyStoreError, Versioned};

const FIELD: &str = "document";

/// Key documents in Vault KV v2.
#[derive(Debug, Clone)]
pub(crate) struct VaultKeyStore {
    kv: Kv2,
    prefix: String,
}

impl VaultKeyStore {
    /// A key store on `kv` under `prefix`.
    pub(crate) fn new(kv: Kv2, prefix: &str) -> Self {
        Self {
            kv,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    fn path(&self, doc: KeyDocument) -> String {
        format!("{}/{}", self.prefix, doc.name())
    }
}

fn backend(e: &VaultError) -> KeyStoreError {
    KeyStoreError::Backend(format!("vault: {e}"))
}

#[async_trait]
impl KeyStore for VaultKeyStore {
    async fn load(&self, doc: KeyDocument) -> Result<Option<Versioned>, KeyStoreError> {
        let secret = match self.kv.read(&self.path(doc)).await {
            Ok(secret) => secret,
            Err(VaultError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(backend(&e)),
        };
        let Some(encoded) = secret.data.get_secret(FIELD) else {
            return Err(KeyStoreError::Backend(format!(
                "vault: {} has no {FIELD} field",
                self.path(doc)
            )));
        };
        let bytes = STANDARD.decode(encoded.expose().as_bytes()).map_err(|_| {
            KeyStoreError::Backend(format!("vault: {} is not base64", self.path(doc)))
        })?;
        Ok(Some(Versioned {
            version: secret.metadata.version,
            document: SecretBytes::from(bytes),
        }))
    }

    async fn save(
        &self,
        doc: KeyDocument,
        expected: Option<u64>,
        document: &SecretBytes,
    ) -> Result<CasOutcome, KeyStoreError> {
        let encoded = Zeroizing::new(STANDARD.encode(document.expose()));
        let data = KvData::new().with(FIELD, encoded.as_str());
        match self
            .kv
            .write(&self.path(doc), &data, Some(expected.unwrap_or(0)))
            .await
        {
            Ok(version) => Ok(CasOutcome::Saved(version.version)),
            Err(e) if e.is_cas_conflict() => Ok(CasOutcome::Conflict),
            Err(e) => Err(backend(&e)),
        }
    }

    fn describe(&self) -> String {
        format!("vault ({}/{})", self.kv.mount(), self.prefix)
    }
}
