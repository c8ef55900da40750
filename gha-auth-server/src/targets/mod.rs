//! Link-key targets: where a rotated link key must be installed so the integration presents it.
//!
//! The rotation state machine (in `linkkeys`) is target-agnostic: it calls
//! [`LinkKeyTarget::install`] in its *set* step and [`LinkKeyTarget::read_back`] in its *test*
//! step. Targets:
//!
//! - `kind = "epicor"` ([`EpicorTargetConfig`]): the User Code an Epicor data directive reads,
//!   updated over Epicor's REST API v2 (`Ice.BO.UserCodesSvc`);
//! - `kind = "webhook"` ([`WebhookTargetConfig`]): a generic HTTPS endpoint that receives the key
//!   (POST) and reports the key it holds (GET), authenticated with a bearer token or an HMAC.
//!
//! Credentials of a target (Epicor user and API key, webhook secret) are read from Vault KV v2 or
//! from a file readable by the owner only, at every use, so rotating them needs no restart. No
//! key or credential ever appears in an error, a log line or a `Debug` string.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use gha_auth::vault::VaultSession;
use gha_auth::{SecretString, SharedClock};
use serde::Deserialize;
use thiserror::Error;

use crate::settings::Duration;

pub(crate) mod epicor;
mod http;
mod secrets;
pub(crate) mod webhook;

/// Where a link key must be installed so the integration presents it (Epicor's User Code, …).
pub trait LinkKeyTarget: Send + Sync + fmt::Debug + 'static {
    /// Installs `key` as the key the integration sends from now on. Idempotent.
    fn install<'a>(&'a self, key: &'a SecretString) -> BoxFuture<'a, Result<(), TargetError>>;

    /// The key the integration holds now (to test after install).
    fn read_back(&self) -> BoxFuture<'_, Result<SecretString, TargetError>>;

    /// Human description for logs/health (no secrets), e.g.
    /// `"epicor https://erp… UserCodes GHA/LINKKEY"`.
    fn describe(&self) -> String;
}

/// Why a target call failed. Messages never contain the key or credentials.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The target could not be reached or did not answer in time (after retries).
    #[error("target unreachable: {0}")]
    Unreachable(String),
    /// The target answered with an error status (4xx, or 5xx after retries).
    #[error("target rejected the request with HTTP {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What the target said (its error message, with secrets never included).
        message: String,
    },
    /// The target is misconfigured (bad URL, credentials missing, …).
    #[error("target configuration: {0}")]
    Config(String),
    /// The target answered 2xx with a body that is not what its API promises.
    #[error("target answered unexpectedly: {0}")]
    Protocol(String),
}

impl TargetError {
    /// Whether retrying later may succeed (unreachable, 5xx), as opposed to a request the
    /// target refuses as such (4xx) or a configuration error.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Rejected { status, .. } => *status >= 500,
            Self::Config(_) | Self::Protocol(_) => false,
        }
    }
}

/// `[link_keys.<name>.target]` in the config: `kind = "epicor"` or `kind = "webhook"`.
///
/// ```toml
/// [link_keys.epicor.target]
/// kind = "epicor"
/// base_url = "https://erp.example.com/EpicorERP"
/// company = "GHA01"
/// code_type_id = "GHA"          # default
/// code_id = "LINKKEY"           # default
/// key_field = "long_desc"       # or "code_desc"
/// auth = "basic"                # or "token" (TokenResource.svc)
/// credentials_vault_mount = "secret"
/// credentials_vault_path = "integrations/epicor"   # fields username, password, api_key
/// # credentials_file = "/run/secrets/epicor.toml"  # instead of Vault, mode 0600
/// # ca_file = "/etc/gha-auth/epicor-ca.pem"
/// connect_timeout = "5s"
/// request_timeout = "10s"
/// max_attempts = 4
/// retry_backoff = "1s"
///
/// # or
/// [link_keys.other.target]
/// kind = "webhook"
/// url = "https://integration.example.com/link-key"
/// auth = "hmac"                 # or "bearer"
/// secret_vault_path = "integrations/other-webhook"  # field `secret`; or secret_file
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum TargetConfig {
    /// An Epicor User Code, over REST API v2.
    Epicor(EpicorTargetConfig),
    /// A generic HTTPS endpoint.
    Webhook(WebhookTargetConfig),
}

impl TargetConfig {
    /// Checks the target's URLs by the outbound-URL policy (without calling the target).
    pub fn check_urls(&self) -> Result<(), TargetError> {
        let url = match self {
            TargetConfig::Epicor(epicor) => &epicor.base_url,
            TargetConfig::Webhook(webhook) => &webhook.url,
        };
        http::check_url(url).map(|_| ())
    }
}

/// Which column of the Epicor User Code (`Ice.UDCodes`) holds the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserCodeField {
    /// `LongDesc` (free text, long enough for any key; the usual choice).
    #[default]
    LongDesc,
    /// `CodeDesc` (the short description; only if the directive reads that column).
    CodeDesc,
}

impl UserCodeField {
    /// The column name in Epicor's JSON.
    pub fn column(self) -> &'static str {
        match self {
            Self::LongDesc => "LongDesc",
            Self::CodeDesc => "CodeDesc",
        }
    }
}

/// How the Epicor client authenticates the user (the API key is sent in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EpicorAuthMode {
    /// HTTP Basic with the integration user's name and password on every call.
    #[default]
    Basic,
    /// A bearer token from Epicor's token endpoint (`POST /TokenResource.svc/`), obtained with
    /// the user's name and password and reused until shortly before it expires.
    Token,
}

/// `kind = "epicor"`: the User Code the Epicor data directive reads the key from.
///
/// Credentials (fields `username`, `password`, `api_key`) come from Vault KV v2
/// (`credentials_vault_path` in `credentials_vault_mount`) or from `credentials_file` (TOML with
/// the same keys, mode 0600); exactly one of the two.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EpicorTargetConfig {
    /// Base URL of the Epicor instance, e.g. `https://erp.example.com/EpicorERP` (the client
    /// appends `/api/v2/odata/{company}/…`). https, or http to loopback only.
    pub base_url: String,
    /// Epicor company id (the `{Company}` path segment and the `Company` column).
    pub company: String,
    /// User Code type (`CodeTypeID`) holding the key.
    #[serde(default = "default_code_type_id")]
    pub code_type_id: String,
    /// User Code id (`CodeID`) holding the key.
    #[serde(default = "default_code_id")]
    pub code_id: String,
    /// Column of the User Code that holds the key.
    #[serde(default)]
    pub key_field: UserCodeField,
    /// User authentication: `basic` or `token`.
    #[serde(default)]
    pub auth: EpicorAuthMode,
    /// KV v2 mount of the credentials document.
    #[serde(default = "default_kv_mount")]
    pub credentials_vault_mount: String,
    /// Path of the credentials document in Vault (fields `username`, `password`, `api_key`).
    #[serde(default)]
    pub credentials_vault_path: Option<String>,
    /// A TOML file with `username`, `password`, `api_key` (mode 0600), instead of Vault.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) for Epicor's TLS certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Time allowed for one request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// Attempts per call on timeouts and 5xx (never on 4xx), including the first.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First wait between attempts; doubled each time, capped at 30 s.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: Duration,
}

/// How the webhook target authenticates to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookAuth {
    /// `Authorization: Bearer <secret>`.
    #[default]
    Bearer,
    /// `X-GHA-Timestamp` and `X-GHA-Signature: sha256=<hex HMAC-SHA256(secret, signed string)>`
    /// over `"{timestamp}\n{METHOD}\n{path}\n{body}"`.
    Hmac,
}

/// `kind = "webhook"`: a generic HTTPS endpoint that takes the key (POST) and reports the key it
/// holds (GET), both as `{"key":"ghal_…"}`.
///
/// The bearer token or HMAC key comes from Vault KV v2 (`secret_vault_path`, field `secret`) or
/// from `secret_file` (its content, trimmed; mode 0600); exactly one of the two.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookTargetConfig {
    /// The endpoint. https, or http to loopback only.
    pub url: String,
    /// `bearer` or `hmac`.
    #[serde(default)]
    pub auth: WebhookAuth,
    /// KV v2 mount of the secret document.
    #[serde(default = "default_kv_mount")]
    pub secret_vault_mount: String,
    /// Path of the secret document in Vault (field `secret`).
    #[serde(default)]
    pub secret_vault_path: Option<String>,
    /// A file holding the secret (mode 0600), instead of Vault.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) for the endpoint's TLS certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Time allowed for one request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// Attempts per call on timeouts and 5xx (never on 4xx), including the first.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First wait between attempts; doubled each time, capped at 30 s.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: Duration,
}

fn default_code_type_id() -> String {
    "GHA".to_owned()
}

fn default_code_id() -> String {
    "LINKKEY".to_owned()
}

fn default_kv_mount() -> String {
    "secret".to_owned()
}

fn default_connect_timeout() -> Duration {
    Duration::seconds(5)
}

fn default_request_timeout() -> Duration {
    Duration::seconds(10)
}

fn default_max_attempts() -> u32 {
    4
}

fn default_retry_backoff() -> Duration {
    Duration::seconds(1)
}

/// What a target needs from the running service.
#[derive(Clone)]
#[non_exhaustive]
pub struct TargetDeps {
    /// The injected clock (backoff waits, token expiry).
    pub clock: SharedClock,
    /// The Vault session, when Vault is configured (credentials in KV v2).
    pub vault: Option<VaultSession>,
}

impl TargetDeps {
    /// Dependencies with no Vault: credentials must come from files.
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, vault: None }
    }

    /// Adds the Vault session credentials are read through.
    #[must_use]
    pub fn with_vault(mut self, session: VaultSession) -> Self {
        self.vault = Some(session);
        self
    }
}

impl fmt::Debug for TargetDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetDeps")
            .field("clock", &self.clock)
            .field("vault", &self.vault.is_some())
            .finish()
    }
}

/// Builds the target; Epicor credentials come from Vault KV (or a 0600 file).
///
/// Checks the configuration (URL scheme, exactly one credential source, Vault present when the
/// credentials are in Vault) but does not call the target: a target that is down at start-up
/// must not stop the service; the rotation reports it.
pub async fn build_target(
    config: &TargetConfig,
    deps: TargetDeps,
) -> Result<Arc<dyn LinkKeyTarget>, TargetError> {
    match config {
        TargetConfig::Epicor(epicor) => build_epicor(epicor, deps).map(|t| Arc::new(t) as _),
        TargetConfig::Webhook(webhook) => build_webhook(webhook, deps).map(|t| Arc::new(t) as _),
    }
}

fn build_epicor(
    config: &EpicorTargetConfig,
    deps: TargetDeps,
) -> Result<epicor::EpicorTarget, TargetError> {
    let base = http::check_url(&config.base_url)?;
    for (name, value) in [
        ("company", &config.company),
        ("code_type_id", &config.code_type_id),
        ("code_id", &config.code_id),
    ] {
        if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TargetError::Config(format!(
                "epicor {name} must be 1 to 64 visible ASCII characters"
            )));
        }
    }
    let settings = http::HttpSettings {
        connect_timeout: config.connect_timeout,
        request_timeout: config.request_timeout,
        max_attempts: config.max_attempts,
        retry_backoff: config.retry_backoff,
    };
    settings.validate()?;
    let credentials = secrets::SecretSource::from_config(
        "epicor credentials",
        deps.vault.as_ref(),
        &config.credentials_vault_mount,
        config.credentials_vault_path.as_deref(),
        config.credentials_file.as_deref(),
    )?;
    let client = epicor::EpicorClient::new(
        base,
        config.company.clone(),
        config.auth,
        credentials,
        http::client(&settings, config.ca_file.as_deref())?,
        settings,
        deps.clock,
    );
    Ok(epicor::EpicorTarget::new(
        client,
        config.company.clone(),
        config.code_type_id.clone(),
        config.code_id.clone(),
        config.key_field,
    ))
}

fn build_webhook(
    config: &WebhookTargetConfig,
    deps: TargetDeps,
) -> Result<webhook::WebhookTarget, TargetError> {
    let url = http::check_url(&config.url)?;
    let settings = http::HttpSettings {
        connect_timeout: config.connect_timeout,
        request_timeout: config.request_timeout,
        max_attempts: config.max_attempts,
        retry_backoff: config.retry_backoff,
    };
    settings.validate()?;
    let secret = secrets::SecretSource::from_config(
        "webhook secret",
        deps.vault.as_ref(),
        &config.secret_vault_mount,
        config.secret_vault_path.as_deref(),
        config.secret_file.as_deref(),
    )?;
    Ok(webhook::WebhookTarget::new(
        url,
        config.auth,
        secret,
        http::client(&settings, config.ca_file.as_deref())?,
        settings,
        deps.clock,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epicor_config_parses_with_defaults() {
        let config: TargetConfig = toml::from_str(
            r#"
            kind = "epicor"
            base_url = "https://erp.example.com/EpicorERP"
            company = "GHA01"
            credentials_vault_path = "integrations/epicor"
            "#,
        )
        .unwrap();
        let TargetConfig::Epicor(epicor) = config else {
            panic!("not epicor: {config:?}");
        };
        assert_eq!(epicor.code_type_id, "GHA");
        assert_eq!(epicor.code_id, "LINKKEY");
        assert_eq!(epicor.key_field, UserCodeField::LongDesc);
        assert_eq!(epicor.auth, EpicorAuthMode::Basic);
        assert_eq!(epicor.credentials_vault_mount, "secret");
        assert_eq!(epicor.max_attempts, 4);
        assert_eq!(epicor.request_timeout, Duration::seconds(10));
    }

    #[test]
    fn webhook_config_parses() {
        let config: TargetConfig = toml::from_str(
            r#"
            kind = "webhook"
            url = "https://integration.example.com/link-key"
            auth = "hmac"
            secret_file = "/run/secrets/webhook"
            request_timeout = "3s"
            "#,
        )
        .unwrap();
        let TargetConfig::Webhook(webhook) = config else {
            panic!("not webhook: {config:?}");
        };
        assert_eq!(webhook.auth, WebhookAuth::Hmac);
        assert_eq!(webhook.request_timeout, Duration::seconds(3));
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected() {
        let unknown_key = toml::from_str::<TargetConfig>(
            r#"
            kind = "epicor"
            base_url = "https://erp.example.com"
            company = "GHA01"
            colour = "blue"
            "#,
        );
        assert!(unknown_key.is_err(), "{unknown_key:?}");
        let unknown_kind = toml::from_str::<TargetConfig>(r#"kind = "sftp""#);
        assert!(unknown_kind.is_err(), "{unknown_kind:?}");
    }

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(TargetError::Unreachable("timeout".into()).is_transient());
        let server = TargetError::Rejected {
            status: 503,
            message: String::new(),
        };
        assert!(server.is_transient());
        let client = TargetError::Rejected {
            status: 400,
            message: String::new(),
        };
        assert!(!client.is_transient());
        assert!(!TargetError::Config("x".into()).is_transient());
    }
}
