//! The verified-token cache and the revocation state it is checked against.
//!
//! A token whose signature and claims were verified once is not verified again until it expires.
//! The cache never holds a token: an entry is found by the SHA-256 of the token's signature
//! segment and holds the signing input (`header.payload`, readable claims, not a credential), which
//! a hit must match exactly, so a hit is always the very token that was verified (see
//! docs/decisions/0004-token-cache-key.md). It is bounded (sharded maps, each capped; expired
//! entries go first, then arbitrary ones), and an entry ends at the token's `exp` by the injected
//! clock. Revocation is checked on every hit through a generation counter, so a revoked token
//! stops working at once without a scan.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use crate::principal::VerifiedToken;

/// SHA-256 of a token's signature segment: the map key. Never the token itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SignatureDigest([u8; 32]);

impl SignatureDigest {
    fn of(signature: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, signature.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    fn shard(&self) -> usize {
        usize::from(self.0[31]) % SHARDS
    }
}

impl fmt::Debug for SignatureDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureDigest({}…)", hex::encode(&self.0[..6]))
    }
}

/// How a presented token is looked up: the digest of its signature segment and, borrowed from
/// the request, its signing input. Hashes only the signature (86 characters for ES256) rather
/// than the whole token; the exact comparison of the rest makes the pair as exact as the token.
#[derive(Clone, Copy)]
pub(crate) struct TokenKey<'a> {
    digest: SignatureDigest,
    signing_input: &'a str,
}

impl<'a> TokenKey<'a> {
    /// Splits at the last `.`; text without one gets a key no verified token can have.
    pub(crate) fn of(token: &'a str) -> Self {
        let (signing_input, signature) = token.rsplit_once('.').unwrap_or(("", token));
        Self {
            digest: SignatureDigest::of(signature),
            signing_input,
        }
    }

    /// The owned form, for inserting after a verification.
    pub(crate) fn to_owned_key(self) -> OwnedTokenKey {
        OwnedTokenKey {
            digest: self.digest,
            signing_input: self.signing_input.into(),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_digest_of(self, other: TokenKey<'_>) -> Self {
        Self {
            digest: other.digest,
            ..self
        }
    }
}

impl fmt::Debug for TokenKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// A [`TokenKey`] that owns its signing input: what the cache stores beside the claims.
pub(crate) struct OwnedTokenKey {
    digest: SignatureDigest,
    signing_input: Box<str>,
}

/// Not the signing input: claims are not secret, but they stay out of logs.
impl fmt::Debug for OwnedTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedTokenKey")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// What a shard holds per signature digest.
struct Entry {
    signing_input: Box<str>,
    token: Arc<VerifiedToken>,
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

type Shard = RwLock<HashMap<SignatureDigest, Entry, BuildDigestHasher>>;

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

    /// The verified token presented as `key` if it has not expired at `now` (Unix seconds).
    /// The signing input must match exactly: an entry is never returned for another token, even
    /// one with the same signature segment.
    pub(crate) fn get(&self, key: &TokenKey<'_>, now: i64) -> Option<Arc<VerifiedToken>> {
        if !self.is_enabled() {
            return None;
        }
        let shard = self.shards[key.digest.shard()]
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(&key.digest)?;
        // Not secret (readable claims), so a plain comparison: its timing tells a caller nothing
        // it did not send, and an entry is only reached with a signature it already holds.
        if *entry.signing_input != *key.signing_input || now >= entry.token.expires_at {
            return None;
        }
        Some(Arc::clone(&entry.token))
    }

    /// Remembers a verified token; makes room first if the shard is full.
    pub(crate) fn insert(&self, key: OwnedTokenKey, token: Arc<VerifiedToken>, now: i64) {
        if !self.is_enabled() || now >= token.expires_at {
            return;
        }
        let mut shard = self.shards[key.digest.shard()]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(&key.digest) {
            shard.retain(|_, entry| now < entry.token.expires_at);
            if shard.len() >= self.per_shard {
                // Still full of live tokens: drop an arbitrary eighth (hash order is random with
                // respect to arrival, so this is close to random eviction) and go on.
                let drop = (self.per_shard / 8).max(1);
                let victims: Vec<SignatureDigest> = shard.keys().take(drop).copied().collect();
                for victim in victims {
                    shard.remove(&victim);
                }
            }
        }
        let entry = Entry {
            signing_input: key.signing_input,
            token,
        };
        shard.insert(key.digest, entry);
    }

    /// Forgets the token presented as `key` (only if the entry is that token's).
    pub(crate) fn remove(&self, key: &TokenKey<'_>) {
        let mut shard = self.shards[key.digest.shard()]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard
            .get(&key.digest)
            .is_some_and(|entry| *entry.signing_input == *key.signing_input)
        {
            shard.remove(&key.digest);
        }
    }

    /// Drops every entry signed by a key that is no longer in the key set.
    pub(crate) fn retain_kids(&self, still_valid: impl Fn(&str) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, entry| still_valid(&entry.token.kid));
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

    fn key(token: &str) -> TokenKey<'_> {
        TokenKey::of(token)
    }

    #[test]
    fn entries_end_at_exp() {
        let cache = TokenCache::new(100);
        cache.insert(key("a.b.c").to_owned_key(), token("u", "j", 0, 1_000), 10);
        assert!(cache.get(&key("a.b.c"), 999).is_some());
        assert!(cache.get(&key("a.b.c"), 1_000).is_none());
        assert!(cache.get(&key("a.b.d"), 10).is_none());
        // Already expired tokens are not stored.
        cache.insert(key("l.a.te").to_owned_key(), token("u", "j", 0, 5), 10);
        assert!(cache.get(&key("l.a.te"), 0).is_none());
    }

    #[test]
    fn a_hit_needs_the_whole_token_not_just_its_signature() {
        let cache = TokenCache::new(100);
        cache.insert(
            key("h.p1.sig").to_owned_key(),
            token("u1", "j", 0, 1_000),
            1,
        );
        assert!(cache.get(&key("h.p1.sig"), 1).is_some());
        // The same signature segment after another header and payload: the digest matches, the
        // signing input does not, so it is a miss (and full verification would refuse it).
        assert!(cache.get(&key("h.p2.sig"), 1).is_none());
        assert!(cache.get(&key("h2.p1.sig"), 1).is_none());
        assert!(cache.get(&key("p1.sig"), 1).is_none());
        assert!(cache.get(&key("h.p1sig"), 1).is_none());
        assert!(cache.get(&key("sig"), 1).is_none());
        // Removing through a spliced token leaves the real one alone.
        cache.remove(&key("h.p2.sig"));
        assert!(cache.get(&key("h.p1.sig"), 1).is_some());
    }

    #[test]
    fn tokens_whose_digests_are_forced_equal_never_share_an_entry() {
        let cache = TokenCache::new(100);
        let first = key("hdr.alice.s1");
        cache.insert(first.to_owned_key(), token("alice", "j1", 0, 1_000), 1);
        // As if SHA-256 collided: another token looked up under the first one's digest.
        let other = key("hdr.mallory.s2").with_digest_of(first);
        assert!(cache.get(&other, 1).is_none());
        // Stored under the same digest, it replaces the entry rather than sharing it.
        cache.insert(other.to_owned_key(), token("mallory", "j2", 0, 1_000), 1);
        assert!(cache.get(&first, 1).is_none());
        let hit = cache.get(&other, 1).unwrap();
        assert_eq!(hit.subject, "mallory");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TokenCache::new(64);
        for i in 0..10_000 {
            let text = format!("h.p.t{i}");
            cache.insert(key(&text).to_owned_key(), token("u", "j", 0, 1_000), 1);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        assert!(cache.len() >= 32, "{}", cache.len());
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let cache = TokenCache::new(16); // one slot per shard
        let old = key("h.p.old");
        cache.insert(old.to_owned_key(), token("u", "j", 0, 100), 1);
        // A token for the same shard arrives after the old one expired.
        let fresh = (0..)
            .map(|i| format!("h.p.fresh{i}"))
            .find(|text| key(text).digest.shard() == old.digest.shard())
            .unwrap();
        cache.insert(key(&fresh).to_owned_key(), token("u", "j", 0, 1_000), 200);
        assert!(cache.get(&key(&fresh), 200).is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(key("h.p.x").to_owned_key(), token("u", "j", 0, 1_000), 1);
        assert!(cache.get(&key("h.p.x"), 1).is_none());
    }

    #[test]
    fn retain_kids_drops_tokens_of_removed_keys() {
        let cache = TokenCache::new(100);
        cache.insert(key("h.p.x").to_owned_key(), token("u", "j", 0, 1_000), 1);
        cache.retain_kids(|kid| kid == "kid-1");
        assert!(cache.get(&key("h.p.x"), 1).is_some());
        cache.retain_kids(|kid| kid == "kid-2");
        assert!(cache.get(&key("h.p.x"), 1).is_none());
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
    fn keys_debug_show_a_digest_prefix_only() {
        let text = "header-text.claims-text.secret-signature";
        let digest = format!("{:?}", key(text).digest);
        assert_eq!(digest.len(), "SignatureDigest(".len() + 12 + "…)".len());
        for debug in [
            digest,
            format!("{:?}", key(text)),
            format!("{:?}", key(text).to_owned_key()),
        ] {
            for part in ["header-text", "claims-text", "secret-signature"] {
                assert!(!debug.contains(part), "{debug}");
            }
        }
    }
}
