//! `GET /HealthCheck` (readiness) and `GET /HealthCheck/live` (liveness).
//!
//! The wire format is the core library's ([`gha_auth::health`]), the same as every API behind the
//! middleware: `Healthy`, `Degraded` (still serving, something needs attention) or `Unhealthy`
//! (cannot serve); HTTP 200 for the first two, 503 for the last. Each feature that has something
//! to report implements [`HealthCheck`]; the composition root hands the list to [`Health`]. This
//! module knows no feature.

pub(crate) mod cli;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gha_auth::SharedClock;
pub(crate) use gha_auth::health::{ComponentHealth, HealthReport, HealthStatus, Liveness};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One component's check. Keep it quick: it runs on every `/HealthCheck` request.
#[async_trait]
pub(crate) trait HealthCheck: Send + Sync + fmt::Debug {
    /// The component's name in the report (`store`, `signing_keys`, …).
    fn name(&self) -> &'static str;
    /// Its state now.
    async fn check(&self) -> ComponentHealth;
}

/// The health endpoint's state: the checks, in report order.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    checks: Arc<[Arc<dyn HealthCheck>]>,
    clock: SharedClock,
}

impl Health {
    /// Runs `checks` on each request; `clock` dates the report.
    pub(crate) fn new(checks: Vec<Arc<dyn HealthCheck>>, clock: SharedClock) -> Self {
        Self {
            checks: checks.into(),
            clock,
        }
    }

    /// Runs every check.
    pub(crate) async fn report(&self) -> HealthReport {
        let results = futures_util::future::join_all(self.checks.iter().map(|c| c.check())).await;
        let named = self
            .checks
            .iter()
            .zip(results)
            .map(|(check, result)| (check.name().to_owned(), result));
        HealthReport::new(self.clock.now(), named)
    }
}

/// The health routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Health: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(liveness))
}

/// Readiness: whether this replica can do its main job.
#[utoipa::path(
    get,
    path = "/HealthCheck",
    tag = "operations",
    responses(
        (status = 200, description = "Healthy or Degraded: the replica can serve. `{\"status\", \"checked_at\", \"checks\": {name: {\"status\", …details}}}`", body = Object),
        (status = 503, description = "Unhealthy: the replica cannot serve", body = Object),
    ),
)]
async fn health(State(health): State<Health>) -> Response {
    let report = health.report().await;
    let mut response = (report.http_status(), Json(report)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Liveness: the process serves HTTP. Runs no check, so a dependency outage never makes an
/// orchestrator restart a replica that is fine.
#[utoipa::path(
    get,
    path = "/HealthCheck/live",
    tag = "operations",
    responses((status = 200, description = "`{\"status\":\"Healthy\"}`", body = Object)),
)]
async fn liveness() -> Response {
    let mut response = Json(Liveness::ALIVE).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
