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
pub(crate) struct OAuth {
    /// `iss` of every token.
    pub(crate) issuer: String,
    /// The token endpoint's URL (an audience `private_key_jwt` assertions may name).
    pub(crate) token_endpoint: String,
    /// The introspection endpoint's URL (an assertion sent there may name it).
    pub(crate) introspection_endpoint: String,
    /// The revocation endpoint's URL (an assertion sent there may name it).
    pub(crate) revocation_endpoint: String,
    /// The injected clock.
    pub(crate) clock: SharedClock,
    /// The signing keys.
    pub(crate) keys: Arc<KeyManager>,
    /// The store (revocations, legacy keys).
    pub(crate) store: Store,
    /// Registered clients.
    pub(crate) clients: ClientRegistry,
    /// The built-in user store (password grant).
    pub(crate) users: Users,
    /// Refresh-token families (password and refresh grants).
    pub(crate) families: Families,
    /// The audit log.
    pub(crate) audit: Arc<AuditLog>,
    /// Abuse limits.
    pub(crate) limits: Arc<RateLimits>,
    /// `[tokens]`.
    pub(crate) tokens: TokensConfig,
    /// Largest form body read, in bytes (`http.max_body_bytes`).
    pub(crate) max_body_bytes: usize,
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.issuer)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}
