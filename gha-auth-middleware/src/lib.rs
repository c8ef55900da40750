//! Tower layer and axum extractors that authenticate every request to a GHA API.
//!
//! One [`AuthLayer`] per service verifies the caller's access token (RFC 9068 JWTs from the
//! gha-auth authority) or, during the migration off static keys, a legacy link key; handlers
//! then read a [`Principal`] or typed [`Claims`], and per-route guards check scopes, roles and
//! tenant.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::{Router, routing::{get, post}};
//! use gha_auth_middleware::linkkey::{LinkKeyIntegration, StaticLinkKeys};
//! use gha_auth_middleware::{AuthLayer, Principal, Requirement, health_check_route, require_scope};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let epicor = LinkKeyIntegration::new("epicor", StaticLinkKeys::from_file("link-keys.json")?)
//!     .scopes(["jobs:update"])
//!     .tenant("acme");
//! let auth = AuthLayer::builder()
//!     .issuer("https://auth.gha.example")
//!     .audience("field-service")
//!     .jwks_url("https://auth.gha.example/.well-known/jwks.json")
//!     .link_key(epicor)
//!     .build()?;
//! auth.wait_ready(Duration::from_secs(5)).await;
//!
//! async fn list_jobs(principal: Principal) -> String {
//!     format!("jobs of {:?}", principal.tenant())
//! }
//!
//! let app: Router = Router::new()
//!     .route("/jobs", get(list_jobs).route_layer(require_scope("jobs:read")))
//!     .route(
//!         "/epicor/job-updates",
//!         post(|| async { "ok" }).route_layer(Requirement::scope("jobs:update").any_tenant().layer()),
//!     )
//!     .layer(auth.clone())
//!     .merge(health_check_route(auth.health()));
//! # let _ = app; Ok(()) }
//! ```
//!
//! # What it gets right
//!
//! - **Keys** ([`keys`]): the authority's JWKS with background refresh honouring
//!   `Cache-Control` (bounded), one refetch at a time with a cooldown for unknown `kid`s,
//!   stale-if-error for a bounded time, unknown key types skipped; or local keys.
//! - **Validation** by the core library (`gha_auth::jwt`), strict by default: the algorithm from
//!   the key, `typ` `at+jwt`, `iss` and `aud` required, bounded leeway, `crit` refused, a size cap,
//!   embedded keys ignored.
//! - **Verified-token cache** (`gha_auth::jwt::VerifiedTokenCache`): a token is verified once,
//!   then found by the SHA-256 digest of its signature until its `exp`; revocation
//!   ([`Revocations`]) applies at once to cached tokens too, fed by polling the authority's
//!   signed feed ([`revocation`], [`AuthLayerBuilder::revocation_feed`]).
//! - **Link keys** ([`linkkey`]): `x-api-key` against the digests of the currently valid keys, in
//!   constant time, mapped to a configured principal; last use recorded and reported.
//! - **Token sources**: `Authorization: Bearer`; a cookie with a CSRF check ([`CookieSource`]);
//!   CORS preflights pass through.
//! - **Errors** ([`AuthError`]): RFC 6750 challenges, generic bodies, reasons in the log and in the
//!   response extensions, never a 500 for a bad token or a key-source outage (the one 500 is an
//!   extractor or guard used without the layer: a wiring bug, logged loudly).
//! - **Operations**: [`health_check_route`] for `/HealthCheck` (readiness, in the authority's
//!   wire format) and `/HealthCheck/live` (liveness, no checks): see [`health`]; [`metrics`]
//!   through the `metrics` facade, with the Prometheus recorder and `/metrics` one call away.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod cache;
mod error;
mod extract;
mod fetch;
mod guard;
pub mod health;
pub mod keys;
pub mod linkkey;
pub mod metrics;
mod principal;
pub mod revocation;
mod source;
mod verify;

#[doc(hidden)]
pub mod fuzzing;

pub use auth::{
    Auth, AuthLayer, AuthLayerBuilder, DEFAULT_LEEWAY, DEFAULT_LINK_KEY_HEADER,
    DEFAULT_MAX_TOKEN_BYTES, DEFAULT_TOKEN_CACHE_CAPACITY, MAX_LEEWAY, ResponseFuture,
};
pub use cache::Revocations;
pub use error::{AuthError, AuthErrorKind, ConfigError};
pub use extract::{Claims, OptionalPrincipal, Tenant};
pub use fetch::RefreshPolicy;
pub use guard::{Require, RequireLayer, Requirement, require_role, require_scope};
pub use health::{ComponentHealth, Health, HealthCheck, HealthStatus, health_check_route};
pub use keys::{KeySource, LocalKeys, RemoteJwks};
pub use principal::{LinkKeyPrincipal, Principal, Scopes, TokenPrincipal};
pub use revocation::{FeedPoller, RevocationFeed};
pub use source::{CookieSource, DEFAULT_CSRF_HEADER};
