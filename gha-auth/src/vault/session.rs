//! The identity loop: log in, renew the token at about 2/3 of its TTL, and **log in again** from
//! the original credential when a renewal is refused, fails, or comes back shorter than asked
//! (the token's max TTL is near). Missing that last step is what stopped services every 30 days.
//!
//! The current token is published through a [`watch`] channel ([`VaultSession::subscribe`]):
//! lease loops re-issue their secrets when its generation changes, because leases die with the
//! token that created them. [`VaultSession::status`] is a snapshot for `/HealthCheck`; the loop
//! also reports through the `metrics` crate. It never gives up: failures back off exponentially
//! up to a cap and stay visible in the status.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rustify::enums::RequestMethod;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use vaultrs::client::VaultClient;
use zeroize::Zeroize;

use super::auth::{AuthMethod, LoginResult};
use super::client::VaultConnection;
use super::config::VaultConfig;
use super::error::VaultError;
use super::raw::{self, Envelope, RawRequest};
use super::schedule::{
    RenewalDecision, RenewalPolicy, add, backoff_delay, random_unit, remaining, renew_delay,
    renewal_decision,
};
use crate::SecretString;
use crate::clock::SharedClock;

/// A token obtained by the session, with the client that sends it.
///
/// Immutable: a renewal extends the token in Vault but does not replace this value; a new login
/// publishes a new one with a higher [`generation`](SessionToken::generation) (the same token
/// read again from a file keeps its generation).
pub struct SessionToken {
    generation: u64,
    client: VaultClient,
    token: SecretString,
    method: String,
    obtained_at: DateTime<Utc>,
    ttl: Duration,
    renewable: bool,
    policies: Vec<String>,
}

impl SessionToken {
    /// Counts logins that produced a different token: 1 for the first.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A vaultrs client sending this token, for vaultrs APIs this module does not wrap
    /// (transit, PKI, …). Never print its `settings` or `middle`: the latter holds the token.
    pub fn client(&self) -> &VaultClient {
        &self.client
    }

    /// The token itself (for a token sink, say). Keep the borrow short and never log it.
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// The auth method that obtained it.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// When the login that obtained it started.
    pub fn obtained_at(&self) -> DateTime<Utc> {
        self.obtained_at
    }

    /// The TTL at login (`0`: no expiry). The current expiry is in [`VaultSession::status`].
    pub fn ttl_at_login(&self) -> Duration {
        self.ttl
    }

    /// Whether it is renewable.
    pub fn renewable(&self) -> bool {
        self.renewable
    }

    /// Its policies.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionToken")
            .field("generation", &self.generation)
            .field("token", &self.token)
            .field("method", &self.method)
            .field("obtained_at", &self.obtained_at)
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

impl Drop for SessionToken {
    fn drop(&mut self) {
        // vaultrs keeps the token as a plain String in its middleware: wipe that copy too.
        self.client.middle.token.zeroize();
    }
}

/// Overall state of the session, for `/HealthCheck`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VaultHealth {
    /// No login attempted or finished yet.
    Starting,
    /// A valid token, and the last attempt succeeded.
    Healthy,
    /// A valid token, but the last renewal or login failed (retrying).
    Degraded,
    /// No valid token (never logged in, or it expired) and the last attempt failed.
    Unhealthy,
    /// The loop was shut down.
    Stopped,
}

/// A snapshot of the identity loop, for `/HealthCheck`, logs and tests.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct VaultStatus {
    /// Overall state.
    pub health: VaultHealth,
    /// The auth method.
    pub method: String,
    /// Generation of the current token (0: none yet).
    pub generation: u64,
    /// Successful logins.
    pub logins: u64,
    /// Successful logins after the first that produced a new token.
    pub relogins: u64,
    /// Successful renewals.
    pub renewals: u64,
    /// Failed logins.
    pub login_failures: u64,
    /// Failed renewals.
    pub renewal_failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the last successful login started.
    pub last_login_at: Option<DateTime<Utc>>,
    /// When the last successful renewal started.
    pub last_renewal_at: Option<DateTime<Utc>>,
    /// When the current token expires (`None`: no token, or no expiry).
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Time left on the current token.
    #[serde(serialize_with = "seconds")]
    pub token_ttl_remaining: Option<Duration>,
    /// The last error (kept after recovery; see `last_error_at` and `health`).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// What the loop does next: `login`, `renew`, `idle` or `stopped`.
    pub next_step: &'static str,
    /// When.
    pub next_step_at: Option<DateTime<Utc>>,
}

fn seconds<S: serde::Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => s.serialize_some(&duration.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Default)]
struct Counters {
    logins: u64,
    relogins: u64,
    renewals: u64,
    login_failures: u64,
    renewal_failures: u64,
    consecutive_failures: u32,
    last_login_at: Option<DateTime<Utc>>,
    last_renewal_at: Option<DateTime<Utc>>,
    token_expires_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    next_step: &'static str,
    next_step_at: Option<DateTime<Utc>>,
    stopped: bool,
}

struct Shared {
    connection: VaultConnection,
    auth: Arc<dyn AuthMethod>,
    clock: SharedClock,
    policy: RenewalPolicy,
    request_timeout: Duration,
    token_tx: watch::Sender<Option<Arc<SessionToken>>>,
    counters: Mutex<Counters>,
    relogin: Notify,
    shutdown: watch::Sender<bool>,
}

/// Aborts a background loop when the last handle goes away.
pub(crate) struct TaskGuard(pub(crate) JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handle to the identity loop. Cheap to clone; the loop stops when [`VaultSession::shutdown`]
/// is called or the last handle is dropped.
#[derive(Clone)]
pub struct VaultSession {
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for VaultSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSession")
            .field("address", &self.shared.connection.address())
            .field("method", &self.shared.auth.name())
            .finish_non_exhaustive()
    }
}

impl VaultSession {
    /// Starts the identity loop for `config` (its auth method, renewal policy and timeouts).
    /// Returns at once; [`VaultSession::ready`] waits for the first token. Needs a Tokio
    /// runtime.
    pub fn start(config: &VaultConfig, clock: SharedClock) -> Result<Self, VaultError> {
        Self::start_with_method(config, config.auth.build(), clock)
    }

    /// Like [`VaultSession::start`] with another [`AuthMethod`] (`config.auth` is ignored).
    pub fn start_with_method(
        config: &VaultConfig,
        auth: Arc<dyn AuthMethod>,
        clock: SharedClock,
    ) -> Result<Self, VaultError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            VaultError::Config("the Vault session must be started inside a Tokio runtime".into())
        })?;
        let connection = VaultConnection::new(config)?;
        let (token_tx, _) = watch::channel(None);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            connection,
            auth,
            clock,
            policy: config.renewal.clone(),
            request_timeout: config.request_timeout,
            token_tx,
            counters: Mutex::new(Counters {
                next_step: "login",
                ..Counters::default()
            }),
            relogin: Notify::new(),
            shutdown,
        });
        let task = runtime.spawn(identity_loop(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// Waits up to `timeout` (on the session's clock) for a token. On timeout the error carries
    /// the last login error.
    pub async fn ready(&self, timeout: Duration) -> Result<Arc<SessionToken>, VaultError> {
        let mut rx = self.shared.token_tx.subscribe();
        let deadline = self.shared.clock.sleep(delta(timeout));
        tokio::select! {
            token = rx.wait_for(Option::is_some) => match token.as_deref() {
                Ok(Some(token)) => Ok(Arc::clone(token)),
                _ => Err(VaultError::Closed),
            },
            () = deadline => Err(self.not_ready()),
        }
    }

    /// The current token, if the session has one.
    pub fn current(&self) -> Result<Arc<SessionToken>, VaultError> {
        self.shared
            .token_tx
            .borrow()
            .clone()
            .ok_or_else(|| self.not_ready())
    }

    /// A receiver of the current token: `changed()` fires on every new login (compare
    /// [`SessionToken::generation`]). Holds `None` until the first login.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<SessionToken>>> {
        self.shared.token_tx.subscribe()
    }

    /// Asks the loop to log in again now (e.g. after Vault answered 403 to a token that should
    /// be valid). Returns at once.
    pub fn relogin_now(&self) {
        self.shared.relogin.notify_one();
    }

    /// Stops the loop. The current token stays valid in Vault until it expires.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// A snapshot of the loop's state.
    pub fn status(&self) -> VaultStatus {
        let now = self.shared.clock.now();
        let generation = self
            .shared
            .token_tx
            .borrow()
            .as_ref()
            .map_or(0, |t| t.generation);
        let c = self
            .shared
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let expired = c.token_expires_at.is_some_and(|at| at <= now);
        let health = if c.stopped {
            VaultHealth::Stopped
        } else if generation == 0 || expired {
            if c.login_failures + c.renewal_failures == 0 {
                VaultHealth::Starting
            } else {
                VaultHealth::Unhealthy
            }
        } else if c.consecutive_failures > 0 {
            VaultHealth::Degraded
        } else {
            VaultHealth::Healthy
        };
        VaultStatus {
            health,
            method: self.shared.auth.name().to_owned(),
            generation,
            logins: c.logins,
            relogins: c.relogins,
            renewals: c.renewals,
            login_failures: c.login_failures,
            renewal_failures: c.renewal_failures,
            consecutive_failures: c.consecutive_failures,
            last_login_at: c.last_login_at,
            last_renewal_at: c.last_renewal_at,
            token_expires_at: c.token_expires_at,
            token_ttl_remaining: c.token_expires_at.map(|at| remaining(now, at)),
            last_error: c.last_error.clone(),
            last_error_at: c.last_error_at,
            next_step: if c.stopped { "stopped" } else { c.next_step },
            next_step_at: c.next_step_at,
        }
    }

    /// The KV v2 engine mounted at `mount`, used with this session's token.
    pub fn kv2(&self, mount: &str) -> Result<super::Kv2, VaultError> {
        super::Kv2::new(self.clone(), mount)
    }

    /// The database engine mounted at `mount`, used with this session's token.
    pub fn database(&self, mount: &str) -> Result<super::Database, VaultError> {
        super::Database::new(self.clone(), mount)
    }

    /// Lease operations (`sys/leases`) with this session's token.
    pub fn leases(&self) -> super::Leases {
        super::Leases::new(self.clone())
    }

    /// The session's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.shared.clock
    }

    /// The connection (address, TLS, timeouts).
    pub fn connection(&self) -> &VaultConnection {
        &self.shared.connection
    }

    /// The renewal policy (lease loops use it too).
    pub fn renewal_policy(&self) -> &RenewalPolicy {
        &self.shared.policy
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.shared.request_timeout
    }

    fn not_ready(&self) -> VaultError {
        let c = self
            .shared
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if c.stopped {
            return VaultError::Closed;
        }
        VaultError::NotReady {
            reason: c
                .last_error
                .clone()
                .unwrap_or_else(|| "first login in progress".to_owned()),
        }
    }

    /// The token to use for a request: the current one, or the first one within the request
    /// timeout.
    async fn token_for_call(&self) -> Result<Arc<SessionToken>, VaultError> {
        match self.current() {
            Ok(token) => Ok(token),
            Err(VaultError::NotReady { .. }) => self.ready(self.shared.request_timeout).await,
            Err(other) => Err(other),
        }
    }

    /// Sends a request with the current token. A 403 is retried once when a newer token
    /// exists, or when ours has expired by our clock (after asking for a new login): the
    /// answer to a token replaced mid-request, not to a policy refusal.
    pub(crate) async fn call<T, F>(&self, make: F) -> Result<Envelope<T>, VaultError>
    where
        T: DeserializeOwned + Send + Sync,
        F: Fn() -> Result<RawRequest<T>, VaultError>,
    {
        self.call_tracked(make).await.map(|(envelope, _)| envelope)
    }

    /// [`VaultSession::call`], also returning the generation of the token that succeeded (a
    /// lease belongs to that token).
    pub(crate) async fn call_tracked<T, F>(&self, make: F) -> Result<(Envelope<T>, u64), VaultError>
    where
        T: DeserializeOwned + Send + Sync,
        F: Fn() -> Result<RawRequest<T>, VaultError>,
    {
        let token = self.token_for_call().await?;
        let error = match raw::call(token.client(), make()?).await {
            Ok(envelope) => return Ok((envelope, token.generation)),
            Err(error) => error,
        };
        if !error.is_permission_denied() {
            return Err(error);
        }
        let newer = match self.current() {
            Ok(current) if current.generation != token.generation => current,
            _ if self.token_is_dead(&token).await => {
                tracing::warn!(
                    generation = token.generation,
                    "Vault token no longer valid before the loop replaced it: logging in again"
                );
                self.relogin_now();
                match self.newer_than(token.generation).await {
                    Some(newer) => newer,
                    None => return Err(error),
                }
            }
            _ => return Err(error),
        };
        tracing::debug!(
            generation = newer.generation,
            "retrying with the newer Vault token"
        );
        let envelope = raw::call(newer.client(), make()?).await?;
        Ok((envelope, newer.generation))
    }

    /// After a 403: is it the token (expired, revoked) rather than the policy? Our own expiry
    /// estimate cannot tell, because Vault counts the max TTL from a creation time truncated to
    /// the second and rounds granted TTLs up; so ask Vault.
    async fn token_is_dead(&self, token: &SessionToken) -> bool {
        let request =
            RawRequest::<serde_json::Value>::new(RequestMethod::GET, "auth/token/lookup-self");
        matches!(
            raw::call(token.client(), request).await,
            Err(VaultError::PermissionDenied { .. })
        )
    }

    /// Waits up to the request timeout for a token newer than `generation`.
    async fn newer_than(&self, generation: u64) -> Option<Arc<SessionToken>> {
        let mut rx = self.shared.token_tx.subscribe();
        let deadline = self.shared.clock.sleep(delta(self.shared.request_timeout));
        tokio::select! {
            token = rx.wait_for(|t| t.as_ref().is_some_and(|t| t.generation > generation)) => {
                token.ok().and_then(|t| t.clone())
            }
            () = deadline => None,
        }
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Login,
    Renew,
}

/// Why a wait ended.
enum Wake {
    Due,
    ReloginRequested,
    Shutdown,
}

/// State of the current token inside the loop.
struct Current {
    ttl: Duration,
    expires_at: Option<DateTime<Utc>>,
    increment: Duration,
    renewable: bool,
}

async fn identity_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut failures: u32 = 0;
    let mut step = Step::Login;
    let mut current: Option<Current> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wake = match step {
            Step::Login => match shared.login().await {
                Ok(login) => {
                    failures = 0;
                    let next = shared.schedule_after(login.ttl, login.renewable);
                    current = Some(login);
                    shared.wait(next, &mut shutdown).await
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff_delay(failures, &shared.policy, random_unit());
                    let at = add(shared.clock.now(), delay);
                    shared.record_failure(&error, false, Step::Login, at, failures);
                    shared.wait(at, &mut shutdown).await
                }
            },
            Step::Renew => {
                let Some(token) = current.as_mut() else {
                    step = Step::Login;
                    continue;
                };
                match shared.renew(token).await {
                    Ok(RenewalDecision::Continue) => {
                        let ttl = token
                            .expires_at
                            .map_or(Duration::ZERO, |at| remaining(shared.clock.now(), at));
                        let next = shared.schedule_after(ttl, true);
                        shared.wait(next, &mut shutdown).await
                    }
                    Ok(decision) => {
                        tracing::info!(
                            method = shared.auth.name(),
                            ?decision,
                            "Vault token cannot be extended further: logging in again"
                        );
                        Wake::ReloginRequested
                    }
                    Err(error) => {
                        // Renewal failed (token revoked or expired, Vault down, …): log in again
                        // from the original credential; the login backs off if that fails too.
                        failures = failures.saturating_add(1);
                        let now = shared.clock.now();
                        shared.record_failure(&error, true, Step::Login, now, failures);
                        Wake::ReloginRequested
                    }
                }
            }
        };
        step = match wake {
            Wake::Shutdown => break,
            Wake::ReloginRequested => Step::Login,
            Wake::Due => match &current {
                Some(token) if token.renewable && token.expires_at.is_some() => {
                    if step == Step::Login && failures > 0 {
                        Step::Login
                    } else {
                        Step::Renew
                    }
                }
                _ => Step::Login,
            },
        };
    }
    let mut c = shared
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    c.stopped = true;
    c.next_step_at = None;
    tracing::info!(method = shared.auth.name(), "Vault identity loop stopped");
}

impl Shared {
    /// Logs in and publishes the token when it is new.
    async fn login(&self) -> Result<Current, VaultError> {
        let started = self.clock.now();
        let method = self.auth.name().to_owned();
        let result: LoginResult = self
            .auth
            .login(&self.connection)
            .await
            .map_err(|e| match e {
                VaultError::Login { .. } => e,
                other => VaultError::login(&method, other),
            })?;
        let client = self.connection.authenticated(&result.token)?;
        let expires_at = (!result.ttl.is_zero()).then(|| add(started, result.ttl));
        let previous = self.token_tx.borrow().clone();
        let same_token = previous.as_ref().is_some_and(|p| p.token == result.token);
        let generation = match &previous {
            Some(p) if same_token => p.generation,
            Some(p) => p.generation + 1,
            None => 1,
        };
        {
            let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            c.logins += 1;
            if previous.is_some() && !same_token {
                c.relogins += 1;
            }
            c.consecutive_failures = 0;
            c.last_login_at = Some(started);
            c.token_expires_at = expires_at;
        }
        // Published after the status is updated, so a subscriber woken by it sees both.
        if !same_token {
            let token = SessionToken {
                generation,
                client,
                token: result.token.clone(),
                method: method.clone(),
                obtained_at: started,
                ttl: result.ttl,
                renewable: result.renewable,
                policies: result.policies.clone(),
            };
            self.token_tx.send_replace(Some(Arc::new(token)));
        }
        metrics::counter!("gha_auth_vault_logins_total", "method" => method.clone(), "result" => "ok")
            .increment(1);
        metrics::gauge!("gha_auth_vault_consecutive_failures").set(0.0);
        record_expiry(expires_at);
        tracing::info!(
            method = %method,
            generation,
            new_token = !same_token,
            ttl_secs = result.ttl.as_secs(),
            renewable = result.renewable,
            policies = ?result.policies,
            "logged in to Vault"
        );
        Ok(Current {
            ttl: result.ttl,
            expires_at,
            increment: if result.renew_increment.is_zero() {
                result.ttl
            } else {
                result.renew_increment
            },
            renewable: result.renewable,
        })
    }

    /// Renews the current token and decides whether renewing still works.
    async fn renew(&self, current: &mut Current) -> Result<RenewalDecision, VaultError> {
        let token = self.token_tx.borrow().clone().ok_or(VaultError::NotReady {
            reason: "no token to renew".to_owned(),
        })?;
        let started = self.clock.now();
        let requested = current.increment;
        #[derive(Serialize)]
        struct Renew {
            increment: String,
        }
        let body = Renew {
            increment: format!("{}s", requested.as_secs().max(1)),
        };
        let request = RawRequest::<serde_json::Value>::with_body(
            RequestMethod::POST,
            "auth/token/renew-self",
            &body,
        )?;
        let result = raw::call(token.client(), request)
            .await
            .and_then(|envelope| {
                envelope.auth.ok_or_else(|| VaultError::InvalidResponse {
                    path: "auth/token/renew-self".to_owned(),
                    detail: "renewal response has no auth block".to_owned(),
                })
            });
        let auth = match result {
            Ok(auth) => auth,
            // OpenBao/Vault answer HTTP 500 "past the max TTL, cannot renew" once the max TTL
            // (counted from the creation time truncated to the second) has passed: that is the
            // max TTL reached, not an outage.
            Err(VaultError::Unavailable { message, .. })
                if message.contains("past the max TTL") =>
            {
                return Ok(RenewalDecision::MaxTtlReached);
            }
            Err(error) => {
                metrics::counter!("gha_auth_vault_token_renewals_total", "result" => "error")
                    .increment(1);
                return Err(error);
            }
        };
        let granted = Duration::from_secs(auth.lease_duration);
        let previous_expiry = current.expires_at.unwrap_or(started);
        let new_expiry = add(started, granted);
        let decision = renewal_decision(requested, granted, previous_expiry, new_expiry);
        current.expires_at = Some(new_expiry);
        current.renewable = auth.renewable;
        {
            let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            c.renewals += 1;
            c.consecutive_failures = 0;
            c.last_renewal_at = Some(started);
            c.token_expires_at = Some(new_expiry);
        }
        metrics::counter!("gha_auth_vault_token_renewals_total", "result" => "ok").increment(1);
        metrics::gauge!("gha_auth_vault_consecutive_failures").set(0.0);
        record_expiry(Some(new_expiry));
        tracing::debug!(
            generation = token.generation,
            requested_secs = requested.as_secs(),
            granted_secs = granted.as_secs(),
            ?decision,
            "renewed the Vault token"
        );
        if !auth.renewable && decision == RenewalDecision::Continue {
            return Ok(RenewalDecision::NotGrowing);
        }
        Ok(decision)
    }

    /// When to act next for a token with `ttl` left; records it in the status.
    fn schedule_after(&self, ttl: Duration, renewable: bool) -> DateTime<Utc> {
        let now = self.clock.now();
        let (step, delay) = if ttl.is_zero() {
            ("idle", self.policy.idle_check_interval)
        } else {
            (
                if renewable { "renew" } else { "login" },
                renew_delay(ttl, &self.policy, random_unit()),
            )
        };
        let at = add(now, delay);
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        c.next_step = step;
        c.next_step_at = Some(at);
        at
    }

    fn record_failure(
        &self,
        error: &VaultError,
        renewal: bool,
        next: Step,
        next_at: DateTime<Utc>,
        consecutive: u32,
    ) {
        let now = self.clock.now();
        let method = self.auth.name().to_owned();
        {
            let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            if renewal {
                c.renewal_failures += 1;
            } else {
                c.login_failures += 1;
            }
            c.consecutive_failures = consecutive;
            c.last_error = Some(error.to_string());
            c.last_error_at = Some(now);
            c.next_step = if next == Step::Login {
                "login"
            } else {
                "renew"
            };
            c.next_step_at = Some(next_at);
        }
        let what = if renewal { "renewal" } else { "login" };
        if !renewal {
            metrics::counter!("gha_auth_vault_logins_total", "method" => method.clone(), "result" => "error")
                .increment(1);
        }
        metrics::gauge!("gha_auth_vault_consecutive_failures").set(f64::from(consecutive));
        tracing::warn!(
            method = %method,
            what,
            consecutive_failures = consecutive,
            retry_at = %next_at,
            error = %error,
            kind = error.kind(),
            "Vault {what} failed"
        );
    }

    /// Sleeps until `deadline`, a re-login request or shutdown.
    async fn wait(&self, deadline: DateTime<Utc>, shutdown: &mut watch::Receiver<bool>) -> Wake {
        tokio::select! {
            () = self.clock.sleep_until(deadline) => Wake::Due,
            () = self.relogin.notified() => Wake::ReloginRequested,
            _ = shutdown.wait_for(|stop| *stop) => Wake::Shutdown,
        }
    }
}

fn record_expiry(expires_at: Option<DateTime<Utc>>) {
    if let Some(at) = expires_at {
        metrics::gauge!("gha_auth_vault_token_expiry_timestamp_seconds").set(at.timestamp() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::vault::auth::LoginResult;
    use crate::vault::config::{AuthConfig, CredentialSource};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A method that always fails, counting its calls.
    #[derive(Debug, Default)]
    struct Failing(AtomicU32);

    #[async_trait::async_trait]
    impl AuthMethod for Failing {
        fn name(&self) -> &str {
            "failing"
        }
        async fn login(&self, _: &VaultConnection) -> Result<LoginResult, VaultError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(VaultError::Unreachable {
                path: "auth/x/login".into(),
                reason: "refused".into(),
            })
        }
    }

    /// A method that hands out tokens with no expiry, without Vault.
    #[derive(Debug, Default)]
    struct Fixed(AtomicU32);

    #[async_trait::async_trait]
    impl AuthMethod for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        async fn login(&self, _: &VaultConnection) -> Result<LoginResult, VaultError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(LoginResult::new(
                SecretString::new(format!("s.token-{n}")),
                Duration::ZERO,
                false,
            ))
        }
    }

    fn config() -> VaultConfig {
        VaultConfig::new(
            "http://127.0.0.1:9",
            AuthConfig::token(CredentialSource::value("x")),
        )
        .with_renewal(
            RenewalPolicy::default().with_backoff(Duration::from_secs(1), Duration::from_secs(8)),
        )
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn failing_logins_back_off_and_stay_visible() {
        let clock = ManualClock::at_unix(1_000_000);
        let method = Arc::new(Failing::default());
        let session =
            VaultSession::start_with_method(&config(), method.clone(), clock.shared()).unwrap();
        settle().await;
        assert_eq!(method.0.load(Ordering::SeqCst), 1);
        let status = session.status();
        assert_eq!(status.health, VaultHealth::Unhealthy);
        assert!(
            status
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("refused"),
            "{status:?}"
        );
        assert_eq!(status.next_step, "login");

        // Backoff doubles: ~1, 2, 4, 8, 8 s (minus up to 20 % jitter). Advancing 0.5 s at a
        // time for 30 s must give about 1 + 30/8·… attempts, not hundreds.
        for _ in 0..60 {
            clock.advance(TimeDelta::milliseconds(500));
            settle().await;
        }
        let attempts = method.0.load(Ordering::SeqCst);
        assert!((5..=9).contains(&attempts), "{attempts} attempts in 30 s");
        assert_eq!(session.status().consecutive_failures, attempts);
        let error = session.current().unwrap_err();
        assert!(matches!(error, VaultError::NotReady { .. }), "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
        session.shutdown();
        settle().await;
        assert_eq!(session.status().health, VaultHealth::Stopped);
    }

    #[tokio::test]
    async fn relogin_now_publishes_a_new_generation() {
        let clock = ManualClock::at_unix(1_000_000);
        let session =
            VaultSession::start_with_method(&config(), Arc::new(Fixed::default()), clock.shared())
                .unwrap();
        let first = session.ready(Duration::from_secs(5)).await.unwrap();
        assert_eq!(first.generation(), 1);
        let mut rx = session.subscribe();
        rx.borrow_and_update();
        session.relogin_now();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        let second = session.current().unwrap();
        assert_eq!(second.generation(), 2);
        assert_ne!(first.token(), second.token());
        let status = session.status();
        assert_eq!(status.health, VaultHealth::Healthy);
        assert_eq!((status.logins, status.relogins), (2, 1));
        assert_eq!(status.next_step, "idle");
        let debug = format!("{second:?} {session:?} {status:?}");
        assert!(!debug.contains("s.token-"), "{debug}");
    }

    #[tokio::test]
    async fn ready_times_out_on_the_session_clock() {
        let clock = ManualClock::at_unix(1_000_000);
        let session = VaultSession::start_with_method(
            &config(),
            Arc::new(Failing::default()),
            clock.shared(),
        )
        .unwrap();
        let waiter = tokio::spawn({
            let session = session.clone();
            async move { session.ready(Duration::from_secs(10)).await }
        });
        settle().await;
        clock.advance(TimeDelta::seconds(11));
        let result = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(result, Err(VaultError::NotReady { .. })));
    }

    /// A `MakeWriter` collecting everything logged.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn tokens_never_reach_the_logs() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(capture.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let clock = ManualClock::at_unix(1_000_000);
        let session =
            VaultSession::start_with_method(&config(), Arc::new(Fixed::default()), clock.shared())
                .unwrap();
        session.ready(Duration::from_secs(5)).await.unwrap();
        let mut rx = session.subscribe();
        for _ in 0..3 {
            rx.borrow_and_update();
            session.relogin_now();
            tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .unwrap()
                .unwrap();
        }
        tracing::info!(status = ?session.status(), token = ?session.current().unwrap(), "done");
        session.shutdown();
        settle().await;
        let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("logged in to Vault"), "{logs}");
        assert!(logs.contains("generation=4"), "{logs}");
        assert!(!logs.contains("s.token-"), "{logs}");
    }

    #[test]
    fn start_outside_a_runtime_is_an_error() {
        let result = VaultSession::start(&config(), crate::SystemClock::shared());
        assert!(matches!(result, Err(VaultError::Config(_))));
    }
}
