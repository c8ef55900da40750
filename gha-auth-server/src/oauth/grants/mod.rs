//! One module per grant type. Each takes the authenticated client and the form and returns a
//! [`TokenResponse`] or an [`OAuthError`]; [`handle`] dispatches on `grant_type`.
//!
//! To add a grant, add a module here and an arm in [`handle`]; client authentication, error
//! mapping and token minting are shared. A grant that another endpoint also runs (the session
//! endpoints log in and refresh) exposes a typed function beside its `handle`.

mod client_credentials;
pub(crate) mod password;
pub(crate) mod refresh_token;
pub(crate) mod token_exchange;

use std::net::SocketAddr;

use super::client_auth::AuthenticatedClient;
use super::issue::TokenResponse;
use super::{ErrorCode, OAuthError, TokenForm};
use crate::clients::GrantType;
use crate::oauth::OAuth;

/// Everything a grant needs to decide.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct GrantRequest<'a> {
    /// Shared state.
    pub(crate) state: &'a OAuth,
    /// The request parameters.
    pub(crate) form: &'a TokenForm,
    /// The authenticated client.
    pub(crate) client: AuthenticatedClient,
    /// The peer address, for audit and rate limits.
    pub(crate) peer: Option<SocketAddr>,
}

/// Runs `grant`.
pub(crate) async fn handle(
    grant: GrantType,
    request: GrantRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    match grant {
        GrantType::ClientCredentials => client_credentials::handle(request).await,
        GrantType::Password => password::handle(request).await,
        GrantType::RefreshToken => refresh_token::handle(request).await,
        GrantType::TokenExchange => token_exchange::handle(request).await,
    }
}

/// The grant types [`handle`] serves.
const SUPPORTED: [GrantType; 4] = [
    GrantType::ClientCredentials,
    GrantType::Password,
    GrantType::RefreshToken,
    GrantType::TokenExchange,
];

/// The grant types [`handle`] serves, for the metadata document.
pub(crate) fn supported() -> Vec<&'static str> {
    SUPPORTED.iter().map(|g| g.as_str()).collect()
}

/// Whether [`handle`] serves `grant` (no allocation: called on every token request).
pub(crate) fn is_supported(grant: GrantType) -> bool {
    SUPPORTED.contains(&grant)
}

pub(crate) fn unsupported() -> OAuthError {
    OAuthError::new(
        ErrorCode::UnsupportedGrantType,
        "the grant type is not supported",
    )
}
