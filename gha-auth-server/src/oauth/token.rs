//! The `POST /oauth2/token` handler.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::grants::{self, GrantRequest};
use super::{OAuth, OAuthError, TokenForm, client_auth};
use crate::clients::GrantType;
use crate::ratelimit::Limited;

/// Handles a token request: content type, bounded body, form, grant type, client
/// authentication, then the grant. Every failure is an RFC 6749 error, never a 500 for bad
/// input.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oauth",
    request_body(
        content = crate::oauth::docs::TokenRequestDoc,
        content_type = "application/x-www-form-urlencoded",
        description = "Client authentication by HTTP Basic (client_secret_basic), form fields (client_secret_post) or a signed assertion (private_key_jwt)"
    ),
    responses(
        (status = 200, description = "An access token (RFC 9068)", body = crate::oauth::docs::TokenResponseDoc),
        (status = 400, description = "RFC 6749 §5.2 error", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 401, description = "Client authentication by HTTP Basic failed", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 429, description = "Rate limited or backing off after failed authentication; see Retry-After", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 500, description = "server_error", body = crate::oauth::docs::OAuthErrorDoc),
    ),
)]
pub(crate) async fn token_endpoint(State(state): State<Arc<OAuth>>, request: Request) -> Response {
    let (headers, form, peer) = match read_form(&state, request).await {
        Ok(read) => read,
        Err(error) => return refused("unknown", error),
    };
    let grant = match requested_grant(&form) {
        Ok(grant) => grant,
        Err(error) => return refused("unknown", error),
    };
    match handle(&state, grant, &headers, &form, peer).await {
        Ok(response) => {
            count_outcome(grant.as_str(), "success");
            response.into_response()
        }
        Err(error) => refused(grant.as_str(), error),
    }
}

fn refused(grant: &'static str, error: OAuthError) -> Response {
    tracing::debug!(error = %error, "token request refused");
    count_outcome(grant, error.code().as_str());
    error.into_response()
}

/// Series: token-endpoint outcomes per grant (`success`, or the RFC 6749 error code).
pub(crate) const TOKEN_REQUESTS_METRIC: &str = "gha_auth_token_requests_total";

fn count_outcome(grant: &'static str, outcome: &'static str) {
    metrics::counter!(TOKEN_REQUESTS_METRIC, "grant" => grant, "outcome" => outcome).increment(1);
}

/// The grant the request asks for, if this server serves it.
fn requested_grant(form: &TokenForm) -> Result<GrantType, OAuthError> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    GrantType::from_wire(grant_type)
        .filter(|g| grants::is_supported(*g))
        .ok_or_else(grants::unsupported)
}

/// Why a request to an OAuth endpoint got no answer: an RFC 6749 error or an abuse limit
/// (both render as responses; a limit is also an [`OAuthError`] with code `rate_limited`).
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Refusal {
    /// An RFC 6749 error.
    OAuth(OAuthError),
    /// An abuse limit (429 with `Retry-After`).
    Limited(Limited),
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Refusal::OAuth(e)
    }
}

impl From<Limited> for Refusal {
    fn from(e: Limited) -> Self {
        Refusal::Limited(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::OAuth(e) => e.into_response(),
            Refusal::Limited(l) => l.into_response(),
        }
    }
}

async fn handle(
    state: &OAuth,
    grant: GrantType,
    headers: &HeaderMap,
    form: &TokenForm,
    peer: Option<SocketAddr>,
) -> Result<super::TokenResponse, OAuthError> {
    let client = client_auth::authenticate(state, headers, form, peer).await?;
    state
        .limits
        .check_client(&client.client.id, client.client.public, peer)?;
    grants::handle(
        grant,
        GrantRequest {
            state,
            form,
            client,
            peer,
        },
    )
    .await
}

/// The headers, the parsed form body and the peer of a form-encoded POST.
pub(crate) async fn read_form(
    state: &OAuth,
    request: Request,
) -> Result<(HeaderMap, TokenForm, Option<SocketAddr>), OAuthError> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let body = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| OAuthError::invalid_request("the request body is too large or unreadable"))?;
    let form = TokenForm::parse(&body)?;
    Ok((parts.headers, form, peer))
}
