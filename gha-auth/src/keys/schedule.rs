//! How often keys rotate and how long each stays published: the timing invariants that keep
//! every verifier able to check every valid token through a rotation.

use chrono::TimeDelta;

/// The longest clock leeway any verifier may use.
pub const MAX_LEEWAY: TimeDelta = TimeDelta::seconds(300);

/// The project's verifier (`gha-auth-middleware`'s `RemoteJwks`) never refreshes the key set more
/// often than this by default, whatever `Cache-Control` says. The middleware's defaults are these
/// constants, so a key schedule checked against them is one it can follow.
pub const VERIFIER_MIN_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// The verifier refreshes the key set at least this often by default, whatever `Cache-Control`
/// says.
pub const VERIFIER_MAX_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// The verifier refetches the key set for a token with an unknown `kid` at most once per this
/// long by default.
pub const VERIFIER_UNKNOWN_KID_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(30);

/// The longest the project's verifier (with its default bounds) may take to see a key published
/// in a JWKS served with `Cache-Control: max-age=jwks_max_age`: its refresh interval (the
/// `max-age` held within [`VERIFIER_MIN_REFRESH_INTERVAL`] and
/// [`VERIFIER_MAX_REFRESH_INTERVAL`]) plus the wait between refetches for an unknown `kid`
/// ([`VERIFIER_UNKNOWN_KID_COOLDOWN`]).
pub fn verifier_key_lag(jwks_max_age: TimeDelta) -> TimeDelta {
    let min = TimeDelta::from_std(VERIFIER_MIN_REFRESH_INTERVAL).unwrap_or(TimeDelta::MAX);
    let max = TimeDelta::from_std(VERIFIER_MAX_REFRESH_INTERVAL).unwrap_or(TimeDelta::MAX);
    let cooldown = TimeDelta::from_std(VERIFIER_UNKNOWN_KID_COOLDOWN).unwrap_or(TimeDelta::MAX);
    jwks_max_age.clamp(min, max) + cooldown
}

/// Rotation timing for signing keys.
///
/// A key is published `publish_ahead` before it signs, so every verifier whose cached JWKS is at
/// most `jwks_max_age` old already has it; a retired key stays published `retain_retired`, long
/// enough for every token it signed to expire (plus leeway) and for caches to turn over.
/// Check with [`KeySchedule::validate`] at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchedule {
    /// How long a key stays active before its successor takes over (default 30 days).
    pub rotation_period: TimeDelta,
    /// How long a new key is published before it signs (default 1 hour).
    pub publish_ahead: TimeDelta,
    /// The longest lifetime of any token signed by the authority (default 10 minutes).
    pub max_token_lifetime: TimeDelta,
    /// Clock leeway verifiers allow on `exp`/`nbf`/`iat` (default 60 s, at most 300 s).
    pub leeway: TimeDelta,
    /// How long verifiers may cache the JWKS: the `Cache-Control: max-age` served (default 15 min).
    pub jwks_max_age: TimeDelta,
    /// How long a retired key stays published (default 30 minutes).
    pub retain_retired: TimeDelta,
}

impl Default for KeySchedule {
    fn default() -> Self {
        Self {
            rotation_period: TimeDelta::days(30),
            publish_ahead: TimeDelta::hours(1),
            max_token_lifetime: TimeDelta::minutes(10),
            leeway: TimeDelta::seconds(60),
            jwks_max_age: TimeDelta::minutes(15),
            retain_retired: TimeDelta::minutes(30),
        }
    }
}

/// A key schedule that would let a verifier meet a token whose key it cannot have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A duration that must be positive is zero or negative.
    #[error("{field} must be positive")]
    NotPositive {
        /// The configuration field.
        field: &'static str,
    },
    /// Leeway is negative or above [`MAX_LEEWAY`].
    #[error("leeway is {leeway_secs} s; it must be between 0 and {max_secs} s")]
    LeewayOutOfRange {
        /// The configured leeway.
        leeway_secs: i64,
        /// The largest accepted leeway.
        max_secs: i64,
    },
    /// A new key could sign before a cached JWKS holding it has expired everywhere.
    #[error(
        "publish_ahead ({publish_ahead_secs} s) must be at least jwks_max_age ({jwks_max_age_secs} s): \
         otherwise a verifier's cached key set may lack a key that already signs"
    )]
    PublishAheadShorterThanCache {
        /// The configured publish-ahead time.
        publish_ahead_secs: i64,
        /// The configured JWKS cache lifetime.
        jwks_max_age_secs: i64,
    },
    /// A retired key would leave the JWKS while tokens it signed are still valid.
    #[error(
        "retain_retired ({retain_secs} s) must be at least max_token_lifetime + leeway + \
         jwks_max_age ({required_secs} s): otherwise valid tokens lose their key"
    )]
    RetentionTooShort {
        /// The configured retention.
        retain_secs: i64,
        /// The smallest safe retention.
        required_secs: i64,
    },
    /// The next key would be due before the previous one has activated.
    #[error(
        "rotation_period ({rotation_secs} s) must be longer than publish_ahead ({publish_ahead_secs} s)"
    )]
    RotationShorterThanPublishAhead {
        /// The configured rotation period.
        rotation_secs: i64,
        /// The configured publish-ahead time.
        publish_ahead_secs: i64,
    },
}

impl KeySchedule {
    /// Checks the invariants; call once when configuration is loaded.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        for (field, value) in [
            ("rotation_period", self.rotation_period),
            ("publish_ahead", self.publish_ahead),
            ("max_token_lifetime", self.max_token_lifetime),
            ("jwks_max_age", self.jwks_max_age),
            ("retain_retired", self.retain_retired),
        ] {
            if value <= TimeDelta::zero() {
                return Err(ScheduleError::NotPositive { field });
            }
        }
        if self.leeway < TimeDelta::zero() || self.leeway > MAX_LEEWAY {
            return Err(ScheduleError::LeewayOutOfRange {
                leeway_secs: self.leeway.num_seconds(),
                max_secs: MAX_LEEWAY.num_seconds(),
            });
        }
        if self.publish_ahead < self.jwks_max_age {
            return Err(ScheduleError::PublishAheadShorterThanCache {
                publish_ahead_secs: self.publish_ahead.num_seconds(),
                jwks_max_age_secs: self.jwks_max_age.num_seconds(),
            });
        }
        let required = self.max_token_lifetime + self.leeway + self.jwks_max_age;
        if self.retain_retired < required {
            return Err(ScheduleError::RetentionTooShort {
                retain_secs: self.retain_retired.num_seconds(),
                required_secs: required.num_seconds(),
            });
        }
        if self.rotation_period <= self.publish_ahead {
            return Err(ScheduleError::RotationShorterThanPublishAhead {
                rotation_secs: self.rotation_period.num_seconds(),
                publish_ahead_secs: self.publish_ahead.num_seconds(),
            });
        }
        Ok(())
    }

    /// The `Cache-Control: max-age` (seconds) for the JWKS endpoint.
    ///
    /// It does not depend on the moment: every key is published at least `publish_ahead` before
    /// it signs, so a copy cached for at most `min(jwks_max_age, publish_ahead)` always holds the
    /// key of every token that can be valid while the copy is. Only an emergency rotation breaks
    /// caches, by design.
    pub fn cache_control_max_age(&self) -> u64 {
        let seconds = self.jwks_max_age.min(self.publish_ahead).num_seconds();
        u64::try_from(seconds).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let schedule = KeySchedule::default();
        assert_eq!(schedule.validate(), Ok(()));
        assert_eq!(schedule.cache_control_max_age(), 900);
    }

    #[test]
    fn rejects_bad_configurations() {
        let ok = KeySchedule::default();
        let cases = [
            (
                KeySchedule {
                    publish_ahead: TimeDelta::minutes(5),
                    ..ok
                },
                ScheduleError::PublishAheadShorterThanCache {
                    publish_ahead_secs: 300,
                    jwks_max_age_secs: 900,
                },
            ),
            (
                KeySchedule {
                    retain_retired: TimeDelta::minutes(20),
                    ..ok
                },
                ScheduleError::RetentionTooShort {
                    retain_secs: 1200,
                    required_secs: 1560,
                },
            ),
            (
                KeySchedule {
                    max_token_lifetime: TimeDelta::hours(1),
                    ..ok
                },
                ScheduleError::RetentionTooShort {
                    retain_secs: 1800,
                    required_secs: 4560,
                },
            ),
            (
                KeySchedule {
                    leeway: TimeDelta::seconds(301),
                    ..ok
                },
                ScheduleError::LeewayOutOfRange {
                    leeway_secs: 301,
                    max_secs: 300,
                },
            ),
            (
                KeySchedule {
                    leeway: TimeDelta::seconds(-1),
                    ..ok
                },
                ScheduleError::LeewayOutOfRange {
                    leeway_secs: -1,
                    max_secs: 300,
                },
            ),
            (
                KeySchedule {
                    rotation_period: TimeDelta::zero(),
                    ..ok
                },
                ScheduleError::NotPositive {
                    field: "rotation_period",
                },
            ),
            (
                KeySchedule {
                    rotation_period: TimeDelta::minutes(30),
                    ..ok
                },
                ScheduleError::RotationShorterThanPublishAhead {
                    rotation_secs: 1800,
                    publish_ahead_secs: 3600,
                },
            ),
        ];
        for (schedule, expected) in cases {
            assert_eq!(schedule.validate(), Err(expected.clone()), "{expected}");
        }
        // The boundary itself is fine: leeway exactly 300 s with enough retention.
        let edge = KeySchedule {
            leeway: MAX_LEEWAY,
            retain_retired: TimeDelta::minutes(30),
            ..ok
        };
        assert_eq!(edge.validate(), Ok(()));
    }
}
