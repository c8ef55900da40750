//! Token exchange (RFC 8693, `urn:ietf:params:oauth:grant-type:token-exchange`): a client
//! presents a subject token and gets a short-lived access token narrowed to the requested
//! audience and scopes.
//!
//! Subject tokens accepted (`subject_token_type`):
//! - `urn:ietf:params:oauth:token-type:access_token`: an access token this authority signed,
//!   still valid by this server's clock (no leeway) and not revoked. The new token keeps its
//!   subject, tenant and roles, never has a scope it lacked, never outlives it (`exp` at most
//!   the subject token's), and records in `derived_from` the `jti`s it came from, so that it is
//!   revoked with any of them (introspection, exchange, the revocation feed and the middleware
//!   all check the chain). A chain is at most eight exchanges long.
//! - [`LEGACY_API_KEY_TOKEN_TYPE`]: a legacy static API key an operator imported for this client
//!   (`gha-auth clients legacy-key add`). The new token carries the key's subject and tenant and
//!   at most its scopes. This is the migration path off static keys.
//!
//! In both cases the scopes are also bounded by the requesting client's registration, and the
//! audience must be one the client is registered for. When the subject is not the client
//! itself, `act` records the client (`{"sub": <client_id>}`, nesting any earlier `act`). An
//! unknown, wrong, revoked or expired subject token is `invalid_grant` with one description
//! that does not say which. Every exchange, granted or refused, is audited.

use serde_json::{Value, json};

use super::GrantRequest;
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::clients::GrantType;
use crate::clients::legacy_keys::{self, LEGACY_API_KEY_TOKEN_TYPE};
use crate::oauth::client_auth::PresentedMethod;
use crate::oauth::issue::{Grant, TokenResponse, mint, resolve_audience};
use crate::oauth::own_tokens::{
    DERIVED_FROM_CLAIM, MAX_DERIVATION_DEPTH, derived_from, is_revoked, verify_own,
};
use crate::oauth::{ErrorCode, OAuthError};

/// RFC 8693 §3: an OAuth access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT (what our access tokens are), accepted as `requested_token_type`.
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The subject token types this grant accepts, for the metadata document.
pub(crate) const SUBJECT_TOKEN_TYPES: [&str; 2] = [ACCESS_TOKEN_TYPE, LEGACY_API_KEY_TOKEN_TYPE];

fn invalid_grant() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidGrant,
        "the subject token is invalid, expired or revoked",
    )
}

/// What the subject token stands for, once checked.
struct Subject {
    sub: String,
    tenant: Option<String>,
    roles: Vec<String>,
    scopes: Vec<String>,
    /// The subject token's own `act` (a delegation chain to extend).
    act: Option<Value>,
    /// Seconds the subject token has left (access tokens only).
    remaining: Option<i64>,
    /// The `jti`s the new token is derived from: the subject token's own chain and its `jti`
    /// (access tokens only).
    derived_from: Vec<String>,
    kind: &'static str,
}

pub(super) async fn handle(request: GrantRequest<'_>) -> Result<TokenResponse, OAuthError> {
    let GrantRequest {
        state,
        form,
        client,
        peer,
    } = request;
    if client.method == PresentedMethod::None {
        // The requesting client must prove who it is: `act` names it.
        return Err(OAuthError::invalid_client());
    }
    let client = client.client;
    if !client.allows_grant(GrantType::TokenExchange) {
        return Err(OAuthError::unauthorized_client());
    }
    let subject_token = form
        .get("subject_token")
        .ok_or_else(|| OAuthError::invalid_request("subject_token is missing"))?;
    let subject_type = form
        .get("subject_token_type")
        .ok_or_else(|| OAuthError::invalid_request("subject_token_type is missing"))?;
    if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not supported: the authenticated client is the actor",
        ));
    }
    if let Some(requested) = form.get("requested_token_type")
        && requested != ACCESS_TOKEN_TYPE
        && requested != JWT_TOKEN_TYPE
    {
        return Err(OAuthError::invalid_request(
            "requested_token_type must be an access token",
        ));
    }
    let audit = |outcome: Outcome, kind: &'static str, reason: &'static str| {
        let mut event = AuditEvent::new(AuditKind::TokenExchanged, &client.id, &client.id, outcome)
            .detail("subject_token_type", kind)
            .detail("reason", reason);
        if let Some(peer) = peer {
            event = event.detail("source", peer.ip().to_string());
        }
        event
    };

    let subject = match subject_type {
        ACCESS_TOKEN_TYPE => {
            let Some(claims) = verify_own(state, subject_token) else {
                state
                    .audit
                    .record_or_log(audit(Outcome::Failure, "access_token", "invalid"))
                    .await;
                return Err(invalid_grant());
            };
            let revoked = is_revoked(state, &claims).await.map_err(|e| {
                tracing::error!(error = %e, "revocation lookup failed");
                OAuthError::server_error()
            })?;
            if revoked {
                state
                    .audit
                    .record_or_log(audit(Outcome::Failure, "access_token", "revoked"))
                    .await;
                return Err(invalid_grant());
            }
            let remaining = claims.exp - state.clock.unix_seconds();
            let mut chain = derived_from(&claims).unwrap_or_default();
            if remaining < 1 || chain.len() >= MAX_DERIVATION_DEPTH {
                // Nothing left to give (a token is never carried past its source's `exp`), or
                // exchanged too many times over.
                state
                    .audit
                    .record_or_log(audit(Outcome::Failure, "access_token", "expired"))
                    .await;
                return Err(invalid_grant());
            }
            chain.push(claims.jti.clone());
            Subject {
                remaining: Some(remaining),
                derived_from: chain,
                scopes: claims
                    .scope
                    .as_deref()
                    .map(crate::store::split_list)
                    .unwrap_or_default(),
                sub: claims.sub,
                tenant: claims.tenant,
                roles: claims.roles,
                act: claims.act,
                kind: "access_token",
            }
        }
        LEGACY_API_KEY_TOKEN_TYPE => {
            let presented = gha_auth::SecretString::new(subject_token.to_owned());
            let found = legacy_keys::find(&state.store, state.clients.pepper(), &presented)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "legacy key lookup failed");
                    OAuthError::server_error()
                })?;
            // A key imported for another client is as good as unknown to this one.
            let Some(key) = found.filter(|k| k.client_id == client.id) else {
                state
                    .audit
                    .record_or_log(audit(Outcome::Failure, "legacy_api_key", "unknown_key"))
                    .await;
                return Err(invalid_grant());
            };
            Subject {
                sub: key.subject,
                tenant: key.tenant,
                roles: Vec::new(),
                scopes: key.scopes,
                act: None,
                remaining: None,
                derived_from: Vec::new(),
                kind: "legacy_api_key",
            }
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "subject_token_type is not supported",
            ));
        }
    };

    if let (Some(registered), Some(subject_tenant)) = (&client.tenant, &subject.tenant)
        && registered != subject_tenant
    {
        // A client of one customer never acts for a subject of another.
        state
            .audit
            .record_or_log(audit(Outcome::Failure, subject.kind, "other_tenant"))
            .await;
        return Err(invalid_grant());
    }
    let audience = resolve_audience(&client.audiences, form)?;
    let allowed: Vec<String> = subject
        .scopes
        .iter()
        .filter(|s| client.scopes.contains(s))
        .cloned()
        .collect();
    let scopes = narrow(&allowed, form.get("scope"))?;

    let mut grant = Grant::new(subject.sub.clone(), audience.clone(), scopes.clone());
    grant.tenant = subject.tenant.clone().or(client.tenant.clone());
    grant.roles = subject.roles;
    if subject.sub != client.id {
        let mut act = json!({ "sub": client.id });
        if let Some(prior) = subject.act {
            act["act"] = prior;
        }
        grant.act = Some(act);
    }
    // Never outlives the subject token: `remaining` is at least 1 s here.
    grant.max_lifetime = subject.remaining.map(chrono::TimeDelta::seconds);
    if !subject.derived_from.is_empty() {
        grant.extra.insert(
            DERIVED_FROM_CLAIM.to_owned(),
            Value::from(subject.derived_from.clone()),
        );
    }
    let mut response = mint(state, &client, grant)?;
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    state
        .audit
        .record_or_log(
            audit(Outcome::Success, subject.kind, "exchanged")
                .detail("subject", subject.sub.as_str())
                .detail("audience", audience.join(" "))
                .detail("scopes", scopes.join(" ")),
        )
        .await;
    Ok(response)
}

/// The scopes to grant: all of `allowed` when none are requested, else exactly the requested
/// ones, each within `allowed` (`invalid_scope` otherwise: never wider than the subject token
/// and the client's registration).
fn narrow(allowed: &[String], requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    crate::oauth::issue::narrow_scopes(allowed, requested).map_err(|e| {
        if e.code() == ErrorCode::InvalidScope {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "a requested scope is wider than the subject token or the client allows",
            )
        } else {
            e
        }
    })
}
