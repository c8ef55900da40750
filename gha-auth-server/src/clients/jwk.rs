//! Public keys registered by clients for `private_key_jwt`.

use gha_auth::keys::{Jwk, VerifyingKey};

/// Members that only private or symmetric keys have: a registered key must not contain them.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Parses and checks a registered JWK: public only, EC P-256 (ES256), Ed25519 (EdDSA) or RSA of
/// 2048–8192 bits (RS256), with a matching `alg` if it names one. The returned key is bound to
/// that one algorithm: an assertion never chooses it.
pub(crate) fn client_key_from_json(value: &serde_json::Value) -> Result<VerifyingKey, String> {
    let object = value.as_object().ok_or("a JWK must be a JSON object")?;
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
        return Err(format!(
            "the JWK contains the private member {member:?}; register the public key only"
        ));
    }
    let jwk: Jwk =
        serde_json::from_value(value.clone()).map_err(|e| format!("not a valid JWK: {e}"))?;
    VerifyingKey::from_jwk(&jwk).map_err(|e| format!("unusable JWK: {e}"))
}
