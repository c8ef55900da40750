//! The store's `/HealthCheck` component: a round trip, bounded in time.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;

use super::Store;
use crate::health::{ComponentHealth, HealthCheck, HealthStatus};

#[async_trait]
impl HealthCheck for Store {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> ComponentHealth {
        check(self).await
    }
}

async fn check(store: &Store) -> ComponentHealth {
    let started = Instant::now();
    let result = tokio::time::timeout(std::time::Duration::from_secs(2), store.ping()).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let backend = store.backend().name();
    match result {
        Ok(Ok(())) => ComponentHealth::new(HealthStatus::Healthy)
            .with_details(json!({"backend": backend, "duration_ms": millis})),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: store ping failed");
            ComponentHealth::new(HealthStatus::Unhealthy)
                .with_details(json!({"backend": backend, "error": "store unreachable"}))
        }
        Err(_) => ComponentHealth::new(HealthStatus::Unhealthy)
            .with_details(json!({"backend": backend, "error": "store timed out"})),
    }
}
