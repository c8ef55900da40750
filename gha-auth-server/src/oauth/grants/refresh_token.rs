//! `refresh_token` (RFC 6749 §6) with rotation and reuse detection (see [`crate::refresh`]).

use std::net::SocketAddr;

use gha_auth::apikey::{ApiKey, SecretKind};

use super::GrantRequest;
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::clients::{Client, GrantType};
use crate::oauth::issue::{Grant, TokenResponse, mint, narrow_scopes};
use crate::oauth::{ErrorCode, OAuth, OAuthError};
use crate::refresh::{RefreshError, rotate};

/// A successful refresh: a fresh access token and the successor refresh token.
#[derive(Debug)]
pub(crate) struct Refreshed {
    /// The token response, without a refresh token.
    pub(crate) tokens: TokenResponse,
    /// The successor to hand out instead of the presented token.
    pub(crate) successor: ApiKey,
}

fn invalid_grant() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidGrant,
        "the refresh token is invalid, expired or revoked",
    )
}

/// The token endpoint's `refresh_token` grant.
pub(super) async fn handle(request: GrantRequest<'_>) -> Result<TokenResponse, OAuthError> {
    let GrantRequest {
        state,
        form,
        client,
        peer,
    } = request;
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let Refreshed {
        mut tokens,
        successor,
    } = refresh(state, &client.client, presented, form.get("scope"), peer).await?;
    tokens.refresh_token = Some(successor.expose().to_owned());
    Ok(tokens)
}

/// Rotates `presented` (a refresh token of `client`) and issues a fresh access token with the
/// user's current roles, narrowed to `scope` when given.
pub(crate) async fn refresh(
    state: &OAuth,
    client: &Client,
    presented: &str,
    scope: Option<&str>,
    peer: Option<SocketAddr>,
) -> Result<Refreshed, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client());
    }
    // Format and checksum first: a typo or a forged value costs no database round trip.
    let Ok(presented) = ApiKey::parse_kind(presented, SecretKind::RefreshToken) else {
        return Err(invalid_grant());
    };
    let rotated = match rotate(&state.families, &presented, &client.id).await {
        Ok(rotated) => rotated,
        Err(RefreshError::Invalid(reason)) => {
            tracing::info!(client_id = %client.id, reason, "refresh refused");
            return Err(invalid_grant());
        }
        Err(RefreshError::Reused {
            family_id,
            client_id,
        }) => {
            tracing::warn!(client_id = %client_id, family_id = %family_id, "refresh token reused: family revoked");
            let mut event = AuditEvent::new(
                AuditKind::RefreshReuseDetected,
                &client_id,
                &family_id,
                Outcome::Failure,
            )
            .detail("family_id", family_id.as_str());
            if let Some(peer) = peer {
                event = event.detail("source", peer.ip().to_string());
            }
            state.audit.record_or_log(event).await;
            return Err(invalid_grant());
        }
        Err(RefreshError::Internal(e)) if e.is_unavailable() => {
            tracing::warn!(error = %e, "refresh failed: store unreachable");
            return Err(OAuthError::temporarily_unavailable());
        }
        Err(RefreshError::Internal(e)) => {
            tracing::error!(error = %e, "refresh failed");
            return Err(OAuthError::server_error());
        }
    };
    let family = rotated.family;
    if rotated.repeated {
        // A lost response on a flaky network, most likely: the client gets the same successor.
        tracing::debug!(client_id = %client.id, family_id = %family.id, "refresh repeated within the grace window");
    }
    // Current roles; `rotate` already refused a disabled user and ended the family.
    let user = rotated.user;
    let scopes = narrow_scopes(&family.scopes(), scope)?;
    let mut grant = Grant::new(user.id, family.audiences(), scopes);
    grant.roles = user.roles;
    grant.tenant.clone_from(&family.tenant);
    let tokens = mint(state, client, grant)?;
    Ok(Refreshed {
        tokens,
        successor: rotated.successor,
    })
}
