//! The persisted state of one link key: CURRENT, PENDING and PREVIOUS, the rotation in progress,
//! and the digest list validators are served.
//!
//! The document holds the keys themselves (the target needs the text to install it), so it only
//! ever lives sealed with the master key or inside Vault; validators get digests only
//! ([`LinkKeyState::served`]).

use std::fmt;

use chrono::{DateTime, Utc};
use gha_auth::SecretString;
use gha_auth::apikey::{ApiKey, FormatError, SecretKind};
use serde::{Deserialize, Serialize, Serializer};

/// Version of the stored document; bumped on incompatible changes.
pub(crate) const DOCUMENT_VERSION: u32 = 1;

/// One link key as the authority keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Not secret: names the key in the served list, usage reports, logs and audit events.
    pub id: String,
    /// The `ghal_` key text.
    #[serde(serialize_with = "expose_secret")]
    pub key: SecretString,
    /// The rotation that created it.
    pub rotation_id: String,
    /// When it was generated.
    pub created_at: DateTime<Utc>,
    /// When a validator last reported accepting it.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// When it stops being valid (set on PREVIOUS only).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .field("rotation_id", &self.rotation_id)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn expose_secret<S: Serializer>(value: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.expose())
}

impl StoredKey {
    /// A fresh random `ghal_` key for rotation `rotation_id`.
    pub fn generate(rotation_id: &str, now: DateTime<Utc>) -> Result<Self, FormatError> {
        let key = ApiKey::generate(SecretKind::LinkKey)?;
        Ok(Self {
            id: key_id_for(rotation_id),
            key: key.into_secret(),
            rotation_id: rotation_id.to_owned(),
            created_at: now,
            last_seen: None,
            expires_at: None,
        })
    }

    /// SHA-256 of the key text, lower-case hex: what validators compare against.
    pub fn digest_hex(&self) -> String {
        digest_hex(self.key.expose())
    }
}

/// SHA-256 of a key's text in lower-case hex (the middleware's `LinkKeyDigest`).
pub fn digest_hex(key: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref())
}

/// The key id a rotation's key gets: stable per rotation, so a retried create names the same key.
pub(crate) fn key_id_for(rotation_id: &str) -> String {
    format!(
        "lk-{}",
        rotation_id.strip_prefix("rot-").unwrap_or(rotation_id)
    )
}

/// Why a rotation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RotationReason {
    /// There was no CURRENT key yet.
    Initial,
    /// The rotation period elapsed.
    Scheduled,
    /// An operator asked (`gha-auth link-keys rotate`).
    Requested,
}

impl RotationReason {
    /// The stable name (metrics, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            RotationReason::Initial => "initial",
            RotationReason::Scheduled => "scheduled",
            RotationReason::Requested => "requested",
        }
    }
}

/// The next step a rotation has to take. Retirement of PREVIOUS happens outside a
/// rotation (see [`crate::linkkeys::machine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Generate the new key and store it as PENDING.
    Create,
    /// Install PENDING in the target (waits until validators have had time to learn it).
    Set,
    /// Read it back from the target and check that validators would accept it.
    Test,
    /// CURRENT = PENDING, PREVIOUS = the old CURRENT with an expiry.
    Promote,
}

impl Step {
    /// The stable name (metrics, audit, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Promote => "promote",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rotation in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Idempotency key: the new key's id is derived from it.
    pub id: String,
    /// Why it started.
    pub reason: RotationReason,
    /// Who started it (node or `cli`).
    pub started_by: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The step to take next.
    pub step: Step,
    /// Attempts at the current step so far (a claim counts as an attempt).
    pub attempts: u32,
    /// The last failure of this rotation (no secrets), cleared when a step succeeds.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Failures of this rotation so far, over all steps.
    #[serde(default)]
    pub failures: u32,
    /// Not before this time: the publish-ahead wait, a retry backoff, or another replica's claim.
    pub next_attempt: DateTime<Utc>,
    /// The replica that claimed the current attempt, if any.
    #[serde(default)]
    pub claimed_by: Option<String>,
}

/// An operator's request for a rotation, picked up by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationRequest {
    /// When it was asked for.
    pub at: DateTime<Utc>,
    /// Who asked.
    pub by: String,
}

/// Everything stored for one link key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkKeyState {
    /// Format version of this document.
    pub format: u32,
    /// The integration's name.
    pub name: String,
    /// The key the target sends.
    #[serde(default)]
    pub current: Option<StoredKey>,
    /// The key being rolled out.
    #[serde(default)]
    pub pending: Option<StoredKey>,
    /// The key replaced by the last promotion, valid until its `expires_at`.
    #[serde(default)]
    pub previous: Option<StoredKey>,
    /// The rotation in progress.
    #[serde(default)]
    pub rotation: Option<Rotation>,
    /// When CURRENT was promoted.
    #[serde(default)]
    pub last_rotated_at: Option<DateTime<Utc>>,
    /// A rotation an operator asked for and that has not started yet.
    #[serde(default)]
    pub requested: Option<RotationRequest>,
    /// Rotations completed so far.
    #[serde(default)]
    pub rotations: u64,
}

/// The state of a key as validators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServedState {
    /// In use.
    Current,
    /// Being rolled out.
    Pending,
    /// Replaced, valid until `expires_at`.
    Previous,
}

/// One entry of `GET /v1/link-keys/{name}` (the middleware's `LinkKeyEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedKey {
    /// The key id.
    pub id: String,
    /// SHA-256 of the key text, 64 lower-case hex digits. Never the key.
    pub digest: String,
    /// `current`, `pending` or `previous`.
    #[schema(value_type = String)]
    pub state: ServedState,
    /// When the key stops being accepted, if ever (RFC 3339).
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The document `GET /v1/link-keys/{name}` answers with (the middleware's `LinkKeySet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedSet {
    /// The integration.
    pub name: String,
    /// The keys valid now.
    pub keys: Vec<ServedKey>,
}

impl LinkKeyState {
    /// A state with no keys yet.
    pub fn empty(name: &str) -> Self {
        Self {
            format: DOCUMENT_VERSION,
            name: name.to_owned(),
            current: None,
            pending: None,
            previous: None,
            rotation: None,
            last_rotated_at: None,
            requested: None,
            rotations: 0,
        }
    }

    /// The digests validators may accept at `now`: CURRENT, PENDING (so the key is known before
    /// the target sends it) and PREVIOUS until it expires.
    pub fn served(&self, now: DateTime<Utc>) -> ServedSet {
        let mut keys = Vec::new();
        let mut add = |key: &StoredKey, state: ServedState| {
            if key.expires_at.is_none_or(|exp| now < exp) {
                keys.push(ServedKey {
                    id: key.id.clone(),
                    digest: key.digest_hex(),
                    state,
                    expires_at: key.expires_at,
                });
            }
        };
        if let Some(key) = &self.current {
            add(key, ServedState::Current);
        }
        if let Some(key) = &self.pending {
            add(key, ServedState::Pending);
        }
        if let Some(key) = &self.previous {
            add(key, ServedState::Previous);
        }
        ServedSet {
            name: self.name.clone(),
            keys,
        }
    }

    /// The stored key with id `id`, in any slot.
    pub fn key_mut(&mut self, id: &str) -> Option<&mut StoredKey> {
        [
            self.current.as_mut(),
            self.pending.as_mut(),
            self.previous.as_mut(),
        ]
        .into_iter()
        .flatten()
        .find(|k| k.id == id)
    }

    /// Encodes the document (contains secrets: seal it or send it to Vault only).
    pub fn to_json(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, serde_json::Error> {
        serde_json::to_vec(self).map(zeroize::Zeroizing::new)
    }

    /// Decodes a document; refuses a format this version does not know.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let state: Self =
            serde_json::from_slice(bytes).map_err(|e| format!("not a link-key document: {e}"))?;
        if state.format != DOCUMENT_VERSION {
            return Err(format!(
                "link-key document format {} is not supported",
                state.format
            ));
        }
        Ok(state)
    }
}

/// A valid link-key name: what the middleware accepts (`[A-Za-z0-9_-]`, 1..=64).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
