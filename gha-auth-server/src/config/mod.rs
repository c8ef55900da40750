//! The service configuration: one TOML file, `GHA_AUTH_` environment overrides and command-line
//! overrides, in that order of precedence (command line wins).
//!
//! Every key has a secure default, so `gha-auth serve` runs with no file at all. Unknown keys are
//! rejected. [`Config::problems`] checks the invariants that make a configuration safe (the key
//! schedule, token lifetimes against it, plain HTTP only on loopback, …); the server refuses to
//! start while any remain, and `gha-auth config check` prints them.
//!
//! The documented sample is `config/gha-auth.sample.toml` in the repository; a test parses it so
//! it cannot drift from this module.

mod broker;
mod duration;
mod env;
mod link_keys;
mod validate;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use broker::{BrokerConfig, BrokerGrant};
pub use duration::{Duration, DurationParseError};
pub use env::{ENV_PREFIX, EnvVar, env_vars};
pub use link_keys::{AlertsConfig, LinkKeyConfig};
pub use validate::ConfigProblem;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8700);

/// File name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "gha-auth.db";

/// File name of the master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// The issuer URL (`iss` of every token, base of the metadata). Unset: `http://<listen>`.
    pub issuer: Option<String>,
    /// Directory for the SQLite database and the master key.
    pub data_dir: PathBuf,
    /// Development mode: allows the published development keys. Never in production.
    pub dev_mode: bool,
    /// Allows plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    pub allow_insecure_http: bool,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Where clients, audit events and key state are stored.
    pub store: StoreConfig,
    /// Signing keys and their rotation schedule.
    pub keys: KeysConfig,
    /// Access-token lifetimes.
    pub tokens: TokensConfig,
    /// Client lookups.
    pub clients: ClientsConfig,
    /// The built-in user store: password hashing cost and login backoff.
    pub users: UsersConfig,
    /// Rotating refresh tokens.
    pub refresh: RefreshConfig,
    /// The revocation feed (`GET /v1/revocations`).
    pub revocations: RevocationsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Abuse limits on the token endpoint.
    pub rate_limit: RateLimitConfig,
    /// Vault / OpenBao (signing keys in KV v2 when `address` is set).
    pub vault: VaultSection,
    /// HTTPS: served when a certificate and key are given.
    pub tls: TlsConfig,
    /// Bearer tokens on the authority's own APIs (broker, link keys).
    pub api_auth: ApiAuthConfig,
    /// Rotated link keys, one table per integration (`[link_keys.epicor]`). None by default.
    pub link_keys: std::collections::BTreeMap<String, LinkKeyConfig>,
    /// Where rotation failures are reported.
    pub alerts: AlertsConfig,
    /// Browser sessions (`/session/*`): off until a client and origins are configured.
    pub session: SessionConfig,
    /// The secrets broker and who may read what (nobody by default).
    pub broker: BrokerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            issuer: None,
            data_dir: PathBuf::from("./data"),
            dev_mode: false,
            allow_insecure_http: false,
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            keys: KeysConfig::default(),
            tokens: TokensConfig::default(),
            clients: ClientsConfig::default(),
            users: UsersConfig::default(),
            refresh: RefreshConfig::default(),
            revocations: RevocationsConfig::default(),
            log: LogConfig::default(),
            rate_limit: RateLimitConfig::default(),
            vault: VaultSection::default(),
            tls: TlsConfig::default(),
            api_auth: ApiAuthConfig::default(),
            link_keys: std::collections::BTreeMap::new(),
            alerts: AlertsConfig::default(),
            session: SessionConfig::default(),
            broker: BrokerConfig::default(),
        }
    }
}

/// Bearer tokens on the authority's own APIs: what [`crate::caller::Caller`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ApiAuthConfig {
    /// Audience a token must name to call the secrets broker.
    pub broker_audience: String,
    /// Audience a token must name to call the link-key endpoints.
    pub link_keys_audience: String,
    /// How long a verified token is trusted without asking the store whether it was revoked.
    pub revocation_check_interval: Duration,
    /// Most verified tokens remembered (a token is verified once, then looked up by digest).
    pub token_cache_size: u32,
}

impl Default for ApiAuthConfig {
    fn default() -> Self {
        Self {
            broker_audience: gha_auth::broker::DEFAULT_BROKER_AUDIENCE.to_owned(),
            link_keys_audience: "gha-auth-link-keys".to_owned(),
            revocation_check_interval: Duration::seconds(5),
            token_cache_size: 10_000,
        }
    }
}

/// HTTP server limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time allowed for one request.
    pub request_timeout: Duration,
    /// Time allowed for in-flight requests to finish on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            request_timeout: Duration::seconds(10),
            shutdown_grace: Duration::seconds(10),
        }
    }
}

/// The store: SQLite (default) or PostgreSQL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`. Unset: SQLite at `<data_dir>/gha-auth.db`.
    pub url: Option<String>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 8,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// A database URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[unparseable url]".to_owned(),
    }
}

/// Where the signing-key set is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyBackend {
    /// Vault KV v2 when `[vault] address` is set, else local (default).
    Auto,
    /// Vault KV v2 (`[vault]` must be configured); replicas share keys and rotate with
    /// check-and-set.
    Vault,
    /// Encrypted with the master key, in the store (which is in the data directory on embedded
    /// defaults).
    Local,
}

/// Signing algorithm of newly generated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256 (default: the customer's .NET APIs verify it).
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

/// Signing keys and their rotation schedule (BRIEF §4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KeysConfig {
    /// Where the key set lives.
    pub backend: KeyBackend,
    /// Algorithm of generated keys.
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotation_period: Duration,
    /// How long the next key is published before it signs; at least `jwks_max_age`.
    pub publish_ahead: Duration,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: Duration,
    /// Clock skew allowed to verifiers; retired keys stay published this much longer.
    pub leeway: Duration,
    /// How often the scheduler re-reads the shared key state (other replicas, `keys rotate`).
    pub refresh_interval: Duration,
    /// Master key file (AES-256-GCM key for keys and the pepper at rest). Unset:
    /// `<data_dir>/master.key`, generated on first start with mode 0600.
    pub master_key_file: Option<PathBuf>,
    /// A PKCS#8 PEM private key to use as the first signing key when the store has none yet.
    /// The development keys in `keys-dev/` are refused unless `dev_mode` is on.
    pub import_pem: Option<PathBuf>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            backend: KeyBackend::Auto,
            algorithm: SigningAlgorithm::ES256,
            rotation_period: Duration::days(30),
            publish_ahead: Duration::hours(1),
            jwks_max_age: Duration::minutes(15),
            leeway: Duration::seconds(60),
            refresh_interval: Duration::seconds(30),
            master_key_file: None,
            import_pem: None,
        }
    }
}

/// Access-token lifetimes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TokensConfig {
    /// Lifetime of an access token when the client has none of its own.
    pub default_lifetime: Duration,
    /// Longest lifetime any client may have; retired keys stay published this long.
    pub max_lifetime: Duration,
    /// Longest accepted lifetime of a `private_key_jwt` client assertion (`exp` − now).
    pub client_assertion_max_lifetime: Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            default_lifetime: Duration::minutes(10),
            max_lifetime: Duration::hours(1),
            client_assertion_max_lifetime: Duration::minutes(5),
        }
    }
}

/// Client lookups at the token endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ClientsConfig {
    /// How long a client read from the store is reused for authentication (`0s`: never).
    /// Changes made by another process (`gha-auth clients disable` while the server runs) take
    /// effect within this time; a rotated secret works at once.
    pub cache_ttl: Duration,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::seconds(5),
        }
    }
}

/// The built-in user store (see `docs/decisions/0003-password-hashing.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UsersConfig {
    /// Argon2id memory cost of new password hashes, in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id passes over memory.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Failed logins of one user before it backs off (0: never).
    pub failures_before_backoff: u32,
    /// Failed logins from one source address, for any user, before it backs off (0: never).
    pub source_failures_before_backoff: u32,
    /// First backoff; it doubles with every further failure.
    pub backoff_base: Duration,
    /// Longest backoff; failures older than this are forgotten.
    pub backoff_max: Duration,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            failures_before_backoff: 5,
            source_failures_before_backoff: 20,
            backoff_base: Duration::seconds(1),
            backoff_max: Duration::minutes(15),
        }
    }
}

/// Rotating refresh tokens (BRIEF §4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RefreshConfig {
    /// A repeat of the same refresh request within this time of the first gets the same
    /// successor (a response lost on a mobile network); later reuse revokes the family.
    pub grace_window: Duration,
    /// A refresh token expires this long after it was issued unless used (sliding lifetime).
    pub idle_lifetime: Duration,
    /// A family (a login) ends this long after the login, however often it is refreshed.
    pub absolute_lifetime: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            grace_window: Duration::seconds(30),
            idle_lifetime: Duration::days(7),
            absolute_lifetime: Duration::days(30),
        }
    }
}

/// The revocation feed verifiers poll (BRIEF §4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RevocationsConfig {
    /// How often verifiers should poll the feed: its `Cache-Control: max-age`. A revoked token
    /// is refused everywhere within about this long.
    pub poll_interval: Duration,
    /// How long one signed feed document stays acceptable (`exp - iat`): bounds the replay of
    /// an old document.
    pub document_lifetime: Duration,
}

impl Default for RevocationsConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::seconds(30),
            document_lifetime: Duration::hours(1),
        }
    }
}

/// Abuse limits on the token endpoint (BRIEF §4). A rate of 0 disables that limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Whether any limit applies (off only for benchmarks and tests).
    pub enabled: bool,
    /// Sustained token requests per second from one source address.
    pub per_source_per_second: u32,
    /// Requests one source address may send at once above the sustained rate.
    pub per_source_burst: u32,
    /// Sustained token requests per second by one authenticated client.
    pub per_client_per_second: u32,
    /// Requests one client may send at once above the sustained rate.
    pub per_client_burst: u32,
    /// Consecutive failed authentications of one client from one source before it backs off.
    pub failures_before_backoff: u32,
    /// Failed authentications from one source (any client) before the source backs off.
    pub source_failures_before_backoff: u32,
    /// First backoff; doubles with every further failure.
    pub backoff_base: Duration,
    /// Longest backoff; failures older than this are forgotten.
    pub backoff_max: Duration,
    /// Most sources/clients tracked at once (bounded memory).
    pub max_tracked: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_source_per_second: 100,
            per_source_burst: 200,
            per_client_per_second: 20,
            per_client_burst: 40,
            failures_before_backoff: 5,
            source_failures_before_backoff: 20,
            backoff_base: Duration::seconds(1),
            backoff_max: Duration::minutes(5),
            max_tracked: 100_000,
        }
    }
}

/// HTTPS with rustls. Both files set: HTTPS; neither: plain HTTP (loopback, or behind a
/// TLS-terminating proxy with `allow_insecure_http`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// How often the files' modification times are checked; a change reloads them.
    pub reload_interval: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_interval: Duration::seconds(5),
        }
    }
}

impl TlsConfig {
    /// The certificate and key files, when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

/// Browser sessions (BRIEF §4). Off by default: with no `client_id` every `/session/*` endpoint
/// answers 404, and the CORS allow-list is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The first-party public client sessions act for (needs the `password` and
    /// `refresh_token` grants).
    pub client_id: Option<String>,
    /// Origins (`scheme://host[:port]`) of the pages that may use sessions: CORS with
    /// credentials, and the CSRF check of every session request.
    pub allowed_origins: Vec<String>,
}

impl SessionConfig {
    /// Whether `origin` (an `Origin` header value) is allowed. Exact, case-sensitive match
    /// against the configured list, which [`Config::check`] keeps in serialized-origin form.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == origin)
    }
}

/// Vault / OpenBao. Unset `address`: no Vault.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct VaultSection {
    /// Base URL, e.g. `https://vault.internal:8200`. Plain http only to loopback.
    pub address: Option<String>,
    /// File holding a Vault token (token auth; re-read at every login).
    pub token_file: Option<PathBuf>,
    /// AppRole `role_id` file (AppRole auth, with `secret_id_file`).
    pub role_id_file: Option<PathBuf>,
    /// AppRole `secret_id` file, re-read at every login.
    pub secret_id_file: Option<PathBuf>,
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
            ca_file: None,
            kv_mount: "secret".to_owned(),
            key_prefix: "gha-auth/keys".to_owned(),
            link_key_prefix: "gha-auth/link-keys".to_owned(),
            request_timeout: Duration::seconds(10),
        }
    }
}

impl Config {
    /// Whether signing keys live in Vault.
    pub fn keys_in_vault(&self) -> bool {
        match self.keys.backend {
            KeyBackend::Vault => true,
            KeyBackend::Auto => self.vault.address.is_some(),
            KeyBackend::Local => false,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line (default).
    Json,
    /// Human-readable text.
    Text,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `gha_auth_server=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".to_owned(),
        }
    }
}

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--issuer`.
    pub issuer: Option<String>,
}

impl Overrides {
    /// Overrides from command-line values.
    pub fn new(
        listen: Option<SocketAddr>,
        data_dir: Option<PathBuf>,
        issuer: Option<String>,
    ) -> Self {
        Self {
            listen,
            data_dir,
            issuer,
        }
    }
}

/// Why the configuration could not be loaded. Separate from request-time errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file (or `<environment>` for values from the environment).
        path: PathBuf,
        /// What the parser said, with the line and key.
        message: String,
    },
    /// An environment override is malformed.
    #[error("invalid environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong with it (never its value: it may be a secret).
        message: String,
    },
    /// The configuration is readable but unsafe or inconsistent.
    #[error("invalid configuration:\n{}", format_problems(.0))]
    Invalid(Vec<ConfigProblem>),
}

fn format_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Loads the configuration: embedded defaults, then `file` if given, then `GHA_AUTH_*`
    /// variables from `env`, then `overrides`. Does not check invariants (see
    /// [`Config::problems`]).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        env::apply(&mut table, env)?;
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file.map_or_else(|| PathBuf::from("<environment>"), Path::to_owned),
                    message: e.to_string(),
                })?;
        config.apply(overrides);
        Ok(config)
    }

    /// Parses configuration text (no environment, no overrides): for tests and the sample.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })
    }

    /// Applies command-line overrides.
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(listen) = overrides.listen {
            self.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            self.data_dir.clone_from(dir);
        }
        if let Some(issuer) = &overrides.issuer {
            self.issuer = Some(issuer.clone());
        }
    }

    /// Loads and checks: the configuration the server may run with.
    pub fn load_checked(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let config = Self::load(file, env, overrides)?;
        config.check()?;
        Ok(config)
    }

    /// Every invariant this configuration breaks; empty when it is safe to run.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        validate::problems(self)
    }

    /// `Ok` when [`Config::problems`] is empty.
    pub fn check(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The store URL in effect.
    pub fn store_url(&self) -> String {
        match &self.store.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join(SQLITE_FILE).display()),
        }
    }

    /// The master key file in effect.
    pub fn master_key_path(&self) -> PathBuf {
        self.keys
            .master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(MASTER_KEY_FILE))
    }

    /// The issuer for a server bound to `bound` (the actual address, when listening on port 0).
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None if self.tls.files().is_some() => format!("https://{bound}"),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests;
