//! `/HealthCheck` for any API, in one line.
//!
//! ```no_run
//! # async fn demo(auth: gha_auth_middleware::AuthLayer) {
//! use axum::{Router, routing::get};
//! use gha_auth_middleware::health_check_route;
//!
//! let app: Router = Router::new()
//!     .route("/jobs", get(|| async { "[]" }))
//!     .layer(auth.clone())
//!     .merge(health_check_route(auth.health())); // unauthenticated, outside the layer
//! # }
//! ```
//!
//! The answer is JSON: `{"status":"healthy|degraded|unhealthy","checks":{"<name>":{"status":…,
//! …details}}}`, with 200 for healthy or degraded and 503 for unhealthy. The auth layer brings
//! its own checks (key-set freshness and each link-key source); add the service's own (database,
//! queue) with [`Health::with_check`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use serde::Serialize;

/// The path the route is served on.
pub const HEALTH_CHECK_PATH: &str = "/HealthCheck";

/// How well a component (or the whole service) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Working, but on borrowed time (e.g. serving stale keys while the authority is down).
    Degraded,
    /// Not working: requests that need it fail.
    Unhealthy,
}

/// One component's state, with details for the JSON answer.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    /// The component's status.
    pub status: HealthStatus,
    /// Details shown next to the status (ages, counts, the last error).
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ComponentHealth {
    /// A component with `status` and no details.
    pub fn new(status: HealthStatus) -> Self {
        Self {
            status,
            details: serde_json::Map::new(),
        }
    }

    /// Adds a detail.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// A check the health route runs on each request.
pub trait HealthCheck: Send + Sync + 'static {
    /// The component's current state. Keep it quick: it runs on every `/HealthCheck` call.
    fn check(&self) -> BoxFuture<'_, ComponentHealth>;
}

impl<F> HealthCheck for F
where
    F: Fn() -> ComponentHealth + Send + Sync + 'static,
{
    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        let health = self();
        Box::pin(async move { health })
    }
}

/// The set of checks behind `/HealthCheck`. Cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(String, Arc<dyn HealthCheck>)>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(name, _)| name))
            .finish()
    }
}

/// The JSON answer.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The worst component status.
    pub status: HealthStatus,
    /// Each component by name.
    pub checks: BTreeMap<String, ComponentHealth>,
}

impl Health {
    /// No checks: always healthy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check (a later check with the same name replaces the earlier one).
    pub fn with_check(mut self, name: impl Into<String>, check: impl HealthCheck) -> Self {
        let name = name.into();
        self.checks.retain(|(existing, _)| *existing != name);
        self.checks.push((name, Arc::new(check)));
        self
    }

    /// Runs every check.
    pub async fn report(&self) -> HealthReport {
        let mut checks = BTreeMap::new();
        for (name, check) in &self.checks {
            checks.insert(name.clone(), check.check().await);
        }
        let status = checks
            .values()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Healthy);
        HealthReport { status, checks }
    }
}

impl IntoResponse for HealthReport {
    fn into_response(self) -> Response {
        let status = match self.status {
            HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
            HealthStatus::Healthy | HealthStatus::Degraded => StatusCode::OK,
        };
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        response
    }
}

/// A router serving `GET /HealthCheck` from `health`; merge it into any axum `Router`.
pub fn health_check_route<S>(health: Health) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(
        HEALTH_CHECK_PATH,
        get(move || {
            let health = health.clone();
            async move { health.report().await }
        }),
    )
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    async fn get_health(health: Health) -> (StatusCode, serde_json::Value) {
        let app: Router = health_check_route(health);
        let response = app
            .oneshot(
                http::Request::get(HEALTH_CHECK_PATH)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn worst_component_wins() {
        let (status, body) = get_health(Health::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");

        let health = Health::new()
            .with_check("db", || ComponentHealth::new(HealthStatus::Healthy))
            .with_check("jwks", || {
                ComponentHealth::new(HealthStatus::Degraded).with("age_seconds", 400)
            });
        let (status, body) = get_health(health.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["checks"]["jwks"]["age_seconds"], 400);
        assert_eq!(body["checks"]["db"]["status"], "healthy");

        let health = health.with_check("queue", || ComponentHealth::new(HealthStatus::Unhealthy));
        let (status, body) = get_health(health).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unhealthy");
    }
}
