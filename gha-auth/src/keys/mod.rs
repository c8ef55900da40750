//! Signing keys, key ids, key lifecycle and JWKS.
//!
//! - [`SigningKey`] / [`VerifyingKey`]: ES256 (default), EdDSA and RS256 keys; the algorithm is a
//!   property of the key, and the key id is always the RFC 7638 thumbprint.
//! - [`Jwk`] / [`JwkSet`]: what `/.well-known/jwks.json` serves; fetched sets are read leniently
//!   ([`JwkSet::parse_lenient`]) so one unknown key never breaks verification.
//! - [`KeyRing`] / [`KeySchedule`]: the `next → active → retired → removed` lifecycle as pure
//!   functions of time, with the invariants that keep cached key sets valid through rotations.
//! - [`DEV_KEY_IDS`]: the repository's development keys, refused outside dev mode.

mod algorithm;
pub(crate) mod b64;
mod dev;
mod error;
mod jwk;
mod keyring;
mod pem;
mod pkcs8;
#[cfg(test)]
mod refusal_tests;
mod schedule;
mod signing;
mod stored;
mod verifying;
mod weak;

pub use algorithm::Algorithm;
pub use dev::{DEV_KEY_IDS, is_dev_key};
pub use error::KeyError;
pub use jwk::{Jwk, JwkSet, MAX_JWKS_KEYS, ParsedJwkSet};
pub use keyring::{KeyRing, KeyState, ManagedKey, Transition};
pub use schedule::{
    KeySchedule, MAX_LEEWAY, ScheduleError, VERIFIER_MAX_REFRESH_INTERVAL,
    VERIFIER_MIN_REFRESH_INTERVAL, VERIFIER_UNKNOWN_KID_COOLDOWN, verifier_key_lag,
};
pub use signing::SigningKey;
pub use verifying::VerifyingKey;
