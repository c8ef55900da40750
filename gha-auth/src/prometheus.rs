//! The Prometheus recorder, installed with its upkeep running.
//!
//! `metrics-exporter-prometheus` keeps every histogram sample in a buffer until upkeep drains it
//! into the summary. Its `install_recorder` leaves upkeep to the caller, and a service whose
//! `/metrics` is never scraped then grows by about 20 bytes per recorded sample, without bound.
//! [`install`] installs the recorder and runs upkeep on a timer of its own, so memory stays flat
//! whether anyone scrapes or not.
//!
//! ```no_run
//! use metrics_exporter_prometheus::PrometheusBuilder;
//!
//! # fn main() -> Result<(), gha_auth::prometheus::InstallError> {
//! let handle = gha_auth::prometheus::install(
//!     PrometheusBuilder::new(),
//!     gha_auth::prometheus::DEFAULT_UPKEEP_INTERVAL,
//! )?;
//! // Serve `handle.render()` on GET /metrics.
//! # let _ = handle; Ok(()) }
//! ```

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often upkeep runs by default (the exporter's own default for its HTTP listener).
pub const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the recorder could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The process already has a global `metrics` recorder (there can be only one).
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
    /// An upkeep interval of zero.
    #[error("the upkeep interval must be positive")]
    ZeroInterval,
    /// The upkeep thread could not start.
    #[error("could not start the metrics upkeep thread: {0}")]
    Upkeep(String),
}

/// Installs `builder`'s recorder as the process's global `metrics` recorder and runs its upkeep
/// every `upkeep_interval` for the rest of the process. Returns the handle to render
/// `/metrics` from.
///
/// Upkeep runs on a thread of its own rather than a Tokio task: the recorder is global and
/// outlives any runtime (tests start one per test), and the thread only wakes to drain buffers.
pub fn install(
    builder: PrometheusBuilder,
    upkeep_interval: Duration,
) -> Result<PrometheusHandle, InstallError> {
    if upkeep_interval.is_zero() {
        return Err(InstallError::ZeroInterval);
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| InstallError::AlreadyInstalled)?;
    let upkeep = handle.clone();
    every(upkeep_interval, move || upkeep.run_upkeep())
        .map_err(|e| InstallError::Upkeep(e.to_string()))?;
    Ok(handle)
}

/// Runs `action` every `interval` on a thread of its own, for the rest of the process.
#[allow(
    clippy::disallowed_methods,
    reason = "a dedicated thread, not a runtime worker: sleeping blocks nothing else"
)]
fn every(interval: Duration, action: impl Fn() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                action();
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_timer_keeps_firing() {
        let fired = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fired);
        every(Duration::from_millis(5), move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while fired.load(Ordering::Relaxed) < 3 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(fired.load(Ordering::Relaxed) >= 3);
    }

    /// The one test that installs the global recorder (a process has one).
    #[test]
    fn install_once_and_render() {
        assert_eq!(
            install(PrometheusBuilder::new(), Duration::ZERO).unwrap_err(),
            InstallError::ZeroInterval
        );
        let handle = install(PrometheusBuilder::new(), Duration::from_millis(5)).unwrap();
        assert_eq!(
            install(PrometheusBuilder::new(), DEFAULT_UPKEEP_INTERVAL).unwrap_err(),
            InstallError::AlreadyInstalled
        );
        metrics::describe_histogram!("test_upkeep_seconds", "a histogram for the test");
        for _ in 0..3 {
            metrics::histogram!("test_upkeep_seconds").record(0.5);
        }
        let text = handle.render();
        assert!(
            text.contains("# HELP test_upkeep_seconds a histogram for the test"),
            "{text}"
        );
        assert!(text.contains("test_upkeep_seconds_count 3"), "{text}");
    }
}
