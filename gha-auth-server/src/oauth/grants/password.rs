//! `password` (RFC 6749 §4.3): first-party public clients only (the MFS mobile app) exchange a
//! user's credentials for an access token and a rotating `ghar_` refresh token.

use std::net::SocketAddr;

use gha_auth::SecretString;
use gha_auth::apikey::ApiKey;

use super::GrantRequest;
use crate::audit::clean;
use crate::clients::GrantType;
use crate::oauth::client_auth::{AuthenticatedClient, PresentedMethod};
use crate::oauth::issue::{Grant, TokenResponse, mint, narrow_scopes, resolve_audience};
use crate::oauth::{ErrorCode, OAuth, OAuthError, TokenForm};
use crate::refresh::{NewFamily, start_family};
use crate::users::{LoginError, MAX_PASSWORD_LEN};

/// A successful login: the access token, and the first refresh token of a new family when the
/// client may refresh.
#[derive(Debug)]
pub(crate) struct Login {
    /// The token response, without a refresh token.
    pub(crate) tokens: TokenResponse,
    /// The new family's first refresh token.
    pub(crate) refresh: Option<ApiKey>,
}

/// The token endpoint's `password` grant.
pub(super) async fn handle(request: GrantRequest<'_>) -> Result<TokenResponse, OAuthError> {
    let GrantRequest {
        state,
        form,
        client,
        peer,
    } = request;
    let Login {
        mut tokens,
        refresh,
    } = login(state, client, form, peer).await?;
    tokens.refresh_token = refresh.map(|token| token.expose().to_owned());
    Ok(tokens)
}

/// Checks the user named by `form` (`username`, `password`, optional `tenant`, `scope`,
/// `audience`/`resource`) for `client` and issues tokens. The tenant is the client's, or the
/// `tenant` parameter for a client that serves several.
pub(crate) async fn login(
    state: &OAuth,
    client: AuthenticatedClient,
    form: &TokenForm,
    peer: Option<SocketAddr>,
) -> Result<Login, OAuthError> {
    let method = client.method;
    let client = client.client;
    let allowed = client.first_party
        && client.public
        && method == PresentedMethod::None
        && client.allows_grant(GrantType::Password);
    if !allowed {
        return Err(OAuthError::unauthorized_client());
    }
    let username = form
        .get("username")
        .ok_or_else(|| OAuthError::invalid_request("username is missing"))?;
    let password = form
        .get("password")
        .ok_or_else(|| OAuthError::invalid_request("password is missing"))?;
    if password.chars().count() > MAX_PASSWORD_LEN {
        return Err(OAuthError::invalid_request("password is too long"));
    }
    let tenant = match (&client.tenant, form.get("tenant")) {
        (Some(own), None) => own.clone(),
        (Some(own), Some(asked)) if asked == own => own.clone(),
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the username or password is wrong",
            ));
        }
        (None, asked) => asked.unwrap_or_default().to_owned(),
    };
    let scopes = narrow_scopes(&client.scopes, form.get("scope"))?;
    let audience = resolve_audience(&client.audiences, form)?;
    let password = SecretString::from(password);
    let user = match state
        .users
        .login(
            &tenant,
            username,
            &password,
            &client.id,
            peer.map(|p| p.ip()),
        )
        .await
    {
        Ok(user) => user,
        Err(LoginError::Invalid) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the username or password is wrong",
            ));
        }
        Err(LoginError::Backoff(until)) => {
            let wait = until.saturating_sub(state.clock.unix_seconds());
            return Err(OAuthError::rate_limited(u64::try_from(wait).unwrap_or(1)));
        }
        Err(LoginError::Busy) => return Err(OAuthError::busy(1)),
        Err(LoginError::Internal) => return Err(OAuthError::server_error()),
        Err(LoginError::Unavailable) => return Err(OAuthError::temporarily_unavailable()),
    };
    tracing::info!(user_id = %user.id, client_id = %clean(&client.id), "user logged in");
    let tenant = (!user.tenant.is_empty()).then(|| user.tenant.clone());
    let mut grant = Grant::new(user.id.clone(), audience.clone(), scopes.clone());
    grant.roles.clone_from(&user.roles);
    grant.tenant.clone_from(&tenant);
    let tokens = mint(state, &client, grant)?;
    let mut refresh = None;
    if client.allows_grant(GrantType::RefreshToken) {
        let token = start_family(
            &state.families,
            NewFamily {
                client_id: client.id.clone(),
                user_id: user.id,
                tenant,
                scopes,
                audiences: audience,
            },
        )
        .await
        .map_err(|e| {
            if e.is_unavailable() {
                tracing::warn!(error = %e, "could not start a refresh-token family: store unreachable");
                return OAuthError::temporarily_unavailable();
            }
            tracing::error!(error = %e, "could not start a refresh-token family");
            OAuthError::server_error()
        })?;
        refresh = Some(token);
    }
    Ok(Login { tokens, refresh })
}
