//! Abuse limits on the token endpoint: a request rate per source address and per
//! authenticated client (per client and source for a public client, which anyone can name)
//! (GCRA token buckets, `governor`), and an exponential backoff after failed
//! client authentication, per (client, source) pair and per source.
//!
//! The backoff is keyed by the pair rather than by the client alone, so that an attacker
//! elsewhere cannot lock a service out by failing to authenticate as it; the per-source backoff
//! (with a higher threshold) slows down one address spraying many client ids. Rates use the
//! monotonic clock of `governor` (they measure real traffic); the backoff uses the injected
//! clock, so tests drive it with a manual clock.
//!
//! Every refusal is `429 Too Many Requests` with `Retry-After` (whole seconds, at least 1).
pub(crate) mod config;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gha_auth::SharedClock;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub(crate) use config::RateLimitConfig;

/// A refusal: how long the caller should wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    /// Seconds until a retry may succeed (at least 1).
    pub(crate) retry_after: u64,
    /// Which limit refused.
    pub(crate) reason: LimitReason,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum LimitReason {
    /// Too many requests from the source address.
    SourceRate,
    /// Too many requests from the client.
    ClientRate,
    /// Too many failed authentications from the source, or for the client from the source.
    AuthBackoff,
}

impl LimitReason {
    /// A stable label for logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LimitReason::SourceRate => "source_rate",
            LimitReason::ClientRate => "client_rate",
            LimitReason::AuthBackoff => "auth_backoff",
        }
    }
}

impl Limited {
    /// Counts the refusal (every refusal is answered once, so counted once).
    pub(crate) fn count(&self) {
        metrics::counter!(RATE_LIMITED_METRIC, "reason" => self.reason.as_str()).increment(1);
    }
}

/// 429 with `Retry-After` and an RFC 6749-shaped body (`rate_limited`), which every endpoint the
/// limits guard answers alike.
impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        self.count();
        let body = serde_json::json!({
            "error": "rate_limited",
            "error_description": LIMITED_DESCRIPTION,
        });
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after.max(1)),
        );
        response
    }
}

/// What a refused request is told.
pub(crate) const LIMITED_DESCRIPTION: &str =
    "too many requests; retry after the time in Retry-After";

#[derive(Debug, Clone, Copy)]
struct FailureState {
    failures: u32,
    blocked_until: i64,
    last_failure: i64,
}

/// Failed-authentication counters with exponential backoff.
#[derive(Debug)]
struct Backoff {
    entries: Mutex<HashMap<String, FailureState>>,
}

impl Backoff {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn blocked(&self, key: &str, now: i64) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|s| s.blocked_until > now)
            .map(|s| u64::try_from(s.blocked_until - now).unwrap_or(1).max(1))
    }

    fn fail(&self, key: &str, now: i64, threshold: u32, config: &RateLimitConfig) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= config.max_tracked && !entries.contains_key(key) {
            // Bounded memory: forget the entries that are not blocking anyone; every active
            // block is kept. When all are blocking, new keys are not tracked until some expire.
            entries.retain(|_, s| s.blocked_until > now);
            if entries.len() >= config.max_tracked {
                return;
            }
        }
        let forget_after = config.backoff_max.as_delta().num_seconds().max(1);
        let state = entries.entry(key.to_owned()).or_insert(FailureState {
            failures: 0,
            blocked_until: 0,
            last_failure: now,
        });
        if now - state.last_failure > forget_after && state.blocked_until <= now {
            state.failures = 0;
        }
        state.failures = state.failures.saturating_add(1);
        state.last_failure = now;
        if state.failures >= threshold {
            let steps = (state.failures - threshold).min(30);
            let base = config.backoff_base.as_delta().num_seconds().max(1);
            let delay = base
                .saturating_mul(1_i64 << steps)
                .min(config.backoff_max.as_delta().num_seconds().max(1));
            state.blocked_until = now + delay;
        }
    }

    fn clear(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }
}

/// The limits of one server.
pub(crate) struct RateLimits {
    config: RateLimitConfig,
    clock: SharedClock,
    per_source: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    backoff: Backoff,
    monotonic: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    /// Limits as configured; a rate of 0 disables that limit.
    pub(crate) fn new(config: &RateLimitConfig, clock: SharedClock) -> Self {
        let (per_source, per_client) = if config.enabled {
            (
                quota(config.per_source_per_second, config.per_source_burst)
                    .map(RateLimiter::keyed),
                quota(config.per_client_per_second, config.per_client_burst)
                    .map(RateLimiter::keyed),
            )
        } else {
            (None, None)
        };
        Self {
            config: config.clone(),
            clock,
            per_source,
            per_client,
            backoff: Backoff::new(),
            monotonic: DefaultClock::default(),
        }
    }

    fn wait_secs(wait: StdDuration) -> u64 {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        secs.max(1)
    }

    /// Counts a request from `source`.
    pub(crate) fn check_source(&self, source: IpAddr) -> Result<(), Limited> {
        let Some(limiter) = &self.per_source else {
            return Ok(());
        };
        if limiter.len() > self.config.max_tracked {
            limiter.retain_recent();
        }
        limiter.check_key(&source).map_err(|not_until| Limited {
            retry_after: Self::wait_secs(not_until.wait_time_from(self.monotonic.now())),
            reason: LimitReason::SourceRate,
        })
    }

    /// Counts a request by the authenticated client `client_id`. A public client has no
    /// secret, so anyone can name it: its rate is counted per (client, source), so that one
    /// address cannot use up the rate of every user of the app.
    pub(crate) fn check_client(
        &self,
        client_id: &str,
        public: bool,
        source: Option<SocketAddr>,
    ) -> Result<(), Limited> {
        let Some(limiter) = &self.per_client else {
            return Ok(());
        };
        if limiter.len() > self.config.max_tracked {
            limiter.retain_recent();
        }
        let key = if public {
            Self::pair_key(client_id, source)
        } else {
            client_id.to_owned()
        };
        limiter.check_key(&key).map_err(|not_until| Limited {
            retry_after: Self::wait_secs(not_until.wait_time_from(self.monotonic.now())),
            reason: LimitReason::ClientRate,
        })
    }

    fn source_key(source: Option<SocketAddr>) -> String {
        source.map_or_else(
            || "source:unknown".to_owned(),
            |s| format!("source:{}", s.ip()),
        )
    }

    fn pair_key(client_id: &str, source: Option<SocketAddr>) -> String {
        let ip = source.map_or_else(|| "unknown".to_owned(), |s| s.ip().to_string());
        format!("client:{ip}:{client_id}")
    }

    /// Refuses while `source` (or `client_id` from `source`) is backing off after failures.
    pub(crate) fn check_backoff(
        &self,
        client_id: Option<&str>,
        source: Option<SocketAddr>,
    ) -> Result<(), Limited> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = self.clock.unix_seconds();
        let blocked = self
            .backoff
            .blocked(&Self::source_key(source), now)
            .or_else(|| {
                client_id.and_then(|id| self.backoff.blocked(&Self::pair_key(id, source), now))
            });
        match blocked {
            Some(retry_after) => Err(Limited {
                retry_after,
                reason: LimitReason::AuthBackoff,
            }),
            None => Ok(()),
        }
    }

    /// Records a failed client authentication.
    pub(crate) fn authentication_failed(
        &self,
        client_id: Option<&str>,
        source: Option<SocketAddr>,
    ) {
        if !self.config.enabled {
            return;
        }
        let now = self.clock.unix_seconds();
        self.backoff.fail(
            &Self::source_key(source),
            now,
            self.config.source_failures_before_backoff.max(1),
            &self.config,
        );
        if let Some(id) = client_id {
            self.backoff.fail(
                &Self::pair_key(id, source),
                now,
                self.config.failures_before_backoff.max(1),
                &self.config,
            );
        }
    }

    /// Records a successful client authentication: the pair's failures are forgotten (the
    /// source's are not, so one valid client does not unlock spraying from its address).
    pub(crate) fn authentication_succeeded(&self, client_id: &str, source: Option<SocketAddr>) {
        if self.config.enabled {
            self.backoff.clear(&Self::pair_key(client_id, source));
        }
    }
}

/// Middleware: the per-source rate limit of the route it wraps.
pub(crate) async fn per_source(
    State(limits): State<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer
        && let Err(limited) = limits.check_source(ip)
    {
        tracing::info!(source = %ip, reason = limited.reason.as_str(), "rate limited");
        return limited.into_response();
    }
    next.run(request).await
}

/// Series: requests refused by the abuse limits, by reason.
pub(crate) const RATE_LIMITED_METRIC: &str = "gha_auth_rate_limited_total";

/// HELP text of this module's series.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(RATE_LIMITED_METRIC, "Requests refused by abuse limits");
}
