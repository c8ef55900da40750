//! The signing-key lifecycle `next → active → retired → removed`, as pure functions of time.
//!
//! Nothing here reads a clock or stores anything: the server calls these with the current time
//! from its [`Clock`](crate::clock::Clock), persists the result with [`KeyRing::to_stored`] and
//! makes sure only one replica rotates at a time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JwkSet, KeyError, KeySchedule, SigningKey};

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not signing yet.
    Next,
    /// The one key that signs.
    Active,
    /// No longer signs; published until every token it signed has expired.
    Retired,
}

/// A signing key with its place in the lifecycle.
#[derive(Debug, Clone)]
pub struct ManagedKey {
    /// The key.
    pub key: SigningKey,
    /// Its state as of the last [`KeyRing::advance`].
    pub state: KeyState,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it starts (or started) signing.
    pub activates_at: DateTime<Utc>,
    /// When it stopped signing, once retired.
    pub retires_at: Option<DateTime<Utc>>,
    /// When it leaves the JWKS, once retired.
    pub remove_at: Option<DateTime<Utc>>,
}

impl ManagedKey {
    /// The key id.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    fn is_published(&self, now: DateTime<Utc>) -> bool {
        self.remove_at.is_none_or(|remove_at| now < remove_at)
    }
}

/// A change made by [`KeyRing::advance`] or [`KeyRing::emergency_rotate`], worth an audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// A key started signing.
    Activated {
        /// The key id.
        kid: String,
        /// When it took over.
        at: DateTime<Utc>,
    },
    /// A key stopped signing.
    Retired {
        /// The key id.
        kid: String,
        /// When it stopped.
        at: DateTime<Utc>,
    },
    /// A key left the JWKS and the ring.
    Removed {
        /// The key id.
        kid: String,
        /// When it was due to leave (or was pulled, in an emergency).
        at: DateTime<Utc>,
    },
}

/// The authority's signing keys and their lifecycle.
///
/// Invariants: key ids are unique, at most one key is `Active`, and [`KeyRing::active`] returns
/// exactly one key once the ring has been started with [`KeyRing::with_initial`].
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<ManagedKey>,
}

impl KeyRing {
    /// An empty ring (nothing signs until a key is added).
    pub fn new() -> Self {
        Self::default()
    }

    /// A ring whose first key signs at once: right for a brand-new authority, whose key nobody
    /// has cached yet.
    pub fn with_initial(key: SigningKey, now: DateTime<Utc>) -> Self {
        let first = ManagedKey {
            key,
            state: KeyState::Active,
            created_at: now,
            activates_at: now,
            retires_at: None,
            remove_at: None,
        };
        Self { keys: vec![first] }
    }

    pub(crate) fn from_keys(keys: Vec<ManagedKey>) -> Self {
        Self { keys }
    }

    /// Every key the ring holds, in insertion order.
    pub fn keys(&self) -> &[ManagedKey] {
        &self.keys
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&ManagedKey> {
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// The key that signs at `now`: the most recently activated of the active key and any next
    /// key whose time has come, even before [`KeyRing::advance`] has recorded it.
    pub fn active(&self, now: DateTime<Utc>) -> Option<&SigningKey> {
        self.active_entry(now).map(|k| &k.key)
    }

    fn active_entry(&self, now: DateTime<Utc>) -> Option<&ManagedKey> {
        self.keys
            .iter()
            .filter(|k| {
                matches!(k.state, KeyState::Active | KeyState::Next) && k.activates_at <= now
            })
            .max_by_key(|k| k.activates_at)
    }

    fn pending_next(&self) -> Option<&ManagedKey> {
        self.keys.iter().find(|k| k.state == KeyState::Next)
    }

    /// When the signing key's successor should start signing: one rotation period after the
    /// current key started.
    pub fn next_rotation_at(
        &self,
        now: DateTime<Utc>,
        schedule: &KeySchedule,
    ) -> Option<DateTime<Utc>> {
        self.active_entry(now)
            .map(|k| k.activates_at + schedule.rotation_period)
    }

    /// Whether a new next key should be made now: none is pending and the signing key's
    /// successor is due within `publish_ahead` (or nothing signs at all).
    pub fn needs_new_next(&self, now: DateTime<Utc>, schedule: &KeySchedule) -> bool {
        if self
            .keys
            .iter()
            .any(|k| k.state == KeyState::Next && k.activates_at > now)
        {
            return false;
        }
        match self.next_rotation_at(now, schedule) {
            Some(due) => now >= due - schedule.publish_ahead,
            None => true,
        }
    }

    /// Adds the successor key on the regular schedule: it activates when the rotation period of
    /// the current key ends, and never sooner than `publish_ahead` from now. Returns that time.
    ///
    /// Call [`KeyRing::advance`] first; fails if a next key is already pending.
    pub fn add_next(
        &mut self,
        key: SigningKey,
        now: DateTime<Utc>,
        schedule: &KeySchedule,
    ) -> Result<DateTime<Utc>, KeyError> {
        let earliest = now + schedule.publish_ahead;
        let activates_at = self
            .next_rotation_at(now, schedule)
            .map_or(earliest, |due| due.max(earliest));
        self.add_next_at(key, now, activates_at, schedule)?;
        Ok(activates_at)
    }

    /// Adds the successor key to activate at `activates_at` (an on-demand rotation), which must be
    /// at least `publish_ahead` from now so that cached key sets have it in time.
    pub fn add_next_at(
        &mut self,
        key: SigningKey,
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
        schedule: &KeySchedule,
    ) -> Result<(), KeyError> {
        if self.pending_next().is_some() {
            return Err(KeyError::Lifecycle("a next key is already pending"));
        }
        if activates_at < now + schedule.publish_ahead {
            return Err(KeyError::Lifecycle(
                "a next key must be published publish_ahead before it signs",
            ));
        }
        if self.get(key.kid()).is_some() {
            return Err(KeyError::Lifecycle("key id already in the ring"));
        }
        self.keys.push(ManagedKey {
            key,
            state: KeyState::Next,
            created_at: now,
            activates_at,
            retires_at: None,
            remove_at: None,
        });
        Ok(())
    }

    /// Brings states up to `now`: a next key whose time has come becomes active and the key it
    /// replaces is retired (at the moment of the handover); retired keys past their removal time
    /// leave the ring. Returns what changed, oldest first.
    pub fn advance(&mut self, now: DateTime<Utc>, schedule: &KeySchedule) -> Vec<Transition> {
        let mut transitions = Vec::new();
        loop {
            let due = self
                .keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.state == KeyState::Next && k.activates_at <= now)
                .min_by_key(|(_, k)| k.activates_at)
                .map(|(i, _)| i);
            let Some(index) = due else { break };
            let handover = self.keys[index].activates_at;
            for key in self.keys.iter_mut().filter(|k| k.state == KeyState::Active) {
                key.state = KeyState::Retired;
                key.retires_at = Some(handover);
                key.remove_at = Some(handover + schedule.retain_retired);
                transitions.push(Transition::Retired {
                    kid: key.kid().to_owned(),
                    at: handover,
                });
            }
            let next = &mut self.keys[index];
            next.state = KeyState::Active;
            transitions.push(Transition::Activated {
                kid: next.kid().to_owned(),
                at: handover,
            });
        }
        let mut kept = Vec::with_capacity(self.keys.len());
        for key in self.keys.drain(..) {
            match key.remove_at {
                Some(at) if key.state == KeyState::Retired && at <= now => {
                    transitions.push(Transition::Removed {
                        kid: key.kid().to_owned(),
                        at,
                    });
                }
                _ => kept.push(key),
            }
        }
        self.keys = kept;
        transitions
    }

    /// The public keys to serve at `now`: next, active and retired keys not yet due for removal,
    /// newest first.
    pub fn jwks(&self, now: DateTime<Utc>) -> JwkSet {
        let mut published: Vec<&ManagedKey> =
            self.keys.iter().filter(|k| k.is_published(now)).collect();
        published.sort_by(|a, b| {
            b.activates_at
                .cmp(&a.activates_at)
                .then_with(|| a.kid().cmp(b.kid()))
        });
        JwkSet {
            keys: published
                .into_iter()
                .map(|k| k.key.public_jwk().clone())
                .collect(),
        }
    }

    /// Replaces every key with `key`, which signs at once: for a leaked key.
    ///
    /// The old keys leave the JWKS immediately, so tokens they signed stop verifying as soon as
    /// verifiers refetch, and a verifier with a cached set will not know the new key until it
    /// refetches on the unknown `kid`. Breaking caches is the point here.
    pub fn emergency_rotate(&mut self, key: SigningKey, now: DateTime<Utc>) -> Vec<Transition> {
        let mut transitions: Vec<Transition> = self
            .keys
            .drain(..)
            .map(|k| Transition::Removed {
                kid: k.kid().to_owned(),
                at: now,
            })
            .collect();
        transitions.push(Transition::Activated {
            kid: key.kid().to_owned(),
            at: now,
        });
        *self = Self::with_initial(key, now);
        transitions
    }
}

#[cfg(test)]
mod tests;
