//! The alert webhook: a JSON POST to `[alerts] webhook_url` when a rotation step fails and when
//! a rotation that had failed completes. No secrets in it: names, ids, steps and error messages
//! (which never carry a key). Sent in the background with a timeout and a few retries, so a slow
//! alert receiver never holds up a rotation.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gha_auth::outbound::HttpClientBuilder;
use serde::Serialize;

/// What an alert says.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// `link_key.rotation_failed` or `link_key.rotation_recovered`.
    pub event: &'static str,
    /// The link key.
    pub name: String,
    /// The rotation.
    pub rotation_id: String,
    /// The step that failed (or the last one, on recovery).
    pub step: String,
    /// Failures of this rotation so far.
    pub failures: u32,
    /// What went wrong (no secrets).
    pub error: Option<String>,
    /// When the next attempt is due.
    pub next_attempt: Option<DateTime<Utc>>,
    /// The target (no secrets).
    pub target: String,
    /// The replica that saw it.
    pub node: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// An alert body the webhook can post: JSON, with an event and a name for the log.
pub(crate) trait AlertBody: Serialize {
    /// The event, e.g. `link_key.rotation_failed`.
    fn event(&self) -> &str;
    /// What it is about (a link key, a monitored target).
    fn name(&self) -> &str;
}

impl AlertBody for Alert {
    fn event(&self) -> &str {
        self.event
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Posts alerts to a webhook.
#[derive(Debug, Clone)]
pub struct AlertWebhook {
    url: url::Url,
    client: reqwest::Client,
    attempts: u32,
}

impl AlertWebhook {
    /// A webhook at `url`; each POST times out after `timeout`; `attempts` tries in all.
    pub fn new(url: url::Url, timeout: Duration, attempts: u32) -> Result<Self, String> {
        let client = HttpClientBuilder::new("gha-auth-alerts")
            .timeout(timeout)
            .build()
            .map_err(|e| format!("alert webhook client: {e}"))?;
        Ok(Self {
            url,
            client,
            attempts: attempts.max(1),
        })
    }

    /// Sends `alert` in the background (needs a Tokio runtime).
    pub fn send(&self, alert: Alert) {
        let this = self.clone();
        tokio::spawn(async move {
            let delivered = this.deliver(&alert).await;
            let result = if delivered { "delivered" } else { "failed" };
            metrics::counter!(ALERTS_METRIC, "result" => result).increment(1);
        });
    }

    /// Sends `alert` now, retrying; `true` once the receiver answered 2xx.
    pub(crate) async fn deliver(&self, alert: &impl AlertBody) -> bool {
        for attempt in 1..=self.attempts {
            match self.client.post(self.url.clone()).json(alert).send().await {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => tracing::warn!(status = %response.status(), attempt,
                    "alert webhook refused the alert"),
                Err(e) => tracing::warn!(error = %e.without_url(), attempt,
                    "alert webhook unreachable"),
            }
            if attempt < self.attempts {
                // Transport-level retry pacing, not rotation time: real time on purpose.
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
        }
        tracing::error!(name = %alert.name(), event = alert.event(), "alert could not be delivered");
        false
    }
}

/// Series: alerts posted to the webhook, by result.
const ALERTS_METRIC: &str = "gha_auth_link_key_alerts_total";

/// HELP text of the alerts' series.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        ALERTS_METRIC,
        "Rotation alerts posted to the webhook, by result"
    );
}
