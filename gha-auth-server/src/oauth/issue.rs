//! Shared by every grant: audience and scope narrowing, and minting the RFC 9068 access token.

use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use gha_auth::jwt::{AccessClaims, Audience, issue};
use serde::Serialize;

use super::error::no_store;
use super::{ErrorCode, OAuthError, TokenForm};
use crate::clients::{Client, is_valid_scope};
use crate::oauth::OAuth;

/// A successful token response (RFC 6749 §5.1). `Debug` hides the tokens.
#[derive(Serialize)]
#[non_exhaustive]
pub(crate) struct TokenResponse {
    /// The access token (a JWT).
    pub(crate) access_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    /// Lifetime in seconds.
    pub(crate) expires_in: i64,
    /// The granted scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    /// A refresh token, for grants that issue one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// What `access_token` is (token exchange, RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) issued_token_type: Option<&'static str>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::OK, Json(self)).into_response();
        no_store(response.headers_mut());
        response
    }
}

/// The scopes to grant: all the client may have when none are requested, else exactly the
/// requested ones, each of which the client must be allowed (`invalid_scope` otherwise).
pub(crate) fn narrow_scopes(
    allowed: &[String],
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let mut granted: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_valid_scope(scope) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is malformed",
            ));
        }
        if !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope {scope} is not allowed for this client"),
            ));
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    Ok(granted)
}

/// The audiences to put in the token, from `audience` (RFC 8693) and `resource` (RFC 8707)
/// parameters; each must be allowed. With none requested, a client registered for exactly one
/// audience gets it; otherwise the request must name one (`invalid_target`).
pub(crate) fn resolve_audience(
    allowed: &[String],
    form: &TokenForm,
) -> Result<Vec<String>, OAuthError> {
    let mut requested: Vec<&String> = form
        .all("audience")
        .iter()
        .chain(form.all("resource"))
        .collect();
    requested.dedup();
    if requested.is_empty() {
        return match allowed {
            [only] => Ok(vec![only.clone()]),
            _ => Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "audience or resource is required: this client is registered for several",
            )),
        };
    }
    if requested.len() > 8 {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "too many audiences requested",
        ));
    }
    let mut granted: Vec<String> = Vec::new();
    for audience in requested {
        if !allowed.contains(audience) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the requested audience is not allowed for this client",
            ));
        }
        if !granted.contains(audience) {
            granted.push(audience.clone());
        }
    }
    Ok(granted)
}

/// What goes into an access token besides the issuer and times.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub(crate) struct Grant {
    /// `sub`: the user, or the client itself.
    pub(crate) subject: String,
    /// `aud`.
    pub(crate) audience: Vec<String>,
    /// `scope`.
    pub(crate) scopes: Vec<String>,
    /// `roles`.
    pub(crate) roles: Vec<String>,
    /// `tenant`.
    pub(crate) tenant: Option<String>,
    /// `act` (token exchange: who acts for the subject).
    pub(crate) act: Option<serde_json::Value>,
    /// A lifetime shorter than the client's, if any (token exchange: never outlive the subject
    /// token).
    pub(crate) max_lifetime: Option<TimeDelta>,
    /// Private claims (token exchange: `derived_from`).
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl Grant {
    /// A grant for `subject`.
    pub(crate) fn new(
        subject: impl Into<String>,
        audience: Vec<String>,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            audience,
            scopes,
            roles: Vec::new(),
            tenant: None,
            act: None,
            max_lifetime: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// Signs an access token for `client` with the active key.
pub(crate) fn mint(
    state: &OAuth,
    client: &Client,
    grant: Grant,
) -> Result<TokenResponse, OAuthError> {
    let tokens = &state.tokens;
    let lifetime = client
        .token_lifetime(tokens.default_lifetime.as_delta())
        .min(tokens.max_lifetime.as_delta())
        .min(grant.max_lifetime.unwrap_or(TimeDelta::MAX))
        .max(TimeDelta::seconds(1));
    let now = state.clock.now();
    let snapshot = state.keys.snapshot();
    let Some(key) = snapshot.signing_key(now) else {
        tracing::error!("no active signing key");
        return Err(OAuthError::server_error());
    };
    let scope = (!grant.scopes.is_empty()).then(|| grant.scopes.join(" "));
    let mut claims = AccessClaims::new(
        state.issuer.clone(),
        grant.subject,
        Audience::from(grant.audience),
        client.id.clone(),
        now.timestamp(),
        lifetime,
    )
    .map_err(|e| {
        tracing::error!(error = %e, "could not build claims");
        OAuthError::server_error()
    })?
    .with_scopes(&grant.scopes);
    claims.roles = grant.roles;
    claims.tenant = grant.tenant;
    claims.act = grant.act;
    claims.extra = grant.extra;
    let access_token = issue(key, &claims).map_err(|e| {
        tracing::error!(error = %e, "could not sign access token");
        OAuthError::server_error()
    })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime.num_seconds(),
        scope,
        refresh_token: None,
        issued_token_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_default_to_everything_and_narrow_to_the_request() {
        let allowed = strings(&["a", "b", "c"]);
        assert_eq!(narrow_scopes(&allowed, None).unwrap(), allowed);
        assert_eq!(
            narrow_scopes(&allowed, Some("b  a b")).unwrap(),
            strings(&["b", "a"])
        );
        let err = narrow_scopes(&allowed, Some("a d")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidScope);
        assert_eq!(
            narrow_scopes(&allowed, Some("a\\")).unwrap_err().code(),
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn debug_hides_tokens() {
        let response = TokenResponse {
            access_token: "eyJhbGciOi.secret.sig".into(),
            token_type: "Bearer",
            expires_in: 600,
            scope: Some("a".into()),
            refresh_token: Some("ghar_secret".into()),
            issued_token_type: None,
        };
        let debug = format!("{response:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn audience_defaults_only_for_single_audience_clients() {
        let none = TokenForm::parse(b"").unwrap();
        assert_eq!(
            resolve_audience(&strings(&["x"]), &none).unwrap(),
            strings(&["x"])
        );
        let err = resolve_audience(&strings(&["x", "y"]), &none).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidTarget);
        let form = TokenForm::parse(b"audience=y&resource=x&audience=y").unwrap();
        assert_eq!(
            resolve_audience(&strings(&["x", "y"]), &form).unwrap(),
            strings(&["y", "x"])
        );
        let form = TokenForm::parse(b"resource=z").unwrap();
        assert_eq!(
            resolve_audience(&strings(&["x"]), &form)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidTarget
        );
    }
}
