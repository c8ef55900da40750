//! [`AuthLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use gha_auth::{SharedClock, SystemClock};
use http::HeaderName;
use tower::Layer;

use super::decide::RequestPolicy;
use super::service::{Auth, ServiceState};
use crate::cache::{Revocations, TokenCache};
use crate::error::ConfigError;
use crate::health::Health;
use crate::keys::{KeySource, RemoteJwks};
use crate::linkkey::{LinkKeyIntegration, LinkKeyValidator};
use crate::revocation::{FeedPoller, RevocationFeed};
use crate::source::CookieSource;
use crate::verify::{TokenVerifier, ValidationSettings};

/// Default leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest leeway accepted.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default cap on a token's size in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
/// Default number of verified tokens remembered.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;
/// Default header for the legacy link key.
pub const DEFAULT_LINK_KEY_HEADER: &str = "x-api-key";

/// What every clone of a layer shares.
pub(crate) struct Shared {
    pub(crate) tokens: Option<TokenVerifier>,
    pub(crate) link_keys: LinkKeyValidator,
    pub(crate) clock: SharedClock,
    pub(crate) revocations: Revocations,
    pub(crate) revocation_feed: Option<FeedPoller>,
}

/// The authentication layer: verifies the bearer token (or cookie, or link key) of every request
/// and puts the [`crate::Principal`] in it for the extractors and guards.
///
/// Build it once with [`AuthLayer::builder`] and apply it to a `Router` with `.layer(auth)`;
/// clones share the key source, the verified-token cache and the revocation list. See the
/// [crate docs](crate) for a full example.
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    pub(crate) shared: Arc<Shared>,
    /// What each [`Auth`] holds: the shared half and this layer's policy behind one `Arc`.
    service: Arc<ServiceState>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("tokens", &self.shared.tokens)
            .field("link_keys", &self.shared.link_keys)
            .field("policy", &self.service.policy)
            .finish()
    }
}

impl AuthLayer {
    /// A builder with secure defaults: bearer tokens only, strict validation (60 s leeway,
    /// 8 KiB cap), a 10 000-token cache, authentication required.
    pub fn builder() -> AuthLayerBuilder {
        AuthLayerBuilder::default()
    }

    /// The same layer (sharing keys, cache and revocations) but letting requests without
    /// credentials through as anonymous: for routes that serve both, with
    /// [`crate::OptionalPrincipal`]. Requests with bad credentials are still refused.
    pub fn allow_anonymous(&self) -> Self {
        let mut policy = self.service.policy.clone();
        policy.allow_anonymous = true;
        Self::new(Arc::clone(&self.shared), policy)
    }

    fn new(shared: Arc<Shared>, policy: RequestPolicy) -> Self {
        let service = Arc::new(ServiceState {
            shared: Arc::clone(&shared),
            policy,
        });
        Self { shared, service }
    }

    /// The revocation list every clone checks: feed it from the revocation feed.
    pub fn revocations(&self) -> &Revocations {
        &self.shared.revocations
    }

    /// The revocation-feed poller, when [`AuthLayerBuilder::revocation_feed`] was set.
    pub fn revocation_feed(&self) -> Option<&FeedPoller> {
        self.shared.revocation_feed.as_ref()
    }

    /// The key source, if tokens are accepted.
    pub fn key_source(&self) -> Option<&KeySource> {
        self.shared.tokens.as_ref().map(|t| &t.keys)
    }

    /// The link-key integrations.
    pub fn link_keys(&self) -> &[LinkKeyIntegration] {
        &self.shared.link_keys.integrations
    }

    /// Waits until the key source has loaded a key set, at most `timeout`; `false` if it has not
    /// (requests are refused with 401 until it does). Always `true` for local keys.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        match self.key_source() {
            Some(keys) => keys.wait_loaded(timeout).await,
            None => true,
        }
    }

    /// The health checks of this layer (`jwks`, and `link_keys:<name>` per integration), for
    /// [`crate::health_check_route`]; add the service's own with [`Health::with_check`].
    pub fn health(&self) -> Health {
        let mut health = Health::new().with_clock(self.shared.clock.clone());
        if let Some(keys) = self.key_source() {
            let keys = keys.clone();
            let clock = self.shared.clock.clone();
            health = health.with_check("jwks", move || keys.health(clock.now()));
        }
        if let Some(feed) = self.revocation_feed() {
            let feed = feed.clone();
            let clock = self.shared.clock.clone();
            health = health.with_check("revocations", move || feed.health(clock.now()));
        }
        for integration in self.link_keys() {
            let source = Arc::clone(&integration.source);
            let clock = self.shared.clock.clone();
            health = health.with_check(format!("link_keys:{}", integration.name), move || {
                source.health(clock.now())
            });
        }
        health
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth::new(inner, Arc::clone(&self.service))
    }
}

/// Builds an [`AuthLayer`]. Every setting has a secure default except the three that name who
/// is trusted: the issuer, the audience and the key source.
#[must_use]
pub struct AuthLayerBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    keys: Option<KeySourceChoice>,
    leeway: Duration,
    max_token_bytes: usize,
    cache_capacity: usize,
    cookie: Option<CookieSource>,
    link_keys: Vec<LinkKeyIntegration>,
    link_key_header: String,
    allow_anonymous: bool,
    clock: SharedClock,
    revocations: Revocations,
    revocation_feed: Option<RevocationFeed>,
    accept_plain_http: bool,
}

enum KeySourceChoice {
    Ready(KeySource),
    Url(String),
}

impl fmt::Debug for AuthLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayerBuilder")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Default for AuthLayerBuilder {
    fn default() -> Self {
        Self {
            issuer: None,
            audiences: Vec::new(),
            keys: None,
            leeway: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            cache_capacity: DEFAULT_TOKEN_CACHE_CAPACITY,
            cookie: None,
            link_keys: Vec::new(),
            link_key_header: DEFAULT_LINK_KEY_HEADER.into(),
            allow_anonymous: false,
            clock: SystemClock::shared(),
            revocations: Revocations::new(),
            revocation_feed: None,
            accept_plain_http: false,
        }
    }
}

impl AuthLayerBuilder {
    /// The issuer (`iss`) tokens must come from (required when tokens are accepted).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An audience (`aud`) this service accepts; call again to accept several.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Where verification keys come from ([`RemoteJwks`] or [`crate::LocalKeys`]).
    pub fn key_source(mut self, keys: impl Into<KeySource>) -> Self {
        self.keys = Some(KeySourceChoice::Ready(keys.into()));
        self
    }

    /// Shorthand for a [`RemoteJwks`] with default settings and this builder's clock.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = Some(KeySourceChoice::Url(url.into()));
        self
    }

    /// Leeway for `exp`, `nbf` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Cap on a token's size in bytes (default 8192; 512 to 65536).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// How many verified tokens to remember (default 10 000; 0 verifies every request).
    pub fn token_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Also take the token from a cookie, with a CSRF check.
    pub fn cookie_source(mut self, cookie: CookieSource) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// Accept the link keys of a legacy integration in `x-api-key`.
    pub fn link_key(mut self, integration: LinkKeyIntegration) -> Self {
        self.link_keys.push(integration);
        self
    }

    /// The header link keys come in (default `x-api-key`).
    pub fn link_key_header(mut self, name: impl Into<String>) -> Self {
        self.link_key_header = name.into();
        self
    }

    /// Let requests without credentials through as anonymous (default: refuse them with 401).
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Share a revocation list with other layers (default: a new one).
    pub fn revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = revocations;
        self
    }

    /// Poll the authority's signed revocation feed into this layer's revocation list (needs a
    /// key source: the feed is verified with the same keys as tokens). See
    /// [`crate::revocation`].
    pub fn revocation_feed(mut self, feed: RevocationFeed) -> Self {
        self.revocation_feed = Some(feed);
        self
    }

    /// For [`Self::jwks_url`] and [`Self::revocation_feed`]: allow plain HTTP to a non-loopback host. Off by default.
    pub fn danger_accept_plain_http(mut self, accept: bool) -> Self {
        self.accept_plain_http = accept;
        self
    }

    /// Checks the settings and builds the layer. With [`Self::jwks_url`] this starts the JWKS
    /// refresh task, so it must run inside a Tokio runtime.
    pub fn build(mut self) -> Result<AuthLayer, ConfigError> {
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::OutOfRange {
                setting: "leeway",
                reason: format!("at most {} s", MAX_LEEWAY.as_secs()),
            });
        }
        if !(512..=64 * 1024).contains(&self.max_token_bytes) {
            return Err(ConfigError::OutOfRange {
                setting: "max_token_bytes",
                reason: "between 512 and 65536".into(),
            });
        }
        let keys = match self.keys {
            None => None,
            Some(KeySourceChoice::Ready(keys)) => Some(keys),
            Some(KeySourceChoice::Url(url)) => Some(KeySource::Remote(
                RemoteJwks::builder(url)
                    .clock(self.clock.clone())
                    .danger_accept_plain_http(self.accept_plain_http)
                    .build()?,
            )),
        };
        let mut revocation_feed = None;
        let tokens = match keys {
            None => None,
            Some(keys) => {
                let issuer = self.issuer.ok_or(ConfigError::MissingIssuer)?;
                if let Some(feed) = self.revocation_feed.take() {
                    revocation_feed = Some(feed.start(
                        &issuer,
                        keys.clone(),
                        self.revocations.clone(),
                        self.clock.clone(),
                        self.accept_plain_http,
                    )?);
                }
                if self.audiences.is_empty() {
                    return Err(ConfigError::MissingAudience);
                }
                let cache = Arc::new(TokenCache::new(self.cache_capacity));
                keys.register_cache(&cache);
                let settings = ValidationSettings {
                    issuer,
                    audiences: self.audiences,
                    leeway: self.leeway,
                    max_token_bytes: self.max_token_bytes,
                };
                Some(TokenVerifier::new(
                    settings,
                    keys,
                    cache,
                    self.revocations.clone(),
                    self.clock.clone(),
                )?)
            }
        };
        if self.revocation_feed.is_some() {
            return Err(ConfigError::Keys(
                "a revocation feed needs a key source to verify it".into(),
            ));
        }
        for integration in &self.link_keys {
            integration.validate()?;
        }
        if tokens.is_none() && self.link_keys.is_empty() {
            return Err(ConfigError::NothingToAccept);
        }
        let link_key_header = if self.link_keys.is_empty() {
            None
        } else {
            Some(
                HeaderName::try_from(self.link_key_header.as_str()).map_err(|_| {
                    ConfigError::InvalidName {
                        what: "header",
                        name: self.link_key_header.clone(),
                    }
                })?,
            )
        };
        let policy = RequestPolicy {
            cookie: self.cookie,
            link_key_header,
            allow_anonymous: self.allow_anonymous,
            max_token_bytes: self.max_token_bytes,
        };
        let shared = Shared {
            tokens,
            link_keys: LinkKeyValidator {
                integrations: self.link_keys,
            },
            clock: self.clock,
            revocations: self.revocations,
            revocation_feed,
        };
        Ok(AuthLayer::new(Arc::new(shared), policy))
    }
}
