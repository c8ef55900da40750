//! The broker's local secrets, for embedded defaults (no Vault): one document per path in the
//! store's `broker_secrets` table, sealed with the master key (AES-256-GCM, the path bound in as
//! associated data) like the signing and link keys, versioned, written with compare-and-set.
//! `gha-auth secrets put|get|list` writes and reads them; the broker serves them.

use std::sync::Arc;

use async_trait::async_trait;
use gha_auth::SharedClock;
use gha_auth::broker::SecretData;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use super::source::{SecretSource, SourceError, SourcedSecret};
use crate::atrest::{AtRestError, MasterKey};
use crate::store::{SaveOutcome, Store, StoreError};

const FORMAT: u32 = 1;

/// The sealed document: the path is repeated inside so a row cannot be moved to another path.
#[derive(Serialize, Deserialize)]
struct Document {
    format: u32,
    path: String,
    fields: SecretData,
}

/// A local secret as stored.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalSecret {
    /// Increases with every write.
    pub version: u64,
    /// The fields.
    pub data: SecretData,
    /// When it was written (Unix seconds).
    pub updated_at: i64,
}

/// A local-secret operation failed. Messages never hold a value.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LocalSecretsError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening failed (another master key, a corrupt row).
    #[error(transparent)]
    AtRest(#[from] AtRestError),
    /// The document cannot be read by this version, or belongs to another path.
    #[error("secret {path}: {message}")]
    Corrupt {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Other writers kept winning.
    #[error("secret {0}: too many concurrent writes, try again")]
    Contended(String),
}

/// The local secrets.
#[derive(Debug, Clone)]
pub struct LocalSecrets {
    store: Store,
    master: Arc<MasterKey>,
    clock: SharedClock,
}

fn sealed_name(path: &str) -> String {
    format!("broker-secret/{path}")
}

impl LocalSecrets {
    /// Secrets in `store`, sealed with `master`.
    pub fn new(store: Store, master: Arc<MasterKey>, clock: SharedClock) -> Self {
        Self {
            store,
            master,
            clock,
        }
    }

    /// The secret at `path`, if any.
    pub async fn get(&self, path: &str) -> Result<Option<LocalSecret>, LocalSecretsError> {
        let Some(row) = self.store.broker_secret(path).await? else {
            return Ok(None);
        };
        let corrupt = |message: &str| LocalSecretsError::Corrupt {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let plain = self.master.open(&sealed_name(path), &row.document)?;
        let document: Document = serde_json::from_slice(plain.expose())
            .map_err(|_| corrupt("the document is not readable"))?;
        if document.format != FORMAT || document.path != path {
            return Err(corrupt("the document belongs to another path or format"));
        }
        Ok(Some(LocalSecret {
            version: u64::try_from(row.version).map_err(|_| corrupt("negative version"))?,
            data: document.fields,
            updated_at: row.updated_at,
        }))
    }

    /// Replaces the fields of `path` with `data` (a new version); returns the version written.
    pub async fn put(
        &self,
        path: &str,
        data: &SecretData,
        writer: &str,
    ) -> Result<u64, LocalSecretsError> {
        let document = Document {
            format: FORMAT,
            path: path.to_owned(),
            fields: data.clone(),
        };
        let json = Zeroizing::new(serde_json::to_vec(&document).map_err(|_| {
            LocalSecretsError::Corrupt {
                path: path.to_owned(),
                message: "cannot encode the document".into(),
            }
        })?);
        for _ in 0..16 {
            let expected = self.store.broker_secret(path).await?.map(|row| row.version);
            // A fresh nonce for every attempt.
            let sealed = self.master.seal(&sealed_name(path), &json)?;
            match self
                .store
                .save_broker_secret(path, expected, &sealed, self.clock.unix_seconds(), writer)
                .await?
            {
                SaveOutcome::Saved(version) => return Ok(u64::try_from(version).unwrap_or(0)),
                _ => tracing::debug!(path, "broker secret changed concurrently; retrying"),
            }
        }
        Err(LocalSecretsError::Contended(path.to_owned()))
    }

    /// Every path with its version and write time.
    pub async fn list(&self) -> Result<Vec<(String, u64, i64)>, LocalSecretsError> {
        Ok(self
            .store
            .broker_secret_paths()
            .await?
            .into_iter()
            .map(|(path, version, at)| (path, u64::try_from(version).unwrap_or(0), at))
            .collect())
    }
}

#[async_trait]
impl SecretSource for LocalSecrets {
    async fn read(&self, path: &str) -> Result<SourcedSecret, SourceError> {
        match self.get(path).await {
            Ok(Some(secret)) => Ok(SourcedSecret {
                version: secret.version,
                data: secret.data,
            }),
            Ok(None) => Err(SourceError::NotFound),
            Err(e) => Err(SourceError::Failed(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        format!("local ({})", self.store.backend().name())
    }
}

#[cfg(test)]
mod tests {
    use gha_auth::{ManualClock, SecretString};

    use super::*;

    async fn secrets(dir: &tempfile::TempDir) -> LocalSecrets {
        let store = Store::open(
            &format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            2,
        )
        .await
        .unwrap();
        let master = Arc::new(MasterKey::load_or_create(&dir.path().join("master.key")).unwrap());
        LocalSecrets::new(store, master, ManualClock::at_unix(1_767_225_600).shared())
    }

    #[tokio::test]
    async fn put_get_list_with_versions_and_sealed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let local = secrets(&dir).await;
        assert!(local.get("apps/a").await.unwrap().is_none());
        let mut data = SecretData::new();
        data.insert("password", SecretString::from("local-pw-one"));
        assert_eq!(local.put("apps/a", &data, "test").await.unwrap(), 1);
        data.insert("password", SecretString::from("local-pw-two"));
        assert_eq!(local.put("apps/a", &data, "test").await.unwrap(), 2);
        let read = local.get("apps/a").await.unwrap().unwrap();
        assert_eq!(read.version, 2);
        assert_eq!(read.data.get("password").unwrap().expose(), "local-pw-two");
        assert_eq!(
            local.list().await.unwrap(),
            vec![("apps/a".to_owned(), 2, 1_767_225_600)]
        );
        // The row holds no plain text.
        let row = local.store.broker_secret("apps/a").await.unwrap().unwrap();
        assert!(!row.document.contains("local-pw"), "{}", row.document);
    }

    #[tokio::test]
    async fn a_row_moved_to_another_path_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let local = secrets(&dir).await;
        let mut data = SecretData::new();
        data.insert("k", SecretString::from("v"));
        local.put("apps/a", &data, "test").await.unwrap();
        let row = local.store.broker_secret("apps/a").await.unwrap().unwrap();
        local
            .store
            .save_broker_secret("apps/b", None, &row.document, 0, "attacker")
            .await
            .unwrap();
        assert!(local.get("apps/b").await.is_err());
        assert!(matches!(
            local.read("apps/b").await,
            Err(SourceError::Failed(_))
        ));
        assert!(matches!(
            local.read("apps/none").await,
            Err(SourceError::NotFound)
        ));
    }
}
