//! The OAuth 2.0 token endpoint, `POST /oauth2/token`.
//!
//! Request handling is split so that each concern lives in one place:
//! - [`form`]: the form-encoded body (empty values absent, repeats refused);
//! - [`client_auth`]: client authentication, one method per request;
//! - [`assertion`]: `private_key_jwt` assertions (RFC 7523);
//! - [`grants`]: one module per grant type;
//! - [`issue`]: audience and scope narrowing and minting the RFC 9068 access token;
//! - [`error`]: RFC 6749 §5.2 errors, the only place errors become HTTP responses.

pub mod assertion;
pub mod client_auth;
mod config;
pub mod error;
pub mod form;
pub mod grants;
pub mod issue;
pub mod revocation;
mod token;

pub use config::TokensConfig;
pub use error::{ErrorCode, OAuthError};
pub use form::TokenForm;
pub use issue::TokenResponse;
pub use revocation::{INTROSPECT_PATH, REVOKE_PATH};
pub(crate) use revocation::{introspect_endpoint, revoke_endpoint};
pub use token::Refusal;
pub(crate) use token::{__path_token_endpoint, read_form, token_endpoint};

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";
