//! Core of gha-auth: the pieces shared by the token authority, the middleware and the consumers.
//!
//! - [`bearer`]: the one reading of `Authorization: Bearer` (RFC 6750), for every API;
//! - [`secret`]: secret-holding types that never print, wipe on drop and compare in constant time;
//! - [`clock`]: injectable time, so rotation and expiry are testable with compressed time;
//! - [`keys`]: signing keys (ES256, EdDSA, RS256), RFC 7638 key ids, key lifecycle and JWKS;
//! - [`health`]: the `/HealthCheck` wire format the authority and every API answer with;
//! - [`jwt`]: RFC 9068 access tokens, issued and verified strictly, and the verified-token cache;
//! - [`revocation`]: the signed revocation feed verifiers poll instead of calling the authority;
//! - [`apikey`]: the scanner-friendly secret format (`ghac_`, `ghar_`, `ghal_`) and keyed hashing;
//! - [`schedule`]: when to renew and how long to back off, shared by the Vault and consumer loops;
//! - [`broker`]: the secrets broker's wire format, shared by the broker and its consumers;
//! - [`outbound`] (feature `outbound`): which URLs may be called, and the one HTTP client setup;
//! - [`prometheus`] (feature `prometheus`): the Prometheus recorder with its upkeep running;
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
pub mod health;
pub mod jwt;
pub mod keys;
#[cfg(feature = "outbound")]
pub mod outbound;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod revocation;
pub mod schedule;
pub mod secret;
#[cfg(feature = "vault")]
pub mod vault;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use secret::{SecretBytes, SecretString};
