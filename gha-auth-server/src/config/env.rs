//! `GHA_AUTH_*` environment overrides.
//!
//! Each configuration key has one variable: `GHA_AUTH_` followed by its dotted path in upper case
//! with dots and dashes as underscores, e.g. `store.url` → `GHA_AUTH_STORE_URL`,
//! `keys.rotation_period` → `GHA_AUTH_KEYS_ROTATION_PERIOD`, `listen` → `GHA_AUTH_LISTEN`.
//! Variables that start with the prefix but name no key are ignored, and reported (with the
//! nearest real name) by `gha-auth config check` and in the log after start-up.

use crate::settings::ConfigProblem;

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
    var("http.header_read_timeout", EnvKind::Text),
    var("http.max_connections", EnvKind::Integer),
    var("store.url", EnvKind::Text),
    var("store.max_connections", EnvKind::Integer),
    var("store.acquire_timeout", EnvKind::Text),
    var("keys.backend", EnvKind::Text),
    var("keys.algorithm", EnvKind::Text),
    var("keys.rotation_period", EnvKind::Text),
    var("keys.publish_ahead", EnvKind::Text),
    var("keys.check_verifier_bounds", EnvKind::Bool),
    var("keys.jwks_max_age", EnvKind::Text),
    var("keys.leeway", EnvKind::Text),
    var("keys.refresh_interval", EnvKind::Text),
    var("keys.master_key_file", EnvKind::Text),
    var("keys.import_pem", EnvKind::Text),
    var("tokens.default_lifetime", EnvKind::Text),
    var("tokens.max_lifetime", EnvKind::Text),
    var("tokens.client_assertion_max_lifetime", EnvKind::Text),
    var("clients.cache_ttl", EnvKind::Text),
    var("clients.outage_window", EnvKind::Text),
    var("log.format", EnvKind::Text),
    var("log.level", EnvKind::Text),
    var("users.argon2_memory_kib", EnvKind::Integer),
    var("users.argon2_iterations", EnvKind::Integer),
    var("users.argon2_parallelism", EnvKind::Integer),
    var("users.argon2_memory_budget_mib", EnvKind::Integer),
    var("users.argon2_max_waiting", EnvKind::Integer),
    var("users.failures_before_backoff", EnvKind::Integer),
    var("users.user_failures_before_backoff", EnvKind::Integer),
    var("users.source_failures_before_backoff", EnvKind::Integer),
    var("users.known_source_lifetime", EnvKind::Text),
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
    var("http.trusted_proxies", EnvKind::List),
    var("tls.cert_file", EnvKind::Text),
    var("tls.key_file", EnvKind::Text),
    var("tls.reload_interval", EnvKind::Text),
    var("vault.address", EnvKind::Text),
    var("vault.token_file", EnvKind::Text),
    var("vault.role_id_file", EnvKind::Text),
    var("vault.secret_id_file", EnvKind::Text),
    var("vault.auth", EnvKind::Text),
    var("vault.kubernetes_role", EnvKind::Text),
    var("vault.kubernetes_mount", EnvKind::Text),
    var("vault.kubernetes_token_file", EnvKind::Text),
    var("vault.ca_file", EnvKind::Text),
    var("vault.kv_mount", EnvKind::Text),
    var("vault.key_prefix", EnvKind::Text),
    var("vault.link_key_prefix", EnvKind::Text),
    var("vault.request_timeout", EnvKind::Text),
    var("api_auth.broker_audience", EnvKind::Text),
    var("api_auth.link_keys_audience", EnvKind::Text),
    var("api_auth.admin_audience", EnvKind::Text),
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
    var("monitor.failures_before_alert", EnvKind::Integer),
    var("monitor.successes_before_recovery", EnvKind::Integer),
    var("monitor.retention", EnvKind::Text),
    var("monitor.max_results_per_target", EnvKind::Integer),
    var("monitor.lease_ttl", EnvKind::Text),
];

/// Every configuration key reachable from the environment, for documentation and tests.
pub fn env_vars() -> &'static [EnvVar] {
    VARS
}

/// What the environment did to the configuration.
#[derive(Debug, Default)]
pub(super) struct EnvReport {
    /// The keys it set, with the variable that set each.
    pub(super) set: Vec<(&'static str, String)>,
    /// Variables whose values could not be read, one problem each.
    pub(super) problems: Vec<ConfigProblem>,
    /// Variables with the prefix that name no key: ignored, and worth a warning.
    pub(super) unknown: Vec<String>,
}

/// Variables that start with the prefix but configure something else (the CLI's `--config`).
const NOT_KEYS: [&str; 4] = [
    "GHA_AUTH_CONFIG",
    "GHA_AUTH_SERVER",
    "GHA_AUTH_CLIENT_ID",
    "GHA_AUTH_CLIENT_SECRET_FILE",
];

/// Sets the values of recognised `GHA_AUTH_*` variables in `table`; reports every malformed one
/// (by name, never by value: it may be a secret) and every unknown one.
pub(super) fn apply(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> EnvReport {
    let mut report = EnvReport::default();
    for (name, value) in env {
        if !name.starts_with(ENV_PREFIX) || NOT_KEYS.contains(&name.as_str()) {
            continue;
        }
        let Some(var) = VARS.iter().find(|v| v.name() == name) else {
            report.unknown.push(unknown(&name));
            continue;
        };
        let result = parse(var.kind, &value)
            .map_err(str::to_owned)
            .and_then(|parsed| set_path(table, var.path, parsed));
        match result {
            Ok(()) => report.set.push((var.path, name)),
            Err(message) => report.problems.push(
                ConfigProblem::new(var.path, message)
                    .with_source(format!("environment variable {name}")),
            ),
        }
    }
    report.unknown.sort();
    report
}

/// What to say about an unknown variable: that it is ignored, and the nearest real one.
fn unknown(name: &str) -> String {
    let nearest = VARS
        .iter()
        .map(|v| v.name())
        .map(|known| (edit_distance(name, &known), known))
        .min();
    match nearest {
        Some((distance, known)) if distance <= 3 => {
            format!("{name} is not a configuration variable and is ignored (did you mean {known}?)")
        }
        _ => format!("{name} is not a configuration variable and is ignored"),
    }
}

/// Levenshtein distance of two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
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
