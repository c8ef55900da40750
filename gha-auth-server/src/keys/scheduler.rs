//! The rotation scheduler: one task per process that keeps the key ring moving on the injected
//! clock.
//!
//! It syncs at start (running any rotation missed while the service was down), then sleeps until
//! the ring's next event or the refresh interval, whichever comes first, and syncs again. The
//! refresh interval picks up changes made elsewhere (another replica, `gha-auth keys rotate`);
//! the configuration guarantees it is shorter than `publish_ahead`, so every replica publishes a
//! new key before it signs.

use std::future::Future;
use std::sync::Arc;

use chrono::TimeDelta;
use gha_auth::SharedClock;

use super::KeyManager;

/// After a failed sync, try again this soon (still capped by the refresh interval).
const RETRY_AFTER_ERROR: TimeDelta = TimeDelta::seconds(5);

/// Runs until `shutdown` completes.
pub(crate) async fn run_scheduler(
    manager: Arc<KeyManager>,
    clock: SharedClock,
    refresh_interval: TimeDelta,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let failed = match manager.sync().await {
            Ok(report) => {
                if report.generated.is_some() || !report.transitions.is_empty() {
                    tracing::info!(
                        generated = ?report.generated.as_ref().map(|(kid, _)| kid),
                        transitions = report.transitions.len(),
                        "signing keys advanced"
                    );
                }
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "key rotation sync failed; will retry");
                true
            }
        };
        let now = clock.now();
        let mut wake = now
            + if failed {
                RETRY_AFTER_ERROR.min(refresh_interval)
            } else {
                refresh_interval
            };
        if let Some(event) = manager.next_event() {
            wake = wake.min(event);
        }
        if wake <= now {
            // Time moved past an event while syncing: sync again at once, after a breath so a
            // pathological state cannot spin.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::select! {
            () = clock.sleep_until(wake) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::debug!("rotation scheduler stopped");
}
