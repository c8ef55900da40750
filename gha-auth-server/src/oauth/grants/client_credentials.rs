//! `client_credentials` (RFC 6749 §4.4): a confidential client gets a token for itself.

use super::GrantRequest;
use crate::clients::GrantType;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::PresentedMethod;
use crate::oauth::issue::{Grant, TokenResponse, mint, narrow_scopes, resolve_audience};

/// Issues a token whose subject is the client, narrowed to the requested scopes and audience.
/// No database write: the token is a stateless JWT.
pub(super) async fn handle(request: GrantRequest<'_>) -> Result<TokenResponse, OAuthError> {
    let GrantRequest {
        state,
        form,
        client,
        ..
    } = request;
    if client.method == PresentedMethod::None {
        // Only confidential clients may use this grant, and they must authenticate.
        return Err(OAuthError::invalid_client());
    }
    let client = client.client;
    if !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client());
    }
    let scopes = narrow_scopes(&client.scopes, form.get("scope"))?;
    let audience = resolve_audience(&client.audiences, form)?;
    let mut grant = Grant::new(client.id.clone(), audience, scopes);
    grant.tenant.clone_from(&client.tenant);
    mint(state, &client, grant)
}
