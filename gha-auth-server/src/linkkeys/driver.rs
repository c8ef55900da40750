//! The rotation driver: runs the [`machine`] against a [`LinkKeyStore`] and a
//! [`LinkKeyTarget`], on the injected clock.
//!
//! Each tick loads the state, asks [`machine::next_action`] what is due, performs it and persists
//! the result with compare-and-set before looking again. Steps with a side effect (`set`, `test`)
//! are first *claimed* (a CAS write bumping the attempt and pushing `next_attempt` out by the
//! claim timeout), so of several replicas exactly one performs each attempt, and a replica that
//! dies mid-step is replaced once its claim times out. A failure is recorded with a backoff,
//! audited, counted, and sent to the alert webhook; CURRENT is never touched by a failure.
//!
//! [`FaultHook`] lets tests stop the driver at any point of any step, as a crash would.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::SharedClock;
use gha_auth::apikey::{ApiKey, SecretKind};
use thiserror::Error;

use super::alert::{Alert, AlertWebhook};
use super::machine::{self, Action, Attempt, Policy, RetireReason, Stale};
use super::model::{LinkKeyState, RotationReason, Step, StoredKey};
use super::store::{LinkKeyStore, LinkKeyStoreError, VersionedState, update};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::targets::LinkKeyTarget;

/// Where in a step the driver can be stopped by a [`FaultHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultPoint {
    /// A rotation is about to be begun (nothing written yet).
    BeforeBegin,
    /// The rotation's start was saved.
    AfterBegin,
    /// About to take `step` (for `set`/`test`: before the claim).
    Before(Step),
    /// The side effect of `step` is done (installed / read back) but not recorded.
    AfterEffect(Step),
    /// The result of `step` was saved.
    AfterPersist(Step),
}

/// Decides whether the driver stops ("crashes") at a point. Inert by default ([`NoFaults`]).
pub trait FaultHook: Send + Sync + fmt::Debug + 'static {
    /// `true`: stop here, as if the process died.
    fn should_stop(&self, point: FaultPoint) -> bool;
}

/// Never stops.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoFaults;

impl FaultHook for NoFaults {
    fn should_stop(&self, _: FaultPoint) -> bool {
        false
    }
}

/// Stops once, at one point (for crash tests).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct FaultPlan {
    stop_at: Mutex<Option<FaultPoint>>,
}

#[cfg(any(test, feature = "test-util"))]
impl FaultPlan {
    /// Stops the first time `point` is reached.
    pub fn stop_at(point: FaultPoint) -> Self {
        Self {
            stop_at: Mutex::new(Some(point)),
        }
    }

    /// Whether the planned stop already happened.
    pub fn fired(&self) -> bool {
        self.stop_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl FaultHook for FaultPlan {
    fn should_stop(&self, point: FaultPoint) -> bool {
        let mut plan = self.stop_at.lock().unwrap_or_else(PoisonError::into_inner);
        if *plan == Some(point) {
            *plan = None;
            true
        } else {
            false
        }
    }
}

/// A tick could not finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The link-key store failed; the tick is retried.
    #[error(transparent)]
    Store(#[from] LinkKeyStoreError),
    /// A [`FaultHook`] stopped the driver.
    #[error("stopped by an injected fault at {0:?}")]
    Interrupted(FaultPoint),
    /// The random source failed.
    #[error("cannot generate a link key: {0}")]
    Generate(String),
}

/// What the last tick saw, for `/HealthCheck` and metrics (no secrets).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DriverStatus {
    /// The state as last loaded or saved.
    pub state: Option<LinkKeyState>,
    /// When the tick finished.
    pub checked_at: Option<DateTime<Utc>>,
    /// Why the last tick failed, if it did.
    pub last_error: Option<String>,
}

/// What a driver needs besides the store and target.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DriverSettings {
    /// The rotation timings.
    pub policy: Policy,
    /// How often the state is looked at even when nothing is due (picks up other replicas'
    /// and operators' changes).
    pub check_interval: TimeDelta,
}

impl DriverSettings {
    /// Settings with `policy`, checking every `check_interval`.
    pub fn new(policy: Policy, check_interval: TimeDelta) -> Self {
        Self {
            policy,
            check_interval,
        }
    }
}

/// Rotates one link key.
pub struct Rotator {
    name: String,
    settings: DriverSettings,
    store: Arc<dyn LinkKeyStore>,
    target: Arc<dyn LinkKeyTarget>,
    clock: SharedClock,
    audit: Arc<AuditLog>,
    alerts: Option<AlertWebhook>,
    node: String,
    faults: Arc<dyn FaultHook>,
    status: Mutex<DriverStatus>,
}

impl fmt::Debug for Rotator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotator")
            .field("name", &self.name)
            .field("node", &self.node)
            .field("target", &self.target.describe())
            .finish_non_exhaustive()
    }
}

/// Up to this many actions per tick: a full rotation is a handful; more means a fight.
const MAX_ACTIONS_PER_TICK: usize = 32;

impl Rotator {
    /// A driver for link key `name`. `node` names this replica in the state, audit events and
    /// alerts; give every process (and every in-process server) its own.
    pub fn new(
        name: &str,
        settings: DriverSettings,
        store: Arc<dyn LinkKeyStore>,
        target: Arc<dyn LinkKeyTarget>,
        clock: SharedClock,
        audit: Arc<AuditLog>,
        node: String,
    ) -> Self {
        Self {
            name: name.to_owned(),
            settings,
            store,
            target,
            clock,
            audit,
            alerts: None,
            node,
            faults: Arc::new(NoFaults),
            status: Mutex::new(DriverStatus::default()),
        }
    }

    /// Sends failure and recovery alerts to `webhook`.
    pub fn with_alerts(mut self, webhook: Option<AlertWebhook>) -> Self {
        self.alerts = webhook;
        self
    }

    /// Installs a fault hook (tests).
    #[cfg(any(test, feature = "test-util"))]
    pub fn with_faults(mut self, faults: Arc<dyn FaultHook>) -> Self {
        self.faults = faults;
        self
    }

    /// The link key's name.
    #[cfg(any(test, feature = "test-util"))]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rotation timings.
    pub fn policy(&self) -> &Policy {
        &self.settings.policy
    }

    /// The target, described (no secrets).
    pub fn target_description(&self) -> String {
        self.target.describe()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LinkKeyStore> {
        &self.store
    }

    /// What the last tick saw.
    pub fn status(&self) -> DriverStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, state: Option<&LinkKeyState>, error: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = state {
            status.state = Some(state.clone());
        }
        status.last_error = error;
        status.checked_at = Some(self.clock.now());
        if let Some(state) = &status.state {
            publish_gauges(&self.name, state, self.clock.now());
        }
    }

    fn stop_if(&self, point: FaultPoint) -> Result<(), DriveError> {
        if self.faults.should_stop(point) {
            tracing::warn!(name = %self.name, ?point, "link-key driver stopped by an injected fault");
            Err(DriveError::Interrupted(point))
        } else {
            Ok(())
        }
    }

    async fn audit(&self, kind: AuditKind, outcome: Outcome, details: &[(&str, String)]) {
        let mut event = AuditEvent::new(kind, &self.node, &self.name, outcome);
        for (key, value) in details {
            event = event.detail(key, value.clone());
        }
        self.audit.record_or_log(event).await;
    }

    /// Performs every action due now, persisting each before the next. Returns when the next
    /// one is due (`None`: nothing scheduled).
    pub async fn tick(&self) -> Result<Option<DateTime<Utc>>, DriveError> {
        let result = self.tick_inner().await;
        if let Err(e) = &result {
            self.remember(None, Some(e.to_string()));
        }
        result
    }

    async fn tick_inner(&self) -> Result<Option<DateTime<Utc>>, DriveError> {
        for _ in 0..MAX_ACTIONS_PER_TICK {
            let state = match self.store.load(&self.name).await? {
                Some(loaded) => loaded.state,
                None => LinkKeyState::empty(&self.name),
            };
            self.remember(Some(&state), None);
            let now = self.clock.now();
            match machine::next_action(&state, now, &self.settings.policy) {
                Action::Wait { until } => return Ok(until),
                Action::Begin(reason) => self.begin(reason).await?,
                Action::Create => self.create(&state).await?,
                Action::Claim(step) => self.attempt(&state, step).await?,
                Action::Promote => self.promote(&state).await?,
                Action::Retire(reason) => self.retire(&state, reason).await?,
            }
        }
        tracing::warn!(name = %self.name, "link-key tick did not settle; will look again");
        Ok(Some(self.clock.now()))
    }

    async fn save<T: Send>(
        &self,
        change: impl FnMut(&mut LinkKeyState) -> Result<T, Stale> + Send,
    ) -> Result<Option<(T, VersionedState)>, DriveError> {
        match update(&*self.store, &self.name, change).await? {
            Ok((value, saved)) => {
                self.remember(Some(&saved.state), None);
                Ok(Some((value, saved)))
            }
            Err(stale) => {
                tracing::debug!(name = %self.name, %stale, "another writer moved the link key first");
                Ok(None)
            }
        }
    }

    async fn begin(&self, reason: RotationReason) -> Result<(), DriveError> {
        self.stop_if(FaultPoint::BeforeBegin)?;
        let now = self.clock.now();
        let id = new_rotation_id(now).map_err(DriveError::Generate)?;
        let node = self.node.clone();
        let begun = self
            .save(|s| machine::begin(s, &id, reason, &node, now))
            .await?;
        if begun.is_some() {
            tracing::info!(name = %self.name, rotation = %id, reason = reason.as_str(), "link-key rotation started");
            self.audit(
                AuditKind::LinkKeyRotationStarted,
                Outcome::Success,
                &[
                    ("rotation_id", id.clone()),
                    ("reason", reason.as_str().into()),
                ],
            )
            .await;
            self.stop_if(FaultPoint::AfterBegin)?;
        }
        Ok(())
    }

    async fn create(&self, state: &LinkKeyState) -> Result<(), DriveError> {
        let Some(rotation) = &state.rotation else {
            return Ok(());
        };
        self.stop_if(FaultPoint::Before(Step::Create))?;
        let at = Attempt::of(rotation);
        let now = self.clock.now();
        let key = StoredKey::generate(&rotation.id, now)
            .map_err(|e| DriveError::Generate(e.to_string()))?;
        let key_id = key.id.clone();
        let policy = self.settings.policy;
        let saved = self
            .save(|s| machine::created(s, &at, key.clone(), now, &policy))
            .await?;
        if saved.is_some() {
            step_metric(&self.name, Step::Create, "success");
            tracing::info!(name = %self.name, key_id = %key_id, "pending link key created and published to validators");
            self.stop_if(FaultPoint::AfterPersist(Step::Create))?;
        }
        Ok(())
    }

    async fn attempt(&self, state: &LinkKeyState, step: Step) -> Result<(), DriveError> {
        let (Some(rotation), Some(pending)) = (&state.rotation, &state.pending) else {
            return Ok(());
        };
        self.stop_if(FaultPoint::Before(step))?;
        let seen = Attempt::of(rotation);
        let now = self.clock.now();
        let node = self.node.clone();
        let policy = self.settings.policy;
        let Some((claimed, claimed_state)) = self
            .save(|s| machine::claim(s, &seen, &node, now, &policy))
            .await?
        else {
            return Ok(());
        };
        let result = match step {
            Step::Set => self
                .target
                .install(&pending.key)
                .await
                .map_err(|e| e.to_string()),
            _ => self.test(&claimed_state.state, pending).await,
        };
        self.stop_if(FaultPoint::AfterEffect(step))?;
        let now = self.clock.now();
        match result {
            Ok(()) => {
                if self
                    .save(|s| machine::succeeded(s, &claimed, now))
                    .await?
                    .is_some()
                {
                    step_metric(&self.name, step, "success");
                    tracing::info!(name = %self.name, step = %step, key_id = %pending.id, "link-key rotation step done");
                    self.stop_if(FaultPoint::AfterPersist(step))?;
                }
            }
            Err(error) => self.record_failure(&claimed, step, &error, now).await?,
        }
        Ok(())
    }

    /// The key the target holds is PENDING (constant-time), is a well-formed `ghal_` key (the
    /// validators check the format and checksum first), and is in the list validators are served.
    async fn test(&self, state: &LinkKeyState, pending: &StoredKey) -> Result<(), String> {
        let held = self.target.read_back().await.map_err(|e| e.to_string())?;
        if held != pending.key {
            return Err("the target holds another key than the one installed".into());
        }
        ApiKey::parse_kind(held.expose(), SecretKind::LinkKey)
            .map_err(|e| format!("the installed key would be refused by validators: {e}"))?;
        let digest = pending.digest_hex();
        let served = state.served(self.clock.now());
        if !served.keys.iter().any(|k| {
            k.id == pending.id
                && gha_auth::secret::constant_time_eq(k.digest.as_bytes(), digest.as_bytes())
        }) {
            return Err("the pending key is not in the list validators are served".into());
        }
        Ok(())
    }

    async fn record_failure(
        &self,
        claimed: &Attempt,
        step: Step,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DriveError> {
        let policy = self.settings.policy;
        let Some((delay, saved)) = self
            .save(|s| machine::failed(s, claimed, error, now, &policy))
            .await?
        else {
            return Ok(());
        };
        step_metric(&self.name, step, "failure");
        let failures = saved.state.rotation.as_ref().map_or(0, |r| r.failures);
        tracing::error!(name = %self.name, step = %step, %error, failures,
            retry_in_seconds = delay.num_seconds(), "link-key rotation step failed; CURRENT unchanged");
        self.audit(
            AuditKind::LinkKeyStepFailed,
            Outcome::Failure,
            &[
                ("rotation_id", claimed.rotation_id.clone()),
                ("step", step.as_str().into()),
                ("error", error.to_owned()),
                ("failures", failures.to_string()),
            ],
        )
        .await;
        if let Some(webhook) = &self.alerts {
            webhook.send(Alert {
                event: "link_key.rotation_failed",
                name: self.name.clone(),
                rotation_id: claimed.rotation_id.clone(),
                step: step.as_str().into(),
                failures,
                error: Some(error.to_owned()),
                next_attempt: Some(now + delay),
                target: self.target.describe(),
                node: self.node.clone(),
                at: now,
            });
        }
        self.stop_if(FaultPoint::AfterPersist(step))
    }

    async fn promote(&self, state: &LinkKeyState) -> Result<(), DriveError> {
        let Some(rotation) = &state.rotation else {
            return Ok(());
        };
        self.stop_if(FaultPoint::Before(Step::Promote))?;
        let at = Attempt::of(rotation);
        let now = self.clock.now();
        let policy = self.settings.policy;
        let Some((promoted, _)) = self
            .save(|s| machine::promote(s, &at, now, &policy))
            .await?
        else {
            return Ok(());
        };
        step_metric(&self.name, Step::Promote, "success");
        metrics::counter!(ROTATIONS_METRIC, "name" => self.name.clone(),
            "reason" => rotation.reason.as_str())
        .increment(1);
        tracing::info!(name = %self.name, current = %promoted.current, previous = ?promoted.previous,
            "link key rotated");
        let mut details = vec![
            ("rotation_id", rotation.id.clone()),
            ("reason", rotation.reason.as_str().to_owned()),
            ("current", promoted.current.clone()),
            ("failures", rotation.failures.to_string()),
        ];
        if let Some(previous) = &promoted.previous {
            details.push(("previous", previous.clone()));
            details.push(("previous_expires_at", (now + policy.overlap).to_rfc3339()));
        }
        if let Some(dropped) = &promoted.dropped {
            details.push(("dropped", dropped.clone()));
        }
        self.audit(AuditKind::LinkKeyRotated, Outcome::Success, &details)
            .await;
        if rotation.failures > 0
            && let Some(webhook) = &self.alerts
        {
            webhook.send(Alert {
                event: "link_key.rotation_recovered",
                name: self.name.clone(),
                rotation_id: rotation.id.clone(),
                step: Step::Promote.as_str().into(),
                failures: rotation.failures,
                error: None,
                next_attempt: None,
                target: self.target.describe(),
                node: self.node.clone(),
                at: now,
            });
        }
        self.stop_if(FaultPoint::AfterPersist(Step::Promote))
    }

    async fn retire(&self, state: &LinkKeyState, reason: RetireReason) -> Result<(), DriveError> {
        let Some(previous) = &state.previous else {
            return Ok(());
        };
        let id = previous.id.clone();
        if self.save(|s| machine::retire(s, &id)).await?.is_some() {
            metrics::counter!(RETIREMENTS_METRIC, "name" => self.name.clone(),
                "reason" => reason.as_str())
            .increment(1);
            tracing::info!(name = %self.name, key_id = %id, reason = reason.as_str(), "previous link key retired");
            self.audit(
                AuditKind::LinkKeyRetired,
                Outcome::Success,
                &[("key_id", id), ("reason", reason.as_str().into())],
            )
            .await;
        }
        Ok(())
    }

    /// Ticks until `shutdown`: at start (which runs any rotation missed while the service was
    /// down), then whenever the next action is due or `check_interval` passed.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = self.clock.now();
            let wake = match self.tick().await {
                Ok(Some(at)) => at.min(now + self.settings.check_interval),
                Ok(None) => now + self.settings.check_interval,
                Err(e) => {
                    tracing::error!(name = %self.name, error = %e, "link-key tick failed; will retry");
                    now + self.settings.check_interval.min(TimeDelta::seconds(5))
                }
            };
            if wake <= self.clock.now() {
                // Due again at once (a claim raced, time moved): breathe so nothing can spin.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            tokio::select! {
                () = self.clock.sleep_until(wake) => {}
                () = &mut shutdown => break,
            }
        }
    }
}

fn step_metric(name: &str, step: Step, result: &'static str) {
    metrics::counter!(STEPS_METRIC, "name" => name.to_owned(),
        "step" => step.as_str(), "result" => result)
    .increment(1);
}

fn publish_gauges(name: &str, state: &LinkKeyState, now: DateTime<Utc>) {
    let failures = state.rotation.as_ref().map_or(0, |r| r.failures);
    metrics::gauge!(FAILURES_METRIC, "name" => name.to_owned()).set(f64::from(failures));
    if let Some(current) = &state.current {
        let since = state.last_rotated_at.unwrap_or(current.created_at);
        let age = (now - since).num_seconds().max(0) as f64;
        metrics::gauge!(AGE_METRIC, "name" => name.to_owned()).set(age);
    }
}

/// A fresh rotation id: time for humans, randomness for uniqueness across replicas.
pub(crate) fn new_rotation_id(now: DateTime<Utc>) -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut random = [0u8; 4];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| "random source failed".to_owned())?;
    Ok(format!(
        "rot-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        hex::encode(random)
    ))
}

/// Series: retirements of PREVIOUS, by link key and reason.
const RETIREMENTS_METRIC: &str = "gha_auth_link_key_retirements_total";
/// Series: rotation steps, by link key, step and result.
const STEPS_METRIC: &str = "gha_auth_link_key_rotation_steps_total";
/// Series: completed rotations, by link key and reason.
const ROTATIONS_METRIC: &str = "gha_auth_link_key_rotations_total";
/// Series: age of each link key's CURRENT.
const AGE_METRIC: &str = "gha_auth_link_key_age_seconds";
/// Series: consecutive failures of the rotation in progress, by link key.
const FAILURES_METRIC: &str = "gha_auth_link_key_rotation_failures";

/// HELP text of the link keys' series.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        RETIREMENTS_METRIC,
        "Previous link keys retired, by link key and reason"
    );
    metrics::describe_counter!(
        STEPS_METRIC,
        "Link-key rotation steps attempted, by link key, step and result"
    );
    metrics::describe_counter!(ROTATIONS_METRIC, "Link-key rotations completed");
    metrics::describe_gauge!(
        AGE_METRIC,
        metrics::Unit::Seconds,
        "Age of each link key's current key"
    );
    metrics::describe_gauge!(
        FAILURES_METRIC,
        "Consecutive failures of the link-key rotation in progress"
    );
    super::alert::describe_metrics();
}
