//! The verified-token cache and the revocation state it is checked against.
//!
//! A token whose signature and claims were verified once is not verified again until it expires:
//! the cache maps the SHA-256 digest of the token text (never the token) to what was verified.
//! It is bounded (sharded maps, each capped; expired entries go first, then arbitrary ones), and
//! an entry ends at the token's `exp` by the injected clock. Revocation is checked on every hit
//! through a generation counter, so a revoked token stops working at once without a scan.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use crate::principal::VerifiedToken;

/// SHA-256 of a token's text: the cache key. Never the token itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub(crate) fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    fn shard(&self) -> usize {
        usize::from(self.0[31]) % SHARDS
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({}…)", hex::encode(&self.0[..6]))
    }
}

/// The key is already a uniformly distributed digest: use its first bytes as the hash.
#[derive(Clone, Copy, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

#[derive(Clone, Copy, Default)]
struct BuildDigestHasher;

impl BuildHasher for BuildDigestHasher {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

const SHARDS: usize = 16;

type Shard = RwLock<HashMap<TokenDigest, Arc<VerifiedToken>, BuildDigestHasher>>;

/// Bounded cache of verified tokens.
pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    per_shard: usize,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .field("len", &self.len())
            .finish()
    }
}

impl TokenCache {
    /// A cache holding about `capacity` tokens (0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| RwLock::new(HashMap::default()))
            .collect();
        Self { shards, per_shard }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.per_shard > 0
    }

    /// The entry for `digest` if it has not expired at `now` (Unix seconds).
    pub(crate) fn get(&self, digest: &TokenDigest, now: i64) -> Option<Arc<VerifiedToken>> {
        if !self.is_enabled() {
            return None;
        }
        let shard = self.shards[digest.shard()]
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(digest)?;
        (now < entry.expires_at).then(|| Arc::clone(entry))
    }

    /// Remembers a verified token; makes room first if the shard is full.
    pub(crate) fn insert(&self, digest: TokenDigest, token: Arc<VerifiedToken>, now: i64) {
        if !self.is_enabled() || now >= token.expires_at {
            return;
        }
        let mut shard = self.shards[digest.shard()]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, entry| now < entry.expires_at);
            if shard.len() >= self.per_shard {
                // Still full of live tokens: drop an arbitrary eighth (hash order is random with
                // respect to arrival, so this is close to random eviction) and go on.
                let drop = (self.per_shard / 8).max(1);
                let victims: Vec<TokenDigest> = shard.keys().take(drop).copied().collect();
                for victim in victims {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(digest, token);
    }

    pub(crate) fn remove(&self, digest: &TokenDigest) {
        self.shards[digest.shard()]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(digest);
    }

    /// Drops every entry signed by a key that is no longer in the key set.
    pub(crate) fn retain_kids(&self, still_valid: impl Fn(&str) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, entry| still_valid(&entry.kid));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

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
    fn entries_end_at_exp() {
        let cache = TokenCache::new(100);
        let digest = TokenDigest::of("a.b.c");
        cache.insert(digest, token("u", "j", 0, 1_000), 10);
        assert!(cache.get(&digest, 999).is_some());
        assert!(cache.get(&digest, 1_000).is_none());
        assert!(cache.get(&TokenDigest::of("a.b.d"), 10).is_none());
        // Already expired tokens are not stored.
        let late = TokenDigest::of("late");
        cache.insert(late, token("u", "j", 0, 5), 10);
        assert!(cache.get(&late, 0).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TokenCache::new(64);
        for i in 0..10_000 {
            cache.insert(
                TokenDigest::of(&format!("t{i}")),
                token("u", "j", 0, 1_000),
                1,
            );
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        assert!(cache.len() >= 32, "{}", cache.len());
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let cache = TokenCache::new(16); // one slot per shard
        let old = TokenDigest::of("old");
        cache.insert(old, token("u", "j", 0, 100), 1);
        // A token for the same shard arrives after the old one expired.
        let mut i = 0;
        let fresh = loop {
            let candidate = TokenDigest::of(&format!("fresh{i}"));
            if candidate.shard() == old.shard() {
                break candidate;
            }
            i += 1;
        };
        cache.insert(fresh, token("u", "j", 0, 1_000), 200);
        assert!(cache.get(&fresh, 200).is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let cache = TokenCache::new(0);
        let digest = TokenDigest::of("x");
        cache.insert(digest, token("u", "j", 0, 1_000), 1);
        assert!(cache.get(&digest, 1).is_none());
    }

    #[test]
    fn retain_kids_drops_tokens_of_removed_keys() {
        let cache = TokenCache::new(100);
        let digest = TokenDigest::of("x");
        cache.insert(digest, token("u", "j", 0, 1_000), 1);
        cache.retain_kids(|kid| kid == "kid-1");
        assert!(cache.get(&digest, 1).is_some());
        cache.retain_kids(|kid| kid == "kid-2");
        assert!(cache.get(&digest, 1).is_none());
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
    fn purge_drops_expired_jtis() {
        let revocations = Revocations::new();
        revocations.revoke_jti("j1", DateTime::from_timestamp(100, 0).unwrap());
        revocations.purge_expired(DateTime::from_timestamp(101, 0).unwrap());
        assert!(!revocations.is_revoked(&token("u", "j1", 0, 1_000)));
    }

    #[test]
    fn digest_debug_shows_a_prefix_only() {
        let debug = format!("{:?}", TokenDigest::of("secret-token"));
        assert!(!debug.contains("secret"));
        assert_eq!(debug.len(), "TokenDigest(".len() + 12 + "…)".len());
    }
}
