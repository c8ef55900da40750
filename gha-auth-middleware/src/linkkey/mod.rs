//! The legacy link key: a static `x-api-key` accepted during the migration off static keys.
//!
//! Epicor data directives call the field-service API with one key. The authority rotates it
//! (CURRENT / PENDING / PREVIOUS with an overlap), and validators accept whichever keys are valid
//! now. A validator never holds a key, only its **digest**: the SHA-256 of the key text, which
//! lets it check a presented key without the authority's pepper, and is useless for calling the
//! API if it leaks (the keys are 256-bit random, so the digest cannot be reversed).
//!
//! - [`LinkKeySource`] is where the valid digests come from: [`StaticLinkKeys`] (configuration,
//!   a file) now, [`HttpLinkKeySource`] (`GET {authority}/v1/link-keys/{name}`) once the
//!   authority serves it.
//! - [`LinkKeyIntegration`] maps an integration's keys to a principal with configured scopes,
//!   roles and tenant. The caller cannot choose any of them.
//! - Every accepted use is recorded per key id ([`LinkKeyUsage`]) and reported to the authority by
//!   the HTTP source, so rotation knows the new key is in use and can retire the old one early.
//!
//! A presented key is checked for the `ghal_` format and checksum first (cheap, no lookup), then
//! its digest is compared in constant time against **every** valid digest, with no early exit.

mod http_source;
mod static_source;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use gha_auth::apikey::{ApiKey, SecretKind};
use gha_auth::secret::constant_time_eq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use http_source::{
    AccessTokenProvider, BoxError, HttpLinkKeySource, HttpLinkKeySourceBuilder, StaticToken,
};
pub use static_source::StaticLinkKeys;

use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::health::{ComponentHealth, HealthStatus};
use crate::principal::{LinkKeyIdentity, LinkKeyPrincipal, Scopes};

/// SHA-256 of a link key's text. Hex (64 lower-case digits) in JSON.
#[derive(Clone, Copy, Eq)]
pub struct LinkKeyDigest([u8; 32]);

impl LinkKeyDigest {
    /// The digest of a key's text.
    pub fn of_key(key: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl PartialEq for LinkKeyDigest {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for LinkKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkKeyDigest({}…)", hex::encode(&self.0[..6]))
    }
}

impl Serialize for LinkKeyDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for LinkKeyDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("digest must be 64 hex digits (SHA-256)"))
    }
}

/// Where a link key stands in its rotation. Validators accept all three; the authority lists
/// only keys that are valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LinkKeyState {
    /// Set in Epicor and in use.
    Current,
    /// Being tested: written to Epicor, not promoted yet.
    Pending,
    /// Replaced, still accepted until its `expires_at`.
    Previous,
    /// A state this version does not know: never accepted.
    #[serde(other)]
    Unknown,
}

/// One valid link key as validators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkKeyEntry {
    /// The key's id (not secret; names the key in logs and usage reports).
    pub id: String,
    /// SHA-256 of the key text.
    pub digest: LinkKeyDigest,
    /// Its rotation state.
    pub state: LinkKeyState,
    /// When it stops being accepted, if ever.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl LinkKeyEntry {
    /// A current key from its text (for tests and static configuration).
    pub fn current(id: impl Into<String>, key: &str) -> Self {
        Self {
            id: id.into(),
            digest: LinkKeyDigest::of_key(key),
            state: LinkKeyState::Current,
            expires_at: None,
        }
    }

    fn accepts_at(&self, now: DateTime<Utc>) -> bool {
        self.state != LinkKeyState::Unknown && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// The document `GET {authority}/v1/link-keys/{name}` answers with, and the format of a static
/// link-key file:
///
/// ```json
/// {
///   "name": "epicor",
///   "keys": [
///     {"id": "lk-2026-11", "digest": "<64 hex: SHA-256 of the key text>", "state": "current"},
///     {"id": "lk-2026-10", "digest": "…", "state": "previous", "expires_at": "2026-11-02T00:00:00Z"}
///   ]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkKeySet {
    /// The integration's name.
    pub name: String,
    /// The keys valid now.
    pub keys: Vec<LinkKeyEntry>,
}

/// When each link key was last accepted, per key id.
#[derive(Debug, Default)]
pub struct LinkKeyUsage {
    seen: Mutex<HashMap<String, KeyUse>>,
}

/// The last use of one link key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUse {
    /// The key id.
    pub id: String,
    /// When it was last accepted.
    pub last_seen: DateTime<Utc>,
    /// How many times it was accepted since this process started.
    pub uses: u64,
}

impl LinkKeyUsage {
    /// No use recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that key `id` was accepted at `at`.
    pub fn record(&self, id: &str, at: DateTime<Utc>) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get_mut(id) {
            Some(entry) => {
                entry.last_seen = entry.last_seen.max(at);
                entry.uses += 1;
            }
            None => {
                seen.insert(
                    id.to_owned(),
                    KeyUse {
                        id: id.to_owned(),
                        last_seen: at,
                        uses: 1,
                    },
                );
            }
        }
    }

    /// Every key seen, sorted by id.
    pub fn snapshot(&self) -> Vec<KeyUse> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<KeyUse> = seen.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// When key `id` was last accepted.
    pub fn last_seen(&self, id: &str) -> Option<DateTime<Utc>> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(id).map(|u| u.last_seen)
    }
}

/// Where the valid link keys of one integration come from.
pub trait LinkKeySource: Send + Sync + fmt::Debug + 'static {
    /// The keys valid now; `None` when the source has no usable list (never loaded, or staler
    /// than its limit), in which case every link key is refused.
    fn keys(&self) -> Option<Arc<LinkKeySet>>;

    /// Where accepted uses are recorded.
    fn usage(&self) -> &LinkKeyUsage;

    /// The source's state for `/HealthCheck`.
    fn health(&self, now: DateTime<Utc>) -> ComponentHealth {
        let _ = now;
        match self.keys() {
            Some(set) => ComponentHealth::new(HealthStatus::Healthy).with("keys", set.keys.len()),
            None => ComponentHealth::new(HealthStatus::Unhealthy).with("error", "no link keys"),
        }
    }
}

/// One legacy integration accepted through `x-api-key`: its key source and what its keys may do.
///
/// ```
/// # fn main() -> Result<(), gha_auth_middleware::ConfigError> {
/// use gha_auth_middleware::linkkey::{LinkKeyIntegration, StaticLinkKeys};
/// let source = StaticLinkKeys::from_json(r#"{"name":"epicor","keys":[]}"#)?;
/// let epicor = LinkKeyIntegration::new("epicor", source)
///     .scopes(["jobs:update"])
///     .tenant("acme");
/// # let _ = epicor; Ok(()) }
/// ```
#[derive(Clone)]
pub struct LinkKeyIntegration {
    pub(crate) name: Arc<str>,
    pub(crate) source: Arc<dyn LinkKeySource>,
    scopes: Scopes,
    roles: Vec<String>,
    tenant: Option<String>,
    accept_legacy_format: bool,
}

impl fmt::Debug for LinkKeyIntegration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKeyIntegration")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .field("tenant", &self.tenant)
            .field("accept_legacy_format", &self.accept_legacy_format)
            .finish()
    }
}

/// Bounds for a key that is not in the `ghal_` format (the static key Epicor used before
/// rotation), when [`LinkKeyIntegration::accept_legacy_format`] allows one.
const LEGACY_MIN_LEN: usize = 16;
const LEGACY_MAX_LEN: usize = 512;

impl LinkKeyIntegration {
    /// The integration `name` (e.g. `epicor`), its keys from `source`, no scopes yet.
    pub fn new(name: impl Into<String>, source: impl LinkKeySource) -> Self {
        Self::from_shared(name, Arc::new(source))
    }

    /// Like [`Self::new`] with a shared source.
    pub fn from_shared(name: impl Into<String>, source: Arc<dyn LinkKeySource>) -> Self {
        let name: String = name.into();
        Self {
            name: name.into(),
            source,
            scopes: Scopes::default(),
            roles: Vec::new(),
            tenant: None,
            accept_legacy_format: false,
        }
    }

    /// The scopes its principal holds.
    pub fn scopes<S: AsRef<str>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().collect();
        self
    }

    /// The roles its principal holds.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The tenant its principal acts for.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Also accept keys that are not in the `ghal_` format (16 to 512 visible ASCII characters):
    /// the static key in use before the first rotation. Off by default.
    pub fn accept_legacy_format(mut self, accept: bool) -> Self {
        self.accept_legacy_format = accept;
        self
    }

    /// The integration's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When each key was last accepted.
    pub fn usage(&self) -> &LinkKeyUsage {
        self.source.usage()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !is_valid_name(&self.name) {
            return Err(ConfigError::LinkKey {
                name: self.name.to_string(),
                reason: "name must be non-empty [A-Za-z0-9_-]".into(),
            });
        }
        Ok(())
    }

    fn format_ok(&self, presented: &str) -> bool {
        if presented.starts_with(SecretKind::LinkKey.prefix()) || !self.accept_legacy_format {
            return ApiKey::parse_kind(presented, SecretKind::LinkKey).is_ok();
        }
        (LEGACY_MIN_LEN..=LEGACY_MAX_LEN).contains(&presented.len())
            && presented.bytes().all(|b| b.is_ascii_graphic())
    }
}

/// An integration name: non-empty `[A-Za-z0-9_-]` (it goes into URL paths and health checks).
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks presented link keys against every configured integration.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkKeyValidator {
    pub(crate) integrations: Vec<LinkKeyIntegration>,
}

impl LinkKeyValidator {
    /// The principal for `presented`, or why not. Never logs or returns the key.
    pub(crate) fn authenticate(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkKeyPrincipal, AuthError> {
        let mut candidates = self
            .integrations
            .iter()
            .filter(|i| i.format_ok(presented))
            .peekable();
        if candidates.peek().is_none() {
            return Err(AuthError::new(
                AuthErrorKind::InvalidLinkKey,
                "link key is malformed (format or checksum)",
            ));
        }
        let digest = LinkKeyDigest::of_key(presented);
        let mut matched: Option<(&LinkKeyIntegration, Arc<LinkKeySet>, usize)> = None;
        let mut any_source = false;
        for integration in candidates {
            let Some(set) = integration.source.keys() else {
                continue;
            };
            any_source = true;
            // Compare against every entry: no early exit, so timing says nothing about which
            // entry (or whether any) matched.
            let mut hit = None;
            for (index, entry) in set.keys.iter().enumerate() {
                let equal = entry.digest == digest;
                if equal && entry.accepts_at(now) && hit.is_none() {
                    hit = Some(index);
                }
            }
            if let (Some(index), None) = (hit, &matched) {
                matched = Some((integration, Arc::clone(&set), index));
            }
        }
        let Some((integration, set, index)) = matched else {
            return Err(if any_source {
                AuthError::new(
                    AuthErrorKind::InvalidLinkKey,
                    "link key is not currently valid",
                )
            } else {
                AuthError::new(
                    AuthErrorKind::KeysUnavailable,
                    "no link-key list is available (never loaded or too stale)",
                )
            });
        };
        let entry = &set.keys[index];
        integration.source.usage().record(&entry.id, now);
        Ok(LinkKeyPrincipal(Arc::new(LinkKeyIdentity {
            name: Arc::clone(&integration.name),
            key_id: entry.id.as_str().into(),
            subject: format!("link-key:{}", integration.name),
            tenant: integration.tenant.clone(),
            scopes: integration.scopes.clone(),
            roles: integration.roles.clone(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn validator(keys: Vec<LinkKeyEntry>, legacy: bool) -> LinkKeyValidator {
        let source = StaticLinkKeys::new(LinkKeySet {
            name: "epicor".into(),
            keys,
        });
        LinkKeyValidator {
            integrations: vec![
                LinkKeyIntegration::new("epicor", source)
                    .scopes(["jobs:update"])
                    .tenant("acme")
                    .accept_legacy_format(legacy),
            ],
        }
    }

    #[test]
    fn current_and_previous_keys_are_accepted_until_expiry() {
        let current = ApiKey::generate(SecretKind::LinkKey).unwrap();
        let previous = ApiKey::generate(SecretKind::LinkKey).unwrap();
        let stranger = ApiKey::generate(SecretKind::LinkKey).unwrap();
        let mut old = LinkKeyEntry::current("old", previous.expose());
        old.state = LinkKeyState::Previous;
        old.expires_at = Some(at(1_000));
        let v = validator(
            vec![LinkKeyEntry::current("new", current.expose()), old],
            false,
        );

        let principal = v.authenticate(current.expose(), at(10)).unwrap();
        assert_eq!(principal.name(), "epicor");
        assert_eq!(principal.key_id(), "new");
        assert_eq!(principal.0.subject, "link-key:epicor");
        assert_eq!(principal.0.tenant.as_deref(), Some("acme"));
        assert!(principal.0.scopes.contains("jobs:update"));

        assert_eq!(
            v.authenticate(previous.expose(), at(999)).unwrap().key_id(),
            "old"
        );
        let expired = v.authenticate(previous.expose(), at(1_000)).unwrap_err();
        assert_eq!(expired.kind(), AuthErrorKind::InvalidLinkKey);
        let unknown = v.authenticate(stranger.expose(), at(10)).unwrap_err();
        assert_eq!(unknown.kind(), AuthErrorKind::InvalidLinkKey);
        assert!(!unknown.reason().contains(&stranger.expose()[5..]));

        let usage = v.integrations[0].usage();
        assert_eq!(usage.last_seen("new"), Some(at(10)));
        assert_eq!(usage.last_seen("old"), Some(at(999)));
        assert_eq!(usage.snapshot().iter().map(|u| u.uses).sum::<u64>(), 2);
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        let key = ApiKey::generate(SecretKind::LinkKey).unwrap();
        let v = validator(vec![LinkKeyEntry::current("k", key.expose())], false);
        let mut typo = key.expose().to_owned();
        typo.replace_range(10..11, if &typo[10..11] == "a" { "b" } else { "a" });
        let cases = [
            typo.as_str(),
            "legacy-static-key-0123456789",
            "ghac_notalinkkey",
            &key.expose()[..20],
        ];
        for case in cases {
            let err = v.authenticate(case, at(0)).unwrap_err();
            assert_eq!(err.kind(), AuthErrorKind::InvalidLinkKey, "{case}");
            assert!(
                err.reason().contains("malformed"),
                "{case}: {}",
                err.reason()
            );
        }
        // A refresh-token or client secret never passes as a link key even if its digest is listed.
        let client_secret = ApiKey::generate(SecretKind::ClientSecret).unwrap();
        let v = validator(
            vec![LinkKeyEntry::current("k", client_secret.expose())],
            false,
        );
        assert!(v.authenticate(client_secret.expose(), at(0)).is_err());
    }

    #[test]
    fn legacy_format_only_when_allowed() {
        let legacy = "EpicorStaticKey-2019-abcdef";
        let v = validator(vec![LinkKeyEntry::current("legacy", legacy)], true);
        assert_eq!(v.authenticate(legacy, at(0)).unwrap().key_id(), "legacy");
        assert!(v.authenticate("short", at(0)).is_err());
        assert!(v.authenticate("with space in it 0123", at(0)).is_err());
        let v = validator(vec![LinkKeyEntry::current("legacy", legacy)], false);
        assert!(v.authenticate(legacy, at(0)).is_err());
    }

    #[test]
    fn unknown_states_are_never_accepted() {
        let key = ApiKey::generate(SecretKind::LinkKey).unwrap();
        let json = format!(
            r#"{{"name":"epicor","keys":[{{"id":"k","digest":"{}","state":"retired"}}]}}"#,
            LinkKeyDigest::of_key(key.expose()).to_hex()
        );
        let set: LinkKeySet = serde_json::from_str(&json).unwrap();
        assert_eq!(set.keys[0].state, LinkKeyState::Unknown);
        let v = validator(set.keys, false);
        assert!(v.authenticate(key.expose(), at(0)).is_err());
    }

    #[test]
    fn digest_json_round_trip_and_debug() {
        let digest = LinkKeyDigest::of_key("ghal_x");
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json.len(), 66);
        let back: LinkKeyDigest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, digest);
        assert!(serde_json::from_str::<LinkKeyDigest>(r#""abc""#).is_err());
        assert!(format!("{digest:?}").len() <= 32);
    }
}
