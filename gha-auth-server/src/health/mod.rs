//! `GET /HealthCheck`: JSON with per-component checks.
//!
//! Status is `Healthy`, `Degraded` (still serving, something needs attention) or `Unhealthy`
//! (cannot serve); HTTP 200 for the first two, 503 for the last. Each feature that has
//! something to report implements [`HealthCheck`]; the composition root hands the list to
//! [`Health`]. This module knows no feature.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use gha_auth::SharedClock;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How healthy a component (or the whole service) is. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub(crate) enum HealthStatus {
    /// Working.
    Healthy,
    /// Working, but something needs attention.
    Degraded,
    /// Not working.
    Unhealthy,
}

/// One component's result.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub(crate) struct ComponentHealth {
    /// Its status.
    pub(crate) status: HealthStatus,
    /// Details (never secrets).
    #[serde(flatten)]
    pub(crate) details: Map<String, Value>,
}

impl ComponentHealth {
    /// A component with `status` and the members of `details` (an object) beside it.
    pub(crate) fn new(status: HealthStatus, details: Value) -> Self {
        let details = match details {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self { status, details }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[non_exhaustive]
pub(crate) struct HealthReport {
    /// The worst component status.
    #[schema(value_type = String, example = "Healthy")]
    pub(crate) status: HealthStatus,
    /// When it was taken.
    #[schema(value_type = String)]
    pub(crate) checked_at: DateTime<Utc>,
    /// Per component: `status` plus details.
    #[schema(value_type = Object)]
    pub(crate) checks: Map<String, Value>,
}

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
        let status = results
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Healthy);
        let checks = self
            .checks
            .iter()
            .zip(results)
            .map(|(check, result)| {
                (
                    check.name().to_owned(),
                    serde_json::to_value(result).unwrap_or(Value::Null),
                )
            })
            .collect();
        HealthReport {
            status,
            checked_at: self.clock.now(),
            checks,
        }
    }
}

/// The health route.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Health: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(health))
}

/// The handler.
#[utoipa::path(
    get,
    path = "/HealthCheck",
    tag = "operations",
    responses(
        (status = 200, description = "Healthy or Degraded: the replica can serve", body = HealthReport),
        (status = 503, description = "Unhealthy: the replica cannot serve", body = HealthReport),
    ),
)]
pub(crate) async fn health(State(health): State<Health>) -> Response {
    let report = health.report().await;
    let status = match report.status {
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut response = (status, Json(report)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
