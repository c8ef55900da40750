//! Link keys from the authority: `GET {authority}/v1/link-keys/{name}`.
//!
//! # Protocol (served by `gha-auth serve`)
//!
//! **Fetch.** `GET {authority}/v1/link-keys/{name}` with `Authorization: Bearer <access token>`
//! (validators must authenticate; the token comes from an [`AccessTokenProvider`]) and
//! `If-None-Match` when an `ETag` was seen. The answer is `200 application/json` in the
//! [`LinkKeySet`] format with `Cache-Control: max-age=<seconds>` and an `ETag`, or `304`:
//!
//! ```json
//! {"name":"epicor","keys":[
//!   {"id":"lk-2026-11","digest":"<64 hex: SHA-256 of the key text>","state":"current","expires_at":null},
//!   {"id":"lk-2026-10","digest":"…","state":"previous","expires_at":"2026-11-02T00:00:00Z"}]}
//! ```
//!
//! `digest` is the SHA-256 of the key's text in lower-case hex (not the server's peppered hash),
//! so a validator can check a presented key without the pepper. `state` is `current`, `pending`
//! or `previous`; `expires_at` (RFC 3339) ends a key even if the list is not refreshed in time.
//!
//! **Report last use.** Every report interval, when a key was accepted since the last report:
//! `POST {authority}/v1/link-keys/{name}/usage` with the same bearer token and
//!
//! ```json
//! {"name":"epicor","validator":"field-service",
//!  "keys":[{"id":"lk-2026-11","last_seen":"2026-11-01T10:00:00Z","uses":42}]}
//! ```
//!
//! `uses` counts acceptances since the validator started. The authority answers `204`. Rotation
//! uses `last_seen` to retire the previous key early once the new one is in use.
//!
//! The list is refreshed on `max-age` (bounded by [`RefreshPolicy`]); when a refresh fails the
//! last good list stays in use for `max_stale` (default 1 h for link keys), then every link key is
//! refused until the authority answers again.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use gha_auth::outbound::join_path;
use gha_auth::{SecretString, SharedClock, SystemClock};
use http::{HeaderValue, StatusCode};
use url::Url;

use super::{LinkKeySet, LinkKeySource, LinkKeyUsage};
use crate::error::ConfigError;
use crate::fetch::{self, Freshness, RefreshPolicy, TaskGuard, delta};
use crate::health::{ComponentHealth, HealthStatus};
use crate::metrics as m;

/// A boxed error from an [`AccessTokenProvider`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the access token a validator presents to the authority.
///
/// Implement it over the consumer token client (client credentials, renewed before expiry), or
/// use [`StaticToken`].
pub trait AccessTokenProvider: Send + Sync + fmt::Debug + 'static {
    /// A currently valid access token.
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, BoxError>>;
}

/// A fixed access token (tests, or a long-lived credential managed elsewhere).
#[derive(Debug, Clone)]
pub struct StaticToken(pub SecretString);

impl AccessTokenProvider for StaticToken {
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, BoxError>> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

const MAX_BODY: usize = 64 * 1024;

/// Builds an [`HttpLinkKeySource`].
#[derive(Debug)]
pub struct HttpLinkKeySourceBuilder {
    authority: String,
    name: String,
    validator: String,
    token: Option<Arc<dyn AccessTokenProvider>>,
    policy: RefreshPolicy,
    report_interval: Duration,
    timeout: Duration,
    clock: SharedClock,
    client: Option<reqwest::Client>,
    accept_plain_http: bool,
}

impl HttpLinkKeySourceBuilder {
    /// The name this validator reports usage under (default `gha-auth-middleware`).
    pub fn validator_name(mut self, name: impl Into<String>) -> Self {
        self.validator = name.into();
        self
    }

    /// Where the bearer token for the authority comes from (none by default).
    pub fn token_provider(mut self, provider: impl AccessTokenProvider) -> Self {
        self.token = Some(Arc::new(provider));
        self
    }

    /// Refresh bounds (default: 30 s to 1 h, 60 s without `max-age`, 1 h stale-if-error).
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How often usage is reported (default 60 s).
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.report_interval = interval;
        self
    }

    /// Timeout of each HTTP call (default 5 s).
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

    /// Allows a plain-HTTP authority on a non-loopback host (behind a TLS-terminating proxy you
    /// trust). Off by default.
    pub fn danger_accept_plain_http(mut self, accept: bool) -> Self {
        self.accept_plain_http = accept;
        self
    }

    /// Checks the settings and starts the refresh task (needs a Tokio runtime).
    pub fn build(self) -> Result<HttpLinkKeySource, ConfigError> {
        let invalid = |reason: &str| ConfigError::LinkKey {
            name: self.name.clone(),
            reason: reason.to_owned(),
        };
        if !super::is_valid_name(&self.name) {
            return Err(invalid("name must be non-empty [A-Za-z0-9_-]"));
        }
        self.policy.validate("link-key refresh policy")?;
        if self.report_interval.is_zero() {
            return Err(invalid("report interval must be positive"));
        }
        let base = fetch::check_url(&self.authority, self.accept_plain_http)?;
        let list_url = join_path(&base, &format!("v1/link-keys/{}", self.name));
        let usage_url = join_path(&base, &format!("v1/link-keys/{}/usage", self.name));
        let client = fetch::client_or_default(self.client, self.timeout)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let inner = Arc::new(Inner {
            name: self.name,
            validator: self.validator,
            list_url,
            usage_url,
            token: self.token,
            policy: self.policy,
            report_interval: self.report_interval,
            clock: self.clock,
            client,
            state: RwLock::new(State::default()),
            usage: LinkKeyUsage::new(),
            reported: Mutex::new(Vec::new()),
            loaded: tokio::sync::Notify::new(),
        });
        let task = runtime.spawn(run(Arc::downgrade(&inner)));
        Ok(HttpLinkKeySource {
            inner,
            _task: Arc::new(TaskGuard(task.abort_handle())),
        })
    }
}

/// Link keys fetched from the authority and refreshed in the background. See the
/// [module docs](self) for the protocol.
#[derive(Clone)]
pub struct HttpLinkKeySource {
    inner: Arc<Inner>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for HttpLinkKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLinkKeySource")
            .field("name", &self.inner.name)
            .field("url", &self.inner.list_url.as_str())
            .finish()
    }
}

struct Inner {
    name: String,
    validator: String,
    list_url: Url,
    usage_url: Url,
    token: Option<Arc<dyn AccessTokenProvider>>,
    policy: RefreshPolicy,
    report_interval: Duration,
    clock: SharedClock,
    client: reqwest::Client,
    state: RwLock<State>,
    usage: LinkKeyUsage,
    /// What was last reported, to skip reports when nothing changed.
    reported: Mutex<Vec<super::KeyUse>>,
    loaded: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    set: Option<Arc<LinkKeySet>>,
    freshness: Option<Freshness>,
    etag: Option<HeaderValue>,
    failures: u32,
    last_error: Option<String>,
}

impl HttpLinkKeySource {
    /// A builder for the integration `name` at the authority's base URL.
    pub fn builder(
        authority: impl Into<String>,
        name: impl Into<String>,
    ) -> HttpLinkKeySourceBuilder {
        HttpLinkKeySourceBuilder {
            authority: authority.into(),
            name: name.into(),
            validator: "gha-auth-middleware".into(),
            token: None,
            policy: RefreshPolicy {
                default_interval: Duration::from_secs(60),
                max_stale: Duration::from_secs(3600),
                ..RefreshPolicy::default()
            },
            report_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            clock: SystemClock::shared(),
            client: None,
            accept_plain_http: false,
        }
    }

    /// Waits until the first list is loaded, at most `timeout`; `false` if it was not.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let loaded = self.inner.loaded.notified();
        if self.keys().is_some() {
            return true;
        }
        tokio::time::timeout(timeout, loaded).await.is_ok() || self.keys().is_some()
    }

    /// Sends the usage report now (it is also sent on a schedule).
    pub async fn report_usage(&self) -> Result<(), String> {
        report(&self.inner, true).await
    }
}

impl LinkKeySource for HttpLinkKeySource {
    fn keys(&self) -> Option<Arc<LinkKeySet>> {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let usable = state
            .freshness
            .is_some_and(|f| f.is_usable(self.inner.clock.now()));
        if usable { state.set.clone() } else { None }
    }

    fn usage(&self) -> &LinkKeyUsage {
        &self.inner.usage
    }

    fn health(&self, now: DateTime<Utc>) -> ComponentHealth {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let (status, freshness) = match state.freshness {
            None => (HealthStatus::Unhealthy, None),
            Some(f) if !f.is_usable(now) => (HealthStatus::Unhealthy, Some(f)),
            Some(f) if !f.is_fresh(now) || state.failures > 0 => (HealthStatus::Degraded, Some(f)),
            Some(f) => (HealthStatus::Healthy, Some(f)),
        };
        let mut health = ComponentHealth::new(status)
            .with("keys", state.set.as_ref().map_or(0, |s| s.keys.len()));
        if let Some(f) = freshness {
            health = health.with("age_seconds", (now - f.fetched_at).num_seconds());
        }
        if let Some(error) = &state.last_error {
            health = health.with("last_error", error.clone());
        }
        health
    }
}

async fn run(weak: Weak<Inner>) {
    let mut next_report: Option<DateTime<Utc>> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let now = inner.clock.now();
        let next_fetch = {
            let state = inner.state.read().unwrap_or_else(PoisonError::into_inner);
            match (state.freshness, state.failures) {
                (None, 0) => now,
                (Some(f), 0) => f.fresh_until,
                (_, failures) => now + inner.policy.retry_after(failures),
            }
        };
        let report_at = *next_report.get_or_insert(now + delta(inner.report_interval));
        let wake = next_fetch.min(report_at);
        let sleep = inner.clock.sleep_until(wake);
        drop(inner);
        sleep.await;
        let Some(inner) = weak.upgrade() else { return };
        let now = inner.clock.now();
        if now >= next_fetch {
            refresh(&inner).await;
        }
        if now >= report_at {
            next_report = Some(now + delta(inner.report_interval));
            if let Err(error) = report(&inner, false).await {
                tracing::warn!(name = %inner.name, %error, "link-key usage report failed");
            }
        }
    }
}

async fn bearer(inner: &Inner) -> Result<Option<SecretString>, String> {
    match &inner.token {
        None => Ok(None),
        Some(provider) => provider
            .access_token()
            .await
            .map(Some)
            .map_err(|e| format!("no access token for the authority: {e}")),
    }
}

async fn refresh(inner: &Inner) {
    let etag = inner
        .state
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .etag
        .clone();
    let result = async {
        let token = bearer(inner).await?;
        let fetched = fetch::get(
            &inner.client,
            &inner.list_url,
            etag.as_ref(),
            token.as_ref(),
            MAX_BODY,
        )
        .await?;
        match fetched.status {
            StatusCode::NOT_MODIFIED => Ok((None, fetched)),
            StatusCode::OK => {
                let set: LinkKeySet = serde_json::from_slice(&fetched.body)
                    .map_err(|e| format!("not a link-key set: {e}"))?;
                if set.name != inner.name {
                    return Err(format!(
                        "answer is for {:?}, not {:?}",
                        set.name, inner.name
                    ));
                }
                Ok((Some(set), fetched))
            }
            status => Err(format!("authority answered {status}")),
        }
    }
    .await;
    let now = inner.clock.now();
    let mut state = inner.state.write().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok((set, fetched)) => {
            let not_modified = set.is_none();
            if let Some(set) = set {
                state.set = Some(Arc::new(set));
            }
            if state.set.is_none() {
                // A 304 before any 200: nothing to keep; fetch again without the ETag.
                state.etag = None;
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some("304 without a cached list".into());
                return;
            }
            state.freshness = Some(Freshness::new(
                now,
                inner.policy.fresh_for(fetched.cache),
                delta(inner.policy.max_stale),
            ));
            state.etag = fetched.etag;
            state.failures = 0;
            state.last_error = None;
            let result = if not_modified {
                "not_modified"
            } else {
                "success"
            };
            metrics::counter!(m::LINK_KEY_FETCH, "name" => inner.name.clone(), "result" => result)
                .increment(1);
            drop(state);
            inner.loaded.notify_waiters();
        }
        Err(error) => {
            state.failures = state.failures.saturating_add(1);
            tracing::warn!(name = %inner.name, %error, failures = state.failures,
                "link-key refresh failed; keeping the last good list while it is usable");
            state.last_error = Some(error);
            metrics::counter!(m::LINK_KEY_FETCH, "name" => inner.name.clone(), "result" => "failure")
                .increment(1);
        }
    }
}

async fn report(inner: &Inner, force: bool) -> Result<(), String> {
    let usage = inner.usage.snapshot();
    {
        let reported = inner
            .reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if usage.is_empty() || (!force && *reported == usage) {
            return Ok(());
        }
    }
    let body = serde_json::json!({
        "name": inner.name,
        "validator": inner.validator,
        "keys": usage,
    });
    let token = bearer(inner).await?;
    let status = fetch::post_json(&inner.client, &inner.usage_url, &body, token.as_ref()).await;
    let ok = matches!(status, Ok(s) if s.is_success());
    let result = if ok { "success" } else { "failure" };
    metrics::counter!(m::LINK_KEY_USAGE_REPORT, "name" => inner.name.clone(), "result" => result)
        .increment(1);
    match status {
        Ok(s) if s.is_success() => {
            *inner
                .reported
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = usage;
            Ok(())
        }
        Ok(s) => Err(format!("authority answered {s}")),
        Err(e) => Err(e),
    }
}
