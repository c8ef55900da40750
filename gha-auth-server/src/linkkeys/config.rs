//! `[link_keys.<name>]` (one table per integration whose static key the authority rotates) and
//! `[alerts]` (where rotation failures are reported).
//!
//! # The invariants checked here, and why
//!
//! Validators fetch the digest list at most every `max_age` (the `Cache-Control` this server
//! sends) and, when the authority is unreachable, keep using their last list for up to their
//! `max_stale` (`validator_max_stale` here; the middleware's default is 1 h). So:
//!
//! - **`publish_ahead ≥ max_age + validator_max_stale`**: the new key is served as PENDING that
//!   long before the target is told to send it. When the target switches, every validator
//!   either has a list with the new key or has no usable list at all (and refuses every link key
//!   anyway): a rotation never causes a rejection by itself.
//! - **`overlap ≥ max_age`**: every validator that refreshes on schedule sees PREVIOUS with its
//!   expiry before it expires, so the old key ends on each validator's own clock, not on its next
//!   fetch, and a retired key is refused everywhere within `max_age`.
//! - **`quiet_period ≤ overlap`**, and **`rotation_period > publish_ahead + overlap`**: a
//!   scheduled rotation never starts while the previous overlap runs, so at most two keys are
//!   live (a requested rotation may cut an overlap short; that is what it is for).
//! - `quiet_period` should be several usage-report intervals of the validators (default 60 s):
//!   a key in use is reported at least that often, so "quiet" means unused.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Policy;
use gha_auth::outbound::UrlPolicy;

use crate::settings::{Duration, Problems};
use crate::targets::TargetConfig;

/// One rotated link key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LinkKeyConfig {
    /// How long a key is CURRENT before the next rotation starts.
    #[serde(default = "default_rotation_period")]
    pub rotation_period: Duration,
    /// How long PREVIOUS stays valid after a promotion.
    #[serde(default = "default_overlap")]
    pub overlap: Duration,
    /// How long PREVIOUS must go unused (once the new key is in use) to be retired early.
    #[serde(default = "default_quiet_period")]
    pub quiet_period: Duration,
    /// `Cache-Control: max-age` of `GET /v1/link-keys/{name}`.
    #[serde(default = "default_max_age")]
    pub max_age: Duration,
    /// How long validators keep using a list they cannot refresh (their `max_stale`).
    #[serde(default = "default_validator_max_stale")]
    pub validator_max_stale: Duration,
    /// How long PENDING is served before it is installed. Default: `max_age +
    /// validator_max_stale`.
    #[serde(default)]
    pub publish_ahead: Option<Duration>,
    /// Scopes the key grants at validators (documentation for operators; `status` shows them).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The tenant (GHA customer) the integration belongs to. When set, a validator whose token
    /// names another tenant may not read this key's list.
    #[serde(default)]
    pub tenant: Option<String>,
    /// How often every replica looks at the state even when nothing is due.
    #[serde(default = "default_check_interval")]
    pub check_interval: Duration,
    /// First retry delay after a failed step; doubles with each failure.
    #[serde(default = "default_retry_base")]
    pub retry_base: Duration,
    /// Longest retry delay.
    #[serde(default = "default_retry_max")]
    pub retry_max: Duration,
    /// How long a replica's claim on a step keeps others off (longer than any target call).
    #[serde(default = "default_claim_timeout")]
    pub claim_timeout: Duration,
    /// Where the key is installed.
    pub target: TargetConfig,
}

fn default_rotation_period() -> Duration {
    Duration::days(30)
}
fn default_overlap() -> Duration {
    Duration::days(1)
}
fn default_quiet_period() -> Duration {
    Duration::minutes(30)
}
fn default_max_age() -> Duration {
    Duration::seconds(60)
}
fn default_validator_max_stale() -> Duration {
    Duration::hours(1)
}
fn default_check_interval() -> Duration {
    Duration::seconds(30)
}
fn default_retry_base() -> Duration {
    Duration::seconds(30)
}
fn default_retry_max() -> Duration {
    Duration::hours(1)
}
fn default_claim_timeout() -> Duration {
    Duration::minutes(5)
}

impl LinkKeyConfig {
    /// The wait between creating and installing a key.
    pub fn publish_ahead(&self) -> Duration {
        self.publish_ahead.unwrap_or_else(|| {
            Duration::from(self.max_age.as_delta() + self.validator_max_stale.as_delta())
        })
    }

    /// The rotation timings for the state machine.
    pub fn policy(&self) -> Policy {
        Policy {
            rotation_period: self.rotation_period.as_delta(),
            publish_ahead: self.publish_ahead().as_delta(),
            overlap: self.overlap.as_delta(),
            quiet_period: self.quiet_period.as_delta(),
            claim_timeout: self.claim_timeout.as_delta(),
            retry_base: self.retry_base.as_delta(),
            retry_max: self.retry_max.as_delta(),
        }
    }

    /// What is wrong with this table (`name` is its key in `[link_keys]`).
    pub fn problems(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !super::model::is_valid_name(name) {
            out.push(format!(
                "link_keys.{name}: the name must be 1-64 of A-Z a-z 0-9 _ -"
            ));
        }
        let zero = Duration::seconds(0);
        for (key, value) in [
            ("rotation_period", self.rotation_period),
            ("overlap", self.overlap),
            ("quiet_period", self.quiet_period),
            ("max_age", self.max_age),
            ("check_interval", self.check_interval),
            ("retry_base", self.retry_base),
            ("claim_timeout", self.claim_timeout),
        ] {
            if value <= zero {
                out.push(format!("link_keys.{name}.{key}: must be greater than zero"));
            }
        }
        if self.validator_max_stale < zero {
            out.push(format!(
                "link_keys.{name}.validator_max_stale: must not be negative"
            ));
        }
        let publish_ahead = self.publish_ahead();
        let needed = self.max_age.as_delta() + self.validator_max_stale.as_delta();
        if publish_ahead.as_delta() < needed {
            out.push(format!(
                "link_keys.{name}.publish_ahead ({publish_ahead}) must be at least max_age + \
                 validator_max_stale ({}): validators must know a key before the target sends it",
                Duration::from(needed)
            ));
        }
        if self.overlap < self.max_age {
            out.push(format!(
                "link_keys.{name}.overlap ({}) must be at least max_age ({}): every validator must \
                 see the previous key's expiry before it passes",
                self.overlap, self.max_age
            ));
        }
        if self.quiet_period > self.overlap {
            out.push(format!(
                "link_keys.{name}.quiet_period ({}) must not exceed overlap ({})",
                self.quiet_period, self.overlap
            ));
        }
        if self.rotation_period.as_delta() <= publish_ahead.as_delta() + self.overlap.as_delta() {
            out.push(format!(
                "link_keys.{name}.rotation_period ({}) must exceed publish_ahead + overlap ({}): \
                 at most two keys may be live",
                self.rotation_period,
                Duration::from(publish_ahead.as_delta() + self.overlap.as_delta())
            ));
        }
        if let Err(e) = self.target.check_urls() {
            out.push(format!("link_keys.{name}.target: {e}"));
        }
        if self.retry_max < self.retry_base {
            out.push(format!(
                "link_keys.{name}.retry_max must be at least retry_base"
            ));
        }
        out
    }
}

/// `[alerts]`: where failures are reported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AlertsConfig {
    /// JSON POSTs go here (no secrets in them). Unset: failures are logged, audited and shown
    /// in `/HealthCheck` and metrics only.
    pub webhook_url: Option<String>,
    /// Time allowed for one POST.
    pub timeout: Duration,
    /// Attempts per alert, including the first.
    pub attempts: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            timeout: Duration::seconds(5),
            attempts: 3,
        }
    }
}

impl AlertsConfig {
    /// The webhook URL, parsed; `Err` says what is wrong with it.
    pub fn url(&self) -> Result<Option<url::Url>, String> {
        let Some(text) = &self.webhook_url else {
            return Ok(None);
        };
        // A signed webhook may carry its signature in the query; it is never logged whole.
        UrlPolicy::new()
            .allow_query(true)
            .check(text)
            .map(Some)
            .map_err(|e| format!("alerts.webhook_url: {e}"))
    }
}

/// Reports every problem of `[link_keys]` and `[alerts]`.
pub(crate) fn check_sections(
    link_keys: &BTreeMap<String, LinkKeyConfig>,
    alerts: &AlertsConfig,
    out: &mut Problems,
) {
    for (name, config) in link_keys {
        for message in config.problems(name) {
            out.push("link_keys", message);
        }
    }
    if let Err(message) = alerts.url() {
        out.push("alerts.webhook_url", message);
    }
    if alerts.timeout <= Duration::seconds(0) {
        out.push("alerts.timeout", "must be greater than zero");
    }
    if alerts.attempts == 0 {
        out.push("alerts.attempts", "must be at least 1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> LinkKeyConfig {
        let text = format!(
            "{extra}\n[target]\nkind = \"webhook\"\nurl = \"https://hook.example/key\"\nsecret_file = \"/run/s\"\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn defaults_hold_every_invariant() {
        let c = config("");
        assert!(
            c.problems("epicor").is_empty(),
            "{:?}",
            c.problems("epicor")
        );
        assert_eq!(c.publish_ahead(), Duration::seconds(3660));
    }

    #[test]
    fn each_invariant_is_reported() {
        let cases = [
            ("publish_ahead = \"30s\"", "publish_ahead"),
            ("overlap = \"10s\"\nquiet_period = \"5s\"", "overlap"),
            ("quiet_period = \"2d\"", "quiet_period"),
            ("rotation_period = \"1d\"", "rotation_period"),
            ("retry_base = \"2h\"", "retry_max"),
            ("max_age = \"0s\"", "max_age"),
        ];
        for (extra, key) in cases {
            let problems = config(extra).problems("epicor");
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(&format!("link_keys.epicor.{key}"))),
                "{extra}: {problems:?}"
            );
        }
        assert!(!config("").problems("bad name!").is_empty());
    }

    #[test]
    fn a_compressed_schedule_is_valid() {
        let c = config(
            "max_age = \"1s\"\nvalidator_max_stale = \"0s\"\npublish_ahead = \"1s\"\noverlap = \"2s\"\n\
             quiet_period = \"1s\"\nrotation_period = \"5s\"\ncheck_interval = \"1s\"\nretry_base = \"1s\"\nretry_max = \"5s\"",
        );
        assert!(
            c.problems("epicor").is_empty(),
            "{:?}",
            c.problems("epicor")
        );
    }

    #[test]
    fn alert_urls_are_checked() {
        let mut alerts = AlertsConfig::default();
        assert!(alerts.url().unwrap().is_none());
        alerts.webhook_url = Some("ftp://x".into());
        assert!(alerts.url().is_err());
        alerts.webhook_url = Some("https://alerts.example/hook".into());
        assert!(alerts.url().unwrap().is_some());
    }
}
