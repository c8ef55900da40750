//! Configuration of the Vault client: where Vault is, how to trust it, how to log in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::auth::{AppRoleAuth, AuthMethod, KubernetesAuth, TokenAuth};
use super::error::VaultError;
use super::schedule::RenewalPolicy;
use crate::SecretString;
use crate::outbound::UrlPolicy;

/// Default timeout of one Vault request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the kubelet mounts a pod's service-account token.
pub const DEFAULT_KUBERNETES_JWT_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Everything needed to talk to Vault and log in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VaultConfig {
    /// Base address, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// PEM file with extra CA certificates to trust for `https` addresses.
    pub ca_file: Option<PathBuf>,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// Timeout of every request (connect, send, receive).
    pub request_timeout: Duration,
    /// Allows `http://` to a host that is not loopback (tokens would cross the network in
    /// clear). Off by default.
    pub allow_insecure_http: bool,
    /// How to log in.
    pub auth: AuthConfig,
    /// Renewal and backoff timing of the identity loop and the lease loops.
    pub renewal: RenewalPolicy,
}

impl VaultConfig {
    /// A configuration with defaults: 10 s timeout, no extra CA, no namespace.
    pub fn new(address: impl Into<String>, auth: AuthConfig) -> Self {
        Self {
            address: address.into(),
            ca_file: None,
            namespace: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            allow_insecure_http: false,
            auth,
            renewal: RenewalPolicy::default(),
        }
    }

    /// Trusts the CA certificates in this PEM file too.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Sends requests to this namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the timeout of each request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the renewal and backoff timing.
    pub fn with_renewal(mut self, renewal: RenewalPolicy) -> Self {
        self.renewal = renewal;
        self
    }

    /// Allows `http://` to a non-loopback host.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Checks the configuration without touching the network or the credential files.
    pub fn validate(&self) -> Result<(), VaultError> {
        UrlPolicy::new()
            .allow_plain_http(self.allow_insecure_http)
            .check(&self.address)?;
        if self.request_timeout.is_zero() {
            return Err(VaultError::Config(
                "request_timeout must be positive".to_owned(),
            ));
        }
        if let Some(namespace) = &self.namespace
            && (namespace.is_empty() || !namespace.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(VaultError::Config(format!("namespace {namespace:?}")));
        }
        let renewal = &self.renewal;
        if renewal.min_backoff.is_zero() || renewal.max_backoff < renewal.min_backoff {
            return Err(VaultError::Config(
                "backoff bounds: 0 < min_backoff <= max_backoff".into(),
            ));
        }
        self.auth.validate()
    }
}

/// Where a credential comes from. Files are re-read at every login, so a rotated secret_id or
/// a refreshed service-account token is picked up without a restart.
#[derive(Clone)]
#[non_exhaustive]
pub enum CredentialSource {
    /// A value given directly (from a secret configuration store, a test).
    Value(SecretString),
    /// A file holding the value (surrounding whitespace is ignored).
    File(PathBuf),
}

impl CredentialSource {
    /// A file source.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File(path.into())
    }

    /// A value source.
    pub fn value(value: impl Into<SecretString>) -> Self {
        Self::Value(value.into())
    }

    /// The file, when the credential comes from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Value(_) => None,
        }
    }

    /// Reads the current value: the file's content, trimmed, or the given value. `what` names
    /// the credential in errors (`secret_id`, …); an empty value is an error.
    pub async fn read(&self, what: &'static str) -> Result<SecretString, VaultError> {
        let value = match self {
            Self::Value(value) => value.clone(),
            Self::File(path) => read_credential_file(path).await?,
        };
        if value.expose().trim().is_empty() {
            return Err(match self {
                Self::File(path) => VaultError::CredentialFile {
                    path: path.clone(),
                    reason: format!("the {what} file is empty"),
                },
                Self::Value(_) => VaultError::InvalidCredential {
                    what,
                    reason: "empty".into(),
                },
            });
        }
        if value.expose().trim().len() != value.len() {
            return Ok(SecretString::new(value.expose().trim().to_owned()));
        }
        Ok(value)
    }
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(value) => f.debug_tuple("Value").field(value).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

async fn read_credential_file(path: &Path) -> Result<SecretString, VaultError> {
    let error = |reason: String| VaultError::CredentialFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| error(e.kind().to_string()))?;
    #[cfg(unix)]
    if let Ok(metadata) = tokio::fs::metadata(path).await {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o007 != 0 {
            tracing::warn!(path = %path.display(), "credential file is readable by other users");
        }
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut bytes);
        error("not UTF-8".to_owned())
    })?;
    Ok(SecretString::new(text))
}

/// How the client logs in to Vault.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthConfig {
    /// A token given directly or read from a file (re-read at each "login": an operator or an
    /// agent sink can replace it).
    Token {
        /// The token.
        token: CredentialSource,
    },
    /// AppRole: role_id and secret_id, both re-read at every login.
    AppRole {
        /// Mount path of the AppRole method (default `approle`).
        mount: String,
        /// The role_id.
        role_id: CredentialSource,
        /// The secret_id (typically a file that a provisioner replaces).
        secret_id: CredentialSource,
    },
    /// Kubernetes: the pod's service-account JWT, re-read at every login (the kubelet rotates
    /// projected tokens).
    Kubernetes {
        /// Mount path of the Kubernetes method (default `kubernetes`).
        mount: String,
        /// The Vault role to log in as.
        role: String,
        /// The service-account token (default [`DEFAULT_KUBERNETES_JWT_FILE`]).
        jwt: CredentialSource,
    },
}

impl AuthConfig {
    /// Token auth.
    pub fn token(token: CredentialSource) -> Self {
        Self::Token { token }
    }

    /// AppRole on the default mount `approle`.
    pub fn approle(role_id: CredentialSource, secret_id: CredentialSource) -> Self {
        Self::AppRole {
            mount: "approle".to_owned(),
            role_id,
            secret_id,
        }
    }

    /// Kubernetes auth on the default mount `kubernetes` with the default token file.
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            jwt: CredentialSource::file(DEFAULT_KUBERNETES_JWT_FILE),
        }
    }

    /// Kubernetes auth on the default mount with the service-account token from `jwt`.
    pub fn kubernetes_with(role: impl Into<String>, jwt: CredentialSource) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            jwt,
        }
    }

    /// The same method on another mount path (ignored for token auth).
    pub fn with_mount(mut self, new_mount: impl Into<String>) -> Self {
        match &mut self {
            Self::AppRole { mount, .. } | Self::Kubernetes { mount, .. } => {
                *mount = new_mount.into();
            }
            Self::Token { .. } => {}
        }
        self
    }

    fn validate(&self) -> Result<(), VaultError> {
        match self {
            Self::Token { .. } => Ok(()),
            Self::AppRole { mount, .. } => super::raw::check_path("approle mount", mount),
            Self::Kubernetes { mount, role, .. } => {
                super::raw::check_path("kubernetes mount", mount)?;
                if role.is_empty() {
                    return Err(VaultError::Config("kubernetes role is empty".to_owned()));
                }
                Ok(())
            }
        }
    }

    /// The [`AuthMethod`] for this configuration.
    pub fn build(&self) -> Arc<dyn AuthMethod> {
        match self {
            Self::Token { token } => Arc::new(TokenAuth::new(token.clone())),
            Self::AppRole {
                mount,
                role_id,
                secret_id,
            } => Arc::new(AppRoleAuth::new(role_id.clone(), secret_id.clone()).with_mount(mount)),
            Self::Kubernetes { mount, role, jwt } => {
                Arc::new(KubernetesAuth::new(role.clone(), jwt.clone()).with_mount(mount))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::UrlError;

    fn config(address: &str) -> VaultConfig {
        VaultConfig::new(address, AuthConfig::token(CredentialSource::value("t")))
    }

    #[test]
    fn addresses_are_checked() {
        assert!(config("https://vault.example:8200").validate().is_ok());
        assert!(config("http://127.0.0.1:8200").validate().is_ok());
        assert!(config("http://localhost:8200").validate().is_ok());
        assert!(config("http://[::1]:8200").validate().is_ok());
        assert!(config("http://vault.example:8200").validate().is_err());
        assert!(
            config("http://vault.example:8200")
                .allow_insecure_http(true)
                .validate()
                .is_ok()
        );
        assert!(config("ftp://vault.example").validate().is_err());
        assert!(config("not a url").validate().is_err());
        // Every form of credentials, with the policy's error (which never shows the password).
        for address in [
            "https://user:pw@vault.example:8200",
            "https://:pw@vault.example:8200",
            "https://user@vault.example:8200",
        ] {
            let error = config(address).validate().unwrap_err();
            assert!(
                matches!(error, VaultError::Address(UrlError::Credentials { .. })),
                "{address}: {error}"
            );
            assert!(!error.to_string().contains("pw"), "{error}");
        }
        assert!(config("https://v.example/?x=1").validate().is_err());
        assert!(
            config("https://v.example")
                .with_namespace("a b")
                .validate()
                .is_err()
        );
        assert!(
            config("https://v.example")
                .with_request_timeout(Duration::ZERO)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn debug_never_shows_credential_values() {
        let auth = AuthConfig::approle(
            CredentialSource::value("role-id-123"),
            CredentialSource::value("secret-id-456"),
        );
        let debug = format!(
            "{:?}",
            config("https://v").with_renewal(RenewalPolicy::default())
        );
        let debug = format!("{debug} {auth:?}");
        assert!(!debug.contains("secret-id-456"), "{debug}");
        assert!(!debug.contains("role-id-123"), "{debug}");
    }

    #[tokio::test]
    async fn files_are_read_trimmed_and_empty_is_an_error() {
        let dir = std::env::temp_dir().join(format!("gha-auth-vault-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret_id");
        std::fs::write(&file, "  abc-123\n").unwrap();
        let source = CredentialSource::file(&file);
        assert_eq!(source.read("secret_id").await.unwrap().expose(), "abc-123");

        std::fs::write(&file, "\n").unwrap();
        let error = source.read("secret_id").await.unwrap_err();
        assert!(
            matches!(error, VaultError::CredentialFile { .. }),
            "{error}"
        );

        let missing = CredentialSource::file(dir.join("missing"));
        let error = missing.read("secret_id").await.unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
