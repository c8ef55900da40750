//! Signing access tokens.

use ring::rand::SecureRandom;
use serde::Serialize;

use super::{ACCESS_TOKEN_TYPE, AccessClaims, JwtError};
use crate::keys::{SigningKey, b64};

/// Signs `claims` as an RFC 9068 access token: header `{"alg":…,"typ":"at+jwt","kid":…}` with
/// the key's own algorithm and id.
///
/// Refuses claims no verifier would accept (no audience, `exp` not after `iat`), so a bug in
/// the caller shows up here rather than as a stream of 401s.
pub fn issue(key: &SigningKey, claims: &AccessClaims) -> Result<String, JwtError> {
    if claims.aud.is_empty() {
        return Err(JwtError::MissingClaim("aud"));
    }
    if claims.exp <= claims.iat {
        return Err(JwtError::InvalidClaims);
    }
    encode_jws(key, ACCESS_TOKEN_TYPE, claims)
}

/// Signs any claims as a compact JWS with the given `typ`, for signed documents other than
/// access tokens (the revocation feed, for one). Verify those with
/// [`VerifyingKey::verify_signature`](crate::keys::VerifyingKey::verify_signature).
pub fn encode_jws<C: Serialize + ?Sized>(
    key: &SigningKey,
    typ: &str,
    claims: &C,
) -> Result<String, JwtError> {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'a str,
        typ: &'a str,
        kid: &'a str,
    }
    let header = serde_json::to_vec(&Header {
        alg: key.algorithm().name(),
        typ,
        kid: key.kid(),
    })
    .map_err(|_| JwtError::Encoding)?;
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Encoding)?;
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 350 + 4);
    b64::encode_into(&header, &mut token);
    token.push('.');
    b64::encode_into(&payload, &mut token);
    let signature = key.sign(token.as_bytes()).map_err(|_| JwtError::Signing)?;
    token.push('.');
    b64::encode_into(&signature, &mut token);
    Ok(token)
}

/// A fresh token id: 128 random bits from *ring*'s system generator, base64url (22 characters).
pub fn new_jti() -> Result<String, JwtError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| JwtError::Random)?;
    Ok(b64::encode(&bytes))
}
