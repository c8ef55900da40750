//! Who is calling the authority's own APIs (secrets broker, link keys): the [`Caller`] extractor.
//!
//! These routes are reached with a bearer JWT this authority issued (client_credentials with
//! `audience=<the API's audience>`). A handler takes a `Caller<BrokerApi>` or
//! `Caller<LinkKeysApi>` argument; the router's state must give an `Arc<Callers>` (`FromRef`):
//!
//! ```ignore
//! async fn handler(State(state): State<Arc<MyState>>, caller: Caller<LinkKeysApi>) -> Response {
//!     // caller.client_id, caller.subject, caller.scopes, caller.tenant, caller.jti
//! }
//! ```
//!
//! The token is verified locally with the core library's strict verifier against the key
//! manager's current public keys (no HTTP round trip): `iss` must be our issuer and `aud` must
//! contain the API's configured audience (`[api_auth]`). A token is verified once, then remembered
//! in the API's own verified-token cache (the core library's, which the middleware uses too) until
//! it expires, or until the key ring changes. The store's
//! revocation list (jti, subject or client not-before, as `/oauth2/revoke` and admin commands
//! write it) is asked at the first use and again after `api_auth.revocation_check_interval`.
//!
//! Every refusal is a [`CallerError`], the one place that answers RFC 6750: 401 `invalid_token`
//! (or a bare `Bearer` challenge when no token was sent) or 400 `invalid_request`. Bodies are
//! generic; the reason goes to the log and a metric.

pub(crate) mod config;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gha_auth::SharedClock;
use gha_auth::jwt::{AccessClaims, JwtError, TokenKey, Validation, VerifiedTokenCache, Verifier};
use serde_json::json;

use crate::keys::KeyManager;
use crate::store::Store;

/// What the [`Caller`] extractor needs: the authority's keys and issuer to verify a token, the
/// store to ask about revocations, `[api_auth]`, and the cache of verified tokens.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Callers {
    /// `iss` a token must carry.
    pub(crate) issuer: String,
    /// The injected clock.
    pub(crate) clock: SharedClock,
    /// The signing keys (verification is local, no HTTP round trip).
    pub(crate) keys: Arc<KeyManager>,
    /// Where revocations are.
    pub(crate) store: Store,
    /// `[api_auth]`.
    pub(crate) config: ApiAuthConfig,
    broker_tokens: TokenCache,
    link_key_tokens: TokenCache,
    admin_tokens: TokenCache,
}

impl Callers {
    /// Callers of the authority's own APIs, verified against `keys`.
    pub(crate) fn new(
        issuer: String,
        clock: SharedClock,
        keys: Arc<KeyManager>,
        store: Store,
        config: ApiAuthConfig,
    ) -> Self {
        let capacity = usize::try_from(config.token_cache_size).unwrap_or(usize::MAX);
        Self {
            issuer,
            clock,
            keys,
            store,
            config,
            broker_tokens: TokenCache::new(capacity),
            link_key_tokens: TokenCache::new(capacity),
            admin_tokens: TokenCache::new(capacity),
        }
    }
}
pub(crate) use config::ApiAuthConfig;

/// Series: refusals by API and reason.
pub(crate) const REJECTIONS_METRIC: &str = "gha_auth_api_auth_rejections_total";

/// HELP text of the callers' series.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        REJECTIONS_METRIC,
        "Calls to the authority's own APIs refused, by reason"
    );
}

/// One of the authority's own APIs: names it and picks its audience from the configuration.
pub(crate) trait OwnApi: Send + Sync + 'static {
    /// The audience a token must name to call this API.
    fn audience(config: &ApiAuthConfig) -> &str;
    /// The verified tokens of this API.
    fn tokens(callers: &Callers) -> &TokenCache;
}

/// The secrets broker (`/v1/secrets`, `/v1/database/creds`): `api_auth.broker_audience`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BrokerApi;

impl OwnApi for BrokerApi {
    fn audience(config: &ApiAuthConfig) -> &str {
        &config.broker_audience
    }
    fn tokens(callers: &Callers) -> &TokenCache {
        &callers.broker_tokens
    }
}

/// The link-key endpoints (`/v1/link-keys`): `api_auth.link_keys_audience`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkKeysApi;

impl OwnApi for LinkKeysApi {
    fn audience(config: &ApiAuthConfig) -> &str {
        &config.link_keys_audience
    }
    fn tokens(callers: &Callers) -> &TokenCache {
        &callers.link_key_tokens
    }
}

/// The admin API (`/admin/v1`): `api_auth.admin_audience`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdminApi;

impl OwnApi for AdminApi {
    fn audience(config: &ApiAuthConfig) -> &str {
        &config.admin_audience
    }
    fn tokens(callers: &Callers) -> &TokenCache {
        &callers.admin_tokens
    }
}

/// The verified caller of API `A`.
#[derive(Clone)]
#[non_exhaustive]
pub(crate) struct Caller<A> {
    /// The OAuth client the token was issued to.
    pub(crate) client_id: String,
    /// `sub`: the user, or the client itself for client_credentials.
    pub(crate) subject: String,
    /// Granted scopes.
    pub(crate) scopes: Vec<String>,
    /// Roles of the subject (a user's roles; none for a client's own token).
    pub(crate) roles: Vec<String>,
    /// The GHA customer the token is bound to.
    pub(crate) tenant: Option<String>,
    /// The token's id.
    pub(crate) jti: String,
    api: PhantomData<fn() -> A>,
}

impl<A> fmt::Debug for Caller<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .field("tenant", &self.tenant)
            .field("jti", &self.jti)
            .finish_non_exhaustive()
    }
}

impl<A: OwnApi> Caller<A> {
    fn from_identity(identity: &Identity) -> Self {
        Self {
            client_id: identity.client_id.clone(),
            subject: identity.subject.clone(),
            scopes: identity.scopes.clone(),
            roles: identity.roles.clone(),
            tenant: identity.tenant.clone(),
            jti: identity.jti.clone(),
            api: PhantomData,
        }
    }
}

impl<A, S> FromRequestParts<S> for Caller<A>
where
    A: OwnApi,
    S: Send + Sync,
    Arc<Callers>: FromRef<S>,
{
    type Rejection = CallerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let callers = Arc::<Callers>::from_ref(state);
        let token = bearer_token(&parts.headers)?;
        let entry = authenticate::<A>(&callers, token).await?;
        Ok(Caller::from_identity(&entry.identity))
    }
}

/// Why a call was refused. The one place that turns refusals into RFC 6750 responses.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {reason}")]
pub(crate) struct CallerError {
    kind: CallerErrorKind,
    reason: String,
}

/// The kind of refusal: decides the status and the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum CallerErrorKind {
    /// No `Authorization: Bearer` header: 401 with a bare `Bearer` challenge.
    MissingToken,
    /// A malformed `Authorization` header (several, `Bearer` without a token, a token that is not
    /// a b64token): 400 `invalid_request`.
    InvalidRequest,
    /// Bad signature, unknown key, expired, wrong issuer, audience or type: 401 `invalid_token`.
    InvalidToken,
    /// Revoked (jti, subject or client not-before): 401 `invalid_token`.
    Revoked,
    /// The revocation list could not be read: 503, fail closed.
    Unavailable,
}

impl CallerErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            CallerErrorKind::MissingToken => "missing_token",
            CallerErrorKind::InvalidRequest => "invalid_request",
            CallerErrorKind::InvalidToken => "invalid_token",
            CallerErrorKind::Revoked => "revoked",
            CallerErrorKind::Unavailable => "unavailable",
        }
    }
}

impl CallerError {
    fn new(kind: CallerErrorKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }

    /// Which kind of refusal, a stable label (for aggregated audit events and metrics).
    pub(crate) fn label(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self.kind {
            CallerErrorKind::MissingToken
            | CallerErrorKind::InvalidToken
            | CallerErrorKind::Revoked => StatusCode::UNAUTHORIZED,
            CallerErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            CallerErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_code(&self) -> Option<&'static str> {
        match self.kind {
            CallerErrorKind::MissingToken => None,
            CallerErrorKind::InvalidRequest => Some("invalid_request"),
            CallerErrorKind::InvalidToken | CallerErrorKind::Revoked => Some("invalid_token"),
            CallerErrorKind::Unavailable => Some("temporarily_unavailable"),
        }
    }

    fn challenge(&self) -> Option<HeaderValue> {
        match (self.kind, self.error_code()) {
            (CallerErrorKind::Unavailable, _) => None,
            (_, None) => Some(HeaderValue::from_static("Bearer")),
            (_, Some(code)) => HeaderValue::from_str(&format!(r#"Bearer error="{code}""#)).ok(),
        }
    }
}

impl IntoResponse for CallerError {
    fn into_response(self) -> Response {
        match self.kind {
            CallerErrorKind::Unavailable => {
                tracing::warn!(reason = %self.reason, "api call refused: revocation list unavailable");
            }
            CallerErrorKind::MissingToken => {
                tracing::debug!(reason = %self.reason, "api call refused")
            }
            _ => {
                tracing::info!(kind = self.kind.as_str(), reason = %self.reason, "api call refused")
            }
        }
        metrics::counter!(REJECTIONS_METRIC, "reason" => self.kind.as_str()).increment(1);
        let body = match self.error_code() {
            Some(code) => json!({ "error": code }),
            None => {
                json!({ "error": "invalid_request", "error_description": "a bearer token is required" })
            }
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge() {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if self.kind == CallerErrorKind::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The bearer token of `headers`, by the one RFC 6750 §3.1 rule every API shares
/// ([`gha_auth::bearer`]): no token is a bare challenge, a malformed header is `invalid_request`.
fn bearer_token(headers: &HeaderMap) -> Result<&str, CallerError> {
    let values = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    gha_auth::bearer::bearer_token(values).map_err(|error| {
        let kind = if error.is_missing() {
            CallerErrorKind::MissingToken
        } else {
            CallerErrorKind::InvalidRequest
        };
        CallerError::new(kind, error.to_string())
    })
}

/// What a verified token says about its caller.
#[derive(Debug)]
pub(crate) struct Identity {
    client_id: String,
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    tenant: Option<String>,
    jti: String,
    issued_at: i64,
    expires_at: i64,
}

/// A verified token in the cache.
#[derive(Debug)]
pub(crate) struct Entry {
    identity: Identity,
    /// The key-ring version the token was verified against: a changed ring verifies again, so a
    /// key removed from the ring stops its tokens at once.
    ring_version: u64,
    /// When the revocation list was last asked (Unix seconds).
    checked_at: AtomicI64,
}

/// Verified tokens of one of the authority's own APIs: the core library's cache, which the
/// middleware uses too. One per API, since a token verified for one audience says nothing of
/// another.
type TokenCache = VerifiedTokenCache<Arc<Entry>>;

/// Verifies `token` for API `A` (from the cache when it was verified before) and checks the
/// revocation list when due.
async fn authenticate<A: OwnApi>(state: &Callers, token: &str) -> Result<Arc<Entry>, CallerError> {
    let now = state.clock.unix_seconds();
    let key = TokenKey::of(token);
    let cache = A::tokens(state);
    let ring_version = state.keys.snapshot().version();
    let cached = cache
        .get(&key, now)
        .filter(|e| e.ring_version == ring_version);
    let entry = match cached {
        Some(entry) => entry,
        None => {
            // `checked_at` starts unset, so the revocation list is asked before first use.
            let entry = Arc::new(verify::<A>(state, token)?);
            cache.insert(&key, entry.clone(), entry.identity.expires_at, now);
            entry
        }
    };
    let interval = state
        .config
        .revocation_check_interval
        .as_delta()
        .num_seconds();
    let checked_at = entry.checked_at.load(Ordering::Relaxed);
    if checked_at == i64::MIN || now.saturating_sub(checked_at) >= interval {
        let identity = &entry.identity;
        let revoked = crate::revocations::is_revoked(
            &state.store,
            &identity.jti,
            &identity.subject,
            &identity.client_id,
            identity.issued_at,
        )
        .await
        .map_err(|e| CallerError::new(CallerErrorKind::Unavailable, e.to_string()))?;
        if revoked {
            cache.remove(&key);
            return Err(CallerError::new(
                CallerErrorKind::Revoked,
                "token is revoked",
            ));
        }
        entry.checked_at.store(now, Ordering::Relaxed);
    }
    Ok(entry)
}

fn verify<A: OwnApi>(state: &Callers, token: &str) -> Result<Entry, CallerError> {
    let invalid = |e: JwtError| CallerError::new(CallerErrorKind::InvalidToken, e.to_string());
    let audience = A::audience(&state.config);
    let validation = Validation::new(state.issuer.clone(), [audience])
        .map_err(|e| CallerError::new(CallerErrorKind::InvalidToken, e.to_string()))?;
    // The configured leeway, when the verifier accepts it (at most 300 s); else its default.
    let validation = validation
        .clone()
        .with_leeway(state.keys.schedule().leeway)
        .unwrap_or(validation);
    let snapshot = state.keys.snapshot();
    let verified = Verifier::new(validation, state.clock.clone())
        .verify::<AccessClaims>(token, snapshot.ring())
        .map_err(invalid)?;
    let claims = verified.claims;
    let scopes = claims.scopes().map(str::to_owned).collect();
    Ok(Entry {
        identity: Identity {
            client_id: claims.client_id,
            subject: claims.sub,
            scopes,
            roles: claims.roles,
            tenant: claims.tenant,
            jti: claims.jti,
            issued_at: verified.issued_at,
            expires_at: verified.expires_at,
        },
        ring_version: snapshot.version(),
        checked_at: AtomicI64::new(i64::MIN),
    })
}

#[cfg(test)]
mod tests;
