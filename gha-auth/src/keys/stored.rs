//! Saving and loading a key ring, private keys included.
//!
//! This is the only place private keys are serialized, through two deliberate functions rather
//! than a `Serialize` impl, so no `serde` call elsewhere can write one by accident. The output is
//! plaintext JSON with PKCS#8 base64 inside: the caller encrypts it (Vault KV v2 or the local
//! encrypted store) and must never log it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{Algorithm, KeyError, KeyRing, KeyState, ManagedKey, SigningKey};
use crate::secret::SecretBytes;

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRing {
    version: u32,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    alg: Algorithm,
    kid: String,
    state: KeyState,
    created_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
    retires_at: Option<DateTime<Utc>>,
    remove_at: Option<DateTime<Utc>>,
    /// PKCS#8 DER, standard base64.
    pkcs8: String,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        self.pkcs8.zeroize();
    }
}

impl KeyRing {
    /// The ring as JSON, private keys included, for the caller to encrypt and store.
    pub fn to_stored(&self) -> Result<SecretBytes, KeyError> {
        let keys: Vec<StoredKey> = self
            .keys()
            .iter()
            .map(|k| StoredKey {
                alg: k.key.algorithm(),
                kid: k.kid().to_owned(),
                state: k.state,
                created_at: k.created_at,
                activates_at: k.activates_at,
                retires_at: k.retires_at,
                remove_at: k.remove_at,
                pkcs8: STANDARD.encode(k.key.to_pkcs8_der().expose()),
            })
            .collect();
        let size: usize = keys.iter().map(|k| k.pkcs8.len() + 320).sum::<usize>() + 32;
        let stored = StoredRing {
            version: FORMAT_VERSION,
            keys,
        };
        // Sized up front so the buffer holding private keys is not reallocated (and copied).
        let mut out = Vec::with_capacity(size);
        serde_json::to_writer(&mut out, &stored).map_err(|_| KeyError::Encoding)?;
        Ok(SecretBytes::new(out))
    }

    /// Reads back what [`KeyRing::to_stored`] wrote, checking every key against its key id and
    /// the ring invariants.
    pub fn from_stored(stored: &[u8]) -> Result<Self, KeyError> {
        let ring: StoredRing = serde_json::from_slice(stored)
            .map_err(|_| KeyError::InvalidStored("not a stored key ring"))?;
        if ring.version != FORMAT_VERSION {
            return Err(KeyError::InvalidStored("unknown format version"));
        }
        let mut keys: Vec<ManagedKey> = Vec::with_capacity(ring.keys.len());
        for stored in &ring.keys {
            let der = Zeroizing::new(
                STANDARD
                    .decode(stored.pkcs8.as_bytes())
                    .map_err(|_| KeyError::InvalidStored("private key is not base64"))?,
            );
            let key = SigningKey::from_pkcs8_der(stored.alg, &der)?;
            if key.kid() != stored.kid {
                return Err(KeyError::InvalidStored("key id does not match the key"));
            }
            if keys.iter().any(|k| k.kid() == key.kid()) {
                return Err(KeyError::InvalidStored("duplicate key id"));
            }
            let retired_fields = stored.retires_at.is_some() && stored.remove_at.is_some();
            if (stored.state == KeyState::Retired) != retired_fields {
                return Err(KeyError::InvalidStored(
                    "retirement times do not match the state",
                ));
            }
            keys.push(ManagedKey {
                key,
                state: stored.state,
                created_at: stored.created_at,
                activates_at: stored.activates_at,
                retires_at: stored.retires_at,
                remove_at: stored.remove_at,
            });
        }
        if keys.iter().filter(|k| k.state == KeyState::Active).count() > 1 {
            return Err(KeyError::InvalidStored("more than one active key"));
        }
        if keys.iter().filter(|k| k.state == KeyState::Next).count() > 1 {
            return Err(KeyError::InvalidStored("more than one next key"));
        }
        Ok(KeyRing::from_keys(keys))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::keys::KeySchedule;

    fn ring_with_all_states() -> (KeyRing, DateTime<Utc>) {
        let schedule = KeySchedule::default();
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut ring =
            KeyRing::with_initial(SigningKey::generate(Algorithm::ES256).unwrap(), start);
        let now = start + schedule.rotation_period;
        let handover = ring
            .add_next(
                SigningKey::generate(Algorithm::EdDSA).unwrap(),
                now,
                &schedule,
            )
            .unwrap();
        ring.advance(handover, &schedule);
        let later = handover + TimeDelta::minutes(1) + schedule.rotation_period;
        ring.add_next(
            SigningKey::generate(Algorithm::RS256).unwrap(),
            later,
            &schedule,
        )
        .unwrap();
        (ring, later)
    }

    #[test]
    fn round_trips_every_state_and_algorithm() {
        let (ring, now) = ring_with_all_states();
        let stored = ring.to_stored().unwrap();
        let back = KeyRing::from_stored(stored.expose()).unwrap();
        assert_eq!(back.keys().len(), 3);
        for (a, b) in ring.keys().iter().zip(back.keys()) {
            assert_eq!(a.kid(), b.kid());
            assert_eq!(a.key.algorithm(), b.key.algorithm());
            assert_eq!(
                (a.state, a.created_at, a.activates_at),
                (b.state, b.created_at, b.activates_at)
            );
            assert_eq!((a.retires_at, a.remove_at), (b.retires_at, b.remove_at));
        }
        assert_eq!(back.jwks(now), ring.jwks(now));
        assert_eq!(
            back.active(now).unwrap().kid(),
            ring.active(now).unwrap().kid()
        );
        assert!(format!("{stored:?}").starts_with("[redacted]"));
    }

    #[test]
    fn refuses_tampered_or_foreign_documents() {
        let (ring, _) = ring_with_all_states();
        let stored = ring.to_stored().unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(stored.expose()).unwrap();

        let mut wrong_kid = json.clone();
        wrong_kid["keys"][0]["kid"] = "someone-else".into();
        let mut two_active = json.clone();
        two_active["keys"][2]["state"] = "active".into();
        let mut wrong_alg = json.clone();
        wrong_alg["keys"][0]["alg"] = "RS256".into();
        let mut version = json.clone();
        version["version"] = 2.into();
        json["keys"][0]["remove_at"] = serde_json::Value::Null;

        for (name, doc) in [
            ("kid", wrong_kid),
            ("two active", two_active),
            ("alg", wrong_alg),
            ("version", version),
            ("retired without removal time", json),
        ] {
            assert!(
                KeyRing::from_stored(doc.to_string().as_bytes()).is_err(),
                "{name}"
            );
        }
        assert!(KeyRing::from_stored(b"{}").is_err());
    }
}
