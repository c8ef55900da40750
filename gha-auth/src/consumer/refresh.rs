//! The refresh loop behind every handle of the secrets client.
//!
//! One task per handle fetches the value from the broker before it goes out of date (at about
//! 2/3 of its life, with jitter, via [`crate::schedule`]), publishes it through a watch channel
//! when it changed, and backs off exponentially with a cap when the broker fails. Meanwhile the
//! last good value keeps being served until its usable-until bound (stale-if-error); past that
//! bound [`BrokerValue::current`] returns [`ConsumerError::Expired`] and the status says
//! `expired`, so a dead source is visible and never silently papered over.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::broker_client::{BrokerAnswer, BrokerClient, Target};
use super::error::ConsumerError;
use crate::broker::{DatabaseCredsResponse, SecretResponse};
use crate::schedule::{RenewalPolicy, add, backoff_delay, random_unit, remaining, renew_delay};

/// Timing of the refresh loops.
#[derive(Debug, Clone)]
pub(crate) struct RefreshSettings {
    /// Renewal fraction, jitter, backoff bounds, shortest interval between two fetches.
    pub(crate) policy: RenewalPolicy,
    /// How long past its `max_age` a secret is still served while the broker fails.
    pub(crate) stale_window: Duration,
    /// Longest time between two fetches, whatever the value's life: a static role's password
    /// rotated by hand (`rotate-role`) does not announce itself, so it is polled for.
    pub(crate) max_interval: Duration,
}

/// How a broker answer is scheduled and compared.
pub(crate) trait Refreshable: BrokerAnswer {
    /// When to fetch again and until when the value may be used, for an answer received at
    /// `received_at`; `unit` is the jitter draw in `[0, 1)`.
    fn schedule(
        &self,
        received_at: DateTime<Utc>,
        settings: &RefreshSettings,
        unit: f64,
    ) -> (DateTime<Utc>, DateTime<Utc>);

    /// Whether `other` carries the same value (subscribers are woken only on a change).
    fn same_value(&self, other: &Self) -> bool;
}

impl Refreshable for SecretResponse {
    /// Refresh at about 2/3 of `max_age`; usable for `max_age` plus the stale window.
    fn schedule(
        &self,
        received_at: DateTime<Utc>,
        settings: &RefreshSettings,
        unit: f64,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        // A zero max age would mean "ask on every use": one second is the floor of the loop.
        let max_age = Duration::from_secs(self.max_age_seconds.max(1));
        let refresh_at = add(received_at, renew_delay(max_age, &settings.policy, unit))
            .min(add(received_at, settings.max_interval));
        let usable_until = add(add(received_at, max_age), settings.stale_window);
        (refresh_at, usable_until)
    }

    fn same_value(&self, other: &Self) -> bool {
        self.version == other.version && self.data == other.data
    }
}

impl Refreshable for DatabaseCredsResponse {
    /// Refresh at the broker's `refresh_at`, at about 2/3 of the remaining life or after the
    /// longest interval, whichever comes first (the jitter spreads consumers of one role), never
    /// sooner than the policy's shortest interval; usable until `expires_at`, since the database
    /// refuses the credential after that however long it is kept.
    fn schedule(
        &self,
        received_at: DateTime<Utc>,
        settings: &RefreshSettings,
        unit: f64,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let life = remaining(received_at, self.expires_at);
        let ours = add(received_at, renew_delay(life, &settings.policy, unit));
        let earliest = add(received_at, settings.policy.min_interval);
        let latest = add(received_at, settings.max_interval);
        let refresh_at = ours.min(self.refresh_at).min(latest).max(earliest);
        (refresh_at, self.expires_at)
    }

    fn same_value(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.username == other.username
            && self.password == other.password
    }
}

/// Whether a handle's value can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Freshness {
    /// The last fetch succeeded and the value is within its life.
    Fresh,
    /// The broker is failing; the last good value is still served (stale-if-error).
    Stale,
    /// The last good value is past its usable-until bound: it is no longer handed out.
    Expired,
}

/// A snapshot of a handle, for health checks, metrics and tests. Holds no secret.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// `secret <path>` or `database role <role>`.
    pub what: String,
    /// Fresh, stale or expired, as of the moment of the snapshot.
    pub freshness: Freshness,
    /// Values published so far (1 for the first; +1 on each change).
    pub serial: u64,
    /// Fetches attempted (successful or not).
    pub fetches: u64,
    /// Failed fetches.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last error (kept after recovery).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the current value was received.
    pub received_at: DateTime<Utc>,
    /// When the next fetch is due.
    pub next_fetch_at: DateTime<Utc>,
    /// Until when the current value is handed out.
    pub usable_until: DateTime<Utc>,
}

struct State {
    serial: u64,
    fetches: u64,
    failures: u64,
    consecutive_failures: u32,
    last_error: Option<ConsumerError>,
    last_error_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    next_fetch_at: DateTime<Utc>,
    usable_until: DateTime<Utc>,
}

struct Shared<T> {
    broker: BrokerClient,
    target: Target,
    settings: Arc<RefreshSettings>,
    tx: watch::Sender<Arc<T>>,
    refresh: Notify,
    state: Mutex<State>,
}

impl<T> Shared<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        self.broker.keeper().clock().now()
    }
}

/// Aborts the refresh task when the last handle goes away.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A value from the broker, kept fresh in the background. Cheap to clone; the refresh task stops
/// when the last clone is dropped.
///
/// Use [`SecretHandle`] and [`DatabaseCredsHandle`].
pub struct BrokerValue<T> {
    shared: Arc<Shared<T>>,
    _task: Arc<TaskGuard>,
}

/// A secret kept fresh: [`BrokerValue`] of [`SecretResponse`].
pub type SecretHandle = BrokerValue<SecretResponse>;
/// Database credentials kept fresh: [`BrokerValue`] of [`DatabaseCredsResponse`].
pub type DatabaseCredsHandle = BrokerValue<DatabaseCredsResponse>;

impl<T> Clone for BrokerValue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            _task: Arc::clone(&self._task),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for BrokerValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // T's Debug redacts its secret fields (SecretString).
        f.debug_struct("BrokerValue")
            .field("what", &self.shared.target.describe())
            .field("current", &*self.shared.tx.borrow())
            .finish_non_exhaustive()
    }
}

impl<T> BrokerValue<T> {
    /// The value to use now, or [`ConsumerError::Expired`] once it is past its usable-until
    /// bound without a successful refresh (the error carries the last refresh failure).
    pub fn current(&self) -> Result<Arc<T>, ConsumerError> {
        let now = self.shared.now();
        let state = self.shared.state();
        if now < state.usable_until {
            return Ok(Arc::clone(&self.shared.tx.borrow()));
        }
        let last = state.last_error.clone().unwrap_or_else(|| {
            ConsumerError::Config("the refresh loop has not run (no Tokio runtime?)".into())
        });
        Err(ConsumerError::Expired {
            what: self.shared.target.describe(),
            since: state.usable_until,
            last: Box::new(last),
        })
    }

    /// The last value received, however old (for diagnostics; use [`BrokerValue::current`]).
    pub fn latest(&self) -> Arc<T> {
        Arc::clone(&self.shared.tx.borrow())
    }

    /// A receiver woken when a different value arrives (not when the same value is fetched
    /// again). Its `borrow()` is always the latest value.
    pub fn subscribe(&self) -> watch::Receiver<Arc<T>> {
        self.shared.tx.subscribe()
    }

    /// Fetches again at once (e.g. after the database refused the password), at most once per
    /// the policy's shortest interval; the result arrives through [`BrokerValue::subscribe`].
    pub fn refresh_now(&self) {
        self.shared.refresh.notify_one();
    }

    /// A snapshot of the loop.
    pub fn status(&self) -> RefreshStatus {
        let now = self.shared.now();
        let state = self.shared.state();
        let freshness = if now >= state.usable_until {
            Freshness::Expired
        } else if state.consecutive_failures > 0 {
            Freshness::Stale
        } else {
            Freshness::Fresh
        };
        RefreshStatus {
            what: self.shared.target.describe(),
            freshness,
            serial: state.serial,
            fetches: state.fetches,
            failures: state.failures,
            consecutive_failures: state.consecutive_failures,
            last_error: state.last_error.as_ref().map(ToString::to_string),
            last_error_at: state.last_error_at,
            received_at: state.received_at,
            next_fetch_at: state.next_fetch_at,
            usable_until: state.usable_until,
        }
    }
}

/// Fetches the first value (an error if that fails) and starts the refresh task on the
/// current Tokio runtime.
pub(crate) async fn start<T: Refreshable>(
    broker: BrokerClient,
    target: Target,
    settings: Arc<RefreshSettings>,
) -> Result<BrokerValue<T>, ConsumerError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        ConsumerError::Config("the secrets client must run inside a Tokio runtime".into())
    })?;
    let clock = Arc::clone(broker.keeper().clock());
    let received_at = clock.now();
    let first: T = broker.fetch(&target).await?;
    let (next_fetch_at, usable_until) = first.schedule(received_at, &settings, random_unit());
    let (tx, _) = watch::channel(Arc::new(first));
    let shared = Arc::new(Shared {
        broker,
        target,
        settings,
        tx,
        refresh: Notify::new(),
        state: Mutex::new(State {
            serial: 1,
            fetches: 1,
            failures: 0,
            consecutive_failures: 0,
            last_error: None,
            last_error_at: None,
            received_at,
            next_fetch_at,
            usable_until,
        }),
    });
    tracing::debug!(what = %shared.target.describe(), next_fetch_at = %next_fetch_at,
            "broker value received");
    let task = runtime.spawn(refresh_loop(Arc::clone(&shared)));
    Ok(BrokerValue {
        shared,
        _task: Arc::new(TaskGuard(task)),
    })
}

async fn refresh_loop<T: Refreshable>(shared: Arc<Shared<T>>) {
    let clock = Arc::clone(shared.broker.keeper().clock());
    let mut last_attempt = clock.now();
    loop {
        let due = shared.state().next_fetch_at;
        tokio::select! {
            () = clock.sleep_until(due) => {}
            () = shared.refresh.notified() => {
                // On demand, but not more often than the shortest interval: a pool that fails
                // every connection must not turn into a flood of broker requests.
                let earliest = add(last_attempt, shared.settings.policy.min_interval);
                clock.sleep_until(earliest).await;
            }
        }
        last_attempt = clock.now();
        fetch_once(&shared).await;
    }
}

/// One fetch: publish on success, back off and keep the last value on failure.
async fn fetch_once<T: Refreshable>(shared: &Shared<T>) {
    let clock = Arc::clone(shared.broker.keeper().clock());
    let received_at = clock.now();
    let outcome = shared.broker.fetch::<T>(&shared.target).await;
    let now = clock.now();
    let mut state = shared.state();
    state.fetches += 1;
    match outcome {
        Ok(fresh) => {
            let (next_fetch_at, usable_until) =
                fresh.schedule(received_at, &shared.settings, random_unit());
            let recovered = state.consecutive_failures > 0;
            state.consecutive_failures = 0;
            state.received_at = received_at;
            state.next_fetch_at = next_fetch_at;
            state.usable_until = usable_until;
            let mut changed = false;
            shared.tx.send_if_modified(|current| {
                changed = !current.same_value(&fresh);
                // The newest answer is kept either way (its times moved); only a new value wakes
                // the subscribers.
                *current = Arc::new(fresh);
                changed
            });
            if changed {
                state.serial += 1;
            }
            let serial = state.serial;
            drop(state);
            if recovered {
                tracing::info!(what = %shared.target.describe(), serial, "broker reachable again");
            }
            if changed {
                tracing::info!(what = %shared.target.describe(), serial,
                    next_fetch_at = %next_fetch_at, "published a new value from the broker");
            }
        }
        Err(error) => {
            state.failures += 1;
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            let attempt = state.consecutive_failures;
            let mut delay = backoff_delay(attempt, &shared.settings.policy, random_unit());
            if let Some(after) = error.retry_after() {
                delay = delay.max(after.min(shared.settings.policy.max_backoff));
            }
            let retry_at = add(now, delay);
            state.next_fetch_at = retry_at;
            state.last_error_at = Some(now);
            state.last_error = Some(error.clone());
            let usable_until = state.usable_until;
            drop(state);
            let what = shared.target.describe();
            if now >= usable_until {
                tracing::error!(what = %what, error = %error, kind = error.kind(),
                    consecutive_failures = attempt, expired_at = %usable_until, retry_at = %retry_at,
                    "broker value expired: no longer served");
            } else {
                tracing::warn!(what = %what, error = %error, kind = error.kind(),
                    consecutive_failures = attempt, usable_until = %usable_until, retry_at = %retry_at,
                    "broker refresh failed: serving the last value");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretString;
    use crate::broker::{CredentialKind, SecretData};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + s, 0).unwrap()
    }

    fn settings() -> RefreshSettings {
        RefreshSettings {
            policy: RenewalPolicy::default().with_fraction(2.0 / 3.0, 0.0),
            stale_window: Duration::from_secs(600),
            max_interval: Duration::from_secs(300),
        }
    }

    fn secret(version: u64, value: &str, max_age: u64) -> SecretResponse {
        let mut data = SecretData::new();
        data.insert("password", SecretString::from(value));
        SecretResponse::new("apps/x", version, data, at(0), max_age)
    }

    fn creds(user: &str, password: &str, refresh: i64, expires: i64) -> DatabaseCredsResponse {
        DatabaseCredsResponse::new(
            "app",
            CredentialKind::Dynamic,
            user,
            SecretString::from(password),
            at(0),
            at(expires),
            at(refresh),
        )
    }

    #[test]
    fn secrets_refresh_at_two_thirds_and_stay_usable_through_the_stale_window() {
        // (max_age, refresh at, usable until)
        let table = [
            (30, at(20), at(630)),
            (0, at(1) - chrono::TimeDelta::milliseconds(334), at(601)),
        ];
        for (max_age, refresh, usable) in table {
            let (r, u) = secret(1, "v", max_age).schedule(at(0), &settings(), 0.5);
            assert!(
                (r - refresh).num_milliseconds().abs() <= 1,
                "{max_age}: {r}"
            );
            assert_eq!(u, usable, "{max_age}");
        }
    }

    #[test]
    fn database_credentials_refresh_at_the_earlier_of_broker_and_own_schedule() {
        let s = settings();
        // (broker refresh_at, expires_at, received at, expected refresh, expected usable)
        let table = [
            (40, 60, 0, at(40), at(60)),        // ours: 40 as well
            (50, 60, 0, at(40), at(60)),        // ours is earlier
            (10, 60, 0, at(10), at(60)),        // the broker's is earlier
            (-5, 60, 0, at(1), at(60)), // in the past: not sooner than the shortest interval
            (-5, -1, 0, at(1), at(-1)), // already expired: retried at the shortest interval
            (3000, 3600, 0, at(300), at(3600)), // a long life: polled at the longest interval
        ];
        for (refresh, expires, received, expected_refresh, expected_usable) in table {
            let (r, u) = creds("u", "p", refresh, expires).schedule(at(received), &s, 0.5);
            assert_eq!(
                (r, u),
                (expected_refresh, expected_usable),
                "{refresh} {expires}"
            );
        }
    }

    #[test]
    fn values_compare_by_content() {
        assert!(secret(1, "a", 30).same_value(&secret(1, "a", 60)));
        assert!(!secret(1, "a", 30).same_value(&secret(2, "a", 30)));
        assert!(!secret(1, "a", 30).same_value(&secret(1, "b", 30)));
        assert!(creds("u", "p", 1, 2).same_value(&creds("u", "p", 5, 9)));
        assert!(!creds("u", "p", 1, 2).same_value(&creds("u", "q", 1, 2)));
        assert!(!creds("u", "p", 1, 2).same_value(&creds("v", "p", 1, 2)));
    }
}
