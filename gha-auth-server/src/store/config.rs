//! `[store]`: SQLite (default) or PostgreSQL.

use std::fmt;

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// The store: SQLite (default) or PostgreSQL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`. Unset: SQLite at `<data_dir>/gha-auth.db`.
    pub url: Option<String>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before it is answered 503
    /// `temporarily_unavailable` (a database outage, or every connection busy). Keep it well
    /// under `http.request_timeout`.
    pub acquire_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 8,
            acquire_timeout: Duration::seconds(1),
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
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

impl StoreConfig {
    /// Reports what is wrong with `[store]`; `url` is the URL in effect (the SQLite default is
    /// derived from the data directory).
    pub fn check(&self, url: &str, out: &mut Problems) {
        let supported = ["sqlite:", "postgres://", "postgresql://"];
        if !supported.iter().any(|prefix| url.starts_with(prefix)) {
            out.push(
                "store.url",
                "must start with sqlite:, postgres:// or postgresql://",
            );
        }
        if self.max_connections == 0 {
            out.push("store.max_connections", "must be at least 1");
        }
        if self.acquire_timeout < Duration::seconds(1)
            || self.acquire_timeout > Duration::seconds(30)
        {
            out.push(
                "store.acquire_timeout",
                "must be between 1s and 30s: during a database outage a request waits this long \
                 before it is answered 503",
            );
        }
    }
}
