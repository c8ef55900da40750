//! Browser sessions: `POST /session/login`, `/session/refresh`, `/session/logout`.
//!
//! A thin layer over the grants' own functions, so a session gets exactly the password grant's
//! checks (Argon2id, backoff per user and source, audit) and the refresh grant's rotation (grace
//! window, family revocation on reuse):
//! - **login** takes a form-encoded `username`, `password` (optional `tenant`, `scope`), runs
//!   [`password::login`] for the configured client (`session.client_id`), puts the refresh token
//!   in the [`cookie`] and returns only the access token in JSON;
//! - **refresh** runs [`refresh_token::refresh`] with the cookie's token and sets the successor;
//! - **logout** revokes the cookie's family and deletes the cookie.
//!
//! Every request must pass the [`csrf`] check (allowed `Origin` and `X-GHA-CSRF: 1`). With no
//! `session.client_id` sessions are off: every endpoint answers 404.

pub(crate) mod config;
pub(crate) mod cookie;
pub(crate) mod csrf;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gha_auth::apikey::{ApiKey, SecretKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::oauth::client_auth::{self, AuthenticatedClient};
use crate::oauth::error::no_store;
use crate::oauth::grants::password::{self, Login};
use crate::oauth::grants::refresh_token::{self, Refreshed};
use crate::oauth::{ErrorCode, OAuth, OAuthError, TokenResponse, read_form};

pub(crate) use config::SessionConfig;

use axum::extract::FromRef;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The session routes: rate-limited per source, with CORS for the allowed origins outside the
/// limit (so a 429 still reaches the page).
pub(crate) fn router<S>(state: &S) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Sessions>: FromRef<S>,
{
    let sessions = Arc::<Sessions>::from_ref(state);
    OpenApiRouter::new()
        .routes(routes!(login_endpoint))
        .routes(routes!(refresh_endpoint))
        .routes(routes!(logout_endpoint))
        .route_layer(axum::middleware::from_fn_with_state(
            sessions.oauth.limits.clone(),
            crate::ratelimit::per_source,
        ))
        .route_layer(csrf::cors_layer(&sessions.config))
}

/// Path of the login endpoint.
pub(crate) const LOGIN_PATH: &str = "/session/login";
/// Path of the refresh endpoint.
pub(crate) const REFRESH_PATH: &str = "/session/refresh";
/// Path of the logout endpoint.
pub(crate) const LOGOUT_PATH: &str = "/session/logout";

/// The session endpoints' state: the OAuth state their grants run on, and `[session]`.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Sessions {
    /// What the grants need.
    pub(crate) oauth: Arc<OAuth>,
    /// `[session]`.
    pub(crate) config: SessionConfig,
}

/// Parameters a login body may not name: they belong to the token endpoint, and a session acts
/// for its configured client only.
const RESERVED: [&str; 6] = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "refresh_token",
];

/// Why a session request got no session.
#[derive(Debug)]
enum SessionError {
    /// `session.client_id` is unset.
    Off,
    /// The CSRF defence refused the request.
    Forbidden,
    /// An RFC 6749 error (also `rate_limited`); `clear` deletes the cookie too, when the
    /// session it holds is over.
    OAuth { error: OAuthError, clear: bool },
}

impl From<OAuthError> for SessionError {
    fn from(error: OAuthError) -> Self {
        SessionError::OAuth {
            error,
            clear: false,
        }
    }
}

impl From<crate::ratelimit::Limited> for SessionError {
    fn from(limited: crate::ratelimit::Limited) -> Self {
        SessionError::from(OAuthError::from(limited))
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            SessionError::Off => (
                StatusCode::NOT_FOUND,
                ErrorBody {
                    error: "not_found",
                    error_description: "browser sessions are not configured on this server",
                },
            ),
            SessionError::Forbidden => (
                StatusCode::FORBIDDEN,
                ErrorBody {
                    error: "access_denied",
                    error_description: "session requests must come from an allowed origin and \
                                        carry the X-GHA-CSRF header",
                },
            ),
            SessionError::OAuth { error, clear } => {
                let mut response = error.into_response();
                if clear {
                    cookie::clear(response.headers_mut());
                }
                return response;
            }
        };
        let mut response = (status, Json(body)).into_response();
        no_store(response.headers_mut());
        response
    }
}

/// A session's access token (the refresh token is in the cookie, never in the body).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionTokenDoc {
    /// An RFC 9068 JWT; keep it in memory only.
    pub(crate) access_token: String,
    /// `Bearer`.
    pub(crate) token_type: String,
    /// Lifetime in seconds.
    pub(crate) expires_in: u64,
    /// The granted scopes.
    pub(crate) scope: Option<String>,
}

/// A session login, form-encoded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionLoginDoc {
    /// The user's login name.
    pub(crate) username: String,
    /// The user's password.
    pub(crate) password: String,
    /// The user's tenant, when the session client serves several.
    pub(crate) tenant: Option<String>,
    /// Space-separated scopes; narrowed to what the session client may have.
    pub(crate) scope: Option<String>,
}

/// The session client, or [`SessionError::Off`].
fn session_client(state: &Sessions) -> Result<&str, SessionError> {
    state.config.client_id.as_deref().ok_or(SessionError::Off)
}

fn peer_of(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// A session request that passed the CSRF defence.
struct Admitted {
    /// The configured session client.
    client_id: String,
    /// Where the request came from.
    peer: Option<SocketAddr>,
}

impl Admitted {
    /// `event` with the request's source address, when known.
    fn with_source(&self, event: AuditEvent) -> AuditEvent {
        match self.peer {
            Some(peer) => event.detail("source", peer.ip().to_string()),
            None => event,
        }
    }
}

/// What every session endpoint checks first: sessions are on, and the CSRF defence passes
/// (allowed `Origin` and the custom header). A refusal is audited.
async fn admit(
    state: &Sessions,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    endpoint: &'static str,
) -> Result<Admitted, SessionError> {
    let admitted = Admitted {
        client_id: session_client(state)?.to_owned(),
        peer,
    };
    let Err(failure) = csrf::check(&state.config, headers) else {
        return Ok(admitted);
    };
    let origin = csrf::origin_of(headers);
    tracing::info!(origin = %crate::audit::clean(&origin), reason = failure.as_str(), endpoint, "session request refused");
    let event = AuditEvent::new(
        AuditKind::SessionRefused,
        "session",
        endpoint,
        Outcome::Failure,
    )
    .detail("reason", failure.as_str())
    .detail("origin", origin);
    state
        .oauth
        .audit
        .record_or_log(admitted.with_source(event))
        .await;
    Err(SessionError::Forbidden)
}

/// The session client as the token endpoint would authenticate it (a public client names
/// itself; disabled or confidential clients are refused there).
async fn authenticate(
    state: &OAuth,
    client_id: &str,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedClient, SessionError> {
    let client = client_auth::authenticate_public(state, client_id, peer).await?;
    state
        .limits
        .check_client(&client.client.id, client.client.public, peer)?;
    Ok(client)
}

/// How long the cookie lives: a refresh token's idle lifetime (never beyond a family's end).
fn cookie_max_age(state: &OAuth) -> i64 {
    let refresh = state.families.config();
    refresh
        .idle_lifetime
        .as_secs()
        .min(refresh.absolute_lifetime.as_secs())
}

/// The token response without its refresh token, which goes into the cookie.
fn with_cookie(state: &OAuth, tokens: TokenResponse, refresh: &str) -> Response {
    let mut response = tokens.into_response();
    cookie::set(response.headers_mut(), refresh, cookie_max_age(state));
    response
}

/// `POST /session/login`.
#[utoipa::path(
    post,
    path = "/session/login",
    tag = "session",
    request_body(content = SessionLoginDoc, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "One of session.allowed_origins"),
        ("X-GHA-CSRF" = String, Header, description = "Must be 1"),
    ),
    responses(
        (status = 200, description = "Logged in: the access token; the refresh token is set in the __Host-gha-session cookie (HttpOnly, Secure, SameSite=Strict)", body = SessionTokenDoc),
        (status = 400, description = "RFC 6749 error; a failed login is invalid_grant and never says which half of the credential was wrong", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 403, description = "access_denied: origin not allowed or X-GHA-CSRF missing", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 404, description = "Sessions are not configured", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::oauth::docs::OAuthErrorDoc),
    ),
)]
pub(crate) async fn login_endpoint(
    State(state): State<Arc<Sessions>>,
    request: Request,
) -> Response {
    login(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn login(state: &Sessions, request: Request) -> Result<Response, SessionError> {
    let admitted = admit(state, request.headers(), peer_of(&request), LOGIN_PATH).await?;
    let (client_id, peer) = (admitted.client_id.as_str(), admitted.peer);
    let oauth = &*state.oauth;
    let (_, form, _) = read_form(oauth, request).await?;
    if let Some(name) = RESERVED.iter().find(|name| form.get(name).is_some()) {
        return Err(OAuthError::invalid_request(format!(
            "parameter {name} is set by the server on session requests"
        ))
        .into());
    }
    let user = format!(
        "{}/{}",
        form.get("tenant").unwrap_or_default(),
        form.get("username").unwrap_or_default()
    );
    let client = authenticate(oauth, client_id, peer).await?;
    let Login { tokens, refresh } = password::login(oauth, client, &form, peer).await?;
    let Some(refresh) = refresh else {
        tracing::error!(client_id = %client_id, "the session client may not use refresh tokens: register it with --grant refresh_token");
        return Err(OAuthError::unauthorized_client().into());
    };
    let event = AuditEvent::new(
        AuditKind::SessionStarted,
        client_id,
        &user,
        Outcome::Success,
    );
    oauth.audit.record_or_log(admitted.with_source(event)).await;
    Ok(with_cookie(oauth, tokens, refresh.expose()))
}

/// `POST /session/refresh`.
#[utoipa::path(
    post,
    path = "/session/refresh",
    tag = "session",
    params(
        ("Origin" = String, Header, description = "One of session.allowed_origins"),
        ("X-GHA-CSRF" = String, Header, description = "Must be 1"),
        ("__Host-gha-session" = String, Cookie, description = "The session's refresh token"),
    ),
    responses(
        (status = 200, description = "A fresh access token; the cookie now holds the successor (a repeat within refresh.grace_window gets the same one)", body = SessionTokenDoc),
        (status = 400, description = "invalid_grant: no session, or it ended, was revoked or reused; the cookie is deleted", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 403, description = "access_denied: origin not allowed or X-GHA-CSRF missing", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 404, description = "Sessions are not configured", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::oauth::docs::OAuthErrorDoc),
    ),
)]
pub(crate) async fn refresh_endpoint(
    State(state): State<Arc<Sessions>>,
    request: Request,
) -> Response {
    refresh(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn session_over() -> SessionError {
    SessionError::OAuth {
        error: OAuthError::new(
            ErrorCode::InvalidGrant,
            "there is no session, or it has ended",
        ),
        clear: true,
    }
}

async fn refresh(state: &Sessions, request: Request) -> Result<Response, SessionError> {
    let Admitted { client_id, peer } =
        admit(state, request.headers(), peer_of(&request), REFRESH_PATH).await?;
    let Some(token) = cookie::read(request.headers()) else {
        return Err(session_over());
    };
    let oauth = &*state.oauth;
    let client = authenticate(oauth, &client_id, peer).await?;
    let refreshed = refresh_token::refresh(oauth, &client.client, token.expose(), None, peer).await;
    let Refreshed { tokens, successor } = match refreshed {
        Ok(refreshed) => refreshed,
        Err(error) if error.code() == ErrorCode::InvalidGrant => return Err(session_over()),
        Err(error) => return Err(error.into()),
    };
    Ok(with_cookie(oauth, tokens, successor.expose()))
}

/// `POST /session/logout`.
#[utoipa::path(
    post,
    path = "/session/logout",
    tag = "session",
    params(
        ("Origin" = String, Header, description = "One of session.allowed_origins"),
        ("X-GHA-CSRF" = String, Header, description = "Must be 1"),
        ("__Host-gha-session" = String, Cookie, description = "The session's refresh token"),
    ),
    responses(
        (status = 204, description = "The session's family is revoked (if there was one) and the cookie deleted"),
        (status = 403, description = "access_denied: origin not allowed or X-GHA-CSRF missing", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 404, description = "Sessions are not configured", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::oauth::docs::OAuthErrorDoc),
    ),
)]
pub(crate) async fn logout_endpoint(
    State(state): State<Arc<Sessions>>,
    request: Request,
) -> Response {
    logout(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn logout(state: &Sessions, request: Request) -> Result<Response, SessionError> {
    let admitted = admit(state, request.headers(), peer_of(&request), LOGOUT_PATH).await?;
    let client_id = admitted.client_id.as_str();
    let state = &*state.oauth;
    let token = cookie::read(request.headers())
        .and_then(|t| ApiKey::parse_kind(t.expose(), SecretKind::RefreshToken).ok());
    if let Some(token) = token {
        let found = crate::refresh::lookup(&state.families, &token)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failed during logout");
                OAuthError::server_error()
            })?;
        // Only a family of the session client: a cookie cannot end another client's logins.
        if let Some((_, family)) = found.filter(|(_, f)| f.client_id == client_id) {
            let now = state.clock.unix_seconds();
            let revoked =
                crate::refresh::revoke_family(&state.store, &family.id, now, "session_logout")
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not revoke the session's family");
                        OAuthError::server_error()
                    })?;
            if revoked {
                let event = AuditEvent::new(
                    AuditKind::SessionEnded,
                    client_id,
                    family.user_id.as_deref().unwrap_or_default(),
                    Outcome::Success,
                )
                .detail("family_id", family.id.as_str());
                state.audit.record_or_log(admitted.with_source(event)).await;
            }
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    no_store(response.headers_mut());
    cookie::clear(response.headers_mut());
    Ok(response)
}
