//! `[rate_limit]`: abuse limits on the token, introspection and session endpoints.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// Abuse limits on the token endpoint. A rate of 0 disables that limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Whether any limit applies (off only for benchmarks and tests).
    pub enabled: bool,
    /// Sustained token requests per second from one source address.
    pub per_source_per_second: u32,
    /// Requests one source address may send at once above the sustained rate.
    pub per_source_burst: u32,
    /// Sustained token requests per second by one authenticated client.
    pub per_client_per_second: u32,
    /// Requests one client may send at once above the sustained rate.
    pub per_client_burst: u32,
    /// Consecutive failed authentications of one client from one source before it backs off.
    pub failures_before_backoff: u32,
    /// Failed authentications from one source (any client) before the source backs off.
    pub source_failures_before_backoff: u32,
    /// First backoff; doubles with every further failure.
    pub backoff_base: Duration,
    /// Longest backoff; failures older than this are forgotten.
    pub backoff_max: Duration,
    /// Most sources/clients tracked at once (bounded memory).
    pub max_tracked: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_source_per_second: 100,
            per_source_burst: 200,
            per_client_per_second: 20,
            per_client_burst: 40,
            failures_before_backoff: 5,
            source_failures_before_backoff: 20,
            backoff_base: Duration::seconds(1),
            backoff_max: Duration::minutes(5),
            max_tracked: 100_000,
        }
    }
}

impl RateLimitConfig {
    /// Reports what is wrong with `[rate_limit]`.
    pub fn check(&self, out: &mut Problems) {
        if self.backoff_base <= Duration::seconds(0) {
            out.push("rate_limit.backoff_base", "must be greater than zero");
        }
        if self.backoff_max < self.backoff_base {
            out.push(
                "rate_limit.backoff_max",
                "must be at least rate_limit.backoff_base",
            );
        }
        if self.backoff_max > Duration::hours(24) {
            out.push("rate_limit.backoff_max", "must be at most 24h");
        }
        if self.failures_before_backoff == 0 || self.source_failures_before_backoff == 0 {
            out.push(
                "rate_limit.failures_before_backoff",
                "failures_before_backoff and source_failures_before_backoff must be at least 1",
            );
        }
        if self.max_tracked < 1000 {
            out.push("rate_limit.max_tracked", "must be at least 1000");
        }
    }
}
