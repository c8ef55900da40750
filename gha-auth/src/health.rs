//! The `/HealthCheck` wire format, one for the authority and every API behind the middleware.
//!
//! ```json
//! {"status":"Degraded","checked_at":"2025-01-01T12:00:00Z",
//!  "checks":{"jwks":{"status":"Degraded","age_seconds":400},"db":{"status":"Healthy"}}}
//! ```
//!
//! - Statuses are spelled `Healthy`, `Degraded` and `Unhealthy`, as .NET health checks spell
//!   them (what the customer's load balancers already read).
//! - The report's status is the worst of its components' ([`HealthStatus::worst`]).
//! - The HTTP status is 200 for `Healthy` and `Degraded`, 503 for `Unhealthy`
//!   ([`HealthStatus::http_status`]): a replica riding out a dependency outage stays in the
//!   balancer; only one that cannot do its job is taken out.
//!
//! This is the readiness answer. A liveness probe asks [`LIVENESS_PATH`] instead, which answers
//! [`Liveness::ALIVE`] without running any check: a dependency outage must never make the
//! orchestrator restart a process that is fine.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The path of the health report (readiness).
pub const HEALTH_CHECK_PATH: &str = "/HealthCheck";

/// The path of the liveness answer: 200 whenever the process serves HTTP.
pub const LIVENESS_PATH: &str = "/HealthCheck/live";

/// How well a component (or the whole service) is doing. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Working, on borrowed time or with something needing attention (stale keys while the
    /// authority is down, Vault down with keys in memory).
    Degraded,
    /// Not working: requests that need it fail.
    Unhealthy,
}

impl HealthStatus {
    /// The worst of `statuses`; `Healthy` when there are none.
    pub fn worst(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        statuses.into_iter().max().unwrap_or(HealthStatus::Healthy)
    }

    /// The HTTP status a report with this status is served with: 200, or 503 for `Unhealthy`.
    pub fn http_status(self) -> http::StatusCode {
        match self {
            HealthStatus::Healthy | HealthStatus::Degraded => http::StatusCode::OK,
            HealthStatus::Unhealthy => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Unhealthy => "Unhealthy",
        }
    }
}

/// One component's state, with details shown beside its status (ages, counts, the last error;
/// never a secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ComponentHealth {
    /// The component's status.
    pub status: HealthStatus,
    /// Details, flattened next to `status` in the JSON.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl ComponentHealth {
    /// A component with `status` and no details.
    pub fn new(status: HealthStatus) -> Self {
        Self {
            status,
            details: Map::new(),
        }
    }

    /// Adds one detail (a `status` key is ignored: the status is the field).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if key != "status" {
            self.details.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Adds every entry of a JSON object as a detail (anything but an object adds nothing).
    #[must_use]
    pub fn with_details(self, details: Value) -> Self {
        let Value::Object(map) = details else {
            return self;
        };
        map.into_iter()
            .fold(self, |health, (key, value)| health.with(&key, value))
    }
}

/// The answer of `/HealthCheck`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The worst component status.
    pub status: HealthStatus,
    /// When the checks ran (RFC 3339).
    pub checked_at: DateTime<Utc>,
    /// Each component by name.
    pub checks: BTreeMap<String, ComponentHealth>,
}

impl HealthReport {
    /// The report of `checks` taken at `checked_at`; its status is the worst of theirs.
    pub fn new(
        checked_at: DateTime<Utc>,
        checks: impl IntoIterator<Item = (String, ComponentHealth)>,
    ) -> Self {
        let checks: BTreeMap<String, ComponentHealth> = checks.into_iter().collect();
        Self {
            status: HealthStatus::worst(checks.values().map(|c| c.status)),
            checked_at,
            checks,
        }
    }

    /// The HTTP status to serve it with.
    pub fn http_status(&self) -> http::StatusCode {
        self.status.http_status()
    }
}

/// The answer of [`LIVENESS_PATH`]: `{"status":"Healthy"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Liveness {
    /// Always `Healthy`: a process that can answer is alive.
    pub status: HealthStatus,
}

impl Liveness {
    /// The one liveness answer.
    pub const ALIVE: Liveness = Liveness {
        status: HealthStatus::Healthy,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn statuses_are_spelled_as_dotnet_spells_them() {
        let cases = [
            (HealthStatus::Healthy, "\"Healthy\""),
            (HealthStatus::Degraded, "\"Degraded\""),
            (HealthStatus::Unhealthy, "\"Unhealthy\""),
        ];
        for (status, json) in cases {
            assert_eq!(serde_json::to_string(&status).unwrap(), json);
            assert_eq!(serde_json::from_str::<HealthStatus>(json).unwrap(), status);
            assert_eq!(format!("\"{}\"", status.as_str()), json);
        }
        assert!(serde_json::from_str::<HealthStatus>("\"healthy\"").is_err());
    }

    #[test]
    fn the_worst_component_wins_and_decides_the_http_status() {
        use HealthStatus::{Degraded, Healthy, Unhealthy};
        let cases: &[(&[HealthStatus], HealthStatus, u16)] = &[
            (&[], Healthy, 200),
            (&[Healthy], Healthy, 200),
            (&[Healthy, Degraded], Degraded, 200),
            (&[Degraded, Healthy, Degraded], Degraded, 200),
            (&[Healthy, Unhealthy, Degraded], Unhealthy, 503),
            (&[Unhealthy], Unhealthy, 503),
        ];
        for (statuses, worst, http) in cases {
            let report = HealthReport::new(
                at(0),
                statuses
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("c{i}"), ComponentHealth::new(*s))),
            );
            assert_eq!(report.status, *worst, "{statuses:?}");
            assert_eq!(report.http_status().as_u16(), *http, "{statuses:?}");
        }
    }

    #[test]
    fn the_report_serializes_with_flattened_details_and_an_rfc3339_time() {
        let report = HealthReport::new(
            at(1_735_732_800),
            [
                (
                    "jwks".to_owned(),
                    ComponentHealth::new(HealthStatus::Degraded).with("age_seconds", 400),
                ),
                (
                    "store".to_owned(),
                    ComponentHealth::new(HealthStatus::Healthy).with_details(
                        serde_json::json!({"backend": "sqlite", "status": "ignored"}),
                    ),
                ),
            ],
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "Degraded",
                "checked_at": "2025-01-01T12:00:00Z",
                "checks": {
                    "jwks": {"status": "Degraded", "age_seconds": 400},
                    "store": {"status": "Healthy", "backend": "sqlite"},
                },
            })
        );
        let back: HealthReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn liveness_is_healthy_without_checks() {
        assert_eq!(
            serde_json::to_string(&Liveness::ALIVE).unwrap(),
            r#"{"status":"Healthy"}"#
        );
    }
}
