//! The admin API under `/admin/v1/`: clients, users, signing keys, link keys, the broker's state
//! and local secrets, and the audit log, through the same feature functions as the `gha-auth` subcommands.
//!
//! Callers present a bearer token of this authority for `api_auth.admin_audience` (the
//! [`Caller<AdminApi>`] extractor: 401 without one). [`decide::decide`] then allows or refuses
//! the act (403): clients by per-area scopes (`admin:clients`, `admin:users`, `admin:keys`,
//! `admin:link-keys`, `admin:broker`, `admin:audit`, and `admin:monitor` for the health board in
//! `monitor/http.rs`), users by the role `admin` (everything) or `tenant-admin` (its own tenant's
//! clients and users, never the `admin` role: neither granting it nor acting on a user who holds
//! it). Every call, allowed or refused, is audited (`admin.api_call`) with its actor:
//! `client:<id>` or `user:<sub>`.

pub(crate) mod decide;
pub(crate) mod routes;

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use self::decide::{Actor, Area, Decision, Reach, Target};
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::broker::Broker;
use crate::broker::cli::SecretsActError;
use crate::broker::local::LocalSecrets;
use crate::caller::{AdminApi, Caller};
use crate::linkkeys::LinkKeyStore;
use crate::linkkeys::cli::Configured;
use crate::oauth::OAuth;

/// The admin API's state: the features it acts through.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Admin {
    /// Clients, users, keys, the store, the audit log and the clock.
    pub(crate) oauth: Arc<OAuth>,
    /// The secrets broker (its grants and cache, never a value).
    pub(crate) broker: Arc<Broker>,
    /// The configured link keys.
    pub(crate) link_keys: Configured,
    /// Where link-key state lives.
    pub(crate) link_key_store: Arc<dyn LinkKeyStore>,
    /// The broker's local secrets (what `gha-auth secrets` writes).
    pub(crate) local_secrets: LocalSecrets,
    /// The broker's KV v2 mount when [vault] is configured: its secrets are managed there.
    pub(crate) secrets_vault_mount: Option<String>,
}

/// Why an admin call failed: the one place that maps it to HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AdminError {
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such object (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// The object exists already, or its state refuses the act (409).
    #[error("{0}")]
    Conflict(String),
    /// The authority failed (500); the reason goes to the log only.
    #[error("{0}")]
    Internal(String),
    /// A store the call needs cannot be reached now (503 with `Retry-After`); the reason goes
    /// to the log only.
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AdminError::Forbidden(_) => "forbidden",
            AdminError::NotFound(_) => "not_found",
            AdminError::Invalid(_) => "invalid_request",
            AdminError::Conflict(_) => "conflict",
            AdminError::Internal(_) => "server_error",
            AdminError::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// What the caller is told (an internal failure is not described).
    fn description(&self) -> String {
        match self {
            AdminError::Internal(_) => "the authority failed; see its log".to_owned(),
            AdminError::Unavailable(_) => "the store is unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match &self {
            AdminError::Internal(reason) => tracing::error!(%reason, "admin api call failed"),
            AdminError::Unavailable(reason) => {
                tracing::warn!(%reason, "admin api call: store unavailable")
            }
            _ => {}
        }
        let body = json!({"error": self.code(), "error_description": self.description()});
        let mut response = no_store(self.status(), &body);
        if matches!(self, AdminError::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// A JSON request body whose rejections are [`AdminError`]s: a JSON `invalid_request` (400)
/// like every other refusal of the admin API, rather than the extractor's plain-text 415/422.
/// The descriptions are fixed: the extractor's own would quote the body, which may hold a
/// password or a secret's value.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AdminError))]
pub(crate) struct AdminJson<T>(pub(crate) T);

impl From<axum::extract::rejection::JsonRejection> for AdminError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as R;
        AdminError::Invalid(
            match rejection {
                R::MissingJsonContentType(_) => {
                    "the body must be JSON (Content-Type: application/json)"
                }
                R::JsonSyntaxError(_) => "the body is not valid JSON",
                R::JsonDataError(_) => {
                    "the body does not match this operation's request schema (see /openapi.json)"
                }
                _ => "the body could not be read",
            }
            .to_owned(),
        )
    }
}

/// Reads an optional whole number of seconds from an admin body. JSON Schema's `integer` admits
/// `1.0` as well as `1`, and so do the admin bodies; `1.5`, a string or a number beyond `i64` is
/// a body that does not match the schema.
pub(crate) fn whole_seconds<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    number
        .as_i64()
        .or_else(|| number.as_f64().and_then(whole_f64))
        .map(Some)
        .ok_or_else(|| D::Error::custom("expected a whole number of seconds"))
}

/// `value` as an `i64` when it is a whole number within range.
fn whole_f64(value: f64) -> Option<i64> {
    // 2^63 is exactly representable; everything below it and at least -2^63 fits in an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if value.fract() != 0.0 || !(-LIMIT..LIMIT).contains(&value) {
        return None;
    }
    // In range and whole, so the cast is exact.
    Some(value as i64)
}

impl From<crate::clients::ClientError> for AdminError {
    fn from(e: crate::clients::ClientError) -> Self {
        use crate::clients::ClientError as E;
        match e {
            E::Invalid(_) => AdminError::Invalid(e.to_string()),
            E::NotFound(_) => AdminError::NotFound(e.to_string()),
            E::AlreadyExists(_) => AdminError::Conflict(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<crate::users::UserError> for AdminError {
    fn from(e: crate::users::UserError) -> Self {
        use crate::store::StoreError;
        use crate::users::UserError as E;
        match e {
            E::Invalid(_) => AdminError::Invalid(e.to_string()),
            E::NotFound(_) => AdminError::NotFound(e.to_string()),
            E::Store(StoreError::AlreadyExists(what)) => {
                AdminError::Conflict(format!("{what} already exists"))
            }
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<crate::clients::legacy_keys::LegacyKeyError> for AdminError {
    fn from(e: crate::clients::legacy_keys::LegacyKeyError) -> Self {
        use crate::clients::legacy_keys::LegacyKeyError as E;
        match e {
            E::Invalid(_) => AdminError::Invalid(e.to_string()),
            E::NotFound(_) => AdminError::NotFound(e.to_string()),
            E::AlreadyExists => AdminError::Conflict(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<crate::keys::KeyManagerError> for AdminError {
    fn from(e: crate::keys::KeyManagerError) -> Self {
        use crate::keys::KeyManagerError as E;
        match e {
            E::NextPending { .. } | E::NotInitialized => AdminError::Conflict(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<crate::linkkeys::cli::LinkKeyActError> for AdminError {
    fn from(e: crate::linkkeys::cli::LinkKeyActError) -> Self {
        use crate::linkkeys::cli::LinkKeyActError as E;
        match e {
            E::Unknown(m) => AdminError::NotFound(m),
            E::Refused(m) => AdminError::Conflict(m),
            E::Store(m) => AdminError::Internal(m),
        }
    }
}

impl From<SecretsActError> for AdminError {
    fn from(e: SecretsActError) -> Self {
        match e {
            SecretsActError::Invalid(m) => AdminError::Invalid(m),
            SecretsActError::NotFound(m) => AdminError::NotFound(m),
            SecretsActError::InVault(m) => AdminError::Conflict(m),
            SecretsActError::Store(m) => AdminError::Internal(m),
        }
    }
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

fn no_store(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The audit actor of a caller: `user:<sub>` for a user's token, `client:<id>` for a client's.
pub(crate) fn actor_name(caller: &Caller<AdminApi>) -> String {
    if is_user(caller) {
        format!("user:{}", caller.subject)
    } else {
        format!("client:{}", caller.client_id)
    }
}

/// Whether the token is a user's (its subject is not the client itself).
fn is_user(caller: &Caller<AdminApi>) -> bool {
    caller.subject != caller.client_id
}

/// One admin call: who, what, on which area. Decides, then audits the outcome.
pub(crate) struct Call<'a> {
    admin: &'a Admin,
    caller: &'a Caller<AdminApi>,
    /// The audit actor.
    pub(crate) actor: String,
    action: &'static str,
    area: Area,
    subject: String,
}

impl<'a> Call<'a> {
    /// A call of `action` (e.g. `clients.disable`) on `subject` in `area`.
    pub(crate) fn new(
        admin: &'a Admin,
        caller: &'a Caller<AdminApi>,
        area: Area,
        action: &'static str,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            admin,
            caller,
            actor: actor_name(caller),
            action,
            area,
            subject: subject.into(),
        }
    }

    /// Whether the caller may act on `target` (`grants_admin`: the act hands out the `admin`
    /// role).
    pub(crate) fn allow(
        &self,
        target: Target<'_>,
        grants_admin: bool,
    ) -> Result<Reach, AdminError> {
        let actor = Actor {
            is_user: is_user(self.caller),
            scopes: &self.caller.scopes,
            roles: &self.caller.roles,
            tenant: self.caller.tenant.as_deref(),
        };
        match decide::decide(actor, self.area, target, grants_admin) {
            Decision::Allow(reach) => Ok(reach),
            Decision::Deny(reason) => Err(AdminError::Forbidden(reason)),
        }
    }

    /// Audits the call and answers with `result` (200 with its JSON, or the error).
    pub(crate) async fn finish(self, result: Result<Value, AdminError>) -> Response {
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = AuditEvent::new(AuditKind::AdminCall, &self.actor, &self.subject, outcome)
            .detail("action", self.action)
            .detail("client_id", self.caller.client_id.as_str());
        if let Some(tenant) = &self.caller.tenant {
            event = event.detail("tenant", tenant.as_str());
        }
        if let Err(error) = &result {
            event = event.detail("error", error.code());
            if let AdminError::Forbidden(reason) = error {
                event = event.detail("reason", *reason);
            }
        }
        self.admin.oauth.audit.record_or_log(event).await;
        match result {
            Ok(body) => no_store(StatusCode::OK, &body),
            Err(error) => error.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store outage is a 503 with `Retry-After`, and its reason stays in the log.
    #[tokio::test]
    async fn an_unavailable_store_is_503_with_retry_after_and_no_reason() {
        let response =
            AdminError::Unavailable("pool timed out at db.internal".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"error": "temporarily_unavailable", "error_description": "the store is unavailable"})
        );
    }
}
