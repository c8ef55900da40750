//! `[api_auth]`: bearer tokens on the authority's own APIs, what [`super::Caller`] accepts.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// Bearer tokens on the authority's own APIs: what [`crate::caller::Caller`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ApiAuthConfig {
    /// Audience a token must name to call the secrets broker.
    pub broker_audience: String,
    /// Audience a token must name to call the link-key endpoints.
    pub link_keys_audience: String,
    /// Audience a token must name to call the admin API (`/admin/v1`).
    pub admin_audience: String,
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
            admin_audience: "gha-auth-admin".to_owned(),
            revocation_check_interval: Duration::seconds(5),
            token_cache_size: 10_000,
        }
    }
}

impl ApiAuthConfig {
    /// Reports what is wrong with `[api_auth]`.
    pub fn check(&self, out: &mut Problems) {
        for (key, audience) in [
            ("api_auth.broker_audience", &self.broker_audience),
            ("api_auth.link_keys_audience", &self.link_keys_audience),
            ("api_auth.admin_audience", &self.admin_audience),
        ] {
            if !crate::clients::is_valid_audience(audience) {
                out.push(
                    key,
                    "must be printable ASCII without spaces, at most 256 bytes",
                );
            }
        }
        if self.broker_audience == self.link_keys_audience {
            out.push(
                "api_auth.link_keys_audience",
                "must differ from api_auth.broker_audience, so a broker token cannot read link keys",
            );
        }
        if self.admin_audience == self.broker_audience
            || self.admin_audience == self.link_keys_audience
        {
            out.push(
                "api_auth.admin_audience",
                "must differ from the broker and link-key audiences, so their tokens cannot administer",
            );
        }
        if self.revocation_check_interval < Duration::seconds(0)
            || self.revocation_check_interval > Duration::seconds(300)
        {
            out.push(
                "api_auth.revocation_check_interval",
                "must be between 0s and 5m",
            );
        }
        if self.token_cache_size == 0 {
            out.push("api_auth.token_cache_size", "must be at least 1");
        }
    }
}
