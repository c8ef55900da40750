//! `[clients]`: client lookups at the token endpoint.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// Client lookups at the token endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ClientsConfig {
    /// How long a client read from the store is reused for authentication (`0s`: never).
    /// Changes made by another process (`gha-auth clients disable` while the server runs) take
    /// effect within this time; a rotated secret works at once.
    pub cache_ttl: Duration,
    /// While the store is unreachable, a client read from it within this window still
    /// authenticates from the cache (`0s`: never), so `client_credentials` keeps working
    /// through a database outage. A client disabled during an outage keeps working this long.
    pub outage_window: Duration,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::seconds(5),
            outage_window: Duration::minutes(5),
        }
    }
}

impl ClientsConfig {
    /// Reports what is wrong with `[clients]`.
    pub fn check(&self, out: &mut Problems) {
        if self.cache_ttl > Duration::minutes(1) {
            out.push(
                "clients.cache_ttl",
                "must be at most 1m: a disabled client keeps working on other processes this long",
            );
        }
        if self.outage_window > Duration::hours(1) {
            out.push(
                "clients.outage_window",
                "must be at most 1h: a client disabled during a database outage keeps working this long",
            );
        }
    }
}
