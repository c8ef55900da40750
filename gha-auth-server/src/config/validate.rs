//! Invariants checked before the server starts (and by `gha-auth config check`).

use std::fmt;
use std::net::SocketAddr;

use super::{Config, Duration};

/// One broken invariant: which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key path the problem is about.
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key,
            message: message.into(),
        });
    }
}

pub(super) fn problems(config: &Config) -> Vec<ConfigProblem> {
    let mut out = Problems(Vec::new());
    check_transport(config, &mut out);
    check_store(config, &mut out);
    check_schedule(config, &mut out);
    check_tokens(config, &mut out);
    check_clients(config, &mut out);
    check_users(config, &mut out);
    check_revocations(config, &mut out);
    check_http(config, &mut out);
    check_log(config, &mut out);
    check_rate_limit(config, &mut out);
    check_vault(config, &mut out);
    check_api_auth(config, &mut out);
    out.0.extend(super::link_keys::problems(
        &config.link_keys,
        &config.alerts,
    ));
    check_session(config, &mut out);
    out.0.extend(super::broker::problems(config));
    out.0
}

fn check_api_auth(config: &Config, out: &mut Problems) {
    let api = &config.api_auth;
    for (key, audience) in [
        ("api_auth.broker_audience", &api.broker_audience),
        ("api_auth.link_keys_audience", &api.link_keys_audience),
    ] {
        if !crate::clients::is_valid_audience(audience) {
            out.push(
                key,
                "must be printable ASCII without spaces, at most 256 bytes",
            );
        }
    }
    if api.broker_audience == api.link_keys_audience {
        out.push(
            "api_auth.link_keys_audience",
            "must differ from api_auth.broker_audience, so a broker token cannot read link keys",
        );
    }
    if api.revocation_check_interval < Duration::seconds(0)
        || api.revocation_check_interval > Duration::seconds(300)
    {
        out.push(
            "api_auth.revocation_check_interval",
            "must be between 0s and 5m",
        );
    }
    if api.token_cache_size == 0 {
        out.push("api_auth.token_cache_size", "must be at least 1");
    }
}

/// Whether `addr` only accepts connections from this machine.
pub(crate) fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn check_transport(config: &Config, out: &mut Problems) {
    let tls = config.tls.files().is_some();
    if config.tls.cert_file.is_some() != config.tls.key_file.is_some() {
        out.push("tls", "set both tls.cert_file and tls.key_file, or neither");
    }
    if config.tls.reload_interval <= Duration::seconds(0) {
        out.push("tls.reload_interval", "must be greater than zero");
    }
    if !tls && !is_loopback(config.listen) && !config.allow_insecure_http {
        out.push(
            "listen",
            format!(
                "plain HTTP on the non-loopback address {} is refused; configure [tls], listen on \
                 127.0.0.1, or set allow_insecure_http = true when a TLS-terminating proxy is in \
                 front",
                config.listen
            ),
        );
    }
    let Some(issuer) = &config.issuer else {
        return;
    };
    match url::Url::parse(issuer) {
        Err(e) => out.push("issuer", format!("not a URL: {e}")),
        Ok(url) => {
            if url.query().is_some() || url.fragment().is_some() {
                out.push("issuer", "must have no query or fragment (RFC 8414)");
            }
            if !url.username().is_empty() || url.password().is_some() {
                out.push("issuer", "must not contain credentials");
            }
            match url.scheme() {
                "https" => {}
                "http" => {
                    let loopback = match url.host() {
                        Some(url::Host::Domain(d)) => d == "localhost",
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        None => false,
                    };
                    if !loopback && !config.allow_insecure_http {
                        out.push(
                            "issuer",
                            "must be https unless it is a loopback address or \
                             allow_insecure_http = true",
                        );
                    }
                }
                other => out.push("issuer", format!("scheme {other:?} is not http or https")),
            }
        }
    }
}

fn check_store(config: &Config, out: &mut Problems) {
    let url = config.store_url();
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if !supported.iter().any(|prefix| url.starts_with(prefix)) {
        out.push(
            "store.url",
            "must start with sqlite:, postgres:// or postgresql://",
        );
    }
    if config.store.max_connections == 0 {
        out.push("store.max_connections", "must be at least 1");
    }
}

fn check_schedule(config: &Config, out: &mut Problems) {
    let before = out.0.len();
    let keys = &config.keys;
    let positive = [
        ("keys.rotation_period", keys.rotation_period),
        ("keys.publish_ahead", keys.publish_ahead),
        ("keys.jwks_max_age", keys.jwks_max_age),
        ("keys.refresh_interval", keys.refresh_interval),
    ];
    for (key, value) in positive {
        if value <= Duration::seconds(0) {
            out.push(key, "must be greater than zero");
        }
    }
    if keys.publish_ahead < keys.jwks_max_age {
        out.push(
            "keys.publish_ahead",
            format!(
                "({}) must be at least keys.jwks_max_age ({}): verifiers caching the JWKS must \
                 see the next key before it signs",
                keys.publish_ahead, keys.jwks_max_age
            ),
        );
    }
    if keys.publish_ahead >= keys.rotation_period {
        out.push(
            "keys.publish_ahead",
            format!(
                "({}) must be shorter than keys.rotation_period ({})",
                keys.publish_ahead, keys.rotation_period
            ),
        );
    }
    if keys.leeway > Duration::minutes(5) {
        out.push("keys.leeway", "must be at most 5m");
    }
    // A replica learns of a key another one generated within refresh_interval; verifiers that
    // cached its JWKS just before must still hold the key when it starts signing.
    if keys.refresh_interval.as_delta() + keys.jwks_max_age.as_delta()
        > keys.publish_ahead.as_delta()
    {
        out.push(
            "keys.refresh_interval",
            format!(
                "({}) plus keys.jwks_max_age ({}) must not exceed keys.publish_ahead ({}), so \
                 every replica publishes a new key in time",
                keys.refresh_interval, keys.jwks_max_age, keys.publish_ahead
            ),
        );
    }
    // The library's own schedule rules, unless a clearer message above already covers it.
    if out.0.len() == before
        && let Err(e) = crate::keys::schedule_from_config(config)
    {
        out.push("keys", e);
    }
}

fn check_tokens(config: &Config, out: &mut Problems) {
    let tokens = &config.tokens;
    if tokens.default_lifetime <= Duration::seconds(0) {
        out.push("tokens.default_lifetime", "must be greater than zero");
    }
    if tokens.default_lifetime > tokens.max_lifetime {
        out.push(
            "tokens.default_lifetime",
            format!(
                "({}) must not exceed tokens.max_lifetime ({})",
                tokens.default_lifetime, tokens.max_lifetime
            ),
        );
    }
    // A retired key stays published for max_lifetime + leeway, so a token can never outlive its
    // key's time in the JWKS; a lifetime beyond the rotation period would keep ever more retired
    // keys published and is almost certainly a mistake.
    if tokens.max_lifetime > config.keys.rotation_period {
        out.push(
            "tokens.max_lifetime",
            format!(
                "({}) must not exceed keys.rotation_period ({})",
                tokens.max_lifetime, config.keys.rotation_period
            ),
        );
    }
    if tokens.max_lifetime > Duration::hours(24) {
        out.push(
            "tokens.max_lifetime",
            "must be at most 24h: access tokens are short-lived",
        );
    }
    let assertion = tokens.client_assertion_max_lifetime;
    if assertion <= Duration::seconds(0) || assertion > Duration::hours(1) {
        out.push(
            "tokens.client_assertion_max_lifetime",
            "must be between 1s and 1h",
        );
    }
}

fn check_clients(config: &Config, out: &mut Problems) {
    if config.clients.cache_ttl > Duration::minutes(1) {
        out.push(
            "clients.cache_ttl",
            "must be at most 1m: a disabled client keeps working on other processes this long",
        );
    }
}

fn check_http(config: &Config, out: &mut Problems) {
    let body = config.http.max_body_bytes;
    if !(1024..=1024 * 1024).contains(&body) {
        out.push("http.max_body_bytes", "must be between 1024 and 1048576");
    }
    if config.http.request_timeout <= Duration::seconds(0) {
        out.push("http.request_timeout", "must be greater than zero");
    }
}

fn check_log(config: &Config, out: &mut Problems) {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        out.push("log.level", format!("not a valid filter: {e}"));
    }
}

fn check_rate_limit(config: &Config, out: &mut Problems) {
    let limits = &config.rate_limit;
    if limits.backoff_base <= Duration::seconds(0) {
        out.push("rate_limit.backoff_base", "must be greater than zero");
    }
    if limits.backoff_max < limits.backoff_base {
        out.push(
            "rate_limit.backoff_max",
            "must be at least rate_limit.backoff_base",
        );
    }
    if limits.backoff_max > Duration::hours(24) {
        out.push("rate_limit.backoff_max", "must be at most 24h");
    }
    if limits.failures_before_backoff == 0 || limits.source_failures_before_backoff == 0 {
        out.push(
            "rate_limit.failures_before_backoff",
            "failures_before_backoff and source_failures_before_backoff must be at least 1",
        );
    }
    if limits.max_tracked < 1000 {
        out.push("rate_limit.max_tracked", "must be at least 1000");
    }
}

fn check_vault(config: &Config, out: &mut Problems) {
    let vault = &config.vault;
    if config.keys.backend == super::KeyBackend::Vault && vault.address.is_none() {
        out.push("keys.backend", "\"vault\" needs vault.address");
    }
    if vault.address.is_none() {
        return;
    }
    if let Err(e) = crate::keys::vault_config(config) {
        out.push("vault", e);
    }
    if vault.request_timeout <= Duration::seconds(0) {
        out.push("vault.request_timeout", "must be greater than zero");
    }
}

fn check_revocations(config: &Config, out: &mut Problems) {
    let feed = &config.revocations;
    if feed.poll_interval < Duration::seconds(1) || feed.poll_interval > Duration::hours(1) {
        out.push(
            "revocations.poll_interval",
            "must be between 1s and 1h: it is how long a revoked token may still be accepted",
        );
    }
    if feed.document_lifetime < feed.poll_interval.max(Duration::minutes(1))
        || feed.document_lifetime > Duration::hours(24)
    {
        out.push(
            "revocations.document_lifetime",
            "must be at least revocations.poll_interval and 1m, and at most 24h",
        );
    }
}

fn check_users(config: &Config, out: &mut Problems) {
    let users = &config.users;
    if !(1024..=1024 * 1024).contains(&users.argon2_memory_kib) {
        out.push(
            "users.argon2_memory_kib",
            "must be between 1024 and 1048576 (below the default 19456 only for tests)",
        );
    }
    if !(1..=16).contains(&users.argon2_iterations) {
        out.push("users.argon2_iterations", "must be between 1 and 16");
    }
    if !(1..=16).contains(&users.argon2_parallelism) {
        out.push("users.argon2_parallelism", "must be between 1 and 16");
    }
    if users.backoff_base <= Duration::seconds(0) || users.backoff_max < users.backoff_base {
        out.push(
            "users.backoff_base",
            "must be greater than zero and at most users.backoff_max",
        );
    }
    let refresh = &config.refresh;
    if refresh.grace_window < Duration::seconds(0) || refresh.grace_window > Duration::minutes(5) {
        out.push(
            "refresh.grace_window",
            "must be between 0s and 5m: a longer window lets a stolen token be replayed",
        );
    }
    if refresh.idle_lifetime <= refresh.grace_window
        || refresh.idle_lifetime > refresh.absolute_lifetime
    {
        out.push(
            "refresh.idle_lifetime",
            "must be longer than refresh.grace_window and at most refresh.absolute_lifetime",
        );
    }
    if refresh.absolute_lifetime > Duration::days(365) {
        out.push("refresh.absolute_lifetime", "must be at most 365d");
    }
}

/// Whether `host` is loopback (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback_host(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Why `origin` is not usable in `session.allowed_origins`, if it is not. It must be written
/// exactly as browsers send `Origin` (`scheme://host[:port]`, lower case, no default port), so
/// that the runtime check can be an exact comparison.
pub(crate) fn origin_problem(origin: &str) -> Option<String> {
    let url = match url::Url::parse(origin) {
        Ok(url) => url,
        Err(e) => return Some(format!("{origin:?} is not an origin: {e}")),
    };
    let serialized = url.origin().ascii_serialization();
    if serialized != origin {
        return Some(format!(
            "{origin:?} must be written as the browser sends it: {serialized:?} (no path, \
             lower case, no default port; \"*\" is not allowed)"
        ));
    }
    match url.scheme() {
        "https" => None,
        // The session cookie is `Secure`: browsers keep it over plain http only on loopback.
        "http" if is_loopback_host(url.host()) => None,
        _ => Some(format!(
            "{origin:?} must be https (plain http only for loopback pages)"
        )),
    }
}

fn check_session(config: &Config, out: &mut Problems) {
    let session = &config.session;
    match &session.client_id {
        None if !session.allowed_origins.is_empty() => out.push(
            "session.allowed_origins",
            "set session.client_id too: without it sessions are off",
        ),
        None => {}
        Some(id) => {
            if !crate::clients::is_valid_client_id(id) {
                out.push("session.client_id", "is not a valid client id");
            }
            if session.allowed_origins.is_empty() {
                out.push(
                    "session.allowed_origins",
                    "must list the origins of the pages that use sessions; with none every \
                     session request would be refused",
                );
            }
        }
    }
    for origin in &session.allowed_origins {
        if let Some(problem) = origin_problem(origin) {
            out.push("session.allowed_origins", problem);
        }
    }
}
