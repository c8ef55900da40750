//! When to renew, when to give up renewing, and how long to back off: the pure decisions of the
//! Vault identity loop, the lease loops and the consumer's refresh loops, kept apart so they can
//! be tested as tables.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Timing of the renewal loops (token and leases).
///
/// The defaults follow Vault Agent: renew at about 2/3 of the TTL, back off exponentially from
/// 1 s to 5 min on failures.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RenewalPolicy {
    /// Fraction of the TTL after which to renew (default 2/3).
    pub renew_fraction: f64,
    /// Relative jitter applied to the renewal delay, both ways (default 0.1 = ±10 %).
    pub jitter: f64,
    /// Shortest delay between two scheduled renewals (default 1 s), so a token whose TTL is
    /// collapsing cannot make the loop spin. Never more than half the TTL.
    pub min_interval: Duration,
    /// First backoff after a failure (default 1 s).
    pub min_backoff: Duration,
    /// Cap of the exponential backoff (default 5 min). The loops never stop retrying.
    pub max_backoff: Duration,
    /// How often a token without expiry (TTL 0, e.g. a root token) is checked (default 5 min).
    pub idle_check_interval: Duration,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            renew_fraction: 2.0 / 3.0,
            jitter: 0.1,
            min_interval: Duration::from_secs(1),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            idle_check_interval: Duration::from_secs(300),
        }
    }
}

impl RenewalPolicy {
    /// Sets the backoff bounds.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// Sets the shortest delay between scheduled renewals.
    pub fn with_min_interval(mut self, min_interval: Duration) -> Self {
        self.min_interval = min_interval;
        self
    }

    /// Sets the renewal fraction and jitter (clamped to sane ranges).
    pub fn with_fraction(mut self, renew_fraction: f64, jitter: f64) -> Self {
        self.renew_fraction = renew_fraction;
        self.jitter = jitter;
        self
    }

    fn fraction(&self) -> f64 {
        if self.renew_fraction.is_finite() {
            self.renew_fraction.clamp(0.1, 0.9)
        } else {
            2.0 / 3.0
        }
    }

    fn jitter(&self) -> f64 {
        if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 0.5)
        } else {
            0.1
        }
    }
}

/// Delay from now until the next renewal of something with `ttl` left.
///
/// `unit` is a random number in `[0, 1)`: the delay is `ttl × fraction × (1 ± jitter)`, never
/// below `min(min_interval, ttl / 2)` and never above 90 % of the TTL.
pub fn renew_delay(ttl: Duration, policy: &RenewalPolicy, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let base = ttl.as_secs_f64() * policy.fraction();
    let spread = base * policy.jitter();
    let delay = base - spread + 2.0 * spread * unit;
    let lower = policy.min_interval.min(ttl / 2).as_secs_f64();
    let upper = ttl.as_secs_f64() * 0.9;
    Duration::from_secs_f64(delay.max(lower).min(upper.max(lower)))
}

/// Backoff before retry number `attempt` (1 for the first retry): `min_backoff × 2^(attempt-1)`,
/// capped at `max_backoff`, minus up to 20 % of jitter (`unit` in `[0, 1)`).
pub fn backoff_delay(attempt: u32, policy: &RenewalPolicy, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let exponent = attempt.saturating_sub(1).min(30);
    let min = policy.min_backoff.as_secs_f64();
    let max = policy.max_backoff.as_secs_f64().max(min);
    let raw = (min * f64::from(1u32 << exponent)).min(max);
    Duration::from_secs_f64(raw * (1.0 - 0.2 * unit))
}

/// What to do after a renewal succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewalDecision {
    /// The TTL grew as asked: keep renewing.
    Continue,
    /// Vault granted less than asked: the max TTL is near. Replace the credential now (log in
    /// again, or issue new credentials), while the old one is still valid.
    MaxTtlReached,
    /// The expiry did not move forward: renewing is pointless. Replace the credential now.
    NotGrowing,
}

/// Decides whether renewing still works: `requested` is the increment asked for, `granted` the
/// lease duration Vault returned, `previous_expiry` and `new_expiry` the expiry before and after.
pub fn renewal_decision(
    requested: Duration,
    granted: Duration,
    previous_expiry: DateTime<Utc>,
    new_expiry: DateTime<Utc>,
) -> RenewalDecision {
    if granted < requested {
        RenewalDecision::MaxTtlReached
    } else if new_expiry <= previous_expiry {
        RenewalDecision::NotGrowing
    } else {
        RenewalDecision::Continue
    }
}

/// `instant + duration`, saturating.
pub(crate) fn add(instant: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| instant.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Time left until `deadline` (zero when past).
pub(crate) fn remaining(now: DateTime<Utc>, deadline: DateTime<Utc>) -> Duration {
    (deadline - now).to_std().unwrap_or_default()
}

/// A uniform random number in `[0, 1)` for jitter (0.5 if the system RNG fails).
pub(crate) fn random_unit() -> f64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits → [0, 1).
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn renew_delay_is_two_thirds_with_bounded_jitter() {
        let policy = RenewalPolicy::default();
        // (ttl, unit, expected seconds)
        let table = [
            (3600.0, 0.5, 2400.0),
            (3600.0, 0.0, 2160.0), // 2/3 − 10 %
            (3600.0, 1.0, 2640.0), // 2/3 + 10 %
            (30.0, 0.5, 20.0),
            (2.0, 0.5, 4.0 / 3.0),
            (2.0, 0.0, 1.2),
            (1.2, 0.0, 0.72),
            (0.5, 0.0, 0.3),
        ];
        for (ttl, unit, expected) in table {
            let got = renew_delay(secs(ttl), &policy, unit).as_secs_f64();
            assert!(
                (got - expected).abs() < 1e-6,
                "ttl {ttl} unit {unit}: {got} != {expected}"
            );
        }
    }

    #[test]
    fn renew_delay_stays_in_bounds_for_any_jitter() {
        let policy = RenewalPolicy::default();
        for ttl in [0.2, 1.0, 2.0, 6.0, 60.0, 86_400.0 * 32.0] {
            for step in 0..=100 {
                let unit = f64::from(step) / 100.0;
                let delay = renew_delay(secs(ttl), &policy, unit).as_secs_f64();
                // 2/3 ± 10 %: between 60 % and 73.3 % of the TTL.
                assert!(delay <= ttl * 0.7334, "ttl {ttl}: {delay} too late");
                assert!(delay >= ttl * 0.6 - 1e-9, "ttl {ttl}: {delay} too early");
            }
        }
    }

    #[test]
    fn renew_delay_survives_silly_policies() {
        let policy = RenewalPolicy::default().with_fraction(f64::NAN, 7.0);
        let delay = renew_delay(secs(30.0), &policy, 0.5);
        assert_eq!(delay, secs(20.0));
        let policy = RenewalPolicy::default().with_fraction(1.5, 0.0);
        assert_eq!(renew_delay(secs(10.0), &policy, 0.5), secs(9.0));
        assert_eq!(
            renew_delay(Duration::ZERO, &RenewalPolicy::default(), 0.5),
            Duration::ZERO
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RenewalPolicy::default()
            .with_backoff(Duration::from_millis(500), Duration::from_secs(10));
        // (attempt, unit, expected seconds)
        let table = [
            (0, 0.0, 0.5),
            (1, 0.0, 0.5),
            (2, 0.0, 1.0),
            (3, 0.0, 2.0),
            (4, 0.0, 4.0),
            (5, 0.0, 8.0),
            (6, 0.0, 10.0),
            (60, 0.0, 10.0),
            (u32::MAX, 0.0, 10.0),
            (1, 1.0, 0.4), // jitter takes at most 20 %
            (6, 1.0, 8.0),
        ];
        for (attempt, unit, expected) in table {
            let got = backoff_delay(attempt, &policy, unit).as_secs_f64();
            assert!(
                (got - expected).abs() < 1e-9,
                "attempt {attempt}: {got} != {expected}"
            );
        }
    }

    #[test]
    fn decides_when_the_ttl_stops_growing() {
        let t = |s: i64| DateTime::from_timestamp(1_000 + s, 0).unwrap();
        let d = Duration::from_secs;
        // (requested, granted, previous expiry, new expiry, decision)
        let table = [
            (d(2), d(2), t(2), t(3), RenewalDecision::Continue),
            (
                d(3600),
                d(3600),
                t(3600),
                t(6000),
                RenewalDecision::Continue,
            ),
            (d(2), d(1), t(2), t(3), RenewalDecision::MaxTtlReached),
            (d(2), d(0), t(2), t(2), RenewalDecision::MaxTtlReached),
            (d(3), d(2), t(5), t(8), RenewalDecision::MaxTtlReached),
            (d(0), d(0), t(2), t(2), RenewalDecision::NotGrowing),
            (d(2), d(2), t(5), t(5), RenewalDecision::NotGrowing),
            (d(2), d(5), t(5), t(4), RenewalDecision::NotGrowing),
        ];
        for (requested, granted, previous, new, expected) in table {
            assert_eq!(
                renewal_decision(requested, granted, previous, new),
                expected,
                "requested {requested:?} granted {granted:?}"
            );
        }
    }

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..1000 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit));
        }
    }

    #[test]
    fn time_helpers_saturate() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(add(now, Duration::from_secs(5)).timestamp(), 1_005);
        assert_eq!(add(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(remaining(now, now - TimeDelta::seconds(3)), Duration::ZERO);
        assert_eq!(
            remaining(now, now + TimeDelta::seconds(3)),
            Duration::from_secs(3)
        );
    }
}
