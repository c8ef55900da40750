//! Core of gha-auth: the pieces shared by the token authority, the middleware and the consumers.
//!
//! - [`bearer`]: the one reading of `Authorization: Bearer` (RFC 6750), for every API;
//! - [`secret`]: secret-holding types that never print, wipe on drop and compare in constant time;
//! - [`clock`]: injectable time, so rotation and expiry are testable with compressed time;
//! - [`keys`]: signing keys (ES256, EdDSA, RS256), RFC 7638 key ids, key lifecycle and JWKS;
//! - [`jwt`]: RFC 9068 access tokens, issued and verified strictly;
//! - [`revocation`]: the signed revocation feed verifiers poll instead of calling the authority;
//! - [`apikey`]: the scanner-friendly secret format (`ghac_`, `ghar_`, `ghal_`) and keyed hashing;
//! - [`schedule`]: when to renew and how long to back off, shared by the Vault and consumer loops;
//! - [`broker`]: the secrets broker's wire format, shared by the broker and its consumers;
//! - [`vault`] (feature `vault`): the Vault / OpenBao client layer;
//! - [`consumer`] (feature `consumer`): the clients of the authority's token endpoint and broker.
//!
//! This crate has no HTTP server in it.

pub mod apikey;
pub mod bearer;
pub mod broker;
pub mod clock;
#[cfg(feature = "consumer")]
pub mod consumer;
pub mod jwt;
pub mod keys;
pub mod revocation;
pub mod schedule;
pub mod secret;
#[cfg(feature = "vault")]
pub mod vault;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use secret::{SecretBytes, SecretString};
