//! The broker's refusals and the one place that turns them into HTTP responses.
//!
//! Bodies are [`BrokerErrorBody`] with fixed texts: never a value, never Vault's message (that
//! goes to the log). Authentication refusals (401) are the caller extractor's, in RFC 6750 form.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gha_auth::broker::{BrokerErrorBody, error_codes};
use thiserror::Error;

/// Why a broker request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The path or role name is malformed.
    #[error("malformed secret path or role name")]
    InvalidRequest,
    /// The caller's grants do not cover it (audited).
    #[error("access denied: {0}")]
    Denied(&'static str),
    /// No such secret or role.
    #[error("not found")]
    NotFound,
    /// The secret's source fails and no cached value may be served any more.
    #[error("secret source unavailable beyond the stale window")]
    SecretsUnavailable {
        /// Seconds until the next attempt.
        retry_after: u64,
    },
    /// Vault could not issue or read database credentials now.
    #[error("database credentials unavailable: {0}")]
    DatabaseUnavailable(String),
    /// Database credentials need Vault's database engine, and this server has no Vault.
    #[error("no database secrets engine (Vault is not configured)")]
    NoDatabaseEngine,
}

impl BrokerError {
    /// The metric label of the refusal.
    pub fn outcome(&self) -> &'static str {
        match self {
            BrokerError::InvalidRequest => "invalid",
            BrokerError::Denied(_) => "denied",
            BrokerError::NotFound | BrokerError::NoDatabaseEngine => "not_found",
            BrokerError::SecretsUnavailable { .. } | BrokerError::DatabaseUnavailable(_) => {
                "unavailable"
            }
        }
    }
}

/// Seconds a client should wait before asking for database credentials again after a failure.
const DATABASE_RETRY_SECONDS: u64 = 5;

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        let (status, code, description, retry_after) = match &self {
            BrokerError::InvalidRequest => (
                StatusCode::BAD_REQUEST,
                error_codes::INVALID_REQUEST,
                "secret paths are segments of A-Z a-z 0-9 . _ - separated by /; role names are one such segment",
                None,
            ),
            BrokerError::Denied(_) => (
                StatusCode::FORBIDDEN,
                error_codes::ACCESS_DENIED,
                "this client may not read this secret or role",
                None,
            ),
            BrokerError::NotFound => (
                StatusCode::NOT_FOUND,
                error_codes::NOT_FOUND,
                "no such secret or role",
                None,
            ),
            BrokerError::SecretsUnavailable { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::SECRETS_UNAVAILABLE,
                "the secret source is unavailable and the cached value is too old to serve",
                Some(*retry_after),
            ),
            BrokerError::DatabaseUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::TEMPORARILY_UNAVAILABLE,
                "database credentials cannot be issued right now",
                Some(DATABASE_RETRY_SECONDS),
            ),
            BrokerError::NoDatabaseEngine => (
                StatusCode::NOT_FOUND,
                error_codes::NOT_FOUND,
                "database credentials need a Vault database secrets engine; this server runs without Vault ([vault] address is not set)",
                None,
            ),
        };
        let body = BrokerErrorBody::new(code).with_description(description);
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn statuses_codes_and_retry_after_and_no_internal_detail() {
        for (error, status, code, retry) in [
            (BrokerError::InvalidRequest, 400, "invalid_request", None),
            (BrokerError::Denied("x"), 403, "access_denied", None),
            (BrokerError::NotFound, 404, "not_found", None),
            (
                BrokerError::SecretsUnavailable { retry_after: 7 },
                503,
                "secrets_unavailable",
                Some("7"),
            ),
            (
                BrokerError::DatabaseUnavailable("vault said no".into()),
                503,
                "temporarily_unavailable",
                Some("5"),
            ),
            (BrokerError::NoDatabaseEngine, 404, "not_found", None),
        ] {
            let response = error.clone().into_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                retry,
                "{error:?}"
            );
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: BrokerErrorBody = serde_json::from_slice(&body).unwrap();
            assert_eq!(body.error, code);
            assert!(!body.error_description.unwrap().contains("vault said no"));
        }
    }
}
