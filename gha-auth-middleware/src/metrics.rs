//! Metric names, recorded through the [`metrics`] facade.
//!
//! Without a recorder they cost an atomic load each. To export them, either
//!
//! - call [`install_prometheus`] (feature `prometheus`) and merge [`metrics_route`] into the
//!   router: the Prometheus recorder is installed with its upkeep on a timer (histogram buffers
//!   are drained whether or not anyone scrapes), and every series has its `# HELP` text; or
//! - install your own recorder, then call [`describe`] once for the HELP text.
//!
//! ```no_run
//! # #[cfg(feature = "prometheus")]
//! # fn demo(app: axum::Router) -> Result<axum::Router, gha_auth::prometheus::InstallError> {
//! let handle = gha_auth_middleware::metrics::install_prometheus()?;
//! let app = app.merge(gha_auth_middleware::metrics::metrics_route(handle));
//! # Ok(app) }
//! ```
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

/// The kind of a series, for its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every series this crate records, with its HELP text.
const DESCRIPTIONS: [(&str, Kind, &str); 13] = [
    (
        REQUESTS,
        Kind::Counter,
        "Authentication decisions by outcome, reason and credential",
    ),
    (
        TOKEN_CACHE,
        Kind::Counter,
        "Verified-token cache lookups by result (hit, miss)",
    ),
    (
        TOKEN_VERIFY_SECONDS,
        Kind::Histogram,
        "Time to verify a token seen for the first time",
    ),
    (
        JWKS_FETCH,
        Kind::Counter,
        "JWKS fetches by result and trigger",
    ),
    (JWKS_AGE_SECONDS, Kind::Gauge, "Age of the key set in use"),
    (
        JWKS_LAST_SUCCESS,
        Kind::Gauge,
        "Unix time of the last successful JWKS fetch",
    ),
    (JWKS_KEYS, Kind::Gauge, "Usable keys in the key set"),
    (
        LINK_KEY_FETCH,
        Kind::Counter,
        "Link-key digest fetches by link key and result",
    ),
    (
        LINK_KEY_USAGE_REPORT,
        Kind::Counter,
        "Link-key last-use reports sent to the authority, by link key and result",
    ),
    (
        REVOCATION_FEED_FETCH,
        Kind::Counter,
        "Revocation-feed polls by result",
    ),
    (
        REVOCATION_FEED_AGE_SECONDS,
        Kind::Gauge,
        "Age of the last good revocation feed",
    ),
    (
        REVOCATION_FEED_LAST_SUCCESS,
        Kind::Gauge,
        "Unix time of the last good revocation-feed poll",
    ),
    (
        REVOCATION_FEED_SEQ,
        Kind::Gauge,
        "Sequence number of the applied revocation feed",
    ),
];

/// Gives every series of this crate its HELP text in the installed recorder. Call it once after
/// installing a recorder of your own ([`install_prometheus`] calls it): descriptions given while
/// no recorder is installed are lost.
pub fn describe() {
    for (name, kind, help) in DESCRIPTIONS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

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

/// The path [`metrics_route`] serves.
pub const METRICS_PATH: &str = "/metrics";

/// Installs the Prometheus recorder as the process's `metrics` recorder, with upkeep every
/// 5 s on a thread of its own (`gha_auth::prometheus::install`), and describes this crate's
/// series. Serve the handle with [`metrics_route`]. Fails if the process already has a recorder.
#[cfg(feature = "prometheus")]
pub fn install_prometheus()
-> Result<metrics_exporter_prometheus::PrometheusHandle, gha_auth::prometheus::InstallError> {
    let handle = gha_auth::prometheus::install(
        metrics_exporter_prometheus::PrometheusBuilder::new(),
        gha_auth::prometheus::DEFAULT_UPKEEP_INTERVAL,
    )?;
    describe();
    Ok(handle)
}

/// A router serving `GET /metrics` (Prometheus text format) from `handle`; merge it outside the
/// auth layer and expose it on an internal interface only.
#[cfg(feature = "prometheus")]
pub fn metrics_route<S>(handle: metrics_exporter_prometheus::PrometheusHandle) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    axum::Router::new().route(
        METRICS_PATH,
        axum::routing::get(move || {
            let text = handle.render();
            std::future::ready(([(http::header::CONTENT_TYPE, PROMETHEUS_TEXT)], text))
        }),
    )
}

/// The content type of the Prometheus text exposition format.
#[cfg(feature = "prometheus")]
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(all(test, feature = "prometheus"))]
mod tests {
    use super::*;

    /// The families in a Prometheus text that have a `# TYPE` line but no `# HELP` line.
    fn families_without_help(text: &str) -> Vec<&str> {
        fn family<'a>(prefix: &str, line: &'a str) -> Option<&'a str> {
            line.strip_prefix(prefix)?.split(' ').next()
        }
        let helped: Vec<&str> = text.lines().filter_map(|l| family("# HELP ", l)).collect();
        text.lines()
            .filter_map(|l| family("# TYPE ", l))
            .filter(|name| !helped.contains(name))
            .collect()
    }

    #[test]
    fn every_series_has_help_text_in_the_prometheus_output() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            // Recorded the way the layer records them, before and after the descriptions.
            count(&REQUEST_ACCEPTED_TOKEN);
            for (name, kind, _) in DESCRIPTIONS {
                match kind {
                    Kind::Counter => metrics::counter!(name, "result" => "x").increment(1),
                    Kind::Gauge => metrics::gauge!(name).set(1.0),
                    Kind::Histogram => metrics::histogram!(name).record(0.001),
                }
            }
            describe();
        });
        let text = handle.render();
        assert_eq!(families_without_help(&text), Vec::<&str>::new(), "{text}");
        for (name, kind, help) in DESCRIPTIONS {
            assert!(
                text.contains(&format!("# HELP {name} {help}\n")),
                "{name}: {text}"
            );
            let kind = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "summary",
            };
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}: {text}"
            );
        }
        // The checker itself finds a family without HELP.
        assert_eq!(
            families_without_help("# TYPE a counter\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n"),
            ["a"]
        );
    }
}
