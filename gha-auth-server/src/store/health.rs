//! The store's `/HealthCheck` component: a round trip, bounded in time.
//!
//! An unreachable store makes the replica `Unhealthy` (503) only once the outage is longer than
//! the window in which clients are still authenticated from the cache (`clients.outage_window`):
//! until then the replica still issues `client_credentials` tokens, and every replica shares the
//! database, so pulling them all from the load balancer would only make things worse.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::SharedClock;
use serde_json::json;

use super::Store;
use crate::health::{ComponentHealth, HealthCheck, HealthStatus};

/// How long the check waits for the store: well under a load balancer's check timeout (often
/// 1 s), so an outage makes the answer `Degraded`, not a timed-out check that pulls the replica.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// The store's health check.
#[derive(Debug)]
pub(crate) struct StoreCheck {
    store: Store,
    clock: SharedClock,
    outage_window: TimeDelta,
    /// When the store last answered.
    last_ok: Mutex<DateTime<Utc>>,
}

impl StoreCheck {
    /// Checks `store`; while it is unreachable, `Degraded` for `outage_window` after it last
    /// answered (the store just opened, so it answered now).
    pub(crate) fn new(store: Store, clock: SharedClock, outage_window: TimeDelta) -> Self {
        let now = clock.now();
        Self {
            store,
            clock,
            outage_window,
            last_ok: Mutex::new(now),
        }
    }
}

#[async_trait]
impl HealthCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> ComponentHealth {
        let started = Instant::now();
        let result = tokio::time::timeout(PING_TIMEOUT, self.store.ping()).await;
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let backend = self.store.backend().name();
        let now = self.clock.now();
        let mut last_ok = self.last_ok.lock().unwrap_or_else(PoisonError::into_inner);
        let error = match result {
            Ok(Ok(())) => {
                *last_ok = now;
                return ComponentHealth::new(HealthStatus::Healthy)
                    .with_details(json!({"backend": backend, "duration_ms": millis}));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health: store ping failed");
                "store unreachable"
            }
            Err(_) => "store timed out",
        };
        let status = outage_status(now - *last_ok, self.outage_window);
        ComponentHealth::new(status).with_details(json!({
            "backend": backend,
            "error": error,
            "last_reachable": *last_ok,
            "cache_window_open": status == HealthStatus::Degraded,
        }))
    }
}

/// While the store is unreachable for `outage`: `Degraded` within the client cache window,
/// `Unhealthy` after it.
fn outage_status(outage: TimeDelta, window: TimeDelta) -> HealthStatus {
    if outage < window {
        HealthStatus::Degraded
    } else {
        HealthStatus::Unhealthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_outage_is_degraded_within_the_cache_window() {
        let window = TimeDelta::minutes(5);
        for (outage, expected) in [
            (TimeDelta::zero(), HealthStatus::Degraded),
            (TimeDelta::minutes(4), HealthStatus::Degraded),
            (TimeDelta::minutes(5), HealthStatus::Unhealthy),
            (TimeDelta::hours(1), HealthStatus::Unhealthy),
        ] {
            assert_eq!(outage_status(outage, window), expected, "{outage}");
        }
        assert_eq!(
            outage_status(TimeDelta::zero(), TimeDelta::zero()),
            HealthStatus::Unhealthy
        );
    }
}
