//! Token verification: the verified-token cache in front of the core library's strict verifier.
//!
//! Everything that touches `gha_auth::jwt` is in this file.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gha_auth::SharedClock;
use gha_auth::jwt::{self, JwtError, KeyResolver, TokenKey, Validation, Verifier};
use gha_auth::keys::VerifyingKey;

use crate::cache::{Revocations, TokenCache};
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::keys::{KeySet, KeySource};
use crate::metrics as m;
use crate::principal::{TokenPrincipal, VerifiedToken};

/// What the layer builder collected for validation.
#[derive(Debug, Clone)]
pub(crate) struct ValidationSettings {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
}

/// The result of the synchronous cache lookup.
pub(crate) enum Lookup {
    /// Verified before, not expired, not revoked.
    Hit(TokenPrincipal),
    /// Not in the cache: verify it.
    Miss,
    /// In the cache but no longer acceptable.
    Reject(AuthError),
}

/// Verifies tokens against a key source, with the verified-token cache in front.
pub(crate) struct TokenVerifier {
    verifier: Verifier,
    pub(crate) keys: KeySource,
    cache: Arc<TokenCache>,
    revocations: Revocations,
    clock: SharedClock,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys)
            .field("cache", &self.cache)
            .field("revocations", &self.revocations)
            .finish_non_exhaustive()
    }
}

/// The key set as the core verifier's key resolver.
struct Resolver<'a>(&'a KeySet);

impl KeyResolver for Resolver<'_> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.0.get(kid).cloned()
    }
}

fn invalid(error: &JwtError) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidToken, error.to_string())
}

impl TokenVerifier {
    pub(crate) fn new(
        settings: ValidationSettings,
        keys: KeySource,
        cache: Arc<TokenCache>,
        revocations: Revocations,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let config = |e: jwt::ConfigError| ConfigError::Validation(e.to_string());
        let leeway = TimeDelta::from_std(settings.leeway).map_err(|e| ConfigError::OutOfRange {
            setting: "leeway",
            reason: e.to_string(),
        })?;
        let validation = Validation::new(settings.issuer, settings.audiences)
            .and_then(|v| v.with_leeway(leeway))
            .and_then(|v| v.with_max_iat_skew(leeway))
            .and_then(|v| v.with_max_token_bytes(settings.max_token_bytes))
            .map_err(config)?;
        let verifier = Verifier::new(validation, clock.clone());
        Ok(Self {
            verifier,
            keys,
            cache,
            revocations,
            clock,
        })
    }

    /// The cache-hit path: a SHA-256 of the signature segment, one map lookup, an exact
    /// comparison, the revocation and key-set checks; no allocation.
    pub(crate) fn lookup(&self, token: &str) -> Lookup {
        if !self.cache.is_enabled() {
            return Lookup::Miss;
        }
        let key = TokenKey::of(token);
        let now = self.clock.unix_seconds();
        let Some(entry) = self.cache.get(&key, now) else {
            m::count(&m::CACHE_MISS);
            return Lookup::Miss;
        };
        m::count(&m::CACHE_HIT);
        if self.revocations.check(&entry) {
            self.cache.remove(&key);
            return Lookup::Reject(AuthError::new(AuthErrorKind::RevokedToken, "token revoked"));
        }
        if now >= self.keys.usable_until() {
            return Lookup::Reject(AuthError::new(
                AuthErrorKind::KeysUnavailable,
                "key set is staler than allowed; refusing even verified tokens",
            ));
        }
        Lookup::Hit(TokenPrincipal(entry))
    }

    /// First sight of a token: resolve its key (refetching once for an unknown `kid`, within
    /// the cooldown), verify strictly, check revocation, remember it.
    pub(crate) async fn verify(&self, token: &str) -> Result<TokenPrincipal, AuthError> {
        let started = Instant::now();
        let header = self.verifier.parse_header(token).map_err(|e| invalid(&e))?;
        let kid = header.kid;
        let mut keys = self.keys.current();
        if !keys.contains(&kid) {
            keys = self.keys.refetch_for_unknown(&kid).await;
        }
        let now = self.clock.now();
        if keys.freshness.is_none() {
            return Err(AuthError::new(
                AuthErrorKind::KeysUnavailable,
                "no key set loaded yet (authority not reached)",
            ));
        }
        if !keys.is_usable(now) {
            return Err(AuthError::new(
                AuthErrorKind::KeysUnavailable,
                "key set is staler than allowed (authority unreachable past the stale window)",
            ));
        }
        let Some(key) = keys.get(&kid) else {
            return Err(AuthError::new(
                AuthErrorKind::InvalidToken,
                format!("unknown key id {:?}", truncate(&kid)),
            ));
        };
        let kid: Arc<str> = key.kid().into();
        self.verifier
            .verify::<serde::de::IgnoredAny>(token, &Resolver(&keys))
            .map_err(|e| invalid(&e))?;
        // The signature covers the payload: decode it once for the principal and `Claims<T>`.
        let payload = token
            .split('.')
            .nth(1)
            .and_then(|segment| URL_SAFE_NO_PAD.decode(segment).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| AuthError::new(AuthErrorKind::InvalidToken, "payload not UTF-8 JSON"))?;
        let verified =
            VerifiedToken::from_payload(payload.into(), kid, self.revocations.generation())
                .map_err(|e| AuthError::new(AuthErrorKind::InvalidToken, format!("claims: {e}")))?;
        if self.revocations.is_revoked(&verified) {
            return Err(AuthError::new(AuthErrorKind::RevokedToken, "token revoked"));
        }
        let verified = Arc::new(verified);
        let expires_at = verified.expires_at;
        self.cache.insert(
            &TokenKey::of(token),
            Arc::clone(&verified),
            expires_at,
            now.timestamp(),
        );
        metrics::histogram!(m::TOKEN_VERIFY_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(TokenPrincipal(verified))
    }
}

/// A `kid` from an untrusted header, cut short for the log.
fn truncate(kid: &str) -> String {
    kid.chars().take(64).collect()
}
