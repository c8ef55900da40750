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
use crate::atrest::MasterKey;
use crate::store::{
    CasOutcome, Change, DocumentTable, SealedDocuments, SealedError, Store, StoreError, Versioned,
    read_modify_write,
};

/// The `broker_secrets` table: one sealed document per secret path.
const BROKER_SECRETS: DocumentTable = DocumentTable {
    sealed_as: "broker-secret/",
    select: "SELECT version, document, updated_at FROM broker_secrets WHERE path = $1",
    insert: "INSERT INTO broker_secrets (path, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (path) DO NOTHING",
    update: "UPDATE broker_secrets SET version = $1, document = $2, updated_at = $3, \
             updated_by = $4 WHERE path = $5 AND version = $6",
};

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
    /// The sealed row failed (database, another master key, a row moved from another path).
    #[error(transparent)]
    Sealed(#[from] SealedError),
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
    documents: SealedDocuments,
}

impl LocalSecrets {
    /// Secrets in `store`, sealed with `master`.
    pub fn new(store: Store, master: Arc<MasterKey>, clock: SharedClock) -> Self {
        Self {
            documents: SealedDocuments::new(store, master, clock, &BROKER_SECRETS),
        }
    }

    /// The secret at `path`, if any.
    pub async fn get(&self, path: &str) -> Result<Option<LocalSecret>, LocalSecretsError> {
        let Some(loaded) = self.documents.load(path).await? else {
            return Ok(None);
        };
        let corrupt = |message: &str| LocalSecretsError::Corrupt {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let document: Document = serde_json::from_slice(loaded.plain.expose())
            .map_err(|_| corrupt("the document is not readable"))?;
        if document.format != FORMAT || document.path != path {
            return Err(corrupt("the document belongs to another path or format"));
        }
        Ok(Some(LocalSecret {
            version: loaded.version,
            data: document.fields,
            updated_at: loaded.updated_at,
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
        let write = SecretWrite {
            documents: &self.documents,
            path,
            json: &json,
            writer,
        };
        let written = read_modify_write(
            &write,
            |()| Ok(Change::Save(())),
            || LocalSecretsError::Contended(path.to_owned()),
        )
        .await?;
        Ok(written.version.unwrap_or(0))
    }

    /// Every path with its version and write time.
    pub async fn list(&self) -> Result<Vec<(String, u64, i64)>, LocalSecretsError> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT path, version, updated_at FROM broker_secrets ORDER BY path")
                .fetch_all(self.documents.store().pool())
                .await
                .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|(path, version, at)| (path, u64::try_from(version).unwrap_or(0), at))
            .collect())
    }
}

/// A write of one path: the new document replaces whatever version is there (so only the
/// version is read), sealed afresh for every attempt.
struct SecretWrite<'a> {
    documents: &'a SealedDocuments,
    path: &'a str,
    json: &'a [u8],
    writer: &'a str,
}

#[async_trait]
impl Versioned for SecretWrite<'_> {
    type Document = ();
    type Error = LocalSecretsError;

    async fn load(&self) -> Result<(Option<u64>, ()), LocalSecretsError> {
        let version = self
            .documents
            .raw(self.path)
            .await?
            .map(|(version, ..)| version);
        Ok((version.map(|v| u64::try_from(v).unwrap_or(0)), ()))
    }

    async fn save(&self, expected: Option<u64>, (): &()) -> Result<CasOutcome, LocalSecretsError> {
        Ok(self
            .documents
            .save(self.path, expected, self.json, self.writer)
            .await?)
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
        format!("local ({})", self.documents.store().backend().name())
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
        let (_, document, _) = local.documents.raw("apps/a").await.unwrap().unwrap();
        assert!(!document.contains("local-pw"), "{document}");
    }

    #[tokio::test]
    async fn a_row_moved_to_another_path_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let local = secrets(&dir).await;
        let mut data = SecretData::new();
        data.insert("k", SecretString::from("v"));
        local.put("apps/a", &data, "test").await.unwrap();
        let (_, document, _) = local.documents.raw("apps/a").await.unwrap().unwrap();
        sqlx::query(BROKER_SECRETS.insert)
            .bind("apps/b")
            .bind(document)
            .bind(0_i64)
            .bind("attacker")
            .execute(local.documents.store().pool())
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
