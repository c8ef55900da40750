//! Errors of the Vault client layer.
//!
//! Every error names *where* it happened (a Vault path, a file path, an auth method) and never
//! *what* was sent or received: response bodies, tokens, secret_ids and secret values are never
//! copied into an error. Vault's own error messages (`{"errors": [...]}`) are kept, truncated,
//! because they say why a call failed ("permission denied", "check-and-set parameter did not
//! match the current version") and Vault does not echo secrets in them.

use std::path::PathBuf;

use rustify::errors::ClientError as RestError;
use thiserror::Error;

/// Longest Vault error message kept in an error (characters).
const MAX_MESSAGE_CHARS: usize = 300;

/// An error from the Vault client layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The path does not exist (HTTP 404), or a KV v2 version is deleted or destroyed.
    #[error("not found in Vault: {path}")]
    NotFound {
        /// The Vault path.
        path: String,
    },
    /// A KV v2 check-and-set write named a version that is no longer the current one.
    #[error("check-and-set conflict at {path}: the secret changed since it was read")]
    CasConflict {
        /// The Vault path.
        path: String,
    },
    /// The token may not do this (HTTP 403). Vault also answers 403 for an expired token.
    #[error("permission denied by Vault at {path}: {message}")]
    PermissionDenied {
        /// The Vault path.
        path: String,
        /// Vault's message.
        message: String,
    },
    /// Vault could not be reached: connection refused, DNS, TLS, reset.
    #[error("Vault unreachable ({path}): {reason}")]
    Unreachable {
        /// The Vault path of the request.
        path: String,
        /// What failed (network-level; no request or response content).
        reason: String,
    },
    /// The request did not complete within the configured timeout.
    #[error("Vault request timed out ({path})")]
    Timeout {
        /// The Vault path of the request.
        path: String,
    },
    /// Vault answered but cannot serve now: sealed, standby, overloaded (HTTP 429 and 5xx).
    #[error("Vault unavailable ({path}): HTTP {status}: {message}")]
    Unavailable {
        /// HTTP status.
        status: u16,
        /// The Vault path.
        path: String,
        /// Vault's message.
        message: String,
    },
    /// Vault rejected the request (any other HTTP 4xx).
    #[error("Vault rejected the request ({path}): HTTP {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The Vault path.
        path: String,
        /// Vault's message.
        message: String,
    },
    /// Vault's answer could not be understood.
    #[error("unexpected response from Vault ({path}): {detail}")]
    InvalidResponse {
        /// The Vault path.
        path: String,
        /// What was wrong (never the content).
        detail: String,
    },
    /// A login failed.
    #[error("Vault login with {method} failed: {source}")]
    Login {
        /// The auth method (`token`, `approle`, `kubernetes`, …).
        method: String,
        /// Why.
        #[source]
        source: Box<VaultError>,
    },
    /// A credential file (token, secret_id, service-account JWT) could not be used.
    #[error("credential file {path}: {reason}")]
    CredentialFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it (never its content).
        reason: String,
    },
    /// A credential is not usable as is (empty, or characters not allowed in an HTTP header).
    #[error("invalid {what}: {reason}")]
    InvalidCredential {
        /// Which credential (`token`, `secret_id`, …).
        what: &'static str,
        /// What was wrong (never the value).
        reason: String,
    },
    /// The configuration is not usable.
    #[error("invalid Vault configuration: {0}")]
    Config(String),
    /// The Vault address is refused by the outbound-URL policy (plain HTTP to a remote host,
    /// credentials, a query or a fragment in it, …).
    #[error("invalid Vault address: {0}")]
    Address(#[from] crate::outbound::UrlError),
    /// A value could not be encoded as JSON for Vault, or decoded into the caller's type.
    #[error("could not {action} the data at {path}: {detail}")]
    Data {
        /// `encode` or `decode`.
        action: &'static str,
        /// The Vault path.
        path: String,
        /// Category and position of the problem (never the value).
        detail: String,
    },
    /// The session has no usable token yet (the first login has not succeeded).
    #[error("no Vault token yet: {reason}")]
    NotReady {
        /// The last login error, or why there is no token.
        reason: String,
    },
    /// The background loop this handle belongs to has stopped.
    #[error("the Vault session has been shut down")]
    Closed,
}

impl VaultError {
    /// True for errors that may go away by themselves: network failures, timeouts, a sealed or
    /// overloaded Vault. Worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. }
            | Self::Timeout { .. }
            | Self::Unavailable { .. }
            | Self::NotReady { .. } => true,
            Self::Login { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// True when the path (or KV version) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True for a KV v2 check-and-set conflict.
    pub fn is_cas_conflict(&self) -> bool {
        matches!(self, Self::CasConflict { .. })
    }

    /// True when Vault said 403 (policy, or an expired/revoked token).
    pub fn is_permission_denied(&self) -> bool {
        match self {
            Self::PermissionDenied { .. } => true,
            Self::Login { source, .. } => source.is_permission_denied(),
            _ => false,
        }
    }

    /// A short, stable label for metrics (`not_found`, `cas_conflict`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::CasConflict { .. } => "cas_conflict",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::Api { .. } => "rejected",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::Login { .. } => "login",
            Self::CredentialFile { .. } => "credential_file",
            Self::InvalidCredential { .. } => "invalid_credential",
            Self::Config(_) | Self::Address(_) => "config",
            Self::Data { .. } => "data",
            Self::NotReady { .. } => "not_ready",
            Self::Closed => "closed",
        }
    }

    pub(crate) fn login(method: &str, source: VaultError) -> Self {
        Self::Login {
            method: method.to_owned(),
            source: Box::new(source),
        }
    }

    /// Maps an error of rustify (vaultrs's request layer) without copying any content.
    pub(crate) fn from_rest(error: RestError, path: &str) -> Self {
        let path = path.to_owned();
        match error {
            RestError::ServerResponseError { code, content } => {
                let message = vault_message(content.as_deref());
                classify_status(code, path, message)
            }
            RestError::RequestError { source, .. } => {
                let reason = chain(source.as_ref());
                if reason.contains("timed out") {
                    Self::Timeout { path }
                } else {
                    Self::Unreachable { path, reason }
                }
            }
            RestError::ResponseError { source } => {
                let reason = chain(source.as_ref());
                if reason.contains("timed out") {
                    Self::Timeout { path }
                } else {
                    Self::Unreachable { path, reason }
                }
            }
            RestError::ResponseParseError { source, .. } => Self::InvalidResponse {
                path,
                detail: json_detail(source.as_ref()),
            },
            RestError::ResponseConversionError { .. } => Self::InvalidResponse {
                path,
                detail: "response is not UTF-8".to_owned(),
            },
            // Building a request failed: the Display of these is a fixed phrase, no content.
            other => Self::InvalidResponse {
                path,
                detail: format!("request not sent: {other}"),
            },
        }
    }
}

/// The error for an HTTP status and Vault's message.
fn classify_status(code: u16, path: String, message: String) -> VaultError {
    match code {
        404 => VaultError::NotFound { path },
        403 => VaultError::PermissionDenied { path, message },
        400 if message.contains("check-and-set") => VaultError::CasConflict { path },
        429 | 500..=599 => VaultError::Unavailable {
            status: code,
            path,
            message,
        },
        _ => VaultError::Api {
            status: code,
            path,
            message,
        },
    }
}

/// Vault's `{"errors": [...]}` joined and truncated; a fixed phrase when the body is not that.
fn vault_message(content: Option<&str>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let Some(content) = content.filter(|c| !c.trim().is_empty()) else {
        return "(no message)".to_owned();
    };
    match serde_json::from_str::<Errors>(content) {
        Ok(errors) if !errors.errors.is_empty() => truncate(&errors.errors.join("; ")),
        Ok(_) => "(no message)".to_owned(),
        // Not Vault's error shape (a proxy's HTML page, say): do not copy it.
        Err(_) => "(unrecognised error body)".to_owned(),
    }
}

/// An error and its sources ([`crate::outbound::error_chain`]), truncated. Used for network
/// errors only.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    truncate(&crate::outbound::error_chain(error))
}

/// Where a JSON (de)serialisation failed, without the offending value (serde's messages can
/// quote it: `invalid type: string "…"`).
pub(crate) fn json_detail(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = current {
        if let Some(json) = inner.downcast_ref::<serde_json::Error>() {
            return serde_detail(json);
        }
        current = inner.source();
    }
    "malformed response".to_owned()
}

/// Category, line and column of a serde_json error.
pub(crate) fn serde_detail(error: &serde_json::Error) -> String {
    let category = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected shape (missing field or wrong type)",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!(
        "{category} at line {} column {}",
        error.line(),
        error.column()
    )
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, body: &str) -> VaultError {
        VaultError::from_rest(
            RestError::ServerResponseError {
                code,
                content: Some(body.to_owned()),
            },
            "secret/data/app",
        )
    }

    #[test]
    fn statuses_are_classified() {
        assert!(server(404, r#"{"errors":[]}"#).is_not_found());
        assert!(server(403, r#"{"errors":["permission denied"]}"#).is_permission_denied());
        assert!(
            server(
                400,
                r#"{"errors":["check-and-set parameter did not match the current version"]}"#
            )
            .is_cas_conflict()
        );
        assert!(server(503, r#"{"errors":["Vault is sealed"]}"#).is_transient());
        assert!(server(429, "").is_transient());
        let other = server(400, r#"{"errors":["missing client token"]}"#);
        assert!(matches!(other, VaultError::Api { status: 400, .. }));
        assert!(!other.is_transient());
        assert!(other.to_string().contains("missing client token"));
    }

    #[test]
    fn bodies_that_are_not_vault_errors_are_not_copied() {
        let error = server(502, "<html>secret-looking proxy page s3cr3t</html>");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("unrecognised error body"));
    }

    #[test]
    fn parse_errors_never_quote_the_body() {
        let json_error = serde_json::from_str::<u64>(r#""hunter2-password""#).unwrap_err();
        assert!(
            json_error.to_string().contains("hunter2"),
            "serde quotes values: the reason for this"
        );
        let error = VaultError::from_rest(
            RestError::ResponseParseError {
                source: json_error.into(),
                content: Some(r#"{"data":{"password":"hunter2-password"}}"#.to_owned()),
            },
            "database/creds/app",
        );
        let text = format!("{error} {error:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("database/creds/app"));
    }

    #[test]
    fn long_messages_are_truncated() {
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(1000));
        let VaultError::Api { message, .. } = server(400, &long) else {
            panic!("api error")
        };
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn login_errors_keep_their_class() {
        let error = VaultError::login("approle", server(503, r#"{"errors":["sealed"]}"#));
        assert!(error.is_transient());
        assert_eq!(error.kind(), "login");
        let error = VaultError::login("approle", server(403, r#"{"errors":["denied"]}"#));
        assert!(error.is_permission_denied());
    }
}
