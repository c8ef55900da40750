//! What the remote sources share: URL checks and the HTTP client (both from
//! `gha_auth::outbound`), a bounded GET, `Cache-Control` and the refresh schedule with
//! stale-if-error.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::outbound::{HttpClientBuilder, UrlPolicy};
use http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};
use url::Url;

use crate::error::ConfigError;

/// Checks a source URL against the outbound-URL policy (`gha_auth::outbound::UrlPolicy`):
/// https, or plain HTTP to loopback unless the caller opted in; no credentials, query or
/// fragment.
pub(crate) fn check_url(url: &str, accept_plain_http: bool) -> Result<Url, ConfigError> {
    Ok(UrlPolicy::new()
        .allow_plain_http(accept_plain_http)
        .check(url)?)
}

/// The given HTTP client, or else the workspace's default one with `timeout`
/// ([`HttpClientBuilder`]: rustls, no redirects, since a redirect to another host would move
/// trust).
pub(crate) fn client_or_default(
    client: Option<reqwest::Client>,
    timeout: Duration,
) -> Result<reqwest::Client, ConfigError> {
    match client {
        Some(client) => Ok(client),
        None => Ok(HttpClientBuilder::new("gha-auth-middleware")
            .timeout(timeout)
            .build()?),
    }
}

/// The answer to a GET.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    pub(crate) cache: CacheDirectives,
    pub(crate) etag: Option<HeaderValue>,
}

/// A GET with an optional `If-None-Match` and bearer token, reading at most `max_body` bytes.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &Url,
    etag: Option<&HeaderValue>,
    bearer: Option<&gha_auth::SecretString>,
    max_body: usize,
) -> Result<Fetched, String> {
    let mut request = client
        .get(url.clone())
        .header(http::header::ACCEPT, "application/json");
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag.clone());
    }
    if let Some(token) = bearer {
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| "access token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let mut response = request.send().await.map_err(|e| describe(&e))?;
    let status = response.status();
    let cache = CacheDirectives::from_headers(response.headers());
    let etag = response.headers().get(ETAG).cloned();
    if response
        .content_length()
        .is_some_and(|len| len > max_body as u64)
    {
        return Err(format!("response larger than {max_body} bytes"));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > max_body {
            return Err(format!("response larger than {max_body} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        body: body.freeze(),
        cache,
        etag,
    })
}

/// A POST of a JSON body with a bearer token; the status is returned.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &Url,
    body: &serde_json::Value,
    bearer: Option<&gha_auth::SecretString>,
) -> Result<StatusCode, String> {
    let mut request = client.post(url.clone()).json(body);
    if let Some(token) = bearer {
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| "access token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let response = request.send().await.map_err(|e| describe(&e))?;
    Ok(response.status())
}

/// A reqwest error with its causes (our URLs carry no secrets).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Stops a background task when the last handle to its source goes.
#[derive(Debug)]
pub(crate) struct TaskGuard(pub(crate) tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `Cache-Control` directives the sources honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CacheDirectives {
    pub(crate) max_age: Option<u64>,
    /// `no-cache`, `no-store` or `must-revalidate` with no max-age: refresh as often as allowed.
    pub(crate) no_cache: bool,
}

impl CacheDirectives {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let mut out = Self::default();
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            out.merge(Self::parse(value));
        }
        out
    }

    /// Parses one `Cache-Control` value. Unknown directives are ignored; a repeated or malformed
    /// `max-age` keeps the smallest valid value.
    pub(crate) fn parse(value: &str) -> Self {
        let mut out = Self::default();
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("max-age") {
                if let Some(seconds) = arg.and_then(|a| a.parse::<u64>().ok()) {
                    out.max_age = Some(out.max_age.map_or(seconds, |m| m.min(seconds)));
                }
            } else if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store")
            {
                out.no_cache = true;
            }
        }
        out
    }

    fn merge(&mut self, other: Self) {
        self.no_cache |= other.no_cache;
        if let Some(age) = other.max_age {
            self.max_age = Some(self.max_age.map_or(age, |m| m.min(age)));
        }
    }
}

/// How often a source refreshes and how long it may serve stale data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Never refresh more often than this, whatever `Cache-Control` says. Default 30 s.
    pub min_interval: Duration,
    /// Never keep data longer than this without refreshing. Default 1 h.
    pub max_interval: Duration,
    /// When the server sends no `max-age`. Default 5 min.
    pub default_interval: Duration,
    /// After a failed refresh, how long the last good data stays usable past its freshness
    /// (stale-if-error). Default 6 h for keys. Past it, the source is unusable and credentials are
    /// refused (fail closed).
    pub max_stale: Duration,
    /// First wait after a failed refresh; doubles up to `min_interval`. Default 1 s.
    pub retry_initial: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            min_interval: gha_auth::keys::VERIFIER_MIN_REFRESH_INTERVAL,
            max_interval: gha_auth::keys::VERIFIER_MAX_REFRESH_INTERVAL,
            default_interval: Duration::from_secs(300),
            max_stale: Duration::from_secs(6 * 3600),
            retry_initial: Duration::from_secs(1),
        }
    }
}

impl RefreshPolicy {
    pub(crate) fn validate(&self, what: &'static str) -> Result<(), ConfigError> {
        if self.min_interval.is_zero() || self.min_interval > self.max_interval {
            return Err(ConfigError::OutOfRange {
                setting: what,
                reason: "need 0 < min_interval <= max_interval".into(),
            });
        }
        if self.retry_initial.is_zero() {
            return Err(ConfigError::OutOfRange {
                setting: what,
                reason: "retry_initial must be positive".into(),
            });
        }
        Ok(())
    }

    /// How long data fetched with these directives stays fresh.
    pub(crate) fn fresh_for(&self, cache: CacheDirectives) -> TimeDelta {
        let wanted = match (cache.max_age, cache.no_cache) {
            (Some(seconds), _) => Duration::from_secs(seconds),
            (None, true) => self.min_interval,
            (None, false) => self.default_interval,
        };
        delta(wanted.clamp(self.min_interval, self.max_interval))
    }

    /// The wait before retry number `failures` (1-based).
    pub(crate) fn retry_after(&self, failures: u32) -> TimeDelta {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        delta(
            self.retry_initial
                .saturating_mul(factor)
                .min(self.min_interval),
        )
    }
}

/// A `Duration` as a `TimeDelta`, saturating.
pub(crate) fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// When data was fetched and until when it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freshness {
    pub(crate) fetched_at: DateTime<Utc>,
    pub(crate) fresh_until: DateTime<Utc>,
    /// `None`: never expires (local keys).
    pub(crate) usable_until: Option<DateTime<Utc>>,
}

impl Freshness {
    pub(crate) fn new(now: DateTime<Utc>, fresh_for: TimeDelta, max_stale: TimeDelta) -> Self {
        let fresh_until = now
            .checked_add_signed(fresh_for)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let usable_until = fresh_until
            .checked_add_signed(max_stale)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Self {
            fetched_at: now,
            fresh_until,
            usable_until: Some(usable_until),
        }
    }

    pub(crate) fn forever(now: DateTime<Utc>) -> Self {
        Self {
            fetched_at: now,
            fresh_until: DateTime::<Utc>::MAX_UTC,
            usable_until: None,
        }
    }

    pub(crate) fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }

    pub(crate) fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now < self.fresh_until
    }
}

#[cfg(test)]
mod tests {
    use gha_auth::outbound::UrlError;

    use super::*;

    #[test]
    fn cache_control_parsing() {
        let cases = [
            ("max-age=300", Some(300), false),
            ("public, max-age=60, must-revalidate", Some(60), false),
            ("MAX-AGE = 10", Some(10), false),
            ("max-age=\"20\"", Some(20), false),
            ("max-age=5, max-age=3", Some(3), false),
            ("max-age=-1", None, false),
            ("max-age=abc, no-store", None, true),
            ("no-cache", None, true),
            ("", None, false),
            ("max-age=99999999999999999999999", None, false),
        ];
        for (value, max_age, no_cache) in cases {
            let parsed = CacheDirectives::parse(value);
            assert_eq!(
                (parsed.max_age, parsed.no_cache),
                (max_age, no_cache),
                "{value:?}"
            );
        }
    }

    #[test]
    fn freshness_is_bounded() {
        let policy = RefreshPolicy::default();
        let fresh = |max_age, no_cache| policy.fresh_for(CacheDirectives { max_age, no_cache });
        assert_eq!(fresh(Some(1), false), TimeDelta::seconds(30));
        assert_eq!(fresh(Some(600), false), TimeDelta::seconds(600));
        assert_eq!(fresh(Some(86_400 * 7), false), TimeDelta::seconds(3600));
        assert_eq!(fresh(None, false), TimeDelta::seconds(300));
        assert_eq!(fresh(None, true), TimeDelta::seconds(30));
    }

    #[test]
    fn retry_backs_off_up_to_the_min_interval() {
        let policy = RefreshPolicy::default();
        let waits: Vec<i64> = (1..=8)
            .map(|n| policy.retry_after(n).num_seconds())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(policy.retry_after(1_000).num_seconds(), 30);
    }

    #[test]
    fn url_checks_use_the_outbound_policy() {
        assert!(check_url("https://auth.example/.well-known/jwks.json", false).is_ok());
        assert!(check_url("http://127.0.0.1:8700/x", false).is_ok());
        assert!(matches!(
            check_url("http://auth.example/x", false),
            Err(ConfigError::Url(UrlError::PlainHttp { .. }))
        ));
        assert!(check_url("http://auth.example/x", true).is_ok());
        let error = check_url("https://:pw@auth.example/x", true).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Url(UrlError::Credentials { .. })
        ));
        assert!(!error.to_string().contains("pw"), "{error}");
    }
}
