//! `POST /oauth2/revoke` (RFC 7009) and `POST /oauth2/introspect` (RFC 7662).
//!
//! Both take a form-encoded `token` (and an optional `token_type_hint`, which only changes the
//! order in which the two kinds are tried) and authenticate the caller like the token endpoint.
//! - Revocation: a refresh token revokes its whole family; an access token (a JWT this server
//!   signed) is added to the revocation list until it expires. Only the client a token was
//!   issued to may revoke it; anything else (unknown, expired, another client's) is answered
//!   200 and changes nothing, as RFC 7009 §2.2 asks for invalid tokens.
//! - Introspection: the caller must authenticate as a confidential client. Access tokens are
//!   verified with the server's own keys and checked against the revocation list; refresh tokens
//!   are looked up in their family. Anything not active is `{"active": false}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gha_auth::apikey::{ApiKey, SecretKind};
use serde_json::{Map, Value, json};

use super::client_auth::{self, PresentedMethod};
use super::error::no_store;
use super::own_tokens::{is_revoked, verify_own};
use super::token::read_form;
use super::{OAuth, OAuthError, Refusal};
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::refresh;
use crate::store::StoreError;

/// Path of the revocation endpoint.
pub(crate) const REVOKE_PATH: &str = "/oauth2/revoke";
/// Path of the introspection endpoint.
pub(crate) const INTROSPECT_PATH: &str = "/oauth2/introspect";

fn internal(e: &StoreError) -> OAuthError {
    tracing::error!(error = %e, "store failed");
    OAuthError::server_error()
}

/// `POST /oauth2/revoke`.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oauth",
    request_body(content = crate::oauth::docs::TokenParamDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or the token was unknown (RFC 7009 §2.2)"),
        (status = 400, description = "Bad request", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 401, description = "Client authentication failed", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::oauth::docs::OAuthErrorDoc),
    ),
)]
pub(crate) async fn revoke_endpoint(State(state): State<Arc<OAuth>>, request: Request) -> Response {
    match revoke(&state, request).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(Refusal::OAuth(error)) => error.into_response(),
        Err(Refusal::Limited(limited)) => limited.into_response(),
    }
}

async fn revoke(state: &OAuth, request: Request) -> Result<(), Refusal> {
    let (headers, form, peer) = read_form(state, request).await?;
    let client = client_auth::authenticate(state, &headers, &form, peer).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let client_id = client.client.id;
    let now = state.clock.unix_seconds();
    if let Ok(key) = ApiKey::parse_kind(token, SecretKind::RefreshToken) {
        let Some((_, family)) = refresh::lookup(&state.families, &key)
            .await
            .map_err(|e| internal(&e))?
        else {
            return Ok(());
        };
        if family.client_id != client_id {
            return Ok(());
        }
        let revoked = refresh::revoke_family(&state.store, &family.id, now, "revoked_by_client")
            .await
            .map_err(|e| internal(&e))?;
        if revoked {
            audit_revoked(
                state,
                &client_id,
                &family.id,
                "refresh_token",
                ("family_id", &family.id),
            )
            .await;
        }
        return Ok(());
    }
    let Some(claims) = verify_own(state, token) else {
        return Ok(());
    };
    if claims.client_id != client_id {
        return Ok(());
    }
    // Kept until the token could no longer pass any verifier's leeway.
    let leeway = state.keys.schedule().leeway.num_seconds();
    let inserted = crate::revocations::revoke_jti(
        &state.store,
        &claims.jti,
        now,
        claims.exp.saturating_add(leeway),
    )
    .await
    .map_err(|e| internal(&e))?;
    if inserted {
        audit_revoked(
            state,
            &client_id,
            &claims.sub,
            "access_token",
            ("jti", &claims.jti),
        )
        .await;
    }
    Ok(())
}

/// Audits a successful revocation by `client_id` of a token about `target`.
async fn audit_revoked(
    state: &OAuth,
    client_id: &str,
    target: &str,
    token_type: &'static str,
    (key, value): (&'static str, &str),
) {
    state
        .audit
        .record_or_log(
            AuditEvent::new(AuditKind::TokenRevoked, client_id, target, Outcome::Success)
                .detail("token_type", token_type)
                .detail(key, value),
        )
        .await;
}

/// `POST /oauth2/introspect`.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "oauth",
    request_body(content = crate::oauth::docs::TokenParamDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "`{\"active\": bool, …claims}`", body = Object),
        (status = 400, description = "Bad request", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 401, description = "Client authentication failed", body = crate::oauth::docs::OAuthErrorDoc),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::oauth::docs::OAuthErrorDoc),
    ),
)]
pub(crate) async fn introspect_endpoint(
    State(state): State<Arc<OAuth>>,
    request: Request,
) -> Response {
    match introspect(&state, request).await {
        Ok(body) => {
            let mut response = (StatusCode::OK, Json(body)).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(Refusal::OAuth(error)) => error.into_response(),
        Err(Refusal::Limited(limited)) => limited.into_response(),
    }
}

async fn introspect(state: &OAuth, request: Request) -> Result<Value, Refusal> {
    let (headers, form, peer) = read_form(state, request).await?;
    let client = client_auth::authenticate(state, &headers, &form, peer).await?;
    if client.method == PresentedMethod::None {
        // RFC 7662 §2.1: the caller must authenticate; public clients cannot.
        return Err(OAuthError::invalid_client().into());
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let now = state.clock.unix_seconds();
    let inactive = json!({ "active": false });
    if let Ok(key) = ApiKey::parse_kind(token, SecretKind::RefreshToken) {
        let Some((row, family)) = refresh::lookup(&state.families, &key)
            .await
            .map_err(|e| internal(&e))?
        else {
            return Ok(inactive);
        };
        if !family.is_live(now) || row.used_at.is_some() || now >= row.expires_at {
            return Ok(inactive);
        }
        let mut body = Map::new();
        body.insert("active".into(), Value::Bool(true));
        body.insert("client_id".into(), Value::from(family.client_id.clone()));
        if let Some(sub) = &family.user_id {
            body.insert("sub".into(), Value::from(sub.clone()));
        }
        if !family.scope.is_empty() {
            body.insert("scope".into(), Value::from(family.scope.clone()));
        }
        body.insert("aud".into(), Value::from(family.audiences()));
        body.insert("iss".into(), Value::from(state.issuer.clone()));
        body.insert("iat".into(), Value::from(row.issued_at));
        body.insert("exp".into(), Value::from(row.expires_at));
        body.insert("token_type".into(), Value::from("refresh_token"));
        if let Some(tenant) = &family.tenant {
            body.insert("tenant".into(), Value::from(tenant.clone()));
        }
        return Ok(Value::Object(body));
    }
    let Some(claims) = verify_own(state, token) else {
        return Ok(inactive);
    };
    if is_revoked(state, &claims).await.map_err(|e| internal(&e))? {
        return Ok(inactive);
    }
    let mut body = Map::new();
    body.insert("active".into(), Value::Bool(true));
    body.insert("token_type".into(), Value::from("Bearer"));
    body.insert("client_id".into(), Value::from(claims.client_id.clone()));
    body.insert("sub".into(), Value::from(claims.sub.clone()));
    body.insert("iss".into(), Value::from(claims.iss.clone()));
    body.insert(
        "aud".into(),
        Value::from(claims.aud.iter().map(str::to_owned).collect::<Vec<_>>()),
    );
    body.insert("exp".into(), Value::from(claims.exp));
    body.insert("iat".into(), Value::from(claims.iat));
    if let Some(nbf) = claims.nbf {
        body.insert("nbf".into(), Value::from(nbf));
    }
    body.insert("jti".into(), Value::from(claims.jti.clone()));
    if let Some(scope) = &claims.scope {
        body.insert("scope".into(), Value::from(scope.clone()));
    }
    if !claims.roles.is_empty() {
        body.insert("roles".into(), Value::from(claims.roles.clone()));
    }
    if let Some(tenant) = &claims.tenant {
        body.insert("tenant".into(), Value::from(tenant.clone()));
    }
    Ok(Value::Object(body))
}
