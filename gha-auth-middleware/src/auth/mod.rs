//! The authentication layer, laid out as tower-http lays out a middleware:
//!
//! - `layer.rs`: [`AuthLayer`] and its builder ([`AuthLayerBuilder`]), secure defaults;
//! - `service.rs`: [`Auth`], whose `call` forwards the request or returns a ready rejection;
//! - `future.rs`: [`ResponseFuture`];
//! - `decide.rs`: the pure decision (which credential a request presents, CORS preflight,
//!   malformed headers, the cookie CSRF check), table-tested.
//!
//! Per request: a CORS preflight passes untouched; otherwise the request's credential is found
//! (`Authorization: Bearer`, else the configured cookie after its CSRF check, or `x-api-key` for
//! a link key). A token already verified is found in the verified-token cache by its SHA-256
//! digest (and checked against the revocation list); a new one is verified by the core library's
//! strict verifier against the key source and remembered until its `exp`. The principal goes in
//! the request extensions; a refusal is answered by [`crate::AuthError`]'s single mapping.

pub(crate) mod decide;
pub(crate) mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{
    AuthLayer, AuthLayerBuilder, DEFAULT_LEEWAY, DEFAULT_LINK_KEY_HEADER, DEFAULT_MAX_TOKEN_BYTES,
    DEFAULT_TOKEN_CACHE_CAPACITY, MAX_LEEWAY,
};
pub use service::Auth;
