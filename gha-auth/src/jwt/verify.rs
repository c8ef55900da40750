//! Verifying access tokens against trusted keys and an injected clock.

use serde::de::DeserializeOwned;

use super::header::{Parts, parse_header_segment, parse_object};
use super::registered::Registered;
use super::{JwtError, KeyResolver, TokenHeader, Validation};
use crate::clock::SharedClock;
use crate::keys::{VerifyingKey, b64};

/// A token that passed every check, with its claims read as `T`.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The checked header.
    pub header: TokenHeader,
    /// The claims.
    pub claims: T,
    /// `exp`, in Unix seconds: how long a verified-token cache may keep this result.
    pub expires_at: i64,
    /// `iat`, in Unix seconds.
    pub issued_at: i64,
}

/// Verifies access tokens with a fixed [`Validation`] and a clock.
///
/// Order of checks: size, shape, header (`alg` ours, no `crit`, `typ` is `at+jwt`, `kid` well
/// formed), key lookup, `alg` equal to the key's, signature, then claims. Nothing from the
/// payload is parsed before the signature has verified.
#[derive(Debug, Clone)]
pub struct Verifier {
    validation: Validation,
    clock: SharedClock,
}

impl Verifier {
    /// A verifier applying `validation`, reading time from `clock`.
    pub fn new(validation: Validation, clock: SharedClock) -> Self {
        Self { validation, clock }
    }

    /// The rules in force.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Step one of two: the checked header, without verifying anything, so the caller can find
    /// (or fetch) the key before calling [`Verifier::verify_with_key`].
    pub fn parse_header(&self, token: &str) -> Result<TokenHeader, JwtError> {
        let parts = Parts::split(token, self.validation.max_token_bytes())?;
        parse_header_segment(parts.header)
    }

    /// Verifies `token` with the key `keys` holds for its `kid`, and reads the claims as `T`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        keys: &(impl KeyResolver + ?Sized),
    ) -> Result<Verified<T>, JwtError> {
        let parts = Parts::split(token, self.validation.max_token_bytes())?;
        let header = parse_header_segment(parts.header)?;
        let key = keys.resolve(&header.kid).ok_or(JwtError::UnknownKey)?;
        self.finish(&parts, header, &key)
    }

    /// Step two of two: verifies `token` with `key`, which must be the key its `kid` names.
    pub fn verify_with_key<T: DeserializeOwned>(
        &self,
        token: &str,
        key: &VerifyingKey,
    ) -> Result<Verified<T>, JwtError> {
        let parts = Parts::split(token, self.validation.max_token_bytes())?;
        let header = parse_header_segment(parts.header)?;
        if header.kid != key.kid() {
            return Err(JwtError::UnknownKey);
        }
        self.finish(&parts, header, key)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        parts: &Parts<'_>,
        header: TokenHeader,
        key: &VerifyingKey,
    ) -> Result<Verified<T>, JwtError> {
        if header.alg != key.algorithm() {
            return Err(JwtError::AlgorithmMismatch);
        }
        let signature = b64::decode(parts.signature)
            .ok_or(JwtError::Malformed("signature is not base64url"))?;
        if !key.verify_signature(parts.signing_input.as_bytes(), &signature) {
            return Err(JwtError::InvalidSignature);
        }
        let payload =
            b64::decode(parts.payload).ok_or(JwtError::Malformed("payload is not base64url"))?;
        let registered: Registered<'_> = parse_object(&payload).ok_or(JwtError::InvalidClaims)?;
        let times = registered.check(&self.validation, self.clock.unix_seconds())?;
        let claims: T = serde_json::from_slice(&payload).map_err(|_| JwtError::InvalidClaims)?;
        Ok(Verified {
            header,
            claims,
            expires_at: times.exp,
            issued_at: times.iat,
        })
    }
}
