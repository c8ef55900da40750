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
//!
//! Each section's type, defaults and rules belong to the feature that reads it (`[keys]` to
//! `keys/`, `[broker]` to `broker/`, …); this module only aggregates them, loads the file and the
//! environment, and collects every section's problems.

pub(crate) mod env;
mod origin;
mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use origin::{Origin, Origins};
use serde::Deserialize;
use thiserror::Error;

pub use crate::broker::config::{BrokerConfig, BrokerGrant};
pub use crate::caller::config::ApiAuthConfig;
pub use crate::clients::config::ClientsConfig;
pub use crate::keys::config::{KeyBackend, KeysConfig, SigningAlgorithm};
pub use crate::linkkeys::config::{AlertsConfig, LinkKeyConfig};
pub use crate::monitor::config::{MonitorConfig, MonitorTarget};
pub use crate::oauth::config::TokensConfig;
pub use crate::ratelimit::config::RateLimitConfig;
pub use crate::refresh::config::RefreshConfig;
pub use crate::revocations::config::RevocationsConfig;
pub use crate::session::config::SessionConfig;
pub use crate::settings::duration::{Duration, DurationParseError};
pub use crate::settings::problem::ConfigProblem;
pub use crate::store::config::{StoreConfig, redact_url};
pub use crate::targets::{EpicorTargetConfig, TargetConfig, WebhookTargetConfig};
pub use crate::telemetry::config::{LogConfig, LogFormat};
pub use crate::transport::config::{HttpConfig, TlsConfig};
pub use crate::users::config::UsersConfig;
pub use crate::vault::config::{VaultAuth, VaultSection};
pub use env::{ENV_PREFIX, EnvKind, EnvVar, env_vars};

/// Default listen address: loopback only.
pub(crate) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8700);

/// File name of the SQLite database inside the data directory.
pub(crate) const SQLITE_FILE: &str = "gha-auth.db";

/// File name of the master key inside the data directory.
pub(crate) const MASTER_KEY_FILE: &str = "master.key";

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
    /// The health board: the APIs whose `/HealthCheck` is polled (none by default).
    pub monitor: MonitorConfig,
    /// Where each value came from, so problems can say where to fix them.
    #[serde(skip)]
    origins: Origins,
    /// `GHA_AUTH_*` variables that name no key (ignored; worth a warning).
    #[serde(skip)]
    unknown_env: Vec<String>,
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
            monitor: MonitorConfig::default(),
            origins: Origins::default(),
            unknown_env: Vec::new(),
        }
    }
}

impl Config {
    /// The KV v2 mount the broker reads.
    pub fn broker_kv_mount(&self) -> &str {
        self.broker
            .kv_mount
            .as_deref()
            .unwrap_or(&self.vault.kv_mount)
    }

    /// Path prefixes in the broker's KV mount that hold the authority's own documents and that
    /// no grant may reach.
    pub fn broker_reserved_prefixes(&self) -> Vec<String> {
        if self.broker_kv_mount() != self.vault.kv_mount {
            return Vec::new();
        }
        [&self.vault.key_prefix, &self.vault.link_key_prefix]
            .into_iter()
            .map(|p| p.trim_matches('/').to_owned())
            .collect()
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
    /// The file is not valid TOML (the message gives the line).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the line and key.
        message: String,
    },
    /// Values are malformed, unknown, unsafe or inconsistent: every one, each with where it was
    /// set (a line of the file or an environment variable).
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
    /// variables from `env`, then `overrides`. Every malformed value of the file and of the
    /// environment is reported at once, each with where it came from. Does not check invariants
    /// (see [`Config::problems`]).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let (mut table, mut origins) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let table = text
                    .parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
                let origins = Origins::of_file(path, &text, &table);
                (table, origins)
            }
            None => (toml::Table::new(), Origins::default()),
        };
        let env = env::apply(&mut table, env);
        for (path, name) in &env.set {
            origins.set(path, Origin::Env(name.clone()));
        }
        let mut problems = env.problems;
        let config = match deserialize(&table) {
            Ok(config) => Some(config),
            Err(whole) => {
                problems.extend(value_problems(&table, &whole));
                None
            }
        };
        let (Some(mut config), true) = (config, problems.is_empty()) else {
            // A misspelt variable may well be why: say so with the problems.
            problems.extend(
                env.unknown
                    .iter()
                    .map(|warning| ConfigProblem::new("environment", warning.clone())),
            );
            return Err(ConfigError::Invalid(
                problems.into_iter().map(|p| origins.annotate(p)).collect(),
            ));
        };
        config.apply(overrides);
        config.origins = origins;
        config.unknown_env = env.unknown;
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

    /// Every invariant this configuration breaks; empty when it is safe to run.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        validate::problems(self)
            .into_iter()
            .map(|problem| self.origins.annotate(problem))
            .collect()
    }

    /// What the operator should hear about although the configuration loads: `GHA_AUTH_*`
    /// variables that name no key and are ignored (a misspelling, most likely).
    pub fn warnings(&self) -> &[String] {
        &self.unknown_env
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

fn deserialize(table: &toml::Table) -> Result<Config, toml::de::Error> {
    toml::Value::Table(table.clone()).try_into()
}

/// Every value of `table` that does not deserialize, one problem each: each top-level key and
/// each key of a section is tried alone over the defaults, so one mistake does not hide the
/// next. `whole` is the error of the whole table, reported when no single value explains it.
fn value_problems(table: &toml::Table, whole: &toml::de::Error) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for (key, value) in table {
        let candidates: Vec<(String, toml::Table)> = match value {
            toml::Value::Table(section) => section
                .iter()
                .map(|(field, inner)| {
                    let mut alone = toml::Table::new();
                    alone.insert(field.clone(), inner.clone());
                    let mut outer = toml::Table::new();
                    outer.insert(key.clone(), toml::Value::Table(alone));
                    (format!("{key}.{field}"), outer)
                })
                .collect(),
            _ => {
                let mut outer = toml::Table::new();
                outer.insert(key.clone(), value.clone());
                vec![(key.clone(), outer)]
            }
        };
        for (path, alone) in candidates {
            if let Err(e) = deserialize(&alone) {
                problems.push(ConfigProblem::new(path, e.message()));
            }
        }
    }
    if problems.is_empty() {
        problems.push(ConfigProblem::new("config", whole.message()));
    }
    problems
}
