//! The layer's verified-token cache and the revocation state it is checked against.
//!
//! The cache is the core library's [`VerifiedTokenCache`] (design and guarantees in
//! docs/decisions/0004-token-cache-key.md): keyed by the SHA-256 of the signature segment with an
//! exact match of the signing input, never holding the token, bounded, ending at `exp` by the
//! injected clock. It holds the verified principal; revocation is checked on every hit here,
//! through a generation counter, so a revoked token stops working at once without a scan.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use gha_auth::jwt::VerifiedTokenCache;

use crate::principal::VerifiedToken;

/// The verified-token cache of one layer: the principal of each verified token.
pub(crate) type TokenCache = VerifiedTokenCache<Arc<VerifiedToken>>;

/// Revoked tokens, subjects and clients, shared by every clone of a layer.
///
/// Cheap to clone. [`Revocations::revoke_jti`] and the not-before methods take effect on the next
/// request, for cached and new tokens alike. Entries for `jti`s are kept until the token's own
/// expiry (then [`Revocations::purge_expired`] drops them); a not-before time is kept until
/// replaced or cleared.
///
/// This is the hook the revocation-feed poller (`GET /v1/revocations`) feeds.
#[derive(Clone, Default)]
pub struct Revocations {
    inner: Arc<RevocationInner>,
}

#[derive(Default)]
struct RevocationInner {
    generation: AtomicU64,
    state: RwLock<RevocationState>,
}

#[derive(Default)]
struct RevocationState {
    /// jti → the token's expiry (Unix seconds), after which the entry is useless.
    jtis: HashMap<String, i64>,
    /// sub → tokens issued before this (Unix seconds) are revoked.
    subjects: HashMap<String, i64>,
    /// client_id → tokens issued before this (Unix seconds) are revoked.
    clients: HashMap<String, i64>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Revocations")
            .field("generation", &self.generation())
            .field("jtis", &state.jtis.len())
            .field("subjects", &state.subjects.len())
            .field("clients", &state.clients.len())
            .finish()
    }
}

impl Revocations {
    /// An empty revocation list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes the token with this `jti`; `expires_at` is the token's `exp` (the entry is
    /// dropped by [`Self::purge_expired`] after it).
    pub fn revoke_jti(&self, jti: impl Into<String>, expires_at: DateTime<Utc>) {
        self.update(|state| {
            state.jtis.insert(jti.into(), expires_at.timestamp());
        });
    }

    /// Revokes every token of `subject` issued before `before` (by `iat`; a token without
    /// `iat` counts as issued before).
    pub fn revoke_subject_before(&self, subject: impl Into<String>, before: DateTime<Utc>) {
        self.update(|state| {
            let slot = state.subjects.entry(subject.into()).or_insert(i64::MIN);
            *slot = (*slot).max(before.timestamp());
        });
    }

    /// Revokes every token issued to `client_id` before `before`.
    pub fn revoke_client_before(&self, client_id: impl Into<String>, before: DateTime<Utc>) {
        self.update(|state| {
            let slot = state.clients.entry(client_id.into()).or_insert(i64::MIN);
            *slot = (*slot).max(before.timestamp());
        });
    }

    /// Drops `jti` entries whose token has expired anyway.
    pub fn purge_expired(&self, now: DateTime<Utc>) {
        let now = now.timestamp();
        let mut state = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        state.jtis.retain(|_, exp| *exp > now);
    }

    /// Bumped on every revocation; cached tokens re-check when it moves.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    fn update(&self, change: impl FnOnce(&mut RevocationState)) {
        let mut state = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `token` is revoked.
    pub(crate) fn is_revoked(&self, token: &VerifiedToken) -> bool {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(jti) = &token.jti
            && state.jtis.contains_key(jti)
        {
            return true;
        }
        // A token made by token exchange dies with the tokens it came from.
        if token
            .derived_from
            .iter()
            .any(|source| state.jtis.contains_key(source))
        {
            return true;
        }
        let issued = token.issued_at.unwrap_or(i64::MIN);
        if state
            .subjects
            .get(&token.subject)
            .is_some_and(|before| issued < *before)
        {
            return true;
        }
        if let Some(client) = &token.client_id
            && state
                .clients
                .get(client)
                .is_some_and(|before| issued < *before)
        {
            return true;
        }
        false
    }

    /// Checks `token` unless it was already checked at the current generation.
    pub(crate) fn check(&self, token: &VerifiedToken) -> bool {
        let generation = self.generation();
        if token.checked_generation() == generation {
            return false;
        }
        let revoked = self.is_revoked(token);
        if !revoked {
            token.set_checked_generation(generation);
        }
        revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(sub: &str, jti: &str, iat: i64, exp: i64) -> Arc<VerifiedToken> {
        let payload =
            format!(r#"{{"sub":"{sub}","jti":"{jti}","iat":{iat},"exp":{exp},"client_id":"c1"}}"#);
        Arc::new(VerifiedToken::from_payload(payload.into(), "kid-1".into(), 0).unwrap())
    }

    #[test]
    fn revocation_by_jti_subject_and_client() {
        let revocations = Revocations::new();
        let t = token("alice", "j1", 100, 1_000);
        assert!(!revocations.check(&t));
        revocations.revoke_jti("j2", DateTime::from_timestamp(1_000, 0).unwrap());
        assert!(!revocations.check(&t));
        revocations.revoke_jti("j1", DateTime::from_timestamp(1_000, 0).unwrap());
        assert!(revocations.check(&t));

        let t = token("bob", "j3", 100, 1_000);
        revocations.revoke_subject_before("bob", DateTime::from_timestamp(100, 0).unwrap());
        assert!(
            !revocations.check(&t),
            "issued at the not-before time: still valid"
        );
        revocations.revoke_subject_before("bob", DateTime::from_timestamp(101, 0).unwrap());
        assert!(revocations.check(&t));
        // Not-before times only move forward.
        revocations.revoke_subject_before("bob", DateTime::from_timestamp(50, 0).unwrap());
        assert!(revocations.check(&t));

        let t = token("carol", "j4", 100, 1_000);
        revocations.revoke_client_before("c1", DateTime::from_timestamp(200, 0).unwrap());
        assert!(revocations.check(&t));
    }

    #[test]
    fn finding_01_a_derived_token_is_revoked_with_its_source() {
        let revocations = Revocations::new();
        let payload = r#"{"sub":"u","jti":"j2","iat":0,"exp":1000,"derived_from":["j0","j1"]}"#;
        let derived =
            Arc::new(VerifiedToken::from_payload(payload.into(), "kid-1".into(), 0).unwrap());
        assert!(!revocations.check(&derived));
        revocations.revoke_jti("j0", DateTime::from_timestamp(1_000, 0).unwrap());
        assert!(revocations.check(&derived), "the original's revocation");
    }

    #[test]
    fn purge_drops_expired_jtis() {
        let revocations = Revocations::new();
        revocations.revoke_jti("j1", DateTime::from_timestamp(100, 0).unwrap());
        revocations.purge_expired(DateTime::from_timestamp(101, 0).unwrap());
        assert!(!revocations.is_revoked(&token("u", "j1", 0, 1_000)));
    }
}
