//! `[tokens]`: access-token lifetimes.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

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
            client_assertion_max_lifetime: Duration::hours(1),
        }
    }
}

impl TokensConfig {
    /// Reports what is wrong with `[tokens]` on its own.
    pub fn check(&self, out: &mut Problems) {
        if self.default_lifetime <= Duration::seconds(0) {
            out.push("tokens.default_lifetime", "must be greater than zero");
        }
        if self.default_lifetime > self.max_lifetime {
            out.push(
                "tokens.default_lifetime",
                format!(
                    "({}) must not exceed tokens.max_lifetime ({})",
                    self.default_lifetime, self.max_lifetime
                ),
            );
        }
        if self.max_lifetime > Duration::hours(24) {
            out.push(
                "tokens.max_lifetime",
                "must be at most 24h: access tokens are short-lived",
            );
        }
        let assertion = self.client_assertion_max_lifetime;
        if assertion <= Duration::seconds(0) || assertion > Duration::hours(1) {
            out.push(
                "tokens.client_assertion_max_lifetime",
                "must be between 1s and 1h",
            );
        }
    }
}
