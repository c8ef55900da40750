//! This authority's own access tokens, presented back to it (introspection, revocation, token
//! exchange): verified with its own keys, and checked against its revocation list.

use gha_auth::jwt::dangerous::decode_unverified_claims;
use gha_auth::jwt::{AccessClaims, Validation, Verifier};
use serde_json::Value;

use super::OAuth;
use crate::store::StoreError;

/// The claims of an access token this server signed (any of its keys, any audience), if it
/// verifies and has not expired.
pub(crate) fn verify_own(state: &OAuth, token: &str) -> Option<AccessClaims> {
    // The audience is read before verification only to build the rules; the signature check
    // that follows is what decides.
    let unverified = decode_unverified_claims(token).ok()?;
    let audiences: Vec<String> = match unverified.get("aud")? {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    let validation = Validation::new(state.issuer.clone(), audiences).ok()?;
    // The configured leeway, when the verifier accepts it (at most 300 s); else its default.
    let validation = validation
        .clone()
        .with_leeway(state.keys.schedule().leeway)
        .unwrap_or(validation);
    let snapshot = state.keys.snapshot();
    Verifier::new(validation, state.clock.clone())
        .verify::<AccessClaims>(token, snapshot.ring())
        .ok()
        .map(|v| v.claims)
}

/// Whether the token's `jti` is revoked, or its subject or client has a not-before time after
/// the token was issued.
pub(crate) async fn is_revoked(state: &OAuth, claims: &AccessClaims) -> Result<bool, StoreError> {
    crate::revocations::is_revoked(
        &state.store,
        &claims.jti,
        &claims.sub,
        &claims.client_id,
        claims.iat,
    )
    .await
}
