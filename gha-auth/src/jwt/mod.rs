//! RFC 9068 access tokens: issue and verify.
//!
//! Issuing: [`issue`] signs [`AccessClaims`] with a [`SigningKey`](crate::keys::SigningKey),
//! header `typ: at+jwt`, the key's `alg` and `kid`.
//!
//! Verifying: a [`Verifier`] holds the [`Validation`] rules and a clock, and checks a token
//! against keys found through a [`KeyResolver`]. The token's header is parsed here, strictly,
//! before any key is looked up; the key decides the algorithm; claims are read only after the
//! signature has verified; times come from the injected clock. Every refusal is a [`JwtError`]
//! that says why without repeating the token.
//!
//! Caching: a [`VerifiedTokenCache`] remembers what a verified token said until its `exp`, so a
//! service verifies each token once.

mod cache;
mod claims;
pub mod dangerous;
mod error;
mod header;
mod issue;
mod registered;
mod resolver;
mod validation;
mod verify;

pub use cache::{TokenKey, VerifiedTokenCache};
pub use claims::{AccessClaims, Audience};
pub use error::{ConfigError, JwtError};
pub use header::{
    ACCESS_TOKEN_TYPE, DEFAULT_MAX_TOKEN_BYTES, MAX_KID_LEN, TokenHeader, parse_header,
};
pub(crate) use header::{Parts, parse_typed_header_segment};
pub use issue::{encode_jws, issue, new_jti};
pub use resolver::KeyResolver;
pub use validation::{DEFAULT_LEEWAY, Validation};
pub use verify::{Verified, Verifier};

#[cfg(test)]
mod tests;
