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
//! Two routes, for two kinds of probe:
//!
//! - **Readiness**, `GET /HealthCheck`: runs every check and answers the report the authority
//!   answers too (`gha_auth::health`): `{"status":"Healthy|Degraded|Unhealthy","checked_at":…,
//!   "checks":{"<name>":{"status":…, …details}}}`, with 200 for `Healthy` or `Degraded` and 503
//!   for `Unhealthy`. Point load balancers and Kubernetes readiness probes here: a replica that
//!   cannot verify tokens (no usable key set) is taken out of rotation, one riding out an
//!   authority outage on cached keys (`Degraded`) stays in.
//! - **Liveness**, `GET /HealthCheck/live`: answers 200 `{"status":"Healthy"}` without running
//!   any check. Point Kubernetes liveness probes here: restarting a process does not bring back
//!   a dependency that is down, so a dependency outage must never fail liveness.
//!
//! The auth layer brings its own checks (key-set freshness, the revocation feed, each link-key
//! source); add the service's own (database, queue) with [`Health::with_check`].

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
pub use gha_auth::health::{
    ComponentHealth, HEALTH_CHECK_PATH, HealthReport, HealthStatus, LIVENESS_PATH, Liveness,
};
use gha_auth::{SharedClock, SystemClock};

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
#[derive(Clone)]
pub struct Health {
    checks: Vec<(String, Arc<dyn HealthCheck>)>,
    clock: SharedClock,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            checks: Vec::new(),
            clock: SystemClock::shared(),
        }
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(name, _)| name))
            .finish()
    }
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

    /// Takes `checked_at` from `clock` (default: the system clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs every check.
    pub async fn report(&self) -> HealthReport {
        let mut checks = Vec::with_capacity(self.checks.len());
        for (name, check) in &self.checks {
            checks.push((name.clone(), check.check().await));
        }
        HealthReport::new(self.clock.now(), checks)
    }
}

/// The report with its HTTP status (200, or 503 when unhealthy), never cached.
fn respond(report: &HealthReport) -> Response {
    let mut response = (report.http_status(), axum::Json(report)).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// A router serving `GET /HealthCheck` (readiness: every check of `health`) and
/// `GET /HealthCheck/live` (liveness: no check); merge it into any axum `Router`, outside the
/// auth layer. See the [module docs](self).
pub fn health_check_route<S>(health: Health) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            HEALTH_CHECK_PATH,
            get(move || {
                let health = health.clone();
                async move { respond(&health.report().await) }
            }),
        )
        .route(LIVENESS_PATH, get(|| async { axum::Json(Liveness::ALIVE) }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::StatusCode;
    use gha_auth::ManualClock;
    use tower::ServiceExt;

    use super::*;

    async fn get_json(health: Health, path: &str) -> (StatusCode, serde_json::Value) {
        let app: Router = health_check_route(health);
        let response = app
            .oneshot(
                http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn worst_component_wins() {
        let (status, body) = get_json(Health::new(), HEALTH_CHECK_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "Healthy");

        let health = Health::new()
            .with_check("db", || ComponentHealth::new(HealthStatus::Healthy))
            .with_check("jwks", || {
                ComponentHealth::new(HealthStatus::Degraded).with("age_seconds", 400)
            });
        let (status, body) = get_json(health.clone(), HEALTH_CHECK_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "Degraded");
        assert_eq!(body["checks"]["jwks"]["age_seconds"], 400);
        assert_eq!(body["checks"]["db"]["status"], "Healthy");

        let health = health.with_check("queue", || ComponentHealth::new(HealthStatus::Unhealthy));
        let (status, body) = get_json(health, HEALTH_CHECK_PATH).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "Unhealthy");
    }

    #[tokio::test]
    async fn statuses_are_spelled_as_the_authority_spells_them() {
        for (status, word) in [
            (HealthStatus::Healthy, "Healthy"),
            (HealthStatus::Degraded, "Degraded"),
            (HealthStatus::Unhealthy, "Unhealthy"),
        ] {
            let health = Health::new().with_check("c", move || ComponentHealth::new(status));
            let (_, body) = get_json(health, HEALTH_CHECK_PATH).await;
            assert_eq!(body["status"], word);
            assert_eq!(body["checks"]["c"]["status"], word);
        }
    }

    #[tokio::test]
    async fn checked_at_comes_from_the_clock() {
        let clock = ManualClock::at_unix(1_735_732_800);
        let health = Health::new().with_clock(clock.shared());
        let (_, body) = get_json(health.clone(), HEALTH_CHECK_PATH).await;
        assert_eq!(body["checked_at"], "2025-01-01T12:00:00Z");
        clock.advance(chrono::TimeDelta::seconds(90));
        let (_, body) = get_json(health, HEALTH_CHECK_PATH).await;
        assert_eq!(body["checked_at"], "2025-01-01T12:01:30Z");
    }

    #[tokio::test]
    async fn liveness_runs_no_check_and_stays_up_when_a_dependency_is_down() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let health = Health::new().with_check("db", move || {
            counter.fetch_add(1, Ordering::Relaxed);
            ComponentHealth::new(HealthStatus::Unhealthy)
        });
        let (status, body) = get_json(health.clone(), LIVENESS_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"status": "Healthy"}));
        assert_eq!(runs.load(Ordering::Relaxed), 0);
        // Readiness does run it, and says so.
        let (status, _) = get_json(health, HEALTH_CHECK_PATH).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    }
}
