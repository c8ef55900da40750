//! Where a target's credentials come from: a Vault KV v2 document, or a file only its owner can
//! read. Read at every use (cheap next to an Epicor call), so credentials rotated in Vault or
//! in the file are picked up without a restart. Errors name the path and the field, never a
//! value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use gha_auth::SecretString;
use gha_auth::vault::{Kv2, VaultSession};

use super::TargetError;

/// A source of named secret fields.
#[derive(Clone)]
pub(crate) enum SecretSource {
    /// A KV v2 document.
    Vault { kv: Kv2, path: String },
    /// A TOML file of `field = "value"` (fields) or a raw value (one secret).
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vault { kv, path } => write!(f, "vault {}/{path}", kv.mount()),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

impl SecretSource {
    /// Chooses the source from a target's config: exactly one of a Vault path and a file.
    pub(crate) fn from_config(
        what: &str,
        vault: Option<&VaultSession>,
        mount: &str,
        vault_path: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Self, TargetError> {
        match (vault_path, file) {
            (Some(path), None) => {
                let session = vault.ok_or_else(|| {
                    TargetError::Config(format!(
                        "{what} are in Vault ({mount}/{path}) but [vault] is not configured"
                    ))
                })?;
                let kv = Kv2::new(session.clone(), mount)
                    .map_err(|e| TargetError::Config(format!("{what}: {e}")))?;
                Ok(Self::Vault {
                    kv,
                    path: path.to_owned(),
                })
            }
            (None, Some(file)) => Ok(Self::File(file.to_path_buf())),
            (Some(_), Some(_)) => Err(TargetError::Config(format!(
                "{what}: give a Vault path or a file, not both"
            ))),
            (None, None) => Err(TargetError::Config(format!(
                "{what}: give a Vault path or a file"
            ))),
        }
    }

    /// The named fields (all required), from Vault or from a TOML file.
    pub(crate) async fn fields(
        &self,
        names: &[&str],
    ) -> Result<BTreeMap<String, SecretString>, TargetError> {
        let mut found = BTreeMap::new();
        match self {
            Self::Vault { kv, path } => {
                let secret = kv.read(path).await.map_err(|e| {
                    // Vault unreachable or the document missing: the call cannot be made.
                    TargetError::Unreachable(format!("credentials from Vault: {e}"))
                })?;
                for name in names {
                    let value = secret.data.get_secret(name).ok_or_else(|| {
                        TargetError::Config(format!(
                            "credentials {}/{path} have no string field {name:?}",
                            kv.mount()
                        ))
                    })?;
                    found.insert((*name).to_owned(), value);
                }
            }
            Self::File(path) => {
                let text = read_private(path)?;
                let table: toml::Table = toml::from_str(text.expose()).map_err(|_| {
                    // toml's message quotes the offending line: it may hold a secret.
                    TargetError::Config(format!("{} is not a TOML table", path.display()))
                })?;
                for name in names {
                    let value =
                        table
                            .get(*name)
                            .and_then(toml::Value::as_str)
                            .ok_or_else(|| {
                                TargetError::Config(format!(
                                    "{} has no string field {name:?}",
                                    path.display()
                                ))
                            })?;
                    found.insert((*name).to_owned(), SecretString::from(value));
                }
            }
        }
        Ok(found)
    }

    /// One secret: field `field` of the Vault document, or the whole file (trimmed).
    pub(crate) async fn single(&self, field: &str) -> Result<SecretString, TargetError> {
        match self {
            Self::Vault { .. } => {
                let mut fields = self.fields(&[field]).await?;
                fields
                    .remove(field)
                    .ok_or_else(|| TargetError::Config(format!("no field {field:?}")))
            }
            Self::File(path) => {
                let text = read_private(path)?;
                let value = text.expose().trim();
                if value.is_empty() {
                    return Err(TargetError::Config(format!("{} is empty", path.display())));
                }
                Ok(SecretString::from(value))
            }
        }
    }
}

/// Reads a secret file, refusing one that group or others may read or write.
fn read_private(path: &Path) -> Result<SecretString, TargetError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let metadata = std::fs::metadata(path)
        .map_err(|e| TargetError::Config(format!("credentials file {shown}: {e}")))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TargetError::Config(format!(
            "credentials file {shown} has mode {mode:o}; it must be readable by its owner only \
             (chmod 600)"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| TargetError::Config(format!("credentials file {shown}: {e}")))?;
    Ok(SecretString::new(text))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[tokio::test]
    async fn file_fields_are_read_from_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "epicor.toml",
            "username = \"svc\"\npassword = \"pw-123\"\napi_key = \"k\"\n",
            0o600,
        );
        let source = SecretSource::File(path);
        let fields = source.fields(&["username", "password"]).await.unwrap();
        assert_eq!(fields["username"].expose(), "svc");
        assert_eq!(fields["password"].expose(), "pw-123");
        let missing = source.fields(&["token"]).await.unwrap_err().to_string();
        assert!(missing.contains("token"), "{missing}");
    }

    #[tokio::test]
    async fn readable_files_and_bad_toml_are_refused_without_quoting_them() {
        let dir = tempfile::tempdir().unwrap();
        let open = write(dir.path(), "open.toml", "password = \"pw-123\"", 0o644);
        let error = SecretSource::File(open)
            .fields(&["password"])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("chmod 600"), "{error}");

        let bad = write(dir.path(), "bad.toml", "password = pw-123-unquoted", 0o600);
        let error = SecretSource::File(bad)
            .fields(&["password"])
            .await
            .unwrap_err()
            .to_string();
        assert!(!error.contains("pw-123"), "{error}");
    }

    #[tokio::test]
    async fn a_single_secret_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "hook", "  s3cret\n", 0o400);
        let secret = SecretSource::File(path).single("secret").await.unwrap();
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn exactly_one_source_is_required() {
        let none = SecretSource::from_config("creds", None, "secret", None, None);
        assert!(none.is_err());
        let both =
            SecretSource::from_config("creds", None, "secret", Some("a"), Some(Path::new("/x")));
        assert!(both.is_err());
        let vault_without_session =
            SecretSource::from_config("creds", None, "secret", Some("a"), None)
                .unwrap_err()
                .to_string();
        assert!(
            vault_without_session.contains("[vault]"),
            "{vault_without_session}"
        );
    }
}
