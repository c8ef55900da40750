//! `[vault]`: Vault / OpenBao.

use std::path::PathBuf;

use serde::Deserialize;

use crate::settings::Duration;

/// Vault / OpenBao. Unset `address`: no Vault.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct VaultSection {
    /// Base URL, e.g. `https://vault.internal:8200`. Plain http only to loopback.
    pub address: Option<String>,
    /// How to log in; unset: from the keys that are set (`token_file`, the AppRole files or
    /// `kubernetes_role`).
    pub auth: Option<VaultAuth>,
    /// File holding a Vault token (token auth; re-read at every login).
    pub token_file: Option<PathBuf>,
    /// AppRole `role_id` file (AppRole auth, with `secret_id_file`).
    pub role_id_file: Option<PathBuf>,
    /// AppRole `secret_id` file, re-read at every login.
    pub secret_id_file: Option<PathBuf>,
    /// Kubernetes auth: the Vault role to log in as.
    pub kubernetes_role: Option<String>,
    /// Kubernetes auth: the mount of the auth method.
    pub kubernetes_mount: String,
    /// Kubernetes auth: the pod's service-account token (projected), re-read at every login.
    pub kubernetes_token_file: PathBuf,
    /// Extra CA certificate (PEM) for the Vault server.
    pub ca_file: Option<PathBuf>,
    /// Mount of the KV v2 engine holding the key documents.
    pub kv_mount: String,
    /// Path prefix of the key documents inside the mount (`<prefix>/signing-keys`, `<prefix>/pepper`).
    pub key_prefix: String,
    /// Path prefix of the link-key documents in KV v2: `<prefix>/<name>`.
    pub link_key_prefix: String,
    /// Time allowed for one Vault request.
    pub request_timeout: Duration,
}

impl Default for VaultSection {
    fn default() -> Self {
        Self {
            address: None,
            token_file: None,
            role_id_file: None,
            secret_id_file: None,
            auth: None,
            kubernetes_role: None,
            kubernetes_mount: "kubernetes".to_owned(),
            kubernetes_token_file: PathBuf::from(gha_auth::vault::DEFAULT_KUBERNETES_JWT_FILE),
            ca_file: None,
            kv_mount: "secret".to_owned(),
            key_prefix: "gha-auth/keys".to_owned(),
            link_key_prefix: "gha-auth/link-keys".to_owned(),
            request_timeout: Duration::seconds(10),
        }
    }
}

/// `vault.auth`: the login method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VaultAuth {
    /// A token from `token_file`.
    Token,
    /// AppRole with `role_id_file` and `secret_id_file`.
    AppRole,
    /// Kubernetes with `kubernetes_role` and the pod's service-account token.
    Kubernetes,
}
