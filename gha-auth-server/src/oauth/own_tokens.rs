//! This authority's own access tokens, presented back to it (introspection, revocation, token
//! exchange): verified with its own keys, and checked against its revocation list.

use chrono::TimeDelta;
use gha_auth::jwt::dangerous::decode_unverified_claims;
use gha_auth::jwt::{AccessClaims, Validation, Verifier};
use serde_json::Value;

use super::OAuth;
use crate::store::StoreError;

/// The claims of an access token this server signed (any of its keys, any audience), if it
/// verifies and has not expired by this server's own clock: no leeway, since the authority that
/// set `exp` needs none to judge it (a leeway here would let token exchange carry a dead token
/// on, and introspection call it active).
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
    let validation = Validation::new(state.issuer.clone(), audiences)
        .and_then(|v| v.with_leeway(TimeDelta::zero()))
        .ok()?;
    let snapshot = state.keys.snapshot();
    Verifier::new(validation, state.clock.clone())
        .verify::<AccessClaims>(token, snapshot.ring())
        .ok()
        .map(|v| v.claims)
}

/// The private claim of a token made by token exchange: the `jti`s of the tokens it was derived
/// from, the original first and its direct source last. A derived token dies with any of them.
pub(crate) const DERIVED_FROM_CLAIM: &str = "derived_from";

/// The longest chain of exchanges: a token derived from this many others is not exchanged again.
pub(crate) const MAX_DERIVATION_DEPTH: usize = 8;

/// The `jti`s a token was derived from ([`DERIVED_FROM_CLAIM`]); empty for an original token.
/// `None` when the claim is present but malformed or too long (such a token is not ours to
/// honour).
pub(crate) fn derived_from(claims: &AccessClaims) -> Option<Vec<String>> {
    match claims.extra.get(DERIVED_FROM_CLAIM) {
        None => Some(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_DERIVATION_DEPTH => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

/// Whether the token's `jti` is revoked, or its subject or client has a not-before time after
/// the token was issued, or a token it was derived from (token exchange) is revoked.
pub(crate) async fn is_revoked(state: &OAuth, claims: &AccessClaims) -> Result<bool, StoreError> {
    let Some(sources) = derived_from(claims) else {
        return Ok(true);
    };
    if crate::revocations::is_revoked(
        &state.store,
        &claims.jti,
        &claims.sub,
        &claims.client_id,
        claims.iat,
    )
    .await?
    {
        return Ok(true);
    }
    if sources.is_empty() {
        return Ok(false);
    }
    crate::revocations::any_jti_revoked(&state.store, &sources).await
}
