//! [`Authority`]: a running authority's parts, for embedding programs and tests (register a
//! client, read the store, rotate a key) without going through HTTP.

use std::fmt;
use std::sync::Arc;

use super::state::AppState;
use crate::admin::Admin;
use crate::broker::Broker;
use crate::caller::Callers;
use crate::config::Config;
use crate::health::Health;
use crate::linkkeys::http::Validators;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::oauth::OAuth;
use crate::revocations::Feed;
use crate::session::Sessions;
use crate::wellknown::Discovery;

/// Every feature's state of one authority, and what it was configured with.
pub struct Authority {
    pub(super) config: Config,
    pub(super) oauth: Arc<OAuth>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) discovery: Arc<Discovery>,
    pub(super) feed: Arc<Feed>,
    pub(super) callers: Arc<Callers>,
    pub(super) broker: Arc<Broker>,
    pub(super) validators: Arc<Validators>,
    pub(super) health: Health,
    pub(super) metrics: Metrics,
    pub(super) key_store_description: String,
    pub(super) monitor: Arc<Monitor>,
    pub(super) admin: Arc<Admin>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("issuer", &self.oauth.issuer)
            .field("store", &self.oauth.store)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// The router's state: each feature's part, shared.
    pub(super) fn app_state(&self) -> AppState {
        AppState {
            oauth: self.oauth.clone(),
            sessions: self.sessions.clone(),
            discovery: self.discovery.clone(),
            feed: self.feed.clone(),
            callers: self.callers.clone(),
            broker: self.broker.clone(),
            validators: self.validators.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            monitor: self.monitor.clone(),
            admin: self.admin.clone(),
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.oauth.issuer
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> &str {
        &self.oauth.token_endpoint
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the signing keys live, e.g. `local (sqlite)` or `vault (secret/gha-auth/keys)`.
    pub fn key_store_description(&self) -> &str {
        &self.key_store_description
    }
}

/// The parts the workspace's end-to-end tests reach into (register a client, read the store,
/// rotate a key) without going through HTTP.
#[cfg(feature = "test-util")]
mod parts {
    use std::sync::Arc;

    use super::Authority;
    use crate::audit::AuditLog;
    use crate::broker::Broker;
    use crate::clients::ClientRegistry;
    use crate::keys::KeyManager;
    use crate::linkkeys::LinkKeys;
    use crate::refresh::Families;
    use crate::store::Store;
    use crate::users::Users;

    impl Authority {
        /// The client registry (what `gha-auth clients …` uses).
        pub fn clients(&self) -> &ClientRegistry {
            &self.oauth.clients
        }

        /// The built-in user store.
        pub fn users(&self) -> &Users {
            &self.oauth.users
        }

        /// Refresh-token families.
        pub fn families(&self) -> &Families {
            &self.oauth.families
        }

        /// The key manager.
        pub fn keys(&self) -> &Arc<KeyManager> {
            &self.oauth.keys
        }

        /// The store.
        pub fn store(&self) -> &Store {
            &self.oauth.store
        }

        /// The audit log.
        pub fn audit(&self) -> &Arc<AuditLog> {
            &self.oauth.audit
        }

        /// The secrets broker.
        pub fn broker(&self) -> &Arc<Broker> {
            &self.broker
        }

        /// The configured link keys and their rotation drivers.
        pub fn link_keys(&self) -> &Arc<LinkKeys> {
            &self.validators.link_keys
        }
    }
}
