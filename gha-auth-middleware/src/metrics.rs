//! Metric names, recorded through the [`metrics`] facade.
//!
//! Install any `metrics` recorder (e.g. `metrics-exporter-prometheus`) in the service to export
//! them; without one they cost an atomic load each.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `gha_auth_requests_total` | counter | `outcome` (`accepted`, `anonymous`, `preflight`, `rejected`), `reason` (on `rejected`: an [`AuthErrorKind`](crate::AuthErrorKind) name), `credential` (on `accepted`: `token`, `link_key`) | authentication decisions |
//! | `gha_auth_token_cache_total` | counter | `result` (`hit`, `miss`) | verified-token cache lookups |
//! | `gha_auth_token_verify_seconds` | histogram | | time to verify a token seen for the first time |
//! | `gha_auth_jwks_fetch_total` | counter | `result` (`success`, `not_modified`, `failure`), `trigger` (`scheduled`, `unknown_kid`, `initial`) | JWKS fetches |
//! | `gha_auth_jwks_age_seconds` | gauge | | age of the key set in use (updated on each fetch and each health check) |
//! | `gha_auth_jwks_last_success_timestamp_seconds` | gauge | | Unix time of the last successful fetch; `time() - this` is the age in PromQL |
//! | `gha_auth_jwks_keys` | gauge | | usable keys in the key set |
//! | `gha_auth_revocation_feed_fetch_total` | counter | `result` (`success`, `not_modified`, `failure`) | revocation-feed polls |
//! | `gha_auth_revocation_feed_age_seconds` | gauge | | age of the last good revocation feed (updated on each poll and each health check) |
//! | `gha_auth_revocation_feed_last_success_timestamp_seconds` | gauge | | Unix time of the last good poll |
//! | `gha_auth_revocation_feed_seq` | gauge | | sequence number of the applied feed |
//! | `gha_auth_link_key_fetch_total` | counter | `name`, `result` | link-key digest fetches |
//! | `gha_auth_link_key_usage_report_total` | counter | `name`, `result` | last-use reports sent to the authority |

/// Authentication decisions.
pub const REQUESTS: &str = "gha_auth_requests_total";
/// Verified-token cache lookups.
pub const TOKEN_CACHE: &str = "gha_auth_token_cache_total";
/// Time to verify a token seen for the first time.
pub const TOKEN_VERIFY_SECONDS: &str = "gha_auth_token_verify_seconds";
/// JWKS fetches.
pub const JWKS_FETCH: &str = "gha_auth_jwks_fetch_total";
/// Age of the key set in use.
pub const JWKS_AGE_SECONDS: &str = "gha_auth_jwks_age_seconds";
/// Unix time of the last successful JWKS fetch.
pub const JWKS_LAST_SUCCESS: &str = "gha_auth_jwks_last_success_timestamp_seconds";
/// Usable keys in the key set.
pub const JWKS_KEYS: &str = "gha_auth_jwks_keys";
/// Link-key digest fetches.
pub const LINK_KEY_FETCH: &str = "gha_auth_link_key_fetch_total";
/// Last-use reports sent to the authority.
pub const LINK_KEY_USAGE_REPORT: &str = "gha_auth_link_key_usage_report_total";
/// Revocation-feed polls.
pub const REVOCATION_FEED_FETCH: &str = "gha_auth_revocation_feed_fetch_total";
/// Age of the last good revocation feed.
pub const REVOCATION_FEED_AGE_SECONDS: &str = "gha_auth_revocation_feed_age_seconds";
/// Unix time of the last good revocation-feed poll.
pub const REVOCATION_FEED_LAST_SUCCESS: &str =
    "gha_auth_revocation_feed_last_success_timestamp_seconds";
/// Sequence number of the applied revocation feed.
pub const REVOCATION_FEED_SEQ: &str = "gha_auth_revocation_feed_seq";

/// Keys of the counters every request touches, hashed at compile time: `counter!` with a name
/// constant (rather than a literal) builds and hashes its key on every call.
mod keys {
    use metrics::{Key, Label};

    static ACCEPTED_TOKEN: [Label; 2] = [
        Label::from_static_parts("outcome", "accepted"),
        Label::from_static_parts("credential", "token"),
    ];
    static ACCEPTED_LINK_KEY: [Label; 2] = [
        Label::from_static_parts("outcome", "accepted"),
        Label::from_static_parts("credential", "link_key"),
    ];
    static PREFLIGHT: [Label; 1] = [Label::from_static_parts("outcome", "preflight")];
    static ANONYMOUS: [Label; 1] = [Label::from_static_parts("outcome", "anonymous")];
    static HIT: [Label; 1] = [Label::from_static_parts("result", "hit")];
    static MISS: [Label; 1] = [Label::from_static_parts("result", "miss")];

    pub(crate) static REQUEST_ACCEPTED_TOKEN: Key =
        Key::from_static_parts(super::REQUESTS, &ACCEPTED_TOKEN);
    pub(crate) static REQUEST_ACCEPTED_LINK_KEY: Key =
        Key::from_static_parts(super::REQUESTS, &ACCEPTED_LINK_KEY);
    pub(crate) static REQUEST_PREFLIGHT: Key = Key::from_static_parts(super::REQUESTS, &PREFLIGHT);
    pub(crate) static REQUEST_ANONYMOUS: Key = Key::from_static_parts(super::REQUESTS, &ANONYMOUS);
    pub(crate) static CACHE_HIT: Key = Key::from_static_parts(super::TOKEN_CACHE, &HIT);
    pub(crate) static CACHE_MISS: Key = Key::from_static_parts(super::TOKEN_CACHE, &MISS);
}

pub(crate) use keys::{
    CACHE_HIT, CACHE_MISS, REQUEST_ACCEPTED_LINK_KEY, REQUEST_ACCEPTED_TOKEN, REQUEST_ANONYMOUS,
    REQUEST_PREFLIGHT,
};

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Adds one to the counter `key` in the installed recorder (what `counter!(…).increment(1)`
/// does, without building the key).
pub(crate) fn count(key: &'static metrics::Key) {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(1);
}
