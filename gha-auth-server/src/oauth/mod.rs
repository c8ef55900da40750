//! The OAuth 2.0 token endpoint, `POST /oauth2/token`.
//!
//! Request handling is split so that each concern lives in one place:
//! - [`form`]: the form-encoded body (empty values absent, repeats refused);
//! - [`client_auth`]: client authentication, one method per request;
//! - [`assertion`]: `private_key_jwt` assertions (RFC 7523);
//! - [`grants`]: one module per grant type;
//! - [`issue`]: audience and scope narrowing and minting the RFC 9068 access token;
//! - [`error`]: RFC 6749 §5.2 errors, the only place errors become HTTP responses.

pub(crate) mod assertion;
pub(crate) mod client_auth;
pub(crate) mod config;
pub(crate) mod docs;
pub(crate) mod error;
pub(crate) mod form;
pub(crate) mod grants;
pub(crate) mod issue;
mod own_tokens;
pub(crate) mod revocation;
mod state;
mod token;

pub(crate) use config::TokensConfig;
pub(crate) use error::{ErrorCode, OAuthError};
pub(crate) use form::TokenForm;
pub(crate) use issue::TokenResponse;
pub(crate) use revocation::{INTROSPECT_PATH, REVOKE_PATH};
pub(crate) use state::OAuth;
pub(crate) use token::Refusal;
pub(crate) use token::read_form;

use std::sync::Arc;

use axum::extract::FromRef;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The token, revocation and introspection routes, rate-limited per source.
pub(crate) fn router<S>(state: &S) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<OAuth>: FromRef<S>,
{
    let limits = Arc::<OAuth>::from_ref(state).limits.clone();
    OpenApiRouter::new()
        .routes(routes!(token::token_endpoint))
        .routes(routes!(revocation::revoke_endpoint))
        .routes(routes!(revocation::introspect_endpoint))
        .route_layer(axum::middleware::from_fn_with_state(
            limits,
            crate::ratelimit::per_source,
        ))
}

/// HELP text of the OAuth endpoints' series.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        token::TOKEN_REQUESTS_METRIC,
        "Token-endpoint outcomes per grant type"
    );
}

/// Path of the token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth2/token";
