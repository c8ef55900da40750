//! `GET /HealthCheck`: JSON with per-component checks.
//!
//! Status is `Healthy`, `Degraded` (still serving, something needs attention) or `Unhealthy`
//! (cannot serve); HTTP 200 for the first two, 503 for the last. Components: the store and the
//! signing-key set. Add a component by extending [`check`].

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;

/// Path of the health endpoint.
pub const HEALTH_PATH: &str = "/HealthCheck";

/// How healthy a component (or the whole service) is. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub enum HealthStatus {
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
pub struct ComponentHealth {
    /// Its status.
    pub status: HealthStatus,
    /// Details (never secrets).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl ComponentHealth {
    fn new(status: HealthStatus, details: Value) -> Self {
        let details = match details {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self { status, details }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The worst component status.
    pub status: HealthStatus,
    /// When it was taken.
    pub checked_at: DateTime<Utc>,
    /// Per component.
    pub checks: Map<String, Value>,
}

/// Runs every check.
pub async fn check(state: &AppState) -> HealthReport {
    let mut components: Vec<(&str, ComponentHealth)> = Vec::new();
    components.push(("store", store(state).await));
    components.push(("signing_keys", signing_keys(state)));
    if let Some(session) = &state.vault {
        components.push(("vault", vault(session, state.keys_in_vault())));
    }
    components.push((
        "broker",
        ComponentHealth::new(HealthStatus::Healthy, state.broker.health()),
    ));
    if !state.link_keys.is_empty() {
        let (level, details) = state.link_keys.health(state.clock.now());
        components.push(("link_keys", ComponentHealth::new(level, details)));
    }
    let status = components
        .iter()
        .map(|(_, c)| c.status)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    let checks = components
        .into_iter()
        .map(|(name, c)| {
            (
                name.to_owned(),
                serde_json::to_value(c).unwrap_or(Value::Null),
            )
        })
        .collect();
    HealthReport {
        status,
        checked_at: state.clock.now(),
        checks,
    }
}

/// The Vault identity loop. Unhealthy only when the signing keys depend on it.
fn vault(session: &gha_auth::vault::VaultSession, keys_in_vault: bool) -> ComponentHealth {
    use gha_auth::vault::VaultHealth;
    let status = session.status();
    let level = match status.health {
        VaultHealth::Healthy => HealthStatus::Healthy,
        VaultHealth::Unhealthy | VaultHealth::Stopped if keys_in_vault => HealthStatus::Unhealthy,
        _ => HealthStatus::Degraded,
    };
    ComponentHealth::new(
        level,
        json!({
            "address": session.connection().address(),
            "auth_method": status.method,
            "health": status.health,
            "token_ttl_remaining_seconds": status.token_ttl_remaining.map(|d| d.as_secs()),
            "token_expires_at": status.token_expires_at,
            "logins": status.logins,
            "relogins": status.relogins,
            "renewals": status.renewals,
            "login_failures": status.login_failures,
            "renewal_failures": status.renewal_failures,
            "consecutive_failures": status.consecutive_failures,
            "last_login_at": status.last_login_at,
            "last_error": status.last_error,
            "last_error_at": status.last_error_at,
            "next_step": status.next_step,
            "holds_signing_keys": keys_in_vault,
        }),
    )
}

async fn store(state: &AppState) -> ComponentHealth {
    let started = Instant::now();
    let result = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let backend = state.store.backend().name();
    match result {
        Ok(Ok(())) => ComponentHealth::new(
            HealthStatus::Healthy,
            json!({"backend": backend, "duration_ms": millis}),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: store ping failed");
            ComponentHealth::new(
                HealthStatus::Unhealthy,
                json!({"backend": backend, "error": "store unreachable"}),
            )
        }
        Err(_) => ComponentHealth::new(
            HealthStatus::Unhealthy,
            json!({"backend": backend, "error": "store timed out"}),
        ),
    }
}

fn signing_keys(state: &AppState) -> ComponentHealth {
    let now = state.clock.now();
    let snapshot = state.keys.snapshot();
    let schedule = state.keys.schedule();
    let sync = state.keys.sync_health();
    let Some(active) = snapshot.signing_key(now) else {
        return ComponentHealth::new(
            HealthStatus::Unhealthy,
            json!({"error": "no active signing key"}),
        );
    };
    let ring = snapshot.ring();
    let next_rotation = ring.next_rotation_at(now, schedule);
    let refresh = state.config.keys.refresh_interval.as_delta();
    // Fresh: the next key is published when due (allowing one missed refresh), and the scheduler
    // has synced recently.
    let overdue = ring.needs_new_next(now, schedule)
        && next_rotation.is_some_and(|due| now > due - schedule.publish_ahead + refresh * 2);
    let stale_sync = sync
        .last_success
        .is_none_or(|t| now - t > refresh * 3 + TimeDelta::seconds(5));
    let status = if overdue || sync.last_error.is_some() || stale_sync {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    ComponentHealth::new(
        status,
        json!({
            "active_kid": active.kid(),
            "published_keys": ring.jwks(now).keys.len(),
            "next_rotation_at": next_rotation,
            "last_sync": sync.last_success,
            "last_error": sync.last_error,
            "key_store": state.key_store_description,
        }),
    )
}

/// The handler.
#[utoipa::path(
    get,
    path = "/HealthCheck",
    tag = "operations",
    responses(
        (status = 200, description = "Healthy or Degraded", body = crate::openapi::HealthDoc),
        (status = 503, description = "Unhealthy", body = crate::openapi::HealthDoc),
    ),
)]
pub(crate) async fn health(State(state): State<Arc<AppState>>) -> Response {
    let report = check(&state).await;
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
