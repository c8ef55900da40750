//! Polling the authority's signed revocation feed (`GET {authority}/v1/revocations`) so a token
//! revoked at the authority is refused by this API within one poll interval, with no call to
//! the authority per request.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gha_auth_middleware::{AuthLayer, RevocationFeed};
//!
//! let auth = AuthLayer::builder()
//!     .issuer("https://auth.gha.example")
//!     .audience("field-service")
//!     .jwks_url("https://auth.gha.example/.well-known/jwks.json")
//!     .revocation_feed(RevocationFeed::for_authority("https://auth.gha.example"))
//!     .build()?;
//! # let _ = auth; Ok(()) }
//! ```
//!
//! - **Polling**: a background task fetches the feed with `If-None-Match` (a `304` costs the
//!   authority one indexed read), every `Cache-Control: max-age` seconds bounded by
//!   [`RevocationFeed::poll_interval_bounds`] (default 5 s to 5 min; never below
//!   [`MIN_POLL_INTERVAL`] nor above [`MAX_POLL_INTERVAL`]).
//! - **Verification**: the document is a JWS checked with the layer's own key source (an
//!   unknown `kid` goes through the same cooled-down refetch as tokens), strict header rules,
//!   `typ: gha-revocations+jwt`, the layer's issuer, a size bound, then a strict payload parse
//!   ([`gha_auth::revocation`]).
//! - **Applying**: entries are added to the layer's [`Revocations`] (revocation only ever grows
//!   until tokens expire, so applying is additive and a replayed old document cannot undo
//!   anything); only entries not applied before are written, so a large unchanged feed costs no
//!   cache invalidation.
//! - **Failures** (authority down, bad signature, malformed document): the last good state stays
//!   in force, retries back off (1 s doubling, up to the interval), and `/HealthCheck` shows the
//!   check `revocations` as degraded with the age of the last good feed. A request is never
//!   blocked or refused because of the feed.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::SharedClock;
use gha_auth::revocation::{DEFAULT_MAX_FEED_BYTES, FeedVerifier, RevocationFeed as FeedDocument};
use http::{HeaderValue, StatusCode};
use url::Url;

use crate::cache::Revocations;
use crate::error::ConfigError;
use crate::fetch::{self, TaskGuard, delta};
use crate::health::{ComponentHealth, HealthStatus};
use crate::keys::KeySource;
use crate::metrics as m;

#[cfg(test)]
mod tests;

/// Shortest poll interval accepted.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longest poll interval accepted.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);
/// Poll interval when the authority sends no `max-age` (within the bounds).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Path of the feed under the authority's base URL.
pub const FEED_PATH: &str = "/v1/revocations";

/// Where and how often to poll the revocation feed; give it to
/// [`crate::AuthLayerBuilder::revocation_feed`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RevocationFeed {
    url: String,
    min_interval: Duration,
    max_interval: Duration,
    timeout: Duration,
    max_bytes: usize,
    client: Option<reqwest::Client>,
    accept_plain_http: bool,
}

impl RevocationFeed {
    /// The feed at `url` (e.g. `https://auth.gha.example/v1/revocations`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            min_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            max_bytes: DEFAULT_MAX_FEED_BYTES,
            client: None,
            accept_plain_http: false,
        }
    }

    /// The feed of the authority at `base` (`{base}/v1/revocations`).
    pub fn for_authority(base: &str) -> Self {
        Self::new(format!("{}{FEED_PATH}", base.trim_end_matches('/')))
    }

    /// Polls every `max-age` the authority sends, but never more often than `min` nor less often
    /// than `max` (default 5 s and 5 min; both within 1 s to 1 h).
    pub fn poll_interval_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_interval = min;
        self.max_interval = max;
        self
    }

    /// Timeout of each fetch (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest document accepted (default 4 MiB).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The HTTP client (default: rustls, no redirects, the timeout above).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Allows a plain-HTTP feed URL to a non-loopback host. Off by default.
    pub fn danger_accept_plain_http(mut self, accept: bool) -> Self {
        self.accept_plain_http = accept;
        self
    }

    /// Checks the settings and starts polling (needs a Tokio runtime).
    pub(crate) fn start(
        self,
        issuer: &str,
        keys: KeySource,
        revocations: Revocations,
        clock: SharedClock,
        accept_plain_http: bool,
    ) -> Result<FeedPoller, ConfigError> {
        let bounds = MIN_POLL_INTERVAL..=MAX_POLL_INTERVAL;
        if !bounds.contains(&self.min_interval)
            || !bounds.contains(&self.max_interval)
            || self.min_interval > self.max_interval
        {
            return Err(ConfigError::OutOfRange {
                setting: "revocation feed poll interval",
                reason: "need 1 s <= min <= max <= 1 h".into(),
            });
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::OutOfRange {
                setting: "revocation feed timeout",
                reason: "must be positive".into(),
            });
        }
        let url = fetch::check_url(&self.url, self.accept_plain_http || accept_plain_http)?;
        let client = fetch::client_or_default(self.client, self.timeout)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let verifier = FeedVerifier::new(issuer, clock.clone()).with_max_bytes(self.max_bytes);
        let inner = Arc::new(Inner {
            url,
            min_interval: self.min_interval,
            max_interval: self.max_interval,
            verifier,
            keys,
            revocations,
            clock,
            client,
            poll_lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
            polled: tokio::sync::Notify::new(),
        });
        let task = runtime.spawn(run(Arc::downgrade(&inner)));
        Ok(FeedPoller {
            inner,
            _task: Arc::new(TaskGuard(task.abort_handle())),
        })
    }
}

/// The running poller of a layer (see [`crate::AuthLayer::revocation_feed`]). Cheap to clone;
/// polling stops when the last clone (and the layer) is dropped.
#[derive(Clone)]
pub struct FeedPoller {
    inner: Arc<Inner>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for FeedPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state();
        f.debug_struct("FeedPoller")
            .field("url", &self.inner.url.as_str())
            .field("seq", &state.seq)
            .field("failures", &state.failures)
            .finish()
    }
}

struct Inner {
    url: Url,
    min_interval: Duration,
    max_interval: Duration,
    verifier: FeedVerifier,
    keys: KeySource,
    revocations: Revocations,
    clock: SharedClock,
    client: reqwest::Client,
    /// One poll at a time (the schedule and [`FeedPoller::poll_now`]).
    poll_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    polled: tokio::sync::Notify,
}

#[derive(Debug, Default, Clone)]
struct State {
    /// Sequence number of the last applied document.
    seq: Option<u64>,
    etag: Option<HeaderValue>,
    /// When the authority last confirmed our state (a verified 200 or a 304).
    last_good: Option<DateTime<Utc>>,
    /// When the last poll (of any outcome) ended.
    last_attempt: Option<DateTime<Utc>>,
    interval: Option<TimeDelta>,
    failures: u32,
    last_error: Option<String>,
    /// What has been written to the revocation list already.
    applied: Applied,
}

#[derive(Debug, Default, Clone)]
struct Applied {
    jtis: HashSet<String>,
    subjects: HashMap<String, i64>,
    clients: HashMap<String, i64>,
}

/// What one poll brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollOutcome {
    /// A new document was verified and applied.
    Applied {
        /// Its sequence number.
        seq: u64,
    },
    /// `304`: nothing changed since the last document.
    NotModified,
}

impl Inner {
    fn state(&self) -> State {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn next_poll(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = state.last_attempt else {
            return now;
        };
        let interval = state.interval.unwrap_or_else(|| {
            delta(DEFAULT_POLL_INTERVAL.clamp(self.min_interval, self.max_interval))
        });
        if state.failures == 0 {
            return last + interval;
        }
        let factor = 1i32 << state.failures.saturating_sub(1).min(12);
        last + (TimeDelta::seconds(1) * factor).min(interval)
    }

    fn interval_for(&self, cache: fetch::CacheDirectives) -> TimeDelta {
        let wanted = cache
            .max_age
            .map_or(DEFAULT_POLL_INTERVAL, Duration::from_secs);
        delta(wanted.clamp(self.min_interval, self.max_interval))
    }

    async fn poll(&self) -> Result<PollOutcome, String> {
        let _guard = self.poll_lock.lock().await;
        let etag = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            // Revalidate only when there is an applied document to keep.
            state.seq.and(state.etag.clone())
        };
        let result = self.fetch_and_apply(etag.as_ref()).await;
        let now = self.clock.now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last_attempt = Some(now);
        let label = match &result {
            Ok((outcome, interval, etag)) => {
                state.interval = Some(*interval);
                state.failures = 0;
                state.last_error = None;
                state.last_good = Some(now);
                if let PollOutcome::Applied { seq } = outcome {
                    state.seq = Some(*seq);
                    state.etag.clone_from(etag);
                    metrics::gauge!(m::REVOCATION_FEED_SEQ).set(*seq as f64);
                }
                metrics::gauge!(m::REVOCATION_FEED_LAST_SUCCESS).set(now.timestamp() as f64);
                metrics::gauge!(m::REVOCATION_FEED_AGE_SECONDS).set(0.0);
                match outcome {
                    PollOutcome::Applied { .. } => "success",
                    PollOutcome::NotModified => "not_modified",
                }
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(error.clone());
                tracing::warn!(url = %self.url, %error, failures = state.failures,
                    "revocation feed poll failed; the last good revocations stay in force");
                "failure"
            }
        };
        drop(state);
        metrics::counter!(m::REVOCATION_FEED_FETCH, "result" => label).increment(1);
        self.polled.notify_waiters();
        result.map(|(outcome, _, _)| outcome)
    }

    async fn fetch_and_apply(
        &self,
        etag: Option<&HeaderValue>,
    ) -> Result<(PollOutcome, TimeDelta, Option<HeaderValue>), String> {
        let fetched = fetch::get(
            &self.client,
            &self.url,
            etag,
            None,
            self.verifier.max_bytes(),
        )
        .await?;
        let interval = self.interval_for(fetched.cache);
        match fetched.status {
            StatusCode::NOT_MODIFIED if etag.is_some() => {
                Ok((PollOutcome::NotModified, interval, None))
            }
            StatusCode::OK => {
                let text = std::str::from_utf8(&fetched.body)
                    .map_err(|_| "feed is not UTF-8 text".to_owned())?;
                let feed = self.verify(text.trim()).await?;
                let seq = feed.seq;
                self.apply(feed);
                Ok((PollOutcome::Applied { seq }, interval, fetched.etag))
            }
            status => Err(format!("revocation feed answered {status}")),
        }
    }

    async fn verify(&self, text: &str) -> Result<FeedDocument, String> {
        let header = self
            .verifier
            .parse_header(text)
            .map_err(|e| e.to_string())?;
        let mut key = self.keys.current().get(&header.kid).cloned();
        if key.is_none() {
            // Signed by a key this layer has not seen yet (just rotated in): the same
            // cooled-down refetch as for tokens.
            key = self
                .keys
                .refetch_for_unknown(&header.kid)
                .await
                .get(&header.kid)
                .cloned();
        }
        let key = key.ok_or_else(|| "feed is signed by an unknown key".to_owned())?;
        self.verifier
            .verify_with_key(text, &key)
            .map_err(|e| e.to_string())
    }

    /// Writes the entries not applied before; forgets what the feed no longer lists.
    fn apply(&self, feed: FeedDocument) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = state.seq
            && feed.seq < previous
        {
            // The authority's store went back (restored from a backup?). Still applied: adding
            // revocations can never weaken anything.
            tracing::warn!(
                previous,
                seq = feed.seq,
                "revocation feed sequence went backwards"
            );
        }
        let mut applied = Applied::default();
        for entry in feed.jtis {
            if !state.applied.jtis.contains(&entry.jti) {
                self.revocations
                    .revoke_jti(entry.jti.clone(), timestamp(entry.exp));
            }
            applied.jtis.insert(entry.jti);
        }
        for entry in feed.subjects {
            if state
                .applied
                .subjects
                .get(&entry.sub)
                .is_none_or(|before| *before < entry.not_before)
            {
                self.revocations
                    .revoke_subject_before(entry.sub.clone(), timestamp(entry.not_before));
            }
            applied.subjects.insert(entry.sub, entry.not_before);
        }
        for entry in feed.clients {
            if state
                .applied
                .clients
                .get(&entry.client_id)
                .is_none_or(|before| *before < entry.not_before)
            {
                self.revocations
                    .revoke_client_before(entry.client_id.clone(), timestamp(entry.not_before));
            }
            applied.clients.insert(entry.client_id, entry.not_before);
        }
        state.applied = applied;
        drop(state);
        self.revocations.purge_expired(self.clock.now());
    }
}

fn timestamp(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl FeedPoller {
    /// Polls now, whatever the schedule says (tests, operators' "reload").
    pub async fn poll_now(&self) -> Result<PollOutcome, String> {
        self.inner.poll().await
    }

    /// Waits until a document has been applied, at most `timeout` (real time).
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let polled = self.inner.polled.notified();
            if self.inner.state().seq.is_some() {
                return true;
            }
            if tokio::time::timeout_at(deadline, polled).await.is_err() {
                return self.inner.state().seq.is_some();
            }
        }
    }

    /// Sequence number of the last applied document.
    pub fn seq(&self) -> Option<u64> {
        self.inner.state().seq
    }

    /// The feed's state for `/HealthCheck`: degraded before the first document, after a failed
    /// poll, or when the last good feed is older than three intervals. Never unhealthy: the API
    /// keeps serving with the revocations it has.
    pub fn health(&self, now: DateTime<Utc>) -> ComponentHealth {
        let state = self.inner.state();
        let interval = state
            .interval
            .unwrap_or_else(|| delta(self.inner.max_interval));
        let mut health = match state.last_good {
            None => ComponentHealth::new(HealthStatus::Degraded).with("loaded", false),
            Some(good) => {
                let age = (now - good).num_seconds();
                metrics::gauge!(m::REVOCATION_FEED_AGE_SECONDS).set(age as f64);
                let stale = now - good > interval * 3;
                let status = if stale || state.failures > 0 {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Healthy
                };
                ComponentHealth::new(status).with("age_seconds", age)
            }
        };
        health = health
            .with("source", self.inner.url.as_str())
            .with("poll_interval_seconds", interval.num_seconds());
        if let Some(seq) = state.seq {
            health = health.with("seq", seq);
        }
        if state.failures > 0 {
            health = health.with("consecutive_failures", state.failures);
        }
        if let Some(error) = state.last_error {
            health = health.with("last_error", error);
        }
        health
    }
}

/// Polls on schedule until the last [`FeedPoller`] handle drops and its guard aborts the task.
async fn run(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let now = inner.clock.now();
        let due = inner.next_poll(now);
        let sleep = inner.clock.sleep_until(due);
        drop(inner);
        sleep.await;
        let Some(inner) = weak.upgrade() else { return };
        // poll_now may have run meanwhile: re-check the schedule.
        if inner.next_poll(inner.clock.now()) > inner.clock.now() {
            continue;
        }
        let _ = inner.poll().await;
    }
}
