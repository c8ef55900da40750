//! [`OAuth`]: what the OAuth endpoints and their grants read, built once by the composition
//! root and shared by every request (`State<Arc<OAuth>>`).

use std::fmt;
use std::sync::Arc;

use gha_auth::SharedClock;

use super::TokensConfig;
use crate::audit::AuditLog;
use crate::clients::ClientRegistry;
use crate::keys::KeyManager;
use crate::ratelimit::RateLimits;
use crate::refresh::Families;
use crate::store::Store;
use crate::users::Users;

/// The token, introspection and revocation endpoints' state.
#[non_exhaustive]
pub struct OAuth {
    /// `iss` of every token.
    pub issuer: String,
    /// The token endpoint's URL (an audience `private_key_jwt` assertions may name).
    pub token_endpoint: String,
    /// The injected clock.
    pub clock: SharedClock,
    /// The signing keys.
    pub keys: Arc<KeyManager>,
    /// The store (revocations, legacy keys).
    pub store: Store,
    /// Registered clients.
    pub clients: ClientRegistry,
    /// The built-in user store (password grant).
    pub users: Users,
    /// Refresh-token families (password and refresh grants).
    pub families: Families,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Abuse limits.
    pub limits: Arc<RateLimits>,
    /// `[tokens]`.
    pub tokens: TokensConfig,
    /// Largest form body read, in bytes (`http.max_body_bytes`).
    pub max_body_bytes: usize,
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.issuer)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}
