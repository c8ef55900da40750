//! The `POST /oauth2/token` handler.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::grants::{self, GrantRequest};
use super::{OAuthError, TokenForm, client_auth};
use crate::app::AppState;
use crate::clients::GrantType;

/// Handles a token request: content type, bounded body, form, grant type, client
/// authentication, then the grant. Every failure is an RFC 6749 error, never a 500 for bad
/// input.
pub(crate) async fn token_endpoint(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    match handle(&state, request).await {
        Ok(response) => response.into_response(),
        Err(error) => {
            tracing::debug!(error = %error, "token request refused");
            error.into_response()
        }
    }
}

async fn handle(state: &AppState, request: Request) -> Result<super::TokenResponse, OAuthError> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !is_form(&parts.headers) {
        return Err(OAuthError::invalid_request(
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let body = axum::body::to_bytes(body, state.config.http.max_body_bytes)
        .await
        .map_err(|_| OAuthError::invalid_request("the request body is too large or unreadable"))?;
    let form = TokenForm::parse(&body)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let grant = GrantType::from_wire(grant_type)
        .filter(|g| grants::is_supported(*g))
        .ok_or_else(grants::unsupported)?;
    let client = client_auth::authenticate(state, &parts.headers, &form, peer).await?;
    grants::handle(
        grant,
        GrantRequest {
            state,
            form: &form,
            client,
            peer,
        },
    )
    .await
}

fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
