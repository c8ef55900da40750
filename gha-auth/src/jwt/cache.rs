//! The verified-token cache: a token whose signature and claims were verified once is not
//! verified again until it expires.
//!
//! The design (docs/decisions/0004-token-cache-key.md):
//!
//! - It never holds a token. An entry is found by the SHA-256 of the token's signature segment
//!   and holds the signing input (`header.payload`: readable claims, not a credential), which a
//!   hit must match exactly, so a hit is always the very token that was verified.
//! - It is bounded: sharded maps, each capped; a full shard drops its expired entries first,
//!   then arbitrary ones.
//! - An entry ends at the token's `exp`, judged by the `now` the caller reads from its injected
//!   clock.
//! - What it holds per token is the caller's (`V`): the middleware keeps its principal there,
//!   the authority its caller identity. Revocation, key-set and audience checks stay with the
//!   caller, on every hit. A cache answers for one audience: a service verifying tokens for
//!   several APIs keeps one cache per API, so a token verified for one is never a hit for
//!   another.
//!
//! ```
//! use gha_auth::jwt::{TokenKey, VerifiedTokenCache};
//!
//! let cache: VerifiedTokenCache<&'static str> = VerifiedTokenCache::new(10_000);
//! let token = "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"; // verified just now, exp 1_000
//! cache.insert(&TokenKey::of(token), "alice", 1_000, 10);
//! assert_eq!(cache.get(&TokenKey::of(token), 999), Some("alice"));
//! assert_eq!(cache.get(&TokenKey::of(token), 1_000), None); // expired
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{PoisonError, RwLock};

/// Number of independently locked maps.
const SHARDS: usize = 16;

/// SHA-256 of a token's signature segment: the map key. Never the token itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SignatureDigest([u8; 32]);

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
/// the request, its signing input. Compute it once per request and use it for
/// [`VerifiedTokenCache::get`], [`VerifiedTokenCache::insert`] and
/// [`VerifiedTokenCache::remove`].
///
/// Only the signature (86 characters for ES256) is hashed, not the whole token; the exact
/// comparison of the rest makes the pair as exact as the token.
#[derive(Clone, Copy)]
pub struct TokenKey<'a> {
    digest: SignatureDigest,
    signing_input: &'a str,
}

impl<'a> TokenKey<'a> {
    /// The key of `token`. Text without a `.` gets a key no verified token can have.
    pub fn of(token: &'a str) -> Self {
        let (signing_input, signature) = token.rsplit_once('.').unwrap_or(("", token));
        Self {
            digest: SignatureDigest::of(signature),
            signing_input,
        }
    }

    #[cfg(test)]
    fn with_digest_of(self, other: TokenKey<'_>) -> Self {
        Self {
            digest: other.digest,
            ..self
        }
    }
}

/// A digest prefix only: neither the claims nor the signature reach a log.
impl fmt::Debug for TokenKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// What a shard holds per signature digest.
struct Entry<V> {
    signing_input: Box<str>,
    expires_at: i64,
    value: V,
}

/// The key is already a uniformly distributed digest: its first bytes are the hash.
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

type Shard<V> = RwLock<HashMap<SignatureDigest, Entry<V>, BuildDigestHasher>>;

/// A bounded cache of verified tokens, each holding a `V` until the token's `exp`. See the
/// [module docs](self).
///
/// Times are Unix seconds. `V` is cloned out on a hit: keep it cheap to clone (an `Arc`).
pub struct VerifiedTokenCache<V> {
    shards: Box<[Shard<V>]>,
    per_shard: usize,
}

impl<V> fmt::Debug for VerifiedTokenCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedTokenCache")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

impl<V> VerifiedTokenCache<V> {
    /// A cache holding about `capacity` tokens (rounded up to a multiple of 16; 0 disables it).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| RwLock::new(HashMap::default()))
            .collect();
        Self { shards, per_shard }
    }

    /// Whether it holds anything at all (capacity above 0).
    pub fn is_enabled(&self) -> bool {
        self.per_shard > 0
    }

    /// How many tokens it holds at most.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: &TokenKey<'_>) -> &Shard<V> {
        &self.shards[key.digest.shard()]
    }

    /// The value stored for the token presented as `key`, unless it expired at `now`. The
    /// signing input must match exactly: an entry is never returned for another token, even one
    /// with the same signature segment.
    pub fn get(&self, key: &TokenKey<'_>, now: i64) -> Option<V>
    where
        V: Clone,
    {
        if !self.is_enabled() {
            return None;
        }
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(&key.digest)?;
        // Not secret (readable claims), so a plain comparison: its timing tells a caller nothing
        // it did not send, and an entry is only reached with a signature it already holds.
        if *entry.signing_input != *key.signing_input || now >= entry.expires_at {
            return None;
        }
        Some(entry.value.clone())
    }

    /// Remembers `value` for the verified token presented as `key` until `expires_at` (its
    /// `exp`); makes room first if the shard is full. Only call it after full verification.
    pub fn insert(&self, key: &TokenKey<'_>, value: V, expires_at: i64, now: i64) {
        if !self.is_enabled() || now >= expires_at {
            return;
        }
        let mut shard = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(&key.digest) {
            shard.retain(|_, entry| now < entry.expires_at);
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
            signing_input: key.signing_input.into(),
            expires_at,
            value,
        };
        shard.insert(key.digest, entry);
    }

    /// Forgets the token presented as `key` (only if the entry is that very token's).
    pub fn remove(&self, key: &TokenKey<'_>) {
        let mut shard = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard
            .get(&key.digest)
            .is_some_and(|entry| *entry.signing_input == *key.signing_input)
        {
            shard.remove(&key.digest);
        }
    }

    /// Keeps only the entries whose value passes `keep` (e.g. drops every token signed by a key
    /// that left the key set).
    pub fn retain(&self, mut keep: impl FnMut(&V) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, entry| keep(&entry.value));
        }
    }

    /// Entries held now, expired ones included until they are evicted.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(token: &str) -> TokenKey<'_> {
        TokenKey::of(token)
    }

    #[test]
    fn entries_end_at_exp() {
        let cache = VerifiedTokenCache::new(100);
        cache.insert(&key("a.b.c"), "alice", 1_000, 10);
        assert_eq!(cache.get(&key("a.b.c"), 999), Some("alice"));
        assert_eq!(cache.get(&key("a.b.c"), 1_000), None);
        assert_eq!(cache.get(&key("a.b.d"), 10), None);
        // Already expired tokens are not stored.
        cache.insert(&key("l.a.te"), "late", 5, 10);
        assert_eq!(cache.get(&key("l.a.te"), 0), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_hit_needs_the_whole_token_not_just_its_signature() {
        let cache = VerifiedTokenCache::new(100);
        cache.insert(&key("h.p1.sig"), "u1", 1_000, 1);
        assert_eq!(cache.get(&key("h.p1.sig"), 1), Some("u1"));
        // The same signature segment after another header and payload: the digest matches, the
        // signing input does not, so it is a miss (and full verification would refuse it).
        for other in ["h.p2.sig", "h2.p1.sig", "p1.sig", "h.p1sig", "sig"] {
            assert_eq!(cache.get(&key(other), 1), None, "{other}");
        }
        // Removing through a spliced token leaves the real one alone.
        cache.remove(&key("h.p2.sig"));
        assert_eq!(cache.get(&key("h.p1.sig"), 1), Some("u1"));
        cache.remove(&key("h.p1.sig"));
        assert_eq!(cache.get(&key("h.p1.sig"), 1), None);
    }

    #[test]
    fn tokens_whose_digests_are_forced_equal_never_share_an_entry() {
        let cache = VerifiedTokenCache::new(100);
        let first = key("hdr.alice.s1");
        cache.insert(&first, "alice", 1_000, 1);
        // As if SHA-256 collided: another token looked up under the first one's digest.
        let other = key("hdr.mallory.s2").with_digest_of(first);
        assert_eq!(cache.get(&other, 1), None);
        // Stored under the same digest, it replaces the entry rather than sharing it.
        cache.insert(&other, "mallory", 1_000, 1);
        assert_eq!(cache.get(&first, 1), None);
        assert_eq!(cache.get(&other, 1), Some("mallory"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = VerifiedTokenCache::new(64);
        assert_eq!(cache.capacity(), 64);
        for i in 0..10_000 {
            cache.insert(&key(&format!("h.p.t{i}")), i, 1_000, 1);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        assert!(cache.len() >= 32, "{}", cache.len());
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let cache = VerifiedTokenCache::new(16); // one slot per shard
        let old = key("h.p.old");
        cache.insert(&old, "old", 100, 1);
        // A token for the same shard arrives after the old one expired.
        let fresh = (0..)
            .map(|i| format!("h.p.fresh{i}"))
            .find(|text| key(text).digest.shard() == old.digest.shard())
            .unwrap();
        cache.insert(&key(&fresh), "fresh", 1_000, 200);
        assert_eq!(cache.get(&key(&fresh), 200), Some("fresh"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let cache = VerifiedTokenCache::new(0);
        assert!(!cache.is_enabled());
        cache.insert(&key("h.p.x"), "x", 1_000, 1);
        assert_eq!(cache.get(&key("h.p.x"), 1), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn retain_keeps_only_what_passes() {
        let cache = VerifiedTokenCache::new(100);
        cache.insert(&key("h.p.x"), "kid-1", 1_000, 1);
        cache.insert(&key("h.p.y"), "kid-2", 1_000, 1);
        cache.retain(|kid| *kid == "kid-1");
        assert_eq!(cache.get(&key("h.p.x"), 1), Some("kid-1"));
        assert_eq!(cache.get(&key("h.p.y"), 1), None);
    }

    #[test]
    fn keys_debug_show_a_digest_prefix_only() {
        let text = "header-text.claims-text.secret-signature";
        let digest = format!("{:?}", key(text).digest);
        assert_eq!(digest.len(), "SignatureDigest(".len() + 12 + "…)".len());
        let cache = VerifiedTokenCache::new(16);
        cache.insert(&key(text), (), 1_000, 1);
        for debug in [digest, format!("{:?}", key(text)), format!("{cache:?}")] {
            for part in ["header-text", "claims-text", "secret-signature"] {
                assert!(!debug.contains(part), "{debug}");
            }
        }
    }
}
