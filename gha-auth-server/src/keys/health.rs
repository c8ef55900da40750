//! The signing keys' `/HealthCheck` component.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;
use gha_auth::SharedClock;
use serde_json::json;

use super::KeyManager;
use crate::health::{ComponentHealth, HealthCheck, HealthStatus};

/// The signing keys' `/HealthCheck` component.
#[derive(Debug)]
pub(crate) struct SigningKeysCheck {
    /// The key manager.
    pub(crate) keys: Arc<KeyManager>,
    /// The injected clock.
    pub(crate) clock: SharedClock,
    /// How often the scheduler syncs (`keys.refresh_interval`).
    pub(crate) refresh_interval: TimeDelta,
    /// Where the keys live, for the report.
    pub(crate) key_store: String,
}

#[async_trait]
impl HealthCheck for SigningKeysCheck {
    fn name(&self) -> &'static str {
        "signing_keys"
    }

    async fn check(&self) -> ComponentHealth {
        signing_keys(self)
    }
}

fn signing_keys(state: &SigningKeysCheck) -> ComponentHealth {
    let now = state.clock.now();
    let snapshot = state.keys.snapshot();
    let schedule = state.keys.schedule();
    let sync = state.keys.sync_health();
    let Some(active) = snapshot.signing_key(now) else {
        return ComponentHealth::new(HealthStatus::Unhealthy)
            .with_details(json!({"error": "no active signing key"}));
    };
    let ring = snapshot.ring();
    let next_rotation = ring.next_rotation_at(now, schedule);
    let refresh = state.refresh_interval;
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
    ComponentHealth::new(status).with_details(json!({
        "active_kid": active.kid(),
        "published_keys": ring.jwks(now).keys.len(),
        "next_rotation_at": next_rotation,
        "last_sync": sync.last_success,
        "last_error": sync.last_error,
        "key_store": state.key_store,
    }))
}
