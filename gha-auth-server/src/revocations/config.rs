//! `[revocations]`: the revocation feed verifiers poll.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// The revocation feed verifiers poll.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RevocationsConfig {
    /// How often verifiers should poll the feed: its `Cache-Control: max-age`. A revoked token
    /// is refused everywhere within about this long.
    pub poll_interval: Duration,
    /// How long one signed feed document stays acceptable (`exp - iat`): bounds the replay of
    /// an old document.
    pub document_lifetime: Duration,
}

impl Default for RevocationsConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::seconds(30),
            document_lifetime: Duration::hours(1),
        }
    }
}

impl RevocationsConfig {
    /// Reports what is wrong with `[revocations]`.
    pub fn check(&self, out: &mut Problems) {
        if self.poll_interval < Duration::seconds(1) || self.poll_interval > Duration::hours(1) {
            out.push(
                "revocations.poll_interval",
                "must be between 1s and 1h: it is how long a revoked token may still be accepted",
            );
        }
        if self.document_lifetime < self.poll_interval.max(Duration::minutes(1))
            || self.document_lifetime > Duration::hours(24)
        {
            out.push(
                "revocations.document_lifetime",
                "must be at least revocations.poll_interval and 1m, and at most 24h",
            );
        }
    }
}
