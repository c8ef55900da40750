//! `GET /metrics`: Prometheus text format, rendered from a [`PrometheusHandle`].
//!
//! Series (all prefixed `gha_auth_`):
//! - `http_requests_total{endpoint,method,status}` and
//!   `http_request_duration_seconds{endpoint,method}` (histogram) for every route;
//! - `token_requests_total{grant,outcome}`: token-endpoint outcomes per grant (`success` or the
//!   RFC 6749 error code, `rate_limited`);
//! - `rate_limited_total{reason}`: refusals by the abuse limits;
//! - `signing_key_age_seconds{state}` (the newest key in each state), `signing_keys{state}`,
//!   `jwks_age_seconds`: key-set freshness, computed at scrape time from the injected clock;
//! - `key_rotations_total{kind}` and `key_transitions_total{transition}`: rotations this process
//!   performed (the replica that wins the compare-and-set counts a scheduled rotation);
//! - `broker_reads_total{kind,outcome}`: broker requests (`hit`, `miss`, `stale`, `issued`,
//!   `denied`, `not_found`, `unavailable`, `invalid`); `broker_cached_secrets`,
//!   `broker_oldest_secret_age_seconds`, `broker_database_roles` (scrape time);
//! - with Vault: `vault_token_ttl_seconds` and `vault_relogins_total` (from the identity loop's
//!   status at scrape time), besides the `vault_*` series the Vault layer counts as it goes
//!   (logins and renewals by result, lease renewals, credential failures).
//!
//! The recorder is process-global (the `metrics` facade has one); several in-process servers (tests)
//! share it. Label values are fixed sets or route templates, never request data.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gha_auth::prometheus::DEFAULT_UPKEEP_INTERVAL;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use axum::extract::FromRef;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and `describe`s every series the features export.
pub(crate) fn install(describe_features: fn()) {
    if handle().is_some() {
        describe_features();
    }
}

/// The process-wide handle, installing the recorder on first use, with its upkeep (draining
/// histograms) on its own timer: memory stays flat whether or not `/metrics` is scraped. `None`
/// when another recorder was installed first (an embedding program's own): then `/metrics`
/// renders nothing.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .ok()?;
            match gha_auth::prometheus::install(builder, DEFAULT_UPKEEP_INTERVAL) {
                Ok(handle) => {
                    describe();
                    gha_auth::vault::describe_metrics();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics is empty");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        "gha_auth_http_requests_total",
        "HTTP requests by route and status"
    );
    metrics::describe_histogram!(
        "gha_auth_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route"
    );
}

/// The `method` label: one of the methods HTTP defines, or `other`, so that a client cannot
/// make up label values (a made-up method would otherwise become a new series).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware: request counts and latency per route template (`unmatched` for any other path).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "gha_auth_http_requests_total",
        "endpoint" => endpoint.clone(),
        "method" => method,
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "gha_auth_http_request_duration_seconds",
        "endpoint" => endpoint,
        "method" => method
    )
    .record(elapsed);
    response
}

/// Work done just before each scrape (gauges computed from state, e.g. key ages).
pub(crate) type Collector = Arc<dyn Fn() + Send + Sync>;

/// The metrics endpoint's state: the collectors the features registered.
#[derive(Clone, Default)]
pub(crate) struct Metrics {
    collectors: Arc<[Collector]>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("collectors", &self.collectors.len())
            .finish()
    }
}

impl Metrics {
    /// Runs `collectors` before every scrape.
    pub(crate) fn new(collectors: Vec<Collector>) -> Self {
        Self {
            collectors: collectors.into(),
        }
    }
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)),
)]
pub(crate) async fn metrics_endpoint(State(metrics): State<Metrics>) -> Response {
    for collect in metrics.collectors.iter() {
        collect();
    }
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The metrics route.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Metrics: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(metrics_endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_a_closed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        let made_up = Method::from_bytes(b"XYZZY").unwrap();
        assert_eq!(method_label(&made_up), "other");
        let long = Method::from_bytes("A".repeat(20_000).as_bytes()).unwrap();
        assert_eq!(method_label(&long), "other");
    }
}
