//! `[refresh]`: rotating refresh tokens.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// Rotating refresh tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RefreshConfig {
    /// A repeat of the same refresh request within this time of the first gets the same
    /// successor (a response lost on a mobile network); later reuse revokes the family.
    pub grace_window: Duration,
    /// A refresh token expires this long after it was issued unless used (sliding lifetime).
    pub idle_lifetime: Duration,
    /// A family (a login) ends this long after the login, however often it is refreshed.
    pub absolute_lifetime: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            grace_window: Duration::seconds(30),
            idle_lifetime: Duration::days(7),
            absolute_lifetime: Duration::days(30),
        }
    }
}

impl RefreshConfig {
    /// Reports what is wrong with `[refresh]`.
    pub fn check(&self, out: &mut Problems) {
        if self.grace_window < Duration::seconds(0) || self.grace_window > Duration::minutes(5) {
            out.push(
                "refresh.grace_window",
                "must be between 0s and 5m: a longer window lets a stolen token be replayed",
            );
        }
        if self.idle_lifetime <= self.grace_window || self.idle_lifetime > self.absolute_lifetime {
            out.push(
                "refresh.idle_lifetime",
                "must be longer than refresh.grace_window and at most refresh.absolute_lifetime",
            );
        }
        if self.absolute_lifetime > Duration::days(365) {
            out.push("refresh.absolute_lifetime", "must be at most 365d");
        }
    }
}
