//! `GHA_AUTH_*` environment overrides.
//!
//! Each configuration key has one variable: `GHA_AUTH_` followed by its dotted path in upper case
//! with dots and dashes as underscores, e.g. `store.url` → `GHA_AUTH_STORE_URL`,
//! `keys.rotation_period` → `GHA_AUTH_KEYS_ROTATION_PERIOD`, `listen` → `GHA_AUTH_LISTEN`.
//! Variables that start with the prefix but name no key are ignored with a warning (other tools
//! share the prefix, e.g. `GHA_AUTH_CONFIG`).

use super::ConfigError;

/// Prefix of every override.
pub const ENV_PREFIX: &str = "GHA_AUTH_";

/// How a variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvKind {
    /// Taken as is.
    Text,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// A non-negative integer.
    Integer,
    /// A comma-separated list of strings (spaces around items are dropped).
    List,
}

/// One configuration key reachable from the environment.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// Dotted path in the file, e.g. `store.url`.
    pub path: &'static str,
    /// How the value is read.
    pub kind: EnvKind,
}

impl EnvVar {
    /// The variable's name, e.g. `GHA_AUTH_STORE_URL`.
    pub fn name(&self) -> String {
        format!(
            "{ENV_PREFIX}{}",
            self.path.replace(['.', '-'], "_").to_uppercase()
        )
    }
}

const fn var(path: &'static str, kind: EnvKind) -> EnvVar {
    EnvVar { path, kind }
}

/// Every key reachable from the environment (all keys of the file).
const VARS: &[EnvVar] = &[
    var("listen", EnvKind::Text),
    var("issuer", EnvKind::Text),
    var("data_dir", EnvKind::Text),
    var("dev_mode", EnvKind::Bool),
    var("allow_insecure_http", EnvKind::Bool),
    var("http.max_body_bytes", EnvKind::Integer),
    var("http.request_timeout", EnvKind::Text),
    var("http.shutdown_grace", EnvKind::Text),
    var("store.url", EnvKind::Text),
    var("store.max_connections", EnvKind::Integer),
    var("keys.backend", EnvKind::Text),
    var("keys.algorithm", EnvKind::Text),
    var("keys.rotation_period", EnvKind::Text),
    var("keys.publish_ahead", EnvKind::Text),
    var("keys.jwks_max_age", EnvKind::Text),
    var("keys.leeway", EnvKind::Text),
    var("keys.refresh_interval", EnvKind::Text),
    var("keys.master_key_file", EnvKind::Text),
    var("keys.import_pem", EnvKind::Text),
    var("tokens.default_lifetime", EnvKind::Text),
    var("tokens.max_lifetime", EnvKind::Text),
    var("tokens.client_assertion_max_lifetime", EnvKind::Text),
    var("clients.cache_ttl", EnvKind::Text),
    var("log.format", EnvKind::Text),
    var("log.level", EnvKind::Text),
    var("users.argon2_memory_kib", EnvKind::Integer),
    var("users.argon2_iterations", EnvKind::Integer),
    var("users.argon2_parallelism", EnvKind::Integer),
    var("users.failures_before_backoff", EnvKind::Integer),
    var("users.source_failures_before_backoff", EnvKind::Integer),
    var("users.backoff_base", EnvKind::Text),
    var("users.backoff_max", EnvKind::Text),
    var("refresh.grace_window", EnvKind::Text),
    var("refresh.idle_lifetime", EnvKind::Text),
    var("refresh.absolute_lifetime", EnvKind::Text),
    var("revocations.poll_interval", EnvKind::Text),
    var("revocations.document_lifetime", EnvKind::Text),
    var("rate_limit.enabled", EnvKind::Bool),
    var("rate_limit.per_source_per_second", EnvKind::Integer),
    var("rate_limit.per_source_burst", EnvKind::Integer),
    var("rate_limit.per_client_per_second", EnvKind::Integer),
    var("rate_limit.per_client_burst", EnvKind::Integer),
    var("rate_limit.failures_before_backoff", EnvKind::Integer),
    var(
        "rate_limit.source_failures_before_backoff",
        EnvKind::Integer,
    ),
    var("rate_limit.backoff_base", EnvKind::Text),
    var("rate_limit.backoff_max", EnvKind::Text),
    var("rate_limit.max_tracked", EnvKind::Integer),
    var("tls.cert_file", EnvKind::Text),
    var("tls.key_file", EnvKind::Text),
    var("tls.reload_interval", EnvKind::Text),
    var("vault.address", EnvKind::Text),
    var("vault.token_file", EnvKind::Text),
    var("vault.role_id_file", EnvKind::Text),
    var("vault.secret_id_file", EnvKind::Text),
    var("vault.ca_file", EnvKind::Text),
    var("vault.kv_mount", EnvKind::Text),
    var("vault.key_prefix", EnvKind::Text),
    var("vault.link_key_prefix", EnvKind::Text),
    var("vault.request_timeout", EnvKind::Text),
    var("api_auth.broker_audience", EnvKind::Text),
    var("api_auth.link_keys_audience", EnvKind::Text),
    var("api_auth.revocation_check_interval", EnvKind::Text),
    var("api_auth.token_cache_size", EnvKind::Integer),
    var("alerts.webhook_url", EnvKind::Text),
    var("alerts.timeout", EnvKind::Text),
    var("alerts.attempts", EnvKind::Integer),
    var("session.client_id", EnvKind::Text),
    var("session.allowed_origins", EnvKind::List),
    var("broker.kv_mount", EnvKind::Text),
    var("broker.database_mount", EnvKind::Text),
    var("broker.cache_ttl", EnvKind::Text),
    var("broker.stale_window", EnvKind::Text),
    var("broker.read_audit_interval", EnvKind::Text),
    var("broker.static_roles", EnvKind::List),
    var("broker.static_poll_interval", EnvKind::Text),
];

/// Every configuration key reachable from the environment, for documentation and tests.
pub fn env_vars() -> &'static [EnvVar] {
    VARS
}

/// Sets the values of recognised `GHA_AUTH_*` variables in `table`.
pub(super) fn apply(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some(var) = VARS.iter().find(|v| v.name() == name) else {
            if rest != "CONFIG" {
                tracing::warn!(variable = %name, "ignoring unknown GHA_AUTH_ environment variable");
            }
            continue;
        };
        let parsed = parse(var.kind, &value).map_err(|message| ConfigError::Env {
            name: name.clone(),
            message: message.to_owned(),
        })?;
        set_path(table, var.path, parsed).map_err(|message| ConfigError::Env {
            name: name.clone(),
            message,
        })?;
    }
    Ok(())
}

fn parse(kind: EnvKind, value: &str) -> Result<toml::Value, &'static str> {
    match kind {
        EnvKind::Text => Ok(toml::Value::String(value.to_owned())),
        EnvKind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err("expected true or false"),
        },
        EnvKind::Integer => value
            .trim()
            .parse::<u32>()
            .map(|n| toml::Value::Integer(i64::from(n)))
            .map_err(|_| "expected a non-negative integer"),
        EnvKind::List => Ok(toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        )),
    }
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let mut parts = path.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return Ok(());
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("config key {part:?} is not a table")),
        };
    }
    Ok(())
}
