//! `POST /oauth2/revoke` (RFC 7009) and `POST /oauth2/introspect` (RFC 7662).
//!
//! Both take a form-encoded `token` (and an optional `token_type_hint`, which only changes the
//! order in which the two kinds are tried) and authenticate the caller like the token endpoint.
//! - Revocation: a refresh token revokes its whole family; an access token (a JWT this server
//!   signed) is added to the revocation list until it expires. Only the client a token was
//!   issued to may revoke it; anything else (unknown, expired, another client's) is answered
//!   200 and changes nothing, as RFC 7009 §2.2 asks for invalid tokens.
//! - Introspection: the caller must authenticate as a confidential client, and may learn about
//!   a token only if it is the token's own client, or (access tokens) the registered resource
//!   server of one of the token's audiences (`gha-auth clients add --resource-server AUD`); see
//!   [`may_introspect`]. Access tokens are verified with the server's own keys and its own clock
//!   (no leeway) and checked against the revocation list, including the tokens they were derived
//!   from; refresh tokens are looked up in their family. Anything not active, and anything the
//!   caller may not learn about, is `{"active": false}`.

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
use crate::clients::Client;
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

/// What kind of token is introspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An access token (a JWT addressed to its `aud`).
    Access,
    /// A refresh token (only ever presented back to this authority).
    Refresh,
}

/// Whether `caller` may learn anything about a token issued to `token_client` for
/// `token_audiences`: the token's own client may; for an access token, so may a resource server
/// registered for one of its audiences. Nobody else, whatever its tenant or grants.
pub(crate) fn may_introspect(
    caller: &Client,
    kind: TokenKind,
    token_client: &str,
    token_audiences: &[String],
) -> bool {
    if caller.id == token_client {
        return true;
    }
    kind == TokenKind::Access
        && token_audiences
            .iter()
            .any(|aud| caller.resource_audiences.contains(aud))
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
        if !may_introspect(
            &client.client,
            TokenKind::Refresh,
            &family.client_id,
            &family.audiences(),
        ) {
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
    let audiences: Vec<String> = claims.aud.iter().map(str::to_owned).collect();
    if !may_introspect(
        &client.client,
        TokenKind::Access,
        &claims.client_id,
        &audiences,
    ) {
        return Ok(inactive);
    }
    if is_revoked(state, &claims).await.map_err(|e| internal(&e))? {
        return Ok(inactive);
    }
    let mut body = Map::new();
    body.insert("active".into(), Value::Bool(true));
    body.insert("token_type".into(), Value::from("Bearer"));
    body.insert("client_id".into(), Value::from(claims.client_id.clone()));
    body.insert("sub".into(), Value::from(claims.sub.clone()));
    body.insert("iss".into(), Value::from(claims.iss.clone()));
    body.insert("aud".into(), Value::from(audiences));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::ClientRow;

    fn client(id: &str, resource_audiences: &[&str]) -> Client {
        Client::from_row(ClientRow {
            id: id.to_owned(),
            tenant: Some("acme".to_owned()),
            grants: vec!["client_credentials".to_owned()],
            scopes: Vec::new(),
            audiences: vec!["mfs.api".to_owned()],
            resource_audiences: resource_audiences.iter().map(|a| (*a).to_owned()).collect(),
            token_lifetime_secs: None,
            first_party: false,
            public_client: false,
            jwk: None,
            secret_hash: None,
            prev_secret_hash: None,
            prev_secret_expires_at: None,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        })
        .unwrap()
    }

    #[test]
    fn finding_02_only_the_owner_and_the_addressed_resource_server_may_introspect() {
        let aud = |items: &[&str]| items.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let owner = client("svc-a", &[]);
        let other = client("svc-b", &[]);
        let orders = client("orders-api", &["orders.api"]);
        let payroll = client("payroll-api", &["payroll.api"]);
        let cases: [(&Client, TokenKind, &str, Vec<String>, bool); 9] = [
            (
                &owner,
                TokenKind::Access,
                "svc-a",
                aud(&["orders.api"]),
                true,
            ),
            (
                &owner,
                TokenKind::Refresh,
                "svc-a",
                aud(&["orders.api"]),
                true,
            ),
            (
                &other,
                TokenKind::Access,
                "svc-a",
                aud(&["orders.api"]),
                false,
            ),
            (
                &other,
                TokenKind::Refresh,
                "svc-a",
                aud(&["orders.api"]),
                false,
            ),
            (
                &orders,
                TokenKind::Access,
                "svc-a",
                aud(&["orders.api"]),
                true,
            ),
            (
                &orders,
                TokenKind::Access,
                "svc-a",
                aud(&["x", "orders.api"]),
                true,
            ),
            // A resource server never learns about refresh tokens.
            (
                &orders,
                TokenKind::Refresh,
                "svc-a",
                aud(&["orders.api"]),
                false,
            ),
            (
                &payroll,
                TokenKind::Access,
                "svc-a",
                aud(&["orders.api"]),
                false,
            ),
            // Its own audiences as a client are not the ones it serves.
            (&other, TokenKind::Access, "svc-a", aud(&["mfs.api"]), false),
        ];
        for (caller, kind, token_client, audiences, expected) in cases {
            assert_eq!(
                may_introspect(caller, kind, token_client, &audiences),
                expected,
                "{} {kind:?} {token_client} {audiences:?}",
                caller.id
            );
        }
    }
}
