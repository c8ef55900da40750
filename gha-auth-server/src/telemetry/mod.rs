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
