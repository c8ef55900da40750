//! The signed revocation feed (`GET /v1/revocations`): what the authority has revoked, for
//! verifiers that never call it per request.
//!
//! The feed is a compact JWS signed by the authority's active signing key, header
//! `{"alg":…,"typ":"gha-revocations+jwt","kid":…}`, payload:
//!
//! ```json
//! {"iss":"https://auth.gha.example","seq":42,"iat":1764583200,"exp":1764586800,
//!  "jtis":[{"jti":"…","exp":1764583800}],
//!  "subjects":[{"sub":"alice","not_before":1764583100}],
//!  "clients":[{"client_id":"svc","not_before":1764583000}]}
//! ```
//!
//! - `jtis`: access tokens revoked one by one (RFC 7009), each kept until its own `exp`;
//! - `subjects` / `clients`: every token of that subject / client with `iat < not_before` is
//!   revoked (user disabled or password changed, refresh-token reuse; client disabled or its
//!   secret rotated in an emergency);
//! - `seq` grows with every change on any replica; the HTTP `ETag` is `"<seq>"`.
//!
//! [`FeedVerifier`] checks a feed with the same strict header rules as access tokens (algorithm
//! from the key, no `crit`, well-formed `kid`, size bound first) except that `typ` must be
//! [`FEED_TYPE`], so a feed can never pass for an access token nor the reverse. The payload is
//! read only after the signature verified, and strictly ([`RevocationFeed::parse`]): every member
//! required, none unknown, no duplicates, bounded counts and lengths.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::jwt::{
    JwtError, KeyResolver, Parts, TokenHeader, encode_jws, parse_typed_header_segment,
};
use crate::keys::{SigningKey, VerifyingKey, b64};

/// The `typ` header of the feed.
pub const FEED_TYPE: &str = "gha-revocations+jwt";

/// Default upper bound on a feed's size in bytes (checked before any decoding).
pub const DEFAULT_MAX_FEED_BYTES: usize = 4 * 1024 * 1024;

/// Most entries (jtis, subjects and clients together) a feed may hold.
pub const MAX_FEED_ENTRIES: usize = 100_000;

/// Longest `jti`, `sub` or `client_id` accepted in a feed.
pub const MAX_FEED_ID_LEN: usize = 256;

/// Leeway on the feed's `exp` and `iat`.
pub const DEFAULT_FEED_LEEWAY: TimeDelta = TimeDelta::seconds(60);

/// The feed's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationFeed {
    /// The authority.
    pub iss: String,
    /// Sequence number: grows with every change, shared by all replicas.
    pub seq: u64,
    /// When this document was signed.
    pub iat: i64,
    /// When this document stops being acceptable (a replayed old feed is refused after it).
    pub exp: i64,
    /// Access tokens revoked by id.
    pub jtis: Vec<RevokedJti>,
    /// Not-before times per subject.
    pub subjects: Vec<SubjectNotBefore>,
    /// Not-before times per client.
    pub clients: Vec<ClientNotBefore>,
}

/// One revoked access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedJti {
    /// The token's `jti`.
    pub jti: String,
    /// The token's `exp`: after it, the entry is useless.
    pub exp: i64,
}

/// Every token of `sub` issued before `not_before` is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectNotBefore {
    /// The subject (`sub` claim).
    pub sub: String,
    /// Unix seconds; tokens with `iat` before it are revoked.
    pub not_before: i64,
}

/// Every token issued to `client_id` before `not_before` is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientNotBefore {
    /// The client (`client_id` claim).
    pub client_id: String,
    /// Unix seconds; tokens with `iat` before it are revoked.
    pub not_before: i64,
}

/// Why a feed was refused. Says why without repeating the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The JWS itself: size, shape, header, key or signature.
    #[error("revocation feed: {0}")]
    Jws(#[from] JwtError),
    /// The payload is not a feed document.
    #[error("revocation feed payload is invalid: {0}")]
    Payload(&'static str),
    /// `iss` is not the expected authority.
    #[error("revocation feed issuer is not accepted")]
    WrongIssuer,
    /// `exp` has passed (beyond the leeway).
    #[error("revocation feed has expired")]
    Expired,
    /// `iat` is further in the future than the leeway.
    #[error("revocation feed was issued in the future")]
    IssuedInFuture,
}

impl RevocationFeed {
    /// Reads a payload strictly: a JSON object with exactly the documented members, entries
    /// within [`MAX_FEED_ENTRIES`] and ids of 1 to [`MAX_FEED_ID_LEN`] bytes without control
    /// characters, `exp` after `iat`.
    pub fn parse(json: &[u8]) -> Result<Self, FeedError> {
        let first = json.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(FeedError::Payload("not a JSON object"));
        }
        let feed: Self =
            serde_json::from_slice(json).map_err(|_| FeedError::Payload("not a feed document"))?;
        feed.check()?;
        Ok(feed)
    }

    /// The invariants [`Self::parse`] enforces (also checked before signing).
    pub fn check(&self) -> Result<(), FeedError> {
        if self.iss.is_empty() {
            return Err(FeedError::Payload("iss is empty"));
        }
        if self.exp <= self.iat {
            return Err(FeedError::Payload("exp is not after iat"));
        }
        let entries = self.jtis.len() + self.subjects.len() + self.clients.len();
        if entries > MAX_FEED_ENTRIES {
            return Err(FeedError::Payload("too many entries"));
        }
        let ids = self
            .jtis
            .iter()
            .map(|j| j.jti.as_str())
            .chain(self.subjects.iter().map(|s| s.sub.as_str()))
            .chain(self.clients.iter().map(|c| c.client_id.as_str()));
        for id in ids {
            if !is_valid_id(id) {
                return Err(FeedError::Payload(
                    "an id is empty, too long or has control characters",
                ));
            }
        }
        Ok(())
    }

    /// Whether the feed holds no revocation at all.
    pub fn is_empty(&self) -> bool {
        self.jtis.is_empty() && self.subjects.is_empty() && self.clients.is_empty()
    }
}

fn is_valid_id(id: &str) -> bool {
    (1..=MAX_FEED_ID_LEN).contains(&id.len()) && !id.chars().any(char::is_control)
}

/// Signs `feed` with `key`: header `typ` [`FEED_TYPE`], the key's `alg` and `kid`. Refuses a
/// feed no verifier would accept.
pub fn sign(key: &SigningKey, feed: &RevocationFeed) -> Result<String, FeedError> {
    feed.check()?;
    Ok(encode_jws(key, FEED_TYPE, feed)?)
}

/// `gha-revocations+jwt`, or the media type `application/gha-revocations+jwt`, any case.
fn is_feed_type(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case(FEED_TYPE)
}

/// Verifies feeds from one authority, reading time from a clock.
#[derive(Debug, Clone)]
pub struct FeedVerifier {
    issuer: String,
    leeway: TimeDelta,
    max_bytes: usize,
    clock: SharedClock,
}

impl FeedVerifier {
    /// Accepts feeds from `issuer`, up to [`DEFAULT_MAX_FEED_BYTES`], with a 60 s leeway.
    pub fn new(issuer: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            issuer: issuer.into(),
            leeway: DEFAULT_FEED_LEEWAY,
            max_bytes: DEFAULT_MAX_FEED_BYTES,
            clock,
        }
    }

    /// Sets the size bound (at least 1 KiB).
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1024);
        self
    }

    /// Sets the leeway on `exp` and `iat` (0 to 300 s).
    #[must_use]
    pub fn with_leeway(mut self, leeway: TimeDelta) -> Self {
        self.leeway = leeway.clamp(TimeDelta::zero(), TimeDelta::seconds(300));
        self
    }

    /// The size bound in force.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Step one of two: the checked header (for finding or fetching the key), verifying nothing.
    pub fn parse_header(&self, token: &str) -> Result<TokenHeader, FeedError> {
        let parts = Parts::split(token, self.max_bytes)?;
        Ok(parse_typed_header_segment(parts.header, is_feed_type)?)
    }

    /// Verifies `token` with the key `keys` holds for its `kid` and reads the feed.
    pub fn verify(
        &self,
        token: &str,
        keys: &(impl KeyResolver + ?Sized),
    ) -> Result<RevocationFeed, FeedError> {
        let header = self.parse_header(token)?;
        let key = keys.resolve(&header.kid).ok_or(JwtError::UnknownKey)?;
        self.verify_with_key(token, &key)
    }

    /// Step two of two: verifies `token` with `key`, which must be the key its `kid` names.
    pub fn verify_with_key(
        &self,
        token: &str,
        key: &VerifyingKey,
    ) -> Result<RevocationFeed, FeedError> {
        let parts = Parts::split(token, self.max_bytes)?;
        let header = parse_typed_header_segment(parts.header, is_feed_type)?;
        if header.kid != key.kid() {
            return Err(JwtError::UnknownKey.into());
        }
        if header.alg != key.algorithm() {
            return Err(JwtError::AlgorithmMismatch.into());
        }
        let signature = b64::decode(parts.signature)
            .ok_or(JwtError::Malformed("signature is not base64url"))?;
        if !key.verify_signature(parts.signing_input.as_bytes(), &signature) {
            return Err(JwtError::InvalidSignature.into());
        }
        let payload =
            b64::decode(parts.payload).ok_or(JwtError::Malformed("payload is not base64url"))?;
        let feed = RevocationFeed::parse(&payload)?;
        if feed.iss != self.issuer {
            return Err(FeedError::WrongIssuer);
        }
        let now = self.clock.unix_seconds();
        let leeway = self.leeway.num_seconds();
        if now >= feed.exp.saturating_add(leeway) {
            return Err(FeedError::Expired);
        }
        if feed.iat > now.saturating_add(leeway) {
            return Err(FeedError::IssuedInFuture);
        }
        Ok(feed)
    }
}

#[cfg(test)]
mod tests;
