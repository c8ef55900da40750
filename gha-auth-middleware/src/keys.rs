//! Where verification keys come from: the authority's JWKS URL, or local keys.
//!
//! # Remote JWKS
//!
//! [`RemoteJwks`] fetches `GET {authority}/.well-known/jwks.json` and keeps it current:
//!
//! - **background refresh** when the set's freshness ends: `Cache-Control: max-age`, bounded by
//!   [`RefreshPolicy`] (default 30 s ≤ max-age ≤ 1 h; 5 min without one), a little early, with a
//!   conditional GET (`If-None-Match`);
//! - **unknown `kid`**: one refetch at a time (single flight: concurrent requests wait for the
//!   fetch in progress instead of starting their own), and at most one fetch per **cooldown**
//!   (default 30 s) counting every fetch. A flood of random `kid`s therefore costs the authority
//!   at most one request per cooldown, and a request for an unknown key during the cooldown is
//!   refused at once;
//! - **stale-if-error**: when a refresh fails, the last good set stays in use for
//!   `max_stale` (default 6 h) past its freshness, retried with backoff; past it no key is usable
//!   and tokens are refused with `401 invalid_token` (reason logged, `/HealthCheck` unhealthy);
//! - **lenient parsing**: keys of unknown type, curve, algorithm or use are skipped, never fatal;
//!   a set with no usable key at all counts as a failed refresh (the old keys stay);
//! - the new set replaces the old one in one step, and cached verified tokens signed by keys
//!   that left the set are dropped at that moment.
//!
//! All time comes from the injected clock, so rotation is testable with a manual clock.
//!
//! # Local keys
//!
//! [`LocalKeys`] holds a fixed key set from code, a JWKS document or a JWKS file.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::keys::{JwkSet, VerifyingKey};
/// The default JWKS refresh bounds, shared with the authority's key-schedule checks (`gha-auth
/// config check` refuses a schedule this middleware cannot follow).
pub use gha_auth::keys::{
    VERIFIER_MAX_REFRESH_INTERVAL, VERIFIER_MIN_REFRESH_INTERVAL, VERIFIER_UNKNOWN_KID_COOLDOWN,
    verifier_key_lag,
};
use gha_auth::{SharedClock, SystemClock};
use http::{HeaderValue, StatusCode};
use url::Url;

use crate::cache::TokenCache;
use crate::error::ConfigError;
use crate::fetch::{self, Freshness, RefreshPolicy, TaskGuard, delta};
use crate::health::{ComponentHealth, HealthStatus};
use crate::metrics as m;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The keys in use at one moment.
#[derive(Clone)]
pub(crate) struct KeySet {
    keys: HashMap<String, VerifyingKey>,
    pub(crate) freshness: Option<Freshness>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("KeySet")
            .field("kids", &kids)
            .field("freshness", &self.freshness)
            .finish()
    }
}

impl KeySet {
    fn empty() -> Self {
        Self {
            keys: HashMap::new(),
            freshness: None,
        }
    }

    fn new(keys: Vec<VerifyingKey>, freshness: Freshness) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| (key.kid().to_owned(), key))
            .collect();
        Self {
            keys,
            freshness: Some(freshness),
        }
    }

    /// The key with this id (whether the set is still usable is the caller's check).
    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub(crate) fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub(crate) fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.freshness.is_some_and(|f| f.is_usable(now))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// A source of verification keys for [`crate::AuthLayer`]. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KeySource {
    /// The authority's JWKS over HTTP(S).
    Remote(RemoteJwks),
    /// A fixed set of keys.
    Local(LocalKeys),
}

impl From<RemoteJwks> for KeySource {
    fn from(remote: RemoteJwks) -> Self {
        KeySource::Remote(remote)
    }
}

impl From<LocalKeys> for KeySource {
    fn from(local: LocalKeys) -> Self {
        KeySource::Local(local)
    }
}

impl KeySource {
    /// The keys in use now.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        match self {
            KeySource::Remote(remote) => remote.inner.current(),
            KeySource::Local(local) => Arc::clone(&local.set),
        }
    }

    /// Unix second until which the current set is usable (`i64::MAX`: always).
    pub(crate) fn usable_until(&self) -> i64 {
        match self {
            KeySource::Remote(remote) => remote.inner.usable_until.load(Ordering::Acquire),
            KeySource::Local(_) => i64::MAX,
        }
    }

    /// The keys after a refetch for the unknown `kid`, if the cooldown allows one.
    pub(crate) async fn refetch_for_unknown(&self, kid: &str) -> Arc<KeySet> {
        match self {
            KeySource::Remote(remote) => remote.inner.refetch_for_unknown(kid).await,
            KeySource::Local(local) => Arc::clone(&local.set),
        }
    }

    /// Tells the source to drop cached tokens of keys that leave the set.
    pub(crate) fn register_cache(&self, cache: &Arc<TokenCache>) {
        if let KeySource::Remote(remote) = self {
            remote
                .inner
                .caches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::downgrade(cache));
        }
    }

    /// The key set's state for `/HealthCheck`.
    pub fn health(&self, now: DateTime<Utc>) -> ComponentHealth {
        match self {
            KeySource::Remote(remote) => remote.health(now),
            KeySource::Local(local) => ComponentHealth::new(HealthStatus::Healthy)
                .with("source", "local")
                .with("keys", local.set.len()),
        }
    }

    /// Waits until a key set is loaded, at most `timeout`; `false` if none was.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        match self {
            KeySource::Remote(remote) => remote.wait_loaded(timeout).await,
            KeySource::Local(_) => true,
        }
    }
}

/// A fixed set of verification keys.
#[derive(Clone)]
pub struct LocalKeys {
    set: Arc<KeySet>,
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LocalKeys").field(&self.set).finish()
    }
}

impl LocalKeys {
    /// These keys (at least one).
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self, ConfigError> {
        let keys: Vec<VerifyingKey> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(ConfigError::Keys("no verification key given".into()));
        }
        // The time is irrelevant: local keys never go stale.
        let freshness = Freshness::forever(DateTime::<Utc>::UNIX_EPOCH);
        Ok(Self {
            set: Arc::new(KeySet::new(keys, freshness)),
        })
    }

    /// The usable keys of a JWKS document (others are skipped; none usable is an error).
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, ConfigError> {
        let parsed = JwkSet::parse_lenient(json)
            .map_err(|e| ConfigError::Keys(format!("not a JWK set: {e}")))?;
        if parsed.skipped > 0 {
            tracing::warn!(
                skipped = parsed.skipped,
                "local JWKS: skipped unusable keys"
            );
        }
        Self::new(parsed.keys)
    }

    /// The usable keys of a JWKS file.
    pub fn from_jwks_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let json = std::fs::read(path)
            .map_err(|e| ConfigError::Keys(format!("cannot read {}: {e}", path.display())))?;
        Self::from_jwks_json(&json)
    }

    /// The keys of a JWK set held in code.
    pub fn from_jwk_set(set: &JwkSet) -> Result<Self, ConfigError> {
        let json = set
            .to_json()
            .map_err(|e| ConfigError::Keys(e.to_string()))?;
        Self::from_jwks_json(&json)
    }
}

/// Builds a [`RemoteJwks`].
#[derive(Debug)]
pub struct RemoteJwksBuilder {
    url: String,
    policy: RefreshPolicy,
    cooldown: Duration,
    wait_for_fetch: Duration,
    timeout: Duration,
    clock: SharedClock,
    client: Option<reqwest::Client>,
    accept_plain_http: bool,
}

impl RemoteJwksBuilder {
    /// Refresh bounds and stale-if-error window (see [`RefreshPolicy`]).
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// At most one fetch per this long for unknown `kid`s (default 30 s).
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long a request with an unknown `kid` waits for a fetch in flight (default 5 s).
    pub fn max_wait_for_fetch(mut self, wait: Duration) -> Self {
        self.wait_for_fetch = wait;
        self
    }

    /// Timeout of each fetch (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The HTTP client (default: rustls, no redirects, the timeout above).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Allows a plain-HTTP JWKS URL to a non-loopback host (behind a TLS-terminating proxy you
    /// trust). Off by default.
    pub fn danger_accept_plain_http(mut self, accept: bool) -> Self {
        self.accept_plain_http = accept;
        self
    }

    /// Checks the settings and starts fetching in the background (needs a Tokio runtime).
    /// Requests are refused until the first set is loaded; see [`RemoteJwks::wait_loaded`].
    pub fn build(self) -> Result<RemoteJwks, ConfigError> {
        self.policy.validate("JWKS refresh policy")?;
        let url = fetch::check_url(&self.url, self.accept_plain_http)?;
        let client = fetch::client_or_default(self.client, self.timeout)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let inner = Arc::new(RemoteInner {
            url,
            policy: self.policy,
            cooldown: delta(self.cooldown),
            wait_for_fetch: self.wait_for_fetch,
            clock: self.clock,
            client,
            set: RwLock::new(Arc::new(KeySet::empty())),
            usable_until: AtomicI64::new(i64::MIN),
            fetch_lock: tokio::sync::Mutex::new(()),
            status: Mutex::new(FetchStatus::default()),
            fetched: tokio::sync::Notify::new(),
            caches: Mutex::new(Vec::new()),
        });
        let task = runtime.spawn(refresh_loop(Arc::clone(&inner)));
        Ok(RemoteJwks {
            inner,
            _task: Arc::new(TaskGuard(task.abort_handle())),
        })
    }
}

/// The authority's JWKS, fetched and refreshed in the background. See the [module docs](self).
#[derive(Clone)]
pub struct RemoteJwks {
    inner: Arc<RemoteInner>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.inner.url.as_str())
            .field("keys", &self.inner.current())
            .finish()
    }
}

impl RemoteJwks {
    /// A builder for the JWKS at `url` (e.g. `https://auth.gha.example/.well-known/jwks.json`).
    pub fn builder(url: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder {
            url: url.into(),
            policy: RefreshPolicy::default(),
            cooldown: VERIFIER_UNKNOWN_KID_COOLDOWN,
            wait_for_fetch: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            clock: SystemClock::shared(),
            client: None,
            accept_plain_http: false,
        }
    }

    /// Waits until a key set is loaded, at most `timeout` (real time); `false` if none was.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let fetched = self.inner.fetched.notified();
        if self.inner.current().freshness.is_some() {
            return true;
        }
        let _ = tokio::time::timeout(timeout, fetched).await;
        self.inner.current().freshness.is_some()
    }

    /// Fetches now, whatever the schedule and cooldown say (operators' "reload keys").
    pub async fn refresh_now(&self) -> Result<(), String> {
        let _guard = self.inner.fetch_lock.lock().await;
        self.inner.fetch(Trigger::Manual).await
    }

    /// The key set's state for `/HealthCheck`.
    pub fn health(&self, now: DateTime<Utc>) -> ComponentHealth {
        let set = self.inner.current();
        let status = self
            .inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (state, freshness) = match set.freshness {
            None => (HealthStatus::Unhealthy, None),
            Some(f) if !f.is_usable(now) => (HealthStatus::Unhealthy, Some(f)),
            Some(f) if !f.is_fresh(now) || status.failures > 0 => (HealthStatus::Degraded, Some(f)),
            Some(f) => (HealthStatus::Healthy, Some(f)),
        };
        let mut health = ComponentHealth::new(state)
            .with("source", self.inner.url.as_str())
            .with("keys", set.len());
        if let Some(f) = freshness {
            let age = (now - f.fetched_at).num_seconds();
            metrics::gauge!(m::JWKS_AGE_SECONDS).set(age as f64);
            health = health.with("age_seconds", age).with(
                "fresh_for_seconds",
                (f.fresh_until - now).num_seconds().max(0),
            );
            if let Some(until) = f.usable_until {
                health = health.with("usable_for_seconds", (until - now).num_seconds().max(0));
            }
        }
        if status.failures > 0 {
            health = health.with("consecutive_failures", status.failures);
        }
        if let Some(error) = status.last_error {
            health = health.with("last_error", error);
        }
        health
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Initial,
    Scheduled,
    UnknownKid,
    Manual,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Scheduled => "scheduled",
            Trigger::UnknownKid => "unknown_kid",
            Trigger::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct FetchStatus {
    /// When the last fetch (of any kind, successful or not) started: the cooldown's origin.
    last_attempt: Option<DateTime<Utc>>,
    etag: Option<HeaderValue>,
    failures: u32,
    last_error: Option<String>,
}

struct RemoteInner {
    url: Url,
    policy: RefreshPolicy,
    cooldown: TimeDelta,
    wait_for_fetch: Duration,
    clock: SharedClock,
    client: reqwest::Client,
    set: RwLock<Arc<KeySet>>,
    /// `usable_until` of the current set in Unix seconds, for the cache-hit path.
    usable_until: AtomicI64,
    /// Held for the duration of a fetch: the single flight.
    fetch_lock: tokio::sync::Mutex<()>,
    status: Mutex<FetchStatus>,
    fetched: tokio::sync::Notify,
    caches: Mutex<Vec<Weak<TokenCache>>>,
}

impl RemoteInner {
    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn in_cooldown(&self, now: DateTime<Utc>) -> bool {
        let status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status
            .last_attempt
            .is_some_and(|last| now < last + self.cooldown)
    }

    async fn refetch_for_unknown(&self, kid: &str) -> Arc<KeySet> {
        // A fetch in flight may bring the key: wait for it (bounded), never start a second one.
        let Ok(guard) = self.fetch_lock.try_lock() else {
            let _ = tokio::time::timeout(self.wait_for_fetch, self.fetch_lock.lock()).await;
            return self.current();
        };
        let current = self.current();
        if current.contains(kid) || self.in_cooldown(self.clock.now()) {
            return current;
        }
        if let Err(error) = self.fetch(Trigger::UnknownKid).await {
            tracing::warn!(%error, "JWKS refetch for an unknown kid failed");
        }
        drop(guard);
        self.current()
    }

    /// One fetch; the caller holds `fetch_lock`.
    async fn fetch(&self, trigger: Trigger) -> Result<(), String> {
        let started = self.clock.now();
        let etag = {
            let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            status.last_attempt = Some(started);
            // Only revalidate when there is a set to keep.
            if self.current().freshness.is_some() {
                status.etag.clone()
            } else {
                None
            }
        };
        let result = self.fetch_once(etag.as_ref()).await;
        let now = self.clock.now();
        let outcome = match result {
            Ok((keys, fetched)) => {
                let freshness = Freshness::new(
                    now,
                    self.policy.fresh_for(fetched.cache),
                    delta(self.policy.max_stale),
                );
                let label = if keys.is_some() {
                    "success"
                } else {
                    "not_modified"
                };
                self.install(keys, freshness);
                let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
                status.etag = fetched.etag;
                status.failures = 0;
                status.last_error = None;
                metrics::gauge!(m::JWKS_LAST_SUCCESS).set(now.timestamp() as f64);
                metrics::gauge!(m::JWKS_AGE_SECONDS).set(0.0);
                (label, Ok(()))
            }
            Err(error) => {
                let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
                status.failures = status.failures.saturating_add(1);
                status.last_error = Some(error.clone());
                tracing::warn!(url = %self.url, %error, failures = status.failures,
                    trigger = trigger.label(),
                    "JWKS fetch failed; the last good keys stay in use while they are usable");
                ("failure", Err(error))
            }
        };
        metrics::counter!(m::JWKS_FETCH, "result" => outcome.0, "trigger" => trigger.label())
            .increment(1);
        self.fetched.notify_waiters();
        outcome.1
    }

    async fn fetch_once(
        &self,
        etag: Option<&HeaderValue>,
    ) -> Result<(Option<Vec<VerifyingKey>>, fetch::Fetched), String> {
        let fetched = fetch::get(&self.client, &self.url, etag, None, MAX_JWKS_BYTES).await?;
        match fetched.status {
            StatusCode::NOT_MODIFIED if etag.is_some() => Ok((None, fetched)),
            StatusCode::OK => {
                let parsed = JwkSet::parse_lenient(&fetched.body)
                    .map_err(|e| format!("not a JWK set: {e}"))?;
                if parsed.skipped > 0 {
                    tracing::debug!(skipped = parsed.skipped, "JWKS: skipped unusable keys");
                }
                if parsed.keys.is_empty() {
                    return Err(format!(
                        "JWKS has no usable key ({} skipped); keeping the old set",
                        parsed.skipped
                    ));
                }
                Ok((Some(parsed.keys), fetched))
            }
            status => Err(format!("JWKS endpoint answered {status}")),
        }
    }

    /// Installs new keys (or renews the freshness of the current ones) in one step.
    fn install(&self, keys: Option<Vec<VerifyingKey>>, freshness: Freshness) {
        let (new, removed) = {
            let mut slot = self.set.write().unwrap_or_else(PoisonError::into_inner);
            let new = match keys {
                Some(keys) => KeySet::new(keys, freshness),
                None => KeySet {
                    keys: slot.keys.clone(),
                    freshness: Some(freshness),
                },
            };
            let removed = slot.keys.keys().any(|kid| !new.contains(kid));
            let new = Arc::new(new);
            *slot = Arc::clone(&new);
            (new, removed)
        };
        let until = freshness.usable_until.map_or(i64::MAX, |u| u.timestamp());
        self.usable_until.store(until, Ordering::Release);
        metrics::gauge!(m::JWKS_KEYS).set(new.len() as f64);
        if removed {
            let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
            caches.retain(|cache| match cache.upgrade() {
                Some(cache) => {
                    cache.retain(|token| new.contains(&token.kid));
                    true
                }
                None => false,
            });
        }
    }

    /// When the scheduled refresh is due.
    fn next_refresh(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let status = self
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let set = self.current();
        match (set.freshness, status.failures) {
            (None, 0) => now,
            (Some(f), 0) => {
                // Refresh a little before the freshness ends (up to a tenth of the lifetime,
                // at most 30 s), so the set in use never has to be stale.
                let lifetime = f.fresh_until - f.fetched_at;
                let early = (lifetime / 10).min(TimeDelta::seconds(30));
                f.fresh_until - early
            }
            (_, failures) => {
                let last = status.last_attempt.unwrap_or(now);
                last + self.policy.retry_after(failures)
            }
        }
    }
}

/// Runs until the last [`RemoteJwks`] handle drops and its [`TaskGuard`] aborts it.
async fn refresh_loop(inner: Arc<RemoteInner>) {
    let mut first = true;
    loop {
        let now = inner.clock.now();
        let due = inner.next_refresh(now);
        if due > now {
            let sleep = inner.clock.sleep_until(due);
            let fetched = inner.fetched.notified();
            // Wake at the due time, or when another fetch (unknown kid) changed the schedule.
            tokio::select! {
                () = sleep => {}
                () = fetched => continue,
            }
        }
        let guard = inner.fetch_lock.lock().await;
        // Another fetch may have happened while waiting for the lock.
        let now = inner.clock.now();
        if inner.next_refresh(now) > now {
            continue;
        }
        let trigger = if first {
            Trigger::Initial
        } else {
            Trigger::Scheduled
        };
        first = false;
        let _ = inner.fetch(trigger).await;
        drop(guard);
    }
}
