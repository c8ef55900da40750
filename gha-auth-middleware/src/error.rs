//! Errors: configuration mistakes found while building, and request rejections.
//!
//! The two are different types. A [`ConfigError`] is returned by the builders and says which
//! setting is wrong; an [`AuthError`] is why one request was refused. [`AuthError`] is the
//! **one place** that turns a refusal into an HTTP response (RFC 6750), so the layer, the guards
//! and the extractors all answer the same way:
//!
//! | kind | status | `WWW-Authenticate` |
//! |---|---|---|
//! | [`AuthErrorKind::MissingCredentials`] | 401 | `Bearer` |
//! | [`AuthErrorKind::InvalidRequest`] | 400 | `Bearer error="invalid_request"` |
//! | [`AuthErrorKind::InvalidToken`], [`AuthErrorKind::RevokedToken`], [`AuthErrorKind::KeysUnavailable`], [`AuthErrorKind::InvalidLinkKey`] | 401 | `Bearer error="invalid_token"` |
//! | [`AuthErrorKind::InsufficientScope`] | 403 | `Bearer error="insufficient_scope"` (with `scope="…"` when a scope is missing; one challenge per acceptable alternative) |
//! | [`AuthErrorKind::CsrfRejected`] | 403 | none: re-authenticating would not help |
//! | [`AuthErrorKind::MissingLayer`] | 500 | none: a wiring mistake in the service, logged at `error` |
//!
//! A key-source outage is **not** a 5xx: when no usable key is left (the authority has been
//! unreachable for longer than the stale window, or never answered), tokens are refused with
//! `401 invalid_token` and the reason [`AuthErrorKind::KeysUnavailable`] goes to the log, the
//! metrics and `/HealthCheck`. Clients then behave as for any rejected token (fetch a new one and
//! retry), no proxy turns the answer into a retry storm, and an attacker learns nothing about the
//! service's dependencies from the status code.
//!
//! Bodies are generic (`{"error":"invalid_token"}`); the detailed reason goes to `tracing` and is
//! attached to the response extensions as the [`AuthError`] itself, tower-http style, so an outer
//! layer can see why a request was refused.

use std::borrow::Cow;
use std::fmt;

use axum::response::{IntoResponse, Response};
use gha_auth::outbound::{ClientError, UrlError};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use crate::metrics as m;

/// What kind of refusal an [`AuthError`] is. Decides the status code and the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// No credentials were presented on a route that needs them.
    MissingCredentials,
    /// The request is malformed: an `Authorization` header that breaks RFC 6750 (repeated,
    /// `Bearer` without a token, a token that is not a `b64token`, bytes other than visible
    /// ASCII: the rule of `gha_auth::bearer`), a token sent two ways, a repeated link-key header
    /// or token cookie.
    InvalidRequest,
    /// The token is not acceptable: bad signature, unknown key, expired, wrong issuer, audience
    /// or type, too large, malformed.
    InvalidToken,
    /// The token was revoked (by `jti`, or by a not-before time for its subject or client).
    RevokedToken,
    /// No usable verification key: the key source never loaded or is staler than allowed.
    KeysUnavailable,
    /// The `x-api-key` value is not a currently valid link key.
    InvalidLinkKey,
    /// A token taken from a cookie failed the CSRF check (origin or custom header).
    CsrfRejected,
    /// Authenticated, but missing a scope, role or tenant the route requires.
    InsufficientScope,
    /// An extractor or guard ran on a route that [`crate::AuthLayer`] does not cover.
    MissingLayer,
}

impl AuthErrorKind {
    /// A short stable name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthErrorKind::MissingCredentials => "missing_credentials",
            AuthErrorKind::InvalidRequest => "invalid_request",
            AuthErrorKind::InvalidToken => "invalid_token",
            AuthErrorKind::RevokedToken => "revoked_token",
            AuthErrorKind::KeysUnavailable => "keys_unavailable",
            AuthErrorKind::InvalidLinkKey => "invalid_link_key",
            AuthErrorKind::CsrfRejected => "csrf_rejected",
            AuthErrorKind::InsufficientScope => "insufficient_scope",
            AuthErrorKind::MissingLayer => "missing_layer",
        }
    }

    /// The HTTP status this kind of refusal is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            AuthErrorKind::MissingCredentials
            | AuthErrorKind::InvalidToken
            | AuthErrorKind::RevokedToken
            | AuthErrorKind::KeysUnavailable
            | AuthErrorKind::InvalidLinkKey => StatusCode::UNAUTHORIZED,
            AuthErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            AuthErrorKind::CsrfRejected | AuthErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
            AuthErrorKind::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 `error` code, if this kind has one.
    const fn bearer_error(self) -> Option<&'static str> {
        match self {
            AuthErrorKind::MissingCredentials
            | AuthErrorKind::CsrfRejected
            | AuthErrorKind::MissingLayer => None,
            AuthErrorKind::InvalidRequest => Some("invalid_request"),
            AuthErrorKind::InvalidToken
            | AuthErrorKind::RevokedToken
            | AuthErrorKind::KeysUnavailable
            | AuthErrorKind::InvalidLinkKey => Some("invalid_token"),
            AuthErrorKind::InsufficientScope => Some("insufficient_scope"),
        }
    }

    /// The code shown in the generic response body.
    const fn body(self) -> &'static str {
        match self {
            AuthErrorKind::MissingCredentials => r#"{"error":"unauthorized"}"#,
            AuthErrorKind::InvalidRequest => r#"{"error":"invalid_request"}"#,
            AuthErrorKind::InvalidToken
            | AuthErrorKind::RevokedToken
            | AuthErrorKind::KeysUnavailable
            | AuthErrorKind::InvalidLinkKey => r#"{"error":"invalid_token"}"#,
            AuthErrorKind::CsrfRejected => r#"{"error":"forbidden"}"#,
            AuthErrorKind::InsufficientScope => r#"{"error":"insufficient_scope"}"#,
            AuthErrorKind::MissingLayer => r#"{"error":"server_error"}"#,
        }
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused.
///
/// An opaque struct rather than an enum so later versions can carry more context without a
/// breaking change: match on [`AuthError::kind`]. The [`AuthError::reason`] is for logs only; it
/// never contains a token, a key or any other secret, and it never reaches the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    kind: AuthErrorKind,
    reason: Cow<'static, str>,
    /// For [`AuthErrorKind::InsufficientScope`]: acceptable scope sets, each space-delimited; one
    /// challenge is sent per set.
    scope_alternatives: Vec<String>,
}

impl AuthError {
    /// A refusal of `kind`, with a reason for the log.
    pub fn new(kind: AuthErrorKind, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            scope_alternatives: Vec::new(),
        }
    }

    /// A 403 for a missing scope: `alternatives` are the acceptable scope sets (each one
    /// space-delimited), one `WWW-Authenticate` challenge each.
    pub fn insufficient_scope(
        reason: impl Into<Cow<'static, str>>,
        alternatives: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            kind: AuthErrorKind::InsufficientScope,
            reason: reason.into(),
            scope_alternatives: alternatives.into_iter().collect(),
        }
    }

    pub(crate) fn missing_layer(what: &'static str) -> Self {
        Self::new(
            AuthErrorKind::MissingLayer,
            format!(
                "{what} used on a route that AuthLayer does not cover: add `.layer(auth)` (or \
                 `.route_layer(auth)`) to the Router before this route, or remove the {what}"
            ),
        )
    }

    /// What kind of refusal this is.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// Why, for the log. Never contains secrets; never sent to the client.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The `WWW-Authenticate` values sent with this refusal (RFC 6750 §3), possibly none.
    pub fn challenges(&self) -> Vec<HeaderValue> {
        let Some(error) = self.kind.bearer_error() else {
            return match self.kind {
                AuthErrorKind::MissingCredentials => vec![HeaderValue::from_static("Bearer")],
                _ => Vec::new(),
            };
        };
        if self.kind == AuthErrorKind::InsufficientScope {
            let scoped: Vec<HeaderValue> = self
                .scope_alternatives
                .iter()
                // Scope tokens are NQSCHAR (RFC 6749 §3.3): no quote or backslash. Anything else
                // would break the header, so such a scope is left out of the challenge.
                .filter(|scope| {
                    scope
                        .bytes()
                        .all(|b| b == b' ' || (b'!'..=b'~').contains(&b))
                        && !scope.contains(['"', '\\'])
                })
                .filter_map(|scope| {
                    HeaderValue::from_str(&format!(r#"Bearer error="{error}", scope="{scope}""#))
                        .ok()
                })
                .collect();
            if !scoped.is_empty() {
                return scoped;
            }
        }
        let value = match error {
            "invalid_request" => r#"Bearer error="invalid_request""#,
            "invalid_token" => r#"Bearer error="invalid_token""#,
            _ => r#"Bearer error="insufficient_scope""#,
        };
        vec![HeaderValue::from_static(value)]
    }

    fn log(&self) {
        let kind = self.kind.as_str();
        let reason = &*self.reason;
        match self.kind {
            AuthErrorKind::MissingLayer => {
                tracing::error!(kind, reason, "authentication misconfigured");
            }
            AuthErrorKind::KeysUnavailable => {
                tracing::warn!(kind, reason, "request refused: no usable verification key");
            }
            AuthErrorKind::MissingCredentials => {
                tracing::debug!(kind, reason, "request refused");
            }
            _ => tracing::info!(kind, reason, "request refused"),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

impl std::error::Error for AuthError {}

impl IntoResponse for AuthError {
    /// The one mapping from a refusal to a response: status, challenges, generic body, the error
    /// itself in the response extensions, a log line and a metric.
    fn into_response(self) -> Response {
        self.log();
        metrics::counter!(m::REQUESTS, "outcome" => "rejected", "reason" => self.kind.as_str())
            .increment(1);
        let mut response = (self.status(), self.kind.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for challenge in self.challenges() {
            headers.append(WWW_AUTHENTICATE, challenge);
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// A setting that cannot work, found while building a layer, key source or link-key source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No issuer was configured; tokens are only accepted from a named issuer.
    #[error("no issuer configured: call .issuer(..)")]
    MissingIssuer,
    /// No audience was configured; tokens are only accepted for a named audience.
    #[error("no audience configured: call .audience(..)")]
    MissingAudience,
    /// Neither a key source nor a link-key integration was configured.
    #[error("no credentials can ever be accepted: configure a key source or a link key")]
    NothingToAccept,
    /// A URL refused by the outbound-URL policy (`gha_auth::outbound`): not https (plain HTTP
    /// only to loopback, unless `danger_accept_plain_http(true)` behind a TLS-terminating proxy
    /// you trust), credentials, a query or a fragment in it. The message never shows a password
    /// or a query.
    #[error("URL refused: {0}")]
    Url(#[from] UrlError),
    /// An origin for the cookie CSRF allow-list that is not `scheme://host[:port]`.
    #[error("invalid origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The origin as given.
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header or cookie name that is not a valid token.
    #[error("invalid {what} name {name:?}")]
    InvalidName {
        /// "header" or "cookie".
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// A duration setting out of its allowed range.
    #[error("{setting} out of range: {reason}")]
    OutOfRange {
        /// The setting.
        setting: &'static str,
        /// The allowed range.
        reason: String,
    },
    /// The core library refused the validation settings.
    #[error("validation: {0}")]
    Validation(String),
    /// A key file or key set that cannot be read or has no usable key.
    #[error("key source: {0}")]
    Keys(String),
    /// A link-key integration that cannot work.
    #[error("link key {name:?}: {reason}")]
    LinkKey {
        /// The integration name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(#[from] ClientError),
    /// Building a source spawns its refresh task, which needs a Tokio runtime.
    #[error("must be built inside a Tokio runtime (it spawns a background refresh task)")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_strings(err: &AuthError) -> Vec<String> {
        err.challenges()
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn each_kind_maps_to_its_status_and_challenge() {
        use AuthErrorKind::*;
        let cases: &[(AuthErrorKind, u16, &[&str])] = &[
            (MissingCredentials, 401, &["Bearer"]),
            (InvalidRequest, 400, &[r#"Bearer error="invalid_request""#]),
            (InvalidToken, 401, &[r#"Bearer error="invalid_token""#]),
            (RevokedToken, 401, &[r#"Bearer error="invalid_token""#]),
            (KeysUnavailable, 401, &[r#"Bearer error="invalid_token""#]),
            (InvalidLinkKey, 401, &[r#"Bearer error="invalid_token""#]),
            (CsrfRejected, 403, &[]),
            (
                InsufficientScope,
                403,
                &[r#"Bearer error="insufficient_scope""#],
            ),
            (MissingLayer, 500, &[]),
        ];
        for (kind, status, challenges) in cases {
            let err = AuthError::new(*kind, "test");
            assert_eq!(err.status().as_u16(), *status, "{kind}");
            assert_eq!(header_strings(&err), *challenges, "{kind}");
        }
    }

    #[test]
    fn insufficient_scope_names_each_alternative() {
        let err = AuthError::insufficient_scope(
            "missing scope",
            ["jobs:read".to_owned(), "jobs:admin other".to_owned()],
        );
        assert_eq!(
            header_strings(&err),
            [
                r#"Bearer error="insufficient_scope", scope="jobs:read""#,
                r#"Bearer error="insufficient_scope", scope="jobs:admin other""#
            ]
        );
        let odd = AuthError::insufficient_scope("x", [r#"bad"scope"#.to_owned()]);
        assert_eq!(
            header_strings(&odd),
            [r#"Bearer error="insufficient_scope""#]
        );
    }

    #[tokio::test]
    async fn response_has_generic_body_and_carries_the_error() {
        let err = AuthError::new(AuthErrorKind::InvalidToken, "signature did not verify");
        let response = err.clone().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.extensions().get::<AuthError>(), Some(&err));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"error":"invalid_token"}"#);
    }
}
