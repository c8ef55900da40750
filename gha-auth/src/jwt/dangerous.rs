//! Reading tokens without verifying them. Only for diagnostics (a CLI `inspect`, logs of a
//! rejected token's shape); never base a decision on what these return.

use super::JwtError;
use super::header::{DEFAULT_MAX_TOKEN_BYTES, Parts, parse_object};
use crate::keys::b64;

/// The claims of `token` as JSON, with **no** signature, time or audience check.
pub fn decode_unverified_claims(
    token: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    let parts = Parts::split(token, DEFAULT_MAX_TOKEN_BYTES)?;
    let payload =
        b64::decode(parts.payload).ok_or(JwtError::Malformed("payload is not base64url"))?;
    parse_object(&payload).ok_or(JwtError::InvalidClaims)
}
