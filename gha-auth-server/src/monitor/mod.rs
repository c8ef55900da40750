//! The health board: polls the `/HealthCheck` of the APIs in `[[monitor.targets]]`, keeps each
//! target's state (up, degraded, down) and a bounded history of results, alerts the `[alerts]`
//! webhook when a state changes, and shows it all at `/admin/v1/monitor` and in `/metrics`.
//!
//! - **One poller.** Every replica runs the loop, but only the holder of the lease in
//!   `monitor_lease` polls; it renews the lease at half its life, and another replica takes it
//!   over once it expired ([`machine::decide_lease`], applied by compare-and-set). Each target's
//!   next check time is in the store, so a takeover keeps the schedule.
//! - **No flapping.** A state changes only after `failures_before_alert` equal failed (or
//!   degraded) results in a row, and back to up after `successes_before_recovery` successes
//!   ([`machine::step`]).
//! - **Alerted once.** The state is written by compare-and-set on its version; only the writer
//!   that wins records the result and posts the change.
//! - **Bounded.** Results older than `retention`, or beyond `max_results_per_target`, are pruned.

pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod machine;
mod poll;
pub(crate) mod store;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::SharedClock;
use gha_auth::outbound::{HttpClientBuilder, redact};
use serde::Serialize;

use crate::linkkeys::alert::{AlertBody, AlertWebhook};
use crate::store::{Store, StoreError};
pub(crate) use config::MonitorConfig;
use machine::{Debounce, LeaseDecision, TargetState};
use store::{ResultRow, StateRow};

/// Series: each target's state, one-hot.
const STATE_METRIC: &str = "gha_auth_monitor_target_state";
/// Series: each target's last check latency.
const LATENCY_METRIC: &str = "gha_auth_monitor_target_latency_seconds";
/// Series: checks this replica ran, by target and outcome.
const CHECKS_METRIC: &str = "gha_auth_monitor_checks_total";
/// Series: state-change alerts posted, by result.
const ALERTS_METRIC: &str = "gha_auth_monitor_alerts_total";

/// HELP text of the health board's series.
pub(crate) fn describe_metrics() {
    metrics::describe_gauge!(
        STATE_METRIC,
        "Health board: 1 for each monitored target's current state (unknown, up, degraded, down)"
    );
    metrics::describe_gauge!(
        LATENCY_METRIC,
        metrics::Unit::Seconds,
        "Health board: latency of each monitored target's last health check"
    );
    metrics::describe_counter!(
        CHECKS_METRIC,
        "Health board: health checks this replica ran, by target and outcome"
    );
    metrics::describe_counter!(
        ALERTS_METRIC,
        "Health board: state-change alerts posted to the webhook, by result"
    );
}

/// The health board's state: the targets, the store, the alert webhook and what this replica
/// last read of each target (for `/metrics`).
pub(crate) struct Monitor {
    config: MonitorConfig,
    targets: Vec<Target>,
    store: Store,
    clock: SharedClock,
    /// This replica's name in the lease.
    node: String,
    client: reqwest::Client,
    alerts: Option<AlertWebhook>,
    board: Mutex<Vec<StateRow>>,
    last_prune: Mutex<i64>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("targets", &self.targets.len())
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A configured target, its URL checked.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    url: url::Url,
    interval: TimeDelta,
    timeout: std::time::Duration,
}

/// The health board could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// A target or the HTTP client is unusable (the configuration check reports it first).
    #[error("monitor: {0}")]
    Setup(String),
}

/// A state-change alert (no secrets: the URL is shown without credentials or query).
#[derive(Debug, Clone, Serialize)]
struct ChangeAlert {
    /// `monitor.target_down`, `monitor.target_degraded` or `monitor.target_recovered`.
    event: &'static str,
    name: String,
    url: String,
    from: TargetState,
    to: TargetState,
    /// Equal results in a row that made the change.
    consecutive: u32,
    /// The last failure's reason (none on recovery).
    error: Option<String>,
    node: String,
    at: DateTime<Utc>,
}

impl AlertBody for ChangeAlert {
    fn event(&self) -> &str {
        self.event
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A name for this process's board, unique among the replicas (and among several servers in one
/// test process): a counter and random bytes, added to the node name in the lease.
pub(crate) fn instance_id() -> String {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut bytes = [0u8; 4];
    // Zeros if the system has no randomness: the counter alone still tells servers apart.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    format!("{n}-{}", hex::encode(bytes))
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

impl Monitor {
    /// The health board of `config`; `alerts` gets state changes.
    pub(crate) fn new(
        config: MonitorConfig,
        alerts: Option<AlertWebhook>,
        store: Store,
        clock: SharedClock,
        node: String,
    ) -> Result<Self, MonitorError> {
        let mut targets = Vec::new();
        for target in &config.targets {
            let url = target.parsed_url().map_err(MonitorError::Setup)?;
            targets.push(Target {
                name: target.name.clone(),
                url,
                interval: target.interval.as_delta(),
                timeout: target.timeout.as_std(),
            });
        }
        let longest = targets.iter().map(|t| t.timeout).max().unwrap_or_default();
        let client = HttpClientBuilder::new("gha-auth-monitor")
            .timeout(longest.max(std::time::Duration::from_secs(1)))
            .build()
            .map_err(|e| MonitorError::Setup(e.to_string()))?;
        Ok(Self {
            config,
            targets,
            store,
            clock,
            node,
            client,
            alerts,
            board: Mutex::new(Vec::new()),
            last_prune: Mutex::new(i64::MIN),
        })
    }

    /// Whether any target is configured (else the loop does not run).
    pub(crate) fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// How often the loop looks: the shortest interval, at most a third of the lease.
    fn period(&self) -> TimeDelta {
        let third = self.config.lease_ttl.as_delta() / 3;
        self.targets
            .iter()
            .map(|t| t.interval)
            .min()
            .unwrap_or(third)
            .min(third)
            .max(TimeDelta::seconds(1))
    }

    /// Runs until `shutdown`: takes or renews the lease, polls what is due when holding it, and
    /// reads the board for `/metrics` every period.
    pub(crate) async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "health board: store unavailable");
            }
            tokio::select! {
                () = self.clock.sleep(self.period()) => {}
                () = &mut shutdown => break,
            }
        }
    }

    /// One turn of the loop.
    pub(crate) async fn tick(&self) -> Result<(), StoreError> {
        if self.holds_lease().await? {
            self.poll_due().await?;
            self.prune_if_due().await?;
        }
        let states = store::states(&self.store).await?;
        if let Ok(mut board) = self.board.lock() {
            *board = states;
        }
        Ok(())
    }

    /// Takes, renews or keeps the lease; `true` when this replica polls now.
    async fn holds_lease(&self) -> Result<bool, StoreError> {
        let now = millis(self.clock.now());
        let ttl = self.config.lease_ttl.as_delta().num_milliseconds();
        let lease = store::read_lease(&self.store).await?;
        let decision = machine::decide_lease(lease.as_ref(), &self.node, now, ttl);
        let expires = now.saturating_add(ttl);
        let won = match (decision, &lease) {
            (LeaseDecision::Acquire, _) => {
                store::insert_lease(&self.store, &self.node, expires).await?
            }
            (LeaseDecision::Renew | LeaseDecision::TakeOver, Some(lease)) => {
                store::update_lease(&self.store, &self.node, expires, lease.version).await?
            }
            (LeaseDecision::Hold, _) => true,
            _ => false,
        };
        if won && matches!(decision, LeaseDecision::Acquire | LeaseDecision::TakeOver) {
            tracing::info!(node = %self.node, "health board: this replica polls now");
        }
        Ok(won && decision.polls())
    }

    /// Checks every target that is due, at once, and records each result.
    async fn poll_due(&self) -> Result<(), StoreError> {
        let now = millis(self.clock.now());
        let stored: BTreeMap<String, StateRow> = store::states(&self.store)
            .await?
            .into_iter()
            .map(|row| (row.target.clone(), row))
            .collect();
        let due: Vec<(&Target, Option<&StateRow>)> = self
            .targets
            .iter()
            .map(|t| (t, stored.get(&t.name)))
            .filter(|(_, row)| row.is_none_or(|r| r.next_due <= now))
            .collect();
        let checks = due.iter().map(|(target, _)| self.check(target));
        let results = futures_util::future::join_all(checks).await;
        for ((target, row), result) in due.into_iter().zip(results) {
            self.record(target, row, result).await?;
        }
        Ok(())
    }

    /// One health check of `target`.
    async fn check(&self, target: &Target) -> ResultRow {
        let started = std::time::Instant::now();
        let (outcome, reason) = poll::check(&self.client, &target.url, target.timeout).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        metrics::counter!(CHECKS_METRIC, "target" => target.name.clone(), "outcome" => outcome.as_str())
            .increment(1);
        ResultRow {
            checked_at: millis(self.clock.now()),
            outcome,
            latency_ms,
            reason,
        }
    }

    /// Writes the new state by compare-and-set; the winner records the result and alerts.
    async fn record(
        &self,
        target: &Target,
        row: Option<&StateRow>,
        result: ResultRow,
    ) -> Result<(), StoreError> {
        let current = row.map_or(Debounce::NEW, |r| r.debounce);
        let step = machine::step(
            current,
            result.outcome,
            self.config.failures_before_alert,
            self.config.successes_before_recovery,
        );
        let failed = result.outcome != TargetState::Up;
        let next_due = result
            .checked_at
            .saturating_add(target.interval.num_milliseconds());
        let new = StateRow {
            target: target.name.clone(),
            debounce: step.next,
            changed_at: if step.next.state == current.state {
                row.map_or(result.checked_at, |r| r.changed_at)
            } else {
                result.checked_at
            },
            checked_at: result.checked_at,
            next_due,
            latency_ms: result.latency_ms,
            last_failure_at: if failed {
                Some(result.checked_at)
            } else {
                row.and_then(|r| r.last_failure_at)
            },
            last_failure_reason: if failed {
                result.reason.clone()
            } else {
                row.and_then(|r| r.last_failure_reason.clone())
            },
            version: row.map_or(1, |r| r.version.saturating_add(1)),
        };
        if !store::save_state(&self.store, &new).await? {
            tracing::debug!(target = %target.name, "health board: another replica recorded this check");
            return Ok(());
        }
        store::insert_result(&self.store, &target.name, &result).await?;
        if let Some((from, to)) = step.change {
            self.alert(target, from, to, step.next.streak, new.last_failure_reason);
        }
        Ok(())
    }

    fn alert(
        &self,
        target: &Target,
        from: TargetState,
        to: TargetState,
        consecutive: u32,
        error: Option<String>,
    ) {
        let event = match to {
            TargetState::Down => "monitor.target_down",
            TargetState::Degraded => "monitor.target_degraded",
            TargetState::Up | TargetState::Unknown => "monitor.target_recovered",
        };
        tracing::warn!(target = %target.name, from = from.as_str(), to = to.as_str(), "health board: state changed");
        let Some(webhook) = self.alerts.clone() else {
            return;
        };
        let alert = ChangeAlert {
            event,
            name: target.name.clone(),
            url: redact(&target.url),
            from,
            to,
            consecutive,
            error: (to != TargetState::Up).then_some(error).flatten(),
            node: self.node.clone(),
            at: self.clock.now(),
        };
        tokio::spawn(async move {
            let result = if webhook.deliver(&alert).await {
                "delivered"
            } else {
                "failed"
            };
            metrics::counter!(ALERTS_METRIC, "result" => result).increment(1);
        });
    }

    /// Prunes old results at most once a minute.
    async fn prune_if_due(&self) -> Result<(), StoreError> {
        let now = millis(self.clock.now());
        {
            let Ok(mut last) = self.last_prune.lock() else {
                return Ok(());
            };
            if now.saturating_sub(*last) < 60_000 {
                return Ok(());
            }
            *last = now;
        }
        let before = now.saturating_sub(self.config.retention.as_delta().num_milliseconds());
        let names: Vec<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        let removed = store::prune(
            &self.store,
            &names,
            before,
            self.config.max_results_per_target,
        )
        .await?;
        if removed > 0 {
            tracing::debug!(removed, "health board: old results pruned");
        }
        Ok(())
    }

    /// Sets the gauges from what this replica last read (a [`crate::metrics::Collector`]).
    pub(crate) fn update_gauges(&self) {
        let Ok(board) = self.board.lock() else {
            return;
        };
        for target in &self.targets {
            let row = board.iter().find(|r| r.target == target.name);
            let state = row.map_or(TargetState::Unknown, |r| r.debounce.state);
            for candidate in TargetState::ALL {
                metrics::gauge!(STATE_METRIC, "target" => target.name.clone(), "state" => candidate.as_str())
                    .set(if candidate == state { 1.0 } else { 0.0 });
            }
            if let Some(row) = row {
                #[allow(clippy::cast_precision_loss, reason = "milliseconds to seconds")]
                let seconds = row.latency_ms as f64 / 1000.0;
                metrics::gauge!(LATENCY_METRIC, "target" => target.name.clone()).set(seconds);
            }
        }
    }
}

#[cfg(test)]
mod tests;
