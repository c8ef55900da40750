//! The secret loops for database credentials.
//!
//! [`DynamicCredentials`] keeps one set of dynamic credentials alive: renews its lease at about
//! 2/3 of the TTL and issues **new** credentials, before the old ones expire, when a renewal
//! comes back shorter than asked (max TTL near), fails, or the session logged in again (leases
//! die with the token that created them). [`StaticCredentials`] re-fetches a static role's
//! password when its TTL says Vault rotated it, on a poll interval, and on demand (after an
//! authentication failure). Both publish through a [`watch`] channel that changes only when the
//! credentials change, so a connection pool can rebuild itself without a restart.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::database::{Database, DbCredentials, StaticDbCredentials};
use super::error::VaultError;
use super::schedule::{
    RenewalDecision, add, backoff_delay, random_unit, remaining, renew_delay, renewal_decision,
};
use super::session::{SessionToken, TaskGuard};

/// A snapshot of a credentials loop, for `/HealthCheck` and tests.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct CredentialsStatus {
    /// The database role.
    pub role: String,
    /// Serial of the credentials published last.
    pub serial: u64,
    /// The current lease (dynamic credentials).
    pub lease_id: Option<String>,
    /// When the current credentials expire (dynamic: lease expiry; static: next rotation).
    pub expires_at: Option<DateTime<Utc>>,
    /// Successful lease renewals (dynamic) or fetches (static).
    pub renewals: u64,
    /// Credentials issued after the first (dynamic) or rotations seen (static).
    pub replacements: u64,
    /// Failed operations.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last error (kept after recovery).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Why the credentials were last replaced.
    pub last_replacement_reason: Option<&'static str>,
    /// What the loop does next: `renew`, `issue`, `fetch` or `stopped`.
    pub next_step: &'static str,
    /// When.
    pub next_step_at: Option<DateTime<Utc>>,
}

struct LoopShared<T> {
    db: Database,
    role: String,
    tx: watch::Sender<Arc<T>>,
    refresh: Notify,
    shutdown: watch::Sender<bool>,
    status: Mutex<CredentialsStatus>,
}

/// The Tokio runtime the credential loops run on: the caller's.
fn loop_runtime() -> Result<tokio::runtime::Handle, VaultError> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        VaultError::Config("credential loops must be started inside a Tokio runtime".into())
    })
}

impl<T> LoopShared<T> {
    fn new(db: Database, role: &str, first: T, status: CredentialsStatus) -> Arc<Self> {
        let (tx, _) = watch::channel(Arc::new(first));
        let (shutdown, _) = watch::channel(false);
        Arc::new(Self {
            db,
            role: role.to_owned(),
            tx,
            refresh: Notify::new(),
            shutdown,
            status: Mutex::new(status),
        })
    }

    fn status(&self) -> std::sync::MutexGuard<'_, CredentialsStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_error(
        &self,
        error: &VaultError,
        consecutive: u32,
        next: &'static str,
        at: DateTime<Utc>,
    ) {
        let now = self.db.session().clock().now();
        {
            let mut status = self.status();
            status.failures += 1;
            status.consecutive_failures = consecutive;
            status.last_error = Some(error.to_string());
            status.last_error_at = Some(now);
            status.next_step = next;
            status.next_step_at = Some(at);
        }
        metrics::counter!("gha_auth_vault_db_credential_failures_total", "role" => self.role.clone())
            .increment(1);
        tracing::warn!(role = %self.role, error = %error, kind = error.kind(),
            consecutive_failures = consecutive, retry_at = %at, "database credentials: {next} failed");
    }

    fn schedule(&self, next: &'static str, at: DateTime<Utc>) {
        let mut status = self.status();
        status.next_step = next;
        status.next_step_at = Some(at);
    }
}

/// Dynamic database credentials kept alive in the background.
#[derive(Clone)]
pub struct DynamicCredentials {
    shared: Arc<LoopShared<DbCredentials>>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for DynamicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicCredentials")
            .field("role", &self.shared.role)
            .field("current", &*self.shared.tx.borrow())
            .finish_non_exhaustive()
    }
}

impl DynamicCredentials {
    /// Issues the first credentials for `role` (an error if that fails) and starts the loop.
    pub async fn start(db: Database, role: &str) -> Result<Self, VaultError> {
        let runtime = loop_runtime()?;
        let mut first = db.issue(role).await?;
        first.serial = 1;
        let status = CredentialsStatus {
            role: role.to_owned(),
            serial: 1,
            lease_id: Some(first.lease.id.clone()),
            expires_at: Some(first.lease.expires_at),
            next_step: "renew",
            ..CredentialsStatus::default()
        };
        let shared = LoopShared::new(db, role, first, status);
        let task = runtime.spawn(dynamic_loop(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// The credentials to use now.
    pub fn current(&self) -> Arc<DbCredentials> {
        Arc::clone(&self.shared.tx.borrow())
    }

    /// A receiver that fires when new credentials are published (not on lease renewals).
    pub fn subscribe(&self) -> watch::Receiver<Arc<DbCredentials>> {
        self.shared.tx.subscribe()
    }

    /// Issues new credentials now (e.g. after the database refused the current ones). The new
    /// credentials arrive through [`DynamicCredentials::subscribe`].
    pub fn refresh_now(&self) {
        self.shared.refresh.notify_one();
    }

    /// A snapshot of the loop.
    pub fn status(&self) -> CredentialsStatus {
        self.shared.status().clone()
    }

    /// Stops the loop; the current lease is left to expire (connections may still use it).
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// State of the current lease inside the loop.
struct LeaseState {
    id: String,
    renewable: bool,
    increment: Duration,
    expires_at: DateTime<Utc>,
    renew_at: DateTime<Utc>,
    token_generation: u64,
}

impl LeaseState {
    fn new(creds: &DbCredentials, renew_at: DateTime<Utc>) -> Self {
        Self {
            id: creds.lease.id.clone(),
            renewable: creds.lease.renewable,
            increment: creds.lease.duration,
            expires_at: creds.lease.expires_at,
            renew_at,
            token_generation: creds.token_generation,
        }
    }
}

async fn dynamic_loop(shared: Arc<LoopShared<DbCredentials>>) {
    let session = shared.db.session().clone();
    let clock = Arc::clone(session.clock());
    let policy = session.renewal_policy().clone();
    let mut tokens = session.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let first = Arc::clone(&shared.tx.borrow());
    let first_renew = add(
        clock.now(),
        renew_delay(first.lease.duration, &policy, random_unit()),
    );
    let mut lease = LeaseState::new(&first, first_renew);
    shared.schedule(
        if lease.renewable { "renew" } else { "issue" },
        lease.renew_at,
    );
    // Why new credentials are needed, and when to try next (after a failure).
    let mut replace: Option<&'static str> = None;
    let mut retry_at = clock.now();
    if current_generation(&tokens) > lease.token_generation {
        replace = Some("new Vault token");
    }
    let mut failures = 0u32;
    loop {
        let deadline = if replace.is_some() {
            retry_at
        } else {
            lease.renew_at
        };
        tokio::select! {
            () = clock.sleep_until(deadline) => {}
            changed = tokens.changed() => {
                if changed.is_err() {
                    break;
                }
                let generation = current_generation(&tokens);
                if generation > lease.token_generation {
                    tracing::info!(role = %shared.role, generation,
                        "Vault token replaced: issuing new database credentials");
                    replace.get_or_insert("new Vault token");
                    retry_at = clock.now();
                }
                continue;
            }
            () = shared.refresh.notified() => {
                replace = Some("requested");
                retry_at = clock.now();
                failures = 0;
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        if replace.is_none() {
            if !lease.renewable {
                replace = Some("lease not renewable");
            } else {
                match renew_lease(&shared, &mut lease, &policy).await {
                    Ok(RenewalDecision::Continue) => {
                        failures = 0;
                        shared.schedule("renew", lease.renew_at);
                        continue;
                    }
                    Ok(_) => replace = Some("lease max TTL reached"),
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        shared.record_error(&error, failures, "renew", clock.now());
                        replace = Some("lease renewal failed");
                    }
                }
            }
        }
        let reason = replace.unwrap_or("scheduled");
        match shared.db.issue(&shared.role).await {
            Ok(mut creds) => {
                failures = 0;
                replace = None;
                let serial = shared.tx.borrow().serial + 1;
                creds.serial = serial;
                let renew_at = add(
                    clock.now(),
                    renew_delay(creds.lease.duration, &policy, random_unit()),
                );
                lease = LeaseState::new(&creds, renew_at);
                {
                    let mut status = shared.status();
                    status.serial = serial;
                    status.lease_id = Some(lease.id.clone());
                    status.expires_at = Some(lease.expires_at);
                    status.replacements += 1;
                    status.consecutive_failures = 0;
                    status.last_replacement_reason = Some(reason);
                    status.next_step = if lease.renewable { "renew" } else { "issue" };
                    status.next_step_at = Some(lease.renew_at);
                }
                tracing::info!(role = %shared.role, serial, lease_id = %lease.id, reason,
                    "published new database credentials");
                shared.tx.send_replace(Arc::new(creds));
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                retry_at = add(clock.now(), backoff_delay(failures, &policy, random_unit()));
                shared.record_error(&error, failures, "issue", retry_at);
            }
        }
    }
    shared.schedule("stopped", clock.now());
}

fn current_generation(tokens: &watch::Receiver<Option<Arc<SessionToken>>>) -> u64 {
    tokens.borrow().as_ref().map_or(0, |t| t.generation())
}

/// Renews the lease; returns whether renewing still works.
async fn renew_lease(
    shared: &LoopShared<DbCredentials>,
    lease: &mut LeaseState,
    policy: &super::schedule::RenewalPolicy,
) -> Result<RenewalDecision, VaultError> {
    let clock = Arc::clone(shared.db.session().clock());
    let renewed = shared.db.leases().renew(&lease.id, lease.increment).await?;
    let decision = renewal_decision(
        lease.increment,
        renewed.duration,
        lease.expires_at,
        renewed.expires_at,
    );
    lease.expires_at = renewed.expires_at;
    lease.renewable = renewed.renewable;
    lease.renew_at = add(
        clock.now(),
        renew_delay(renewed.duration, policy, random_unit()),
    );
    {
        let mut status = shared.status();
        status.renewals += 1;
        status.consecutive_failures = 0;
        status.expires_at = Some(renewed.expires_at);
    }
    metrics::counter!("gha_auth_vault_lease_renewals_total", "role" => shared.role.clone())
        .increment(1);
    tracing::debug!(role = %shared.role, lease_id = %lease.id,
        requested_secs = lease.increment.as_secs(), granted_secs = renewed.duration.as_secs(),
        ?decision, "renewed database lease");
    Ok(decision)
}

/// Static-role credentials kept current in the background.
#[derive(Clone)]
pub struct StaticCredentials {
    shared: Arc<LoopShared<StaticDbCredentials>>,
    poll_interval: Duration,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("role", &self.shared.role)
            .field("poll_interval", &self.poll_interval)
            .field("current", &*self.shared.tx.borrow())
            .finish_non_exhaustive()
    }
}

/// Slack after the announced rotation time before fetching, so Vault has rotated by then.
const ROTATION_SLACK: Duration = Duration::from_millis(500);

impl StaticCredentials {
    /// Fetches the credentials of static role `role` (an error if that fails) and starts the
    /// loop: it re-fetches just after the TTL says the password rotated, at least every
    /// `poll_interval` (rotations forced with `rotate-role` do not announce themselves), and
    /// when asked.
    pub async fn start(
        db: Database,
        role: &str,
        poll_interval: Duration,
    ) -> Result<Self, VaultError> {
        let runtime = loop_runtime()?;
        let mut first = db.static_credentials(role).await?;
        first.serial = 1;
        let status = CredentialsStatus {
            role: role.to_owned(),
            serial: 1,
            expires_at: Some(first.next_rotation_at()),
            renewals: 1,
            next_step: "fetch",
            ..CredentialsStatus::default()
        };
        let shared = LoopShared::new(db, role, first, status);
        let poll_interval = poll_interval.max(Duration::from_millis(100));
        let task = runtime.spawn(static_loop(Arc::clone(&shared), poll_interval));
        Ok(Self {
            shared,
            poll_interval,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// The credentials to use now.
    pub fn current(&self) -> Arc<StaticDbCredentials> {
        Arc::clone(&self.shared.tx.borrow())
    }

    /// A receiver that fires when the password changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<StaticDbCredentials>> {
        self.shared.tx.subscribe()
    }

    /// Asks the loop to re-fetch now. Returns at once.
    pub fn refresh_now(&self) {
        self.shared.refresh.notify_one();
    }

    /// Re-fetches now and returns the current credentials (published if they changed): the
    /// hook for "the database refused the password".
    pub async fn refresh(&self) -> Result<Arc<StaticDbCredentials>, VaultError> {
        fetch_static(&self.shared).await
    }

    /// A snapshot of the loop.
    pub fn status(&self) -> CredentialsStatus {
        self.shared.status().clone()
    }

    /// Stops the loop.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// When to fetch next: just after the announced rotation, at the latest after `poll_interval`,
/// never sooner than `min_interval` from `now`.
pub(crate) fn next_static_fetch(
    now: DateTime<Utc>,
    next_rotation_at: DateTime<Utc>,
    poll_interval: Duration,
    min_interval: Duration,
) -> DateTime<Utc> {
    let after_rotation = remaining(now, next_rotation_at) + ROTATION_SLACK;
    add(now, after_rotation.min(poll_interval).max(min_interval))
}

/// Fetches the static credentials and publishes them when they changed.
async fn fetch_static(
    shared: &LoopShared<StaticDbCredentials>,
) -> Result<Arc<StaticDbCredentials>, VaultError> {
    let mut fetched = shared.db.static_credentials(&shared.role).await?;
    let current = Arc::clone(&shared.tx.borrow());
    let changed = fetched.differs_from(&current);
    {
        let mut status = shared.status();
        status.renewals += 1;
        status.consecutive_failures = 0;
        status.expires_at = Some(fetched.next_rotation_at());
        if changed {
            status.serial = current.serial + 1;
            status.replacements += 1;
            status.last_replacement_reason = Some("password rotated");
        }
    }
    if !changed {
        return Ok(current);
    }
    fetched.serial = current.serial + 1;
    let fresh = Arc::new(fetched);
    tracing::info!(role = %shared.role, serial = fresh.serial,
        last_rotation = ?fresh.last_vault_rotation, "static database password rotated");
    metrics::counter!("gha_auth_vault_static_rotations_seen_total", "role" => shared.role.clone())
        .increment(1);
    // Published after the status, so a subscriber woken by it sees both.
    shared.tx.send_replace(Arc::clone(&fresh));
    Ok(fresh)
}

async fn static_loop(shared: Arc<LoopShared<StaticDbCredentials>>, poll_interval: Duration) {
    let session = shared.db.session().clone();
    let clock = Arc::clone(session.clock());
    let policy = session.renewal_policy().clone();
    let mut shutdown = shared.shutdown.subscribe();
    let mut failures = 0u32;
    let mut next_rotation = shared.tx.borrow().next_rotation_at();
    loop {
        let at = if failures > 0 {
            add(
                clock.now(),
                backoff_delay(failures, &policy, random_unit()).min(poll_interval),
            )
        } else {
            next_static_fetch(
                clock.now(),
                next_rotation,
                poll_interval,
                policy.min_interval,
            )
        };
        shared.schedule("fetch", at);
        tokio::select! {
            () = clock.sleep_until(at) => {}
            () = shared.refresh.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        match fetch_static(&shared).await {
            Ok(_) => {
                failures = 0;
                // The TTL just fetched (in the status) counts, even when nothing changed.
                next_rotation = shared.status().expires_at.unwrap_or_else(|| clock.now());
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                shared.record_error(&error, failures, "fetch", clock.now());
            }
        }
    }
    shared.schedule("stopped", clock.now());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_fetch_waits_for_the_rotation_or_the_poll_interval() {
        let t = |ms: i64| DateTime::from_timestamp_millis(1_000_000 + ms).unwrap();
        let d = Duration::from_millis;
        // (rotation at, poll interval, min interval, expected fetch at) with now = t(0)
        let table = [
            (t(10_000), d(60_000), d(1_000), t(10_500)), // just after the rotation
            (t(600_000), d(60_000), d(1_000), t(60_000)), // poll interval first
            (t(0), d(60_000), d(1_000), t(1_000)),       // due now: not sooner than min
            (t(-5_000), d(60_000), d(200), t(500)),      // overdue: slack only
            (t(100), d(60_000), d(0), t(600)),
        ];
        for (rotation, poll, min, expected) in table {
            assert_eq!(
                next_static_fetch(t(0), rotation, poll, min),
                expected,
                "{rotation}"
            );
        }
    }
}
