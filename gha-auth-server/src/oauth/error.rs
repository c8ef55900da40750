//! RFC 6749 §5.2 error responses: the one place that maps token-endpoint errors to HTTP.

use std::borrow::Cow;
use std::fmt;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ratelimit::{LIMITED_DESCRIPTION, Limited};

/// The `error` codes of RFC 6749 §5.2, RFC 8707 §2 and a generic server error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ErrorCode {
    /// Missing, repeated or malformed parameter; unsupported content type; more than one client
    /// authentication method.
    InvalidRequest,
    /// Client authentication failed. Never says which part of the credential was wrong.
    InvalidClient,
    /// The grant (authorization code, refresh token, credentials) is invalid.
    InvalidGrant,
    /// The authenticated client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported by this server.
    UnsupportedGrantType,
    /// The requested scope is invalid or exceeds what the client may have.
    InvalidScope,
    /// The requested audience or resource is invalid, missing or not allowed (RFC 8707).
    InvalidTarget,
    /// Something failed on our side; never caused by the request.
    ServerError,
    /// An abuse limit refused the request: 429 with `Retry-After` (not an RFC 6749 code).
    RateLimited,
    /// A dependency (the store) cannot be reached now, or the server is at its bound for
    /// expensive work (password hashing): 503 with `Retry-After`.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The `error` value on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::ServerError => "server_error",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A token-endpoint error: what the client is told. Descriptions are fixed texts or name the
/// offending parameter; they never repeat a credential.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    code: ErrorCode,
    description: Cow<'static, str>,
    basic_challenge: bool,
    retry_after: Option<u64>,
}

impl OAuthError {
    /// An error with a description (shown to the client as `error_description`).
    pub(crate) fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub(crate) fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client` with the one description every client-authentication failure shares.
    pub(crate) fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    /// `invalid_client` for a mistake the client can fix, found without knowing whether the
    /// client exists.
    pub(crate) fn invalid_client_because(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `unauthorized_client`: the client may not use the requested grant type.
    pub(crate) fn unauthorized_client() -> Self {
        Self::new(
            ErrorCode::UnauthorizedClient,
            "the client is not allowed to use this grant type",
        )
    }

    /// `server_error`: logged by the caller, opaque to the client.
    pub(crate) fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// `503 Service Unavailable` with `Retry-After: 1`: the store cannot be reached now.
    pub(crate) fn temporarily_unavailable() -> Self {
        let mut error = Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server cannot complete the request now; retry after the time in Retry-After",
        );
        error.retry_after = Some(1);
        error
    }

    /// `429 Too Many Requests` with `Retry-After: retry_after` seconds (at least 1).
    pub(crate) fn rate_limited(retry_after: u64) -> Self {
        let mut error = Self::new(ErrorCode::RateLimited, LIMITED_DESCRIPTION);
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// `503 Service Unavailable` with `Retry-After: retry_after` seconds (at least 1): the
    /// server is busy, the request was not looked at.
    pub(crate) fn busy(retry_after: u64) -> Self {
        let mut error = Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server is busy; retry after the time in Retry-After",
        );
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// Marks the error as a failed HTTP Basic authentication: 401 with
    /// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    #[must_use]
    pub(crate) fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }

    /// The error code.
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }

    /// The description.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn description(&self) -> &str {
        &self.description
    }

    /// The HTTP status for this error.
    pub(crate) fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidClient if self.basic_challenge => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<Limited> for OAuthError {
    fn from(limited: Limited) -> Self {
        limited.count();
        OAuthError::rate_limited(limited.retry_after)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'static str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Body {
            error: self.code.as_str(),
            error_description: &self.description,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gha-auth\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, required on every token response.
pub(crate) fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
