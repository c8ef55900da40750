//! Browser sessions (BRIEF §4): `POST /session/login`, `/session/refresh`, `/session/logout`.
//!
//! A thin layer over the token endpoint's own code, so a session gets exactly the password
//! grant's checks (Argon2id, backoff per user and source, audit) and the refresh grant's
//! rotation (grace window, family revocation on reuse):
//! - **login** takes a form-encoded `username`, `password` (optional `tenant`, `scope`), runs the
//!   `password` grant for the configured client (`session.client_id`), puts the refresh token in
//!   the [`cookie`] and returns only the access token in JSON;
//! - **refresh** runs the `refresh_token` grant with the cookie's token and sets the successor;
//! - **logout** revokes the cookie's family and deletes the cookie.
//!
//! Every request must pass the [`csrf`] check (allowed `Origin` and `X-GHA-CSRF: 1`). With no
//! `session.client_id` sessions are off: every endpoint answers 404.

mod config;
pub mod cookie;
pub mod csrf;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gha_auth::apikey::{ApiKey, SecretKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::clients::GrantType;
use crate::oauth::client_auth::{self, AuthenticatedClient};
use crate::oauth::error::no_store;
use crate::oauth::grants::{self, GrantRequest};
use crate::oauth::{ErrorCode, OAuthError, TokenForm, TokenResponse, read_form};

pub use config::{SessionConfig, origin_problem};
pub use cookie::COOKIE_NAME;
pub use csrf::CSRF_HEADER;
pub(crate) use csrf::cors_layer;

/// Path of the login endpoint.
pub const LOGIN_PATH: &str = "/session/login";
/// Path of the refresh endpoint.
pub const REFRESH_PATH: &str = "/session/refresh";
/// Path of the logout endpoint.
pub const LOGOUT_PATH: &str = "/session/logout";

/// Parameters the server sets itself; a login body naming them is refused.
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
pub struct SessionTokenDoc {
    /// An RFC 9068 JWT; keep it in memory only.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The granted scopes.
    pub scope: Option<String>,
}

/// A session login, form-encoded.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionLoginDoc {
    /// The user's login name.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// The user's tenant, when the session client serves several.
    pub tenant: Option<String>,
    /// Space-separated scopes; narrowed to what the session client may have.
    pub scope: Option<String>,
}

/// The session client, or [`SessionError::Off`].
fn session_client(state: &AppState) -> Result<&str, SessionError> {
    state
        .config
        .session
        .client_id
        .as_deref()
        .ok_or(SessionError::Off)
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
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    endpoint: &'static str,
) -> Result<Admitted, SessionError> {
    let admitted = Admitted {
        client_id: session_client(state)?.to_owned(),
        peer,
    };
    let Err(failure) = csrf::check(&state.config.session, headers) else {
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
    state.audit.record_or_log(admitted.with_source(event)).await;
    Err(SessionError::Forbidden)
}

/// The session client as the token endpoint would authenticate it (a public client names
/// itself; disabled or confidential clients are refused there).
async fn authenticate(
    state: &AppState,
    form: &TokenForm,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedClient, SessionError> {
    let client = client_auth::authenticate(state, &HeaderMap::new(), form, peer).await?;
    state.limits.check_client(&client.client.id)?;
    Ok(client)
}

/// How long the cookie lives: a refresh token's idle lifetime (never beyond a family's end).
fn cookie_max_age(state: &AppState) -> i64 {
    let refresh = &state.config.refresh;
    refresh
        .idle_lifetime
        .as_secs()
        .min(refresh.absolute_lifetime.as_secs())
}

/// The token response without its refresh token, which goes into the cookie.
fn with_cookie(state: &AppState, mut tokens: TokenResponse, refresh: &str) -> Response {
    tokens.refresh_token = None;
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
        (status = 400, description = "RFC 6749 error; a failed login is invalid_grant and never says which half of the credential was wrong", body = crate::openapi::OAuthErrorDoc),
        (status = 403, description = "access_denied: origin not allowed or X-GHA-CSRF missing", body = crate::openapi::OAuthErrorDoc),
        (status = 404, description = "Sessions are not configured", body = crate::openapi::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::openapi::OAuthErrorDoc),
    ),
)]
pub(crate) async fn login_endpoint(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    login(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn login(state: &AppState, request: Request) -> Result<Response, SessionError> {
    let admitted = admit(state, request.headers(), peer_of(&request), LOGIN_PATH).await?;
    let (client_id, peer) = (admitted.client_id.as_str(), admitted.peer);
    let (_, mut form, _) = read_form(state, request).await?;
    if let Some(name) = RESERVED.iter().find(|name| form.get(name).is_some()) {
        return Err(OAuthError::invalid_request(format!(
            "parameter {name} is set by the server on session requests"
        ))
        .into());
    }
    form.set("grant_type", GrantType::Password.as_str());
    form.set("client_id", client_id);
    let user = format!(
        "{}/{}",
        form.get("tenant").unwrap_or_default(),
        form.get("username").unwrap_or_default()
    );
    let client = authenticate(state, &form, peer).await?;
    let mut tokens = grants::handle(
        GrantType::Password,
        GrantRequest {
            state,
            form: &form,
            client,
            peer,
        },
    )
    .await?;
    let Some(refresh) = tokens.refresh_token.take() else {
        tracing::error!(client_id = %client_id, "the session client may not use refresh tokens: register it with --grant refresh_token");
        return Err(OAuthError::unauthorized_client().into());
    };
    let event = AuditEvent::new(
        AuditKind::SessionStarted,
        client_id,
        &user,
        Outcome::Success,
    );
    state.audit.record_or_log(admitted.with_source(event)).await;
    Ok(with_cookie(state, tokens, &refresh))
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
        (status = 400, description = "invalid_grant: no session, or it ended, was revoked or reused; the cookie is deleted", body = crate::openapi::OAuthErrorDoc),
        (status = 403, description = "access_denied: origin not allowed or X-GHA-CSRF missing", body = crate::openapi::OAuthErrorDoc),
        (status = 404, description = "Sessions are not configured", body = crate::openapi::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::openapi::OAuthErrorDoc),
    ),
)]
pub(crate) async fn refresh_endpoint(
    State(state): State<Arc<AppState>>,
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

async fn refresh(state: &AppState, request: Request) -> Result<Response, SessionError> {
    let Admitted { client_id, peer } =
        admit(state, request.headers(), peer_of(&request), REFRESH_PATH).await?;
    let Some(token) = cookie::read(request.headers()) else {
        return Err(session_over());
    };
    let mut form = TokenForm::default();
    form.set("grant_type", GrantType::RefreshToken.as_str());
    form.set("client_id", client_id.as_str());
    form.set("refresh_token", token.expose());
    let client = authenticate(state, &form, peer).await?;
    let result = grants::handle(
        GrantType::RefreshToken,
        GrantRequest {
            state,
            form: &form,
            client,
            peer,
        },
    )
    .await;
    let mut tokens = match result {
        Ok(tokens) => tokens,
        Err(error) if error.code() == ErrorCode::InvalidGrant => return Err(session_over()),
        Err(error) => return Err(error.into()),
    };
    let Some(successor) = tokens.refresh_token.take() else {
        return Err(OAuthError::server_error().into());
    };
    Ok(with_cookie(state, tokens, &successor))
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
        (status = 403, description = "access_denied: origin not allowed or X-GHA-CSRF missing", body = crate::openapi::OAuthErrorDoc),
        (status = 404, description = "Sessions are not configured", body = crate::openapi::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::openapi::OAuthErrorDoc),
    ),
)]
pub(crate) async fn logout_endpoint(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    logout(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn logout(state: &AppState, request: Request) -> Result<Response, SessionError> {
    let admitted = admit(state, request.headers(), peer_of(&request), LOGOUT_PATH).await?;
    let client_id = admitted.client_id.as_str();
    let token = cookie::read(request.headers())
        .and_then(|t| ApiKey::parse_kind(t.expose(), SecretKind::RefreshToken).ok());
    if let Some(token) = token {
        let found = crate::refresh::lookup(state, &token).await.map_err(|e| {
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
