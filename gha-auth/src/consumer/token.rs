//! The token keeper: an access token from the client-credentials grant, kept fresh.
//!
//! [`TokenKeeper::token`] returns the current token while it is fresh. From 2/3 of its life on,
//! the first caller fetches a new one (the others keep using the current one meanwhile); once
//! the token is within its safety margin of `exp`, callers wait for the one fetch in flight
//! (single-flight: never more than one token request at a time). Failures back off
//! exponentially with jitter up to a cap; while backing off the still-valid token is served,
//! and without one callers get [`ConsumerError::BackingOff`] at once instead of hammering the
//! authority. [`TokenKeeper::invalidate`] drops a token a resource server refused (401), so the
//! next call fetches a new one.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::credentials::{ClientAuth, JWT_BEARER, Presented};
use super::error::ConsumerError;
use super::http::{self, backoff};
use crate::outbound::{UrlPolicy, join_path};
use crate::schedule::{add, random_unit};
use crate::{SecretString, SharedClock, SystemClock};

/// An access token and when to replace it.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    /// When it was requested (by the consumer's clock; conservative).
    pub issued_at: DateTime<Utc>,
    /// When the authority says it expires.
    pub expires_at: DateTime<Utc>,
    /// From when a new one is fetched.
    pub refresh_at: DateTime<Utc>,
    /// Until when it is handed out at all (`expires_at` minus the safety margin).
    pub usable_until: DateTime<Utc>,
    /// 1 for the first token, +1 for each one fetched after.
    pub serial: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The bearer token.
    pub fn secret(&self) -> &SecretString {
        &self.value
    }
}

/// When to refresh and until when to use a token with `lifetime` fetched at `issued_at`:
/// refresh at 2/3 of the life; stop using it `min(margin, lifetime / 10)` before it expires.
pub(crate) fn token_schedule(
    issued_at: DateTime<Utc>,
    lifetime: Duration,
    margin: Duration,
) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let expires_at = add(issued_at, lifetime);
    let refresh_at = add(issued_at, lifetime.mul_f64(2.0 / 3.0));
    let margin = TimeDelta::from_std(margin.min(lifetime / 10)).unwrap_or_default();
    (expires_at, refresh_at, expires_at - margin)
}

/// A snapshot of the keeper, for health checks and tests.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct TokenStatus {
    /// The client id.
    pub client_id: String,
    /// Tokens fetched.
    pub fetched: u64,
    /// Token requests sent (successful or not).
    pub requests: u64,
    /// Failed token requests.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last error (kept after recovery).
    pub last_error: Option<String>,
    /// Serial of the current token.
    pub serial: u64,
    /// When the current token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the next request is allowed after a failure.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Builds a [`TokenKeeper`].
#[derive(Debug)]
pub struct TokenKeeperBuilder {
    authority: String,
    auth: ClientAuth,
    audiences: Vec<String>,
    scope: Option<String>,
    assertion_audience: Option<String>,
    clock: SharedClock,
    timeout: Duration,
    margin: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    client: Option<reqwest::Client>,
    accept_plain_http: bool,
}

impl TokenKeeperBuilder {
    /// Requests this audience (repeatable; e.g. `gha-auth-broker`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Requests these scopes (space-separated).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The `aud` of `private_key_jwt` assertions (default: the token endpoint URL).
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Timeout of each token request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long before `exp` a token stops being handed out (default 30 s, at most a tenth of
    /// the token's life).
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Backoff bounds after failures (default 1 s doubling to 60 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// The HTTP client (default: rustls, no redirects, the timeout above).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Allows plain HTTP to a non-loopback authority (behind a TLS-terminating proxy you
    /// trust). Off by default.
    pub fn danger_accept_plain_http(mut self, accept: bool) -> Self {
        self.accept_plain_http = accept;
        self
    }

    /// Checks the settings. No request is made until the first [`TokenKeeper::token`].
    pub fn build(self) -> Result<TokenKeeper, ConsumerError> {
        self.auth.validate()?;
        if self.timeout.is_zero() || self.min_backoff.is_zero() {
            return Err(ConsumerError::Config(
                "timeout and backoff must be positive".into(),
            ));
        }
        let base = UrlPolicy::new()
            .allow_plain_http(self.accept_plain_http)
            .check(&self.authority)?;
        let token_url = join_path(&base, "oauth2/token");
        let assertion_audience = self
            .assertion_audience
            .unwrap_or_else(|| token_url.to_string());
        let client = match self.client {
            Some(client) => client,
            None => http::default_client(self.timeout)?,
        };
        let status = TokenStatus {
            client_id: self.auth.client_id().to_owned(),
            ..TokenStatus::default()
        };
        Ok(TokenKeeper {
            inner: Arc::new(Inner {
                base,
                token_url,
                auth: self.auth,
                audiences: self.audiences,
                scope: self.scope,
                assertion_audience,
                clock: self.clock,
                margin: self.margin,
                min_backoff: self.min_backoff,
                max_backoff: self.max_backoff,
                client,
                state: Mutex::new(State {
                    current: None,
                    retry_at: None,
                    last_error: None,
                    status,
                }),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

/// An access token for one client, kept fresh. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct TokenKeeper {
    inner: Arc<Inner>,
}

struct Inner {
    base: Url,
    token_url: Url,
    auth: ClientAuth,
    audiences: Vec<String>,
    scope: Option<String>,
    assertion_audience: String,
    clock: SharedClock,
    margin: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    client: reqwest::Client,
    state: Mutex<State>,
    /// Held while a token request is in flight.
    fetching: tokio::sync::Mutex<()>,
}

struct State {
    current: Option<Arc<AccessToken>>,
    retry_at: Option<DateTime<Utc>>,
    last_error: Option<ConsumerError>,
    status: TokenStatus,
}

impl fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeeper")
            .field("token_url", &self.inner.token_url.as_str())
            .field("auth", &self.inner.auth)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

/// What the state says a caller should do.
enum Next {
    Use(Arc<AccessToken>),
    /// Usable, but due for renewal.
    Renew(Arc<AccessToken>),
    Fetch,
    Wait(ConsumerError),
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    token_type: String,
    expires_in: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenKeeper {
    /// A builder for `authority` (its base URL; the token endpoint is `{authority}/oauth2/token`).
    pub fn builder(authority: impl Into<String>, auth: ClientAuth) -> TokenKeeperBuilder {
        TokenKeeperBuilder {
            authority: authority.into(),
            auth,
            audiences: Vec::new(),
            scope: None,
            assertion_audience: None,
            clock: SystemClock::shared(),
            timeout: Duration::from_secs(10),
            margin: Duration::from_secs(30),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            client: None,
            accept_plain_http: false,
        }
    }

    /// The authority's base URL.
    pub fn authority(&self) -> &Url {
        &self.inner.base
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// A token that is valid now, fetching one if needed.
    pub async fn token(&self) -> Result<Arc<AccessToken>, ConsumerError> {
        match self.next() {
            Next::Use(token) => Ok(token),
            Next::Wait(error) => Err(error),
            Next::Renew(token) => {
                // One caller renews; the others keep the current token meanwhile.
                let Ok(guard) = self.inner.fetching.try_lock() else {
                    return Ok(token);
                };
                if !matches!(self.next(), Next::Renew(_)) {
                    drop(guard);
                    return Ok(self.current().unwrap_or(token));
                }
                match self.fetch().await {
                    Ok(fresh) => Ok(fresh),
                    // Still valid: the next call retries after the backoff.
                    Err(_) => Ok(token),
                }
            }
            Next::Fetch => {
                let _guard = self.inner.fetching.lock().await;
                // Someone else may have fetched while we waited.
                match self.next() {
                    Next::Use(token) | Next::Renew(token) => Ok(token),
                    Next::Wait(error) => Err(error),
                    Next::Fetch => self.fetch().await,
                }
            }
        }
    }

    /// The current token without any request, if one is usable now.
    pub fn current(&self) -> Option<Arc<AccessToken>> {
        let now = self.inner.clock.now();
        self.state()
            .current
            .clone()
            .filter(|t| now < t.usable_until)
    }

    /// Forgets `token` (a resource server refused it), so the next [`TokenKeeper::token`]
    /// fetches a new one. A newer token already fetched by someone else is kept.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut state = self.state();
        if state
            .current
            .as_ref()
            .is_some_and(|t| t.serial == token.serial)
        {
            state.current = None;
        }
    }

    /// A snapshot.
    pub fn status(&self) -> TokenStatus {
        self.state().status.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn next(&self) -> Next {
        let now = self.inner.clock.now();
        let state = self.state();
        let backing_off = state.retry_at.filter(|at| now < *at);
        match &state.current {
            Some(t) if now < t.refresh_at => Next::Use(Arc::clone(t)),
            Some(t) if now < t.usable_until && backing_off.is_some() => Next::Use(Arc::clone(t)),
            Some(t) if now < t.usable_until => Next::Renew(Arc::clone(t)),
            _ => match (backing_off, &state.last_error) {
                (Some(until), Some(last)) => Next::Wait(ConsumerError::BackingOff {
                    until,
                    last: Box::new(last.clone()),
                }),
                _ => Next::Fetch,
            },
        }
    }

    /// One token request (the caller holds `fetching`); records the outcome.
    async fn fetch(&self) -> Result<Arc<AccessToken>, ConsumerError> {
        let issued_at = self.inner.clock.now();
        self.state().status.requests += 1;
        match self.request().await {
            Ok((value, lifetime)) => {
                let (expires_at, refresh_at, usable_until) =
                    token_schedule(issued_at, lifetime, self.inner.margin);
                let mut state = self.state();
                let serial = state.status.serial + 1;
                let token = Arc::new(AccessToken {
                    value,
                    issued_at,
                    expires_at,
                    refresh_at,
                    usable_until,
                    serial,
                });
                state.current = Some(Arc::clone(&token));
                state.retry_at = None;
                state.status.fetched += 1;
                state.status.serial = serial;
                state.status.consecutive_failures = 0;
                state.status.expires_at = Some(expires_at);
                state.status.retry_at = None;
                drop(state);
                tracing::debug!(client_id = %self.inner.auth.client_id(), serial,
                    expires_at = %expires_at, "fetched an access token");
                Ok(token)
            }
            Err(error) => {
                let mut state = self.state();
                state.status.failures += 1;
                state.status.consecutive_failures =
                    state.status.consecutive_failures.saturating_add(1);
                let attempt = state.status.consecutive_failures;
                let mut delay = backoff(
                    attempt,
                    self.inner.min_backoff,
                    self.inner.max_backoff,
                    random_unit(),
                );
                if let Some(after) = error.retry_after() {
                    delay = delay.max(after.min(self.inner.max_backoff));
                }
                let retry_at = add(self.inner.clock.now(), delay);
                state.retry_at = Some(retry_at);
                state.status.retry_at = Some(retry_at);
                state.status.last_error = Some(error.to_string());
                state.last_error = Some(error.clone());
                drop(state);
                tracing::warn!(client_id = %self.inner.auth.client_id(), error = %error,
                    kind = error.kind(), consecutive_failures = attempt, retry_at = %retry_at,
                    "access token request failed");
                Err(error)
            }
        }
    }

    async fn request(&self) -> Result<(SecretString, Duration), ConsumerError> {
        let url = &self.inner.token_url;
        let presented = self.inner.auth.present(
            &self.inner.assertion_audience,
            self.inner.clock.unix_seconds(),
        )?;
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        for audience in &self.inner.audiences {
            form.push(("audience", audience));
        }
        if let Some(scope) = &self.inner.scope {
            form.push(("scope", scope));
        }
        let mut request = self.inner.client.post(url.clone());
        match &presented {
            Presented::Basic(header) => {
                let mut value =
                    reqwest::header::HeaderValue::from_str(header.expose()).map_err(|_| {
                        ConsumerError::Config("client id or secret not encodable".into())
                    })?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            Presented::Assertion(jwt) => {
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", jwt.expose()));
            }
        }
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| http::unreachable(url, &e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        let body = zeroize::Zeroizing::new(http::read_body(url, response).await?);
        if status.is_success() {
            return parse_token(url, &body);
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(ConsumerError::Unavailable {
                what: "access token".into(),
                status: status.as_u16(),
                retry_after,
            });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => Err(ConsumerError::TokenRefused {
                status: status.as_u16(),
                code: truncate(&error.error, 64),
                description: truncate(error.error_description.as_deref().unwrap_or(""), 200),
            }),
            Err(_) => Err(ConsumerError::InvalidResponse {
                url: url.to_string(),
                message: format!("status {status} without an RFC 6749 error body"),
            }),
        }
    }
}

fn parse_token(url: &Url, body: &[u8]) -> Result<(SecretString, Duration), ConsumerError> {
    let invalid = |message: &str| ConsumerError::InvalidResponse {
        url: url.to_string(),
        message: message.to_owned(),
    };
    let parsed: TokenBody =
        serde_json::from_slice(body).map_err(|_| invalid("not a token response"))?;
    let value = SecretString::new(parsed.access_token);
    if !parsed.token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid("token_type is not Bearer"));
    }
    if parsed.expires_in <= 0 || value.is_empty() {
        return Err(invalid("empty token or expires_in not positive"));
    }
    let lifetime = Duration::from_secs(parsed.expires_in.unsigned_abs().min(86_400 * 365));
    Ok((value, lifetime))
}

/// At most `max` characters of server-written text, control characters dropped.
fn truncate(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::outbound::UrlError;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + s, 0).unwrap()
    }

    #[test]
    fn tokens_are_renewed_at_two_thirds_and_dropped_before_expiry() {
        let d = Duration::from_secs;
        // (lifetime, margin, refresh at, usable until)
        let table = [
            (d(600), d(30), at(400), at(570)),
            (d(3), d(30), at(2), at(3) - TimeDelta::milliseconds(300)),
            (d(60), d(0), at(40), at(60)),
        ];
        for (lifetime, margin, refresh, usable) in table {
            let (expires, r, u) = token_schedule(at(0), lifetime, margin);
            assert_eq!(expires, add(at(0), lifetime));
            assert_eq!(r, refresh, "{lifetime:?}");
            assert_eq!(u, usable, "{lifetime:?}");
        }
    }

    #[test]
    fn token_responses_are_checked() {
        let url = Url::parse("http://127.0.0.1/oauth2/token").unwrap();
        let (value, lifetime) = parse_token(
            &url,
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!(value.expose(), "abc");
        assert_eq!(lifetime, Duration::from_secs(600));
        for bad in [
            &br#"{"access_token":"abc","token_type":"mac","expires_in":600}"#[..],
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":0}"#,
            br#"{"access_token":"","token_type":"Bearer","expires_in":5}"#,
            br#"{"token_type":"Bearer"}"#,
            b"<html>",
        ] {
            let error = parse_token(&url, bad).unwrap_err().to_string();
            assert!(!error.contains("abc"), "{error}");
        }
        assert_eq!(truncate("a\nb\u{1b}c", 2), "ab");
    }

    fn keeper(authority: &str, clock: &ManualClock) -> TokenKeeper {
        TokenKeeper::builder(authority, ClientAuth::secret("svc", "s3cr3t-value".into()))
            .clock(clock.shared())
            .timeout(Duration::from_secs(2))
            .backoff(Duration::from_secs(1), Duration::from_secs(8))
            .build()
            .unwrap()
    }

    /// A port with nothing listening (bound, then closed).
    fn dead_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn failures_back_off_without_requests_until_due() {
        let clock = ManualClock::at_unix(1_000_000);
        let keeper = keeper(&format!("http://127.0.0.1:{}", dead_port()), &clock);
        let error = keeper.token().await.unwrap_err();
        assert_eq!(error.kind(), "unreachable", "{error}");
        assert!(error.is_transient());
        // Within the backoff: no request, a clear error naming the cause.
        let error = keeper.token().await.unwrap_err();
        assert_eq!(error.kind(), "backing_off", "{error}");
        assert!(error.to_string().contains("unreachable"), "{error}");
        assert_eq!(keeper.status().requests, 1);
        // Due again (1 s minus jitter): a second request, then 2 s of backoff.
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(keeper.token().await.unwrap_err().kind(), "unreachable");
        assert_eq!(keeper.status().requests, 2);
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(keeper.token().await.unwrap_err().kind(), "backing_off");
        let status = keeper.status();
        assert_eq!(status.consecutive_failures, 2);
        assert!(status.retry_at.is_some());
        assert!(!format!("{status:?} {keeper:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn builder_refuses_bad_settings() {
        let auth = || ClientAuth::secret("svc", "x".into());
        assert!(
            TokenKeeper::builder("http://auth.example", auth())
                .build()
                .is_err()
        );
        assert!(
            TokenKeeper::builder("http://auth.example", auth())
                .danger_accept_plain_http(true)
                .build()
                .is_ok()
        );
        // Any credentials in the URL, even a bare password: refused by the outbound policy,
        // without repeating it.
        let error = TokenKeeper::builder("https://:pw-123@a.example", auth())
            .build()
            .unwrap_err();
        assert!(
            matches!(error, ConsumerError::Url(UrlError::Credentials { .. })),
            "{error}"
        );
        assert!(!error.to_string().contains("pw-123"), "{error}");
        assert!(
            TokenKeeper::builder("https://a.example", auth())
                .timeout(Duration::ZERO)
                .build()
                .is_err()
        );
        assert!(
            TokenKeeper::builder(
                "https://a.example",
                ClientAuth::secret("bad id", "x".into())
            )
            .build()
            .is_err()
        );
    }
}
