//! `[monitor]` and its `[[monitor.targets]]`: which APIs' `/HealthCheck` the health board polls,
//! how often, and how results are kept and alerted.

use std::collections::BTreeSet;

use gha_auth::outbound::UrlPolicy;
use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// The health board: targets and how their results are judged and kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// The APIs polled. None by default (nothing is polled).
    pub targets: Vec<MonitorTarget>,
    /// Equal failed (or degraded) results in a row before the state changes and is alerted.
    pub failures_before_alert: u32,
    /// Successful results in a row before a target that was down or degraded is up again.
    pub successes_before_recovery: u32,
    /// Results older than this are pruned.
    pub retention: Duration,
    /// Most results kept per target (the oldest are pruned first).
    pub max_results_per_target: u32,
    /// How long the replica that polls holds its lease without renewing it; another replica
    /// takes over once it has expired.
    pub lease_ttl: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            failures_before_alert: 3,
            successes_before_recovery: 1,
            retention: Duration::days(7),
            max_results_per_target: 20_000,
            lease_ttl: Duration::seconds(30),
        }
    }
}

/// One API whose `/HealthCheck` is polled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MonitorTarget {
    /// Shown on the board, in metrics labels and alerts: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// The URL polled, e.g. `https://jobs.internal/HealthCheck` (the outbound-URL policy:
    /// https, or http to loopback; no credentials, query or fragment).
    pub url: String,
    /// Time between two checks.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Time allowed for one check; slower is a failure.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

fn default_interval() -> Duration {
    Duration::seconds(30)
}

fn default_timeout() -> Duration {
    Duration::seconds(5)
}

impl MonitorTarget {
    /// A target polled every 30 s with a 5 s timeout.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            interval: default_interval(),
            timeout: default_timeout(),
        }
    }

    /// Sets the interval and timeout.
    #[must_use]
    pub fn every(mut self, interval: Duration, timeout: Duration) -> Self {
        self.interval = interval;
        self.timeout = timeout;
        self
    }

    /// The URL, parsed and checked by the outbound-URL policy.
    pub(crate) fn parsed_url(&self) -> Result<url::Url, String> {
        UrlPolicy::new().check(&self.url).map_err(|e| e.to_string())
    }
}

/// Whether `name` is usable as a target name (and a metrics label value, a URL segment).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl MonitorConfig {
    /// Reports what is wrong with `[monitor]`.
    pub fn check(&self, out: &mut Problems) {
        let mut names = BTreeSet::new();
        for (i, target) in self.targets.iter().enumerate() {
            let key = |field: &str| format!("monitor.targets[{i}].{field}");
            if !is_valid_name(&target.name) {
                out.push(
                    key("name"),
                    "must be 1 to 64 letters, digits, '-', '_' or '.'",
                );
            } else if !names.insert(target.name.as_str()) {
                out.push(
                    key("name"),
                    format!("{:?} is used by another target", target.name),
                );
            }
            if let Err(message) = target.parsed_url() {
                out.push(key("url"), message);
            }
            if target.interval < Duration::seconds(1) {
                out.push(key("interval"), "must be at least 1s");
            }
            if target.timeout < Duration::seconds(1) || target.timeout > target.interval {
                out.push(
                    key("timeout"),
                    "must be at least 1s and at most the interval",
                );
            }
        }
        if self.failures_before_alert == 0 {
            out.push("monitor.failures_before_alert", "must be at least 1");
        }
        if self.successes_before_recovery == 0 {
            out.push("monitor.successes_before_recovery", "must be at least 1");
        }
        if self.retention < Duration::hours(1) {
            out.push("monitor.retention", "must be at least 1h");
        }
        if self.max_results_per_target < 10 {
            out.push("monitor.max_results_per_target", "must be at least 10");
        }
        if self.lease_ttl < Duration::seconds(3) || self.lease_ttl > Duration::minutes(10) {
            out.push("monitor.lease_ttl", "must be between 3s and 10m");
        } else if let Some(longest) = self.targets.iter().map(|t| t.timeout).max()
            && longest.as_secs().saturating_mul(3) > self.lease_ttl.as_secs()
        {
            // A check must end well within the lease, or another replica could take over and
            // check the same target while it runs.
            out.push(
                "monitor.lease_ttl",
                "must be at least three times the longest target timeout",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &MonitorConfig) -> Vec<String> {
        let mut out = Problems::default();
        config.check(&mut out);
        out.into_vec().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defaults_and_a_good_target_have_no_problem() {
        let mut config = MonitorConfig::default();
        assert!(problems(&config).is_empty());
        config.targets.push(MonitorTarget::new(
            "jobs",
            "https://jobs.example/HealthCheck",
        ));
        config.targets.push(
            MonitorTarget::new("local", "http://127.0.0.1:8080/HealthCheck")
                .every(Duration::seconds(1), Duration::seconds(1)),
        );
        assert!(problems(&config).is_empty(), "{:?}", problems(&config));
    }

    #[test]
    fn bad_targets_and_limits_are_reported_by_key() {
        let mut config = MonitorConfig {
            failures_before_alert: 0,
            successes_before_recovery: 0,
            retention: Duration::minutes(5),
            max_results_per_target: 1,
            lease_ttl: Duration::seconds(1),
            ..MonitorConfig::default()
        };
        config.targets = vec![
            MonitorTarget::new("jobs", "http://jobs.example/HealthCheck"),
            MonitorTarget::new("jobs", "https://u:pw@jobs.example/HealthCheck"),
            MonitorTarget::new("bad name", "https://jobs.example/HealthCheck?x=1")
                .every(Duration::seconds(0), Duration::seconds(5)),
        ];
        let found = problems(&config);
        for key in [
            "monitor.targets[0].url",
            "monitor.targets[1].name",
            "monitor.targets[1].url",
            "monitor.targets[2].name",
            "monitor.targets[2].url",
            "monitor.targets[2].interval",
            "monitor.targets[2].timeout",
            "monitor.failures_before_alert",
            "monitor.successes_before_recovery",
            "monitor.retention",
            "monitor.max_results_per_target",
            "monitor.lease_ttl",
        ] {
            assert!(found.iter().any(|k| k == key), "{key} missing: {found:?}");
        }
    }

    #[test]
    fn targets_parse_from_toml_tables() {
        let config: MonitorConfig = toml::from_str(
            "failures_before_alert = 2\n[[targets]]\nname = \"jobs\"\n\
             url = \"https://jobs.example/HealthCheck\"\ninterval = \"10s\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(config.failures_before_alert, 2);
        assert_eq!(
            config.targets,
            vec![
                MonitorTarget::new("jobs", "https://jobs.example/HealthCheck")
                    .every(Duration::seconds(10), Duration::seconds(2))
            ]
        );
    }
}
