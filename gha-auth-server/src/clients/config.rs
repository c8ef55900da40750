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
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::seconds(5),
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
    }
}
