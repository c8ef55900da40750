//! The OpenAPI shapes of the OAuth endpoints' form bodies and answers (the handlers read and
//! write them by hand, as the RFCs spell them).

use serde::Serialize;
use utoipa::ToSchema;

/// The grant types the token endpoint serves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) enum GrantTypeDoc {
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 6749 §4.3 (first-party clients).
    #[serde(rename = "password")]
    Password,
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 8693.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// A token request (RFC 6749 §4.4, RFC 7523 §2.2, RFC 8693, RFC 8707), form-encoded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenRequestDoc {
    /// The grant; any other value is answered `unsupported_grant_type`.
    pub(crate) grant_type: GrantTypeDoc,
    /// Space-separated scopes; narrowed to what the client may have.
    pub(crate) scope: Option<String>,
    /// The audience (RFC 8693); a client with a single audience gets it by default.
    pub(crate) audience: Option<String>,
    /// The resource (RFC 8707), an alternative to `audience`.
    pub(crate) resource: Option<String>,
    /// The client id (`client_secret_post`, public clients).
    pub(crate) client_id: Option<String>,
    /// The client secret (`client_secret_post`); prefer HTTP Basic.
    pub(crate) client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (`private_key_jwt`).
    pub(crate) client_assertion_type: Option<String>,
    /// The signed client assertion (`private_key_jwt`).
    pub(crate) client_assertion: Option<String>,
    /// Token exchange: the subject token (an access token of this authority, or a legacy
    /// static API key imported with `gha-auth clients legacy-key add`).
    pub(crate) subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` or
    /// `urn:gha:params:oauth:token-type:legacy-api-key`.
    pub(crate) subject_token_type: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` (the default).
    pub(crate) requested_token_type: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenResponseDoc {
    /// An RFC 9068 JWT (`typ: at+jwt`).
    pub(crate) access_token: String,
    /// `Bearer`.
    pub(crate) token_type: String,
    /// Lifetime in seconds.
    pub(crate) expires_in: u64,
    /// The granted scopes.
    pub(crate) scope: Option<String>,
    /// A rotating refresh token (grants that issue one).
    pub(crate) refresh_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub(crate) issued_token_type: Option<String>,
}

/// An error (RFC 6749 §5.2); `rate_limited` comes with `429` and `Retry-After`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OAuthErrorDoc {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`, `server_error`,
    /// `rate_limited`.
    pub(crate) error: String,
    /// A human-readable description; never says which half of a credential was wrong.
    pub(crate) error_description: String,
}

/// A token-introspection or revocation request (RFC 7662, RFC 7009), form-encoded; the caller
/// authenticates as a client.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenParamDoc {
    /// The token.
    #[schema(min_length = 1, max_length = 8192)]
    pub(crate) token: String,
    /// `access_token` or `refresh_token`.
    pub(crate) token_type_hint: Option<String>,
}
