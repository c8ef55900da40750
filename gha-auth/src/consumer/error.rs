//! Why a consumer call failed. Messages name URLs, paths, roles and status codes, never a
//! secret, a token or a response body that could hold one.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

/// An error of the token keeper or the secrets client.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The client was configured wrongly (a timeout of zero, no runtime, …).
    #[error("consumer configuration: {0}")]
    Config(String),
    /// The authority or broker URL is refused by the outbound-URL policy (plain HTTP to a
    /// remote host, credentials or a query in it, …).
    #[error("authority URL: {0}")]
    Url(#[from] crate::outbound::UrlError),
    /// A credential file (client secret, private key) could not be read or is unusable.
    #[error("cannot use the {what} in {path}: {message}")]
    Credential {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (never the content).
        message: String,
    },
    /// The authority could not be reached or did not answer in time.
    #[error("authority unreachable at {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The token endpoint refused the client (RFC 6749 error code and description).
    #[error("token request refused ({status} {code}): {description}")]
    TokenRefused {
        /// HTTP status.
        status: u16,
        /// The RFC 6749 `error` code, e.g. `invalid_client`.
        code: String,
        /// The authority's `error_description` (its own words, no secret).
        description: String,
    },
    /// The broker refused the access token even after a fresh one was fetched.
    #[error("access token refused by the broker for {what}")]
    InvalidToken {
        /// The secret path or database role asked for.
        what: String,
    },
    /// The broker's policy does not allow this client to read it (403).
    #[error("access denied to {what}")]
    Denied {
        /// The secret path or database role asked for.
        what: String,
    },
    /// No such secret path or database role (404).
    #[error("not found: {what}")]
    NotFound {
        /// The secret path or database role asked for.
        what: String,
    },
    /// The authority or broker is temporarily unable to answer (429, 503, other 5xx).
    #[error("temporarily unavailable ({status}) for {what}")]
    Unavailable {
        /// What was asked for.
        what: String,
        /// HTTP status.
        status: u16,
        /// The `Retry-After` the server sent.
        retry_after: Option<Duration>,
    },
    /// The answer was not what the protocol says (status, JSON, token type, sizes).
    #[error("unexpected answer from {url}: {message}")]
    InvalidResponse {
        /// The URL called.
        url: String,
        /// What was wrong (never the body).
        message: String,
    },
    /// A recent attempt failed and the next one is not due yet.
    #[error("backing off until {until} after: {last}")]
    BackingOff {
        /// When the next attempt is allowed.
        until: DateTime<Utc>,
        /// The failure that started the backoff.
        last: Box<ConsumerError>,
    },
    /// The last good value is older than its stale window allows and no fresh one came.
    #[error("{what}: no fresh value since {since}; last error: {last}")]
    Expired {
        /// The secret path or database role.
        what: String,
        /// When the value stopped being usable.
        since: DateTime<Utc>,
        /// The last refresh error.
        last: Box<ConsumerError>,
    },
}

impl ConsumerError {
    /// Whether trying again later may succeed without anyone changing the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Unavailable { .. } => true,
            Self::BackingOff { last, .. } | Self::Expired { last, .. } => last.is_transient(),
            _ => false,
        }
    }

    /// A short machine-readable kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) | Self::Url(_) => "config",
            Self::Credential { .. } => "credential",
            Self::Unreachable { .. } => "unreachable",
            Self::TokenRefused { .. } => "token_refused",
            Self::InvalidToken { .. } => "invalid_token",
            Self::Denied { .. } => "denied",
            Self::NotFound { .. } => "not_found",
            Self::Unavailable { .. } => "unavailable",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::BackingOff { .. } => "backing_off",
            Self::Expired { .. } => "expired",
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            Self::BackingOff { last, .. } | Self::Expired { last, .. } => last.retry_after(),
            _ => None,
        }
    }
}
