//! Structured logging: JSON lines (default) or text, filtered by `log.level` (or `RUST_LOG`).
pub(crate) mod config;

use tracing_subscriber::EnvFilter;

pub(crate) use config::LogFormat;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum LogTarget {
    /// Standard output: the server.
    Stdout,
    /// Standard error: admin commands, whose standard output is their result.
    Stderr,
}

/// Installs the global subscriber. A second call (tests) is a no-op.
pub(crate) fn init_logging(format: LogFormat, level: &str, target: LogTarget) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let result = match (format, target) {
        (LogFormat::Text, LogTarget::Stdout) => builder.try_init(),
        (LogFormat::Text, _) => builder.with_writer(std::io::stderr).try_init(),
        (_, LogTarget::Stdout) => builder.json().flatten_event(true).try_init(),
        (_, _) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // Already installed (e.g. by a test harness): keep that one.
    drop(result);
}

/// The span of one HTTP request: method, path and version, never the query string (a client may
/// wrongly put a credential there, e.g. `?client_secret=…`; it must not reach the log).
pub(crate) fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        version = ?request.version(),
    )
}

#[cfg(test)]
mod request_span_tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn finding_10_the_request_span_never_holds_the_query_string() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let request = axum::http::Request::post(
                "/oauth2/token?client_id=svc&client_secret=ghac_LeakedInTheQuery",
            )
            .body(())
            .unwrap();
            let span = request_span(&request);
            let _entered = span.enter();
            tracing::debug!("token request refused");
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("/oauth2/token"), "{log}");
        assert!(!log.contains("LeakedInTheQuery"), "{log}");
        assert!(!log.contains("client_secret"), "{log}");
    }
}
