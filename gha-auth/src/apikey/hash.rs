//! Keyed hashing of high-entropy secrets for storage.

use std::fmt;

use ring::hmac;
use thiserror::Error;

use super::format::ApiKey;
use crate::secret::{SecretBytes, constant_time_eq};

/// Shortest pepper accepted: the HMAC-SHA256 key should carry at least 256 bits.
pub const MIN_PEPPER_LEN: usize = 32;

/// A server-wide secret key for [`KeyedHash`]. Kept out of the database so a stolen store is
/// useless on its own.
#[derive(Clone)]
pub struct Pepper {
    bytes: SecretBytes,
    key: hmac::Key,
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([redacted])")
    }
}

/// A pepper that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PepperError {
    /// Fewer than [`MIN_PEPPER_LEN`] bytes.
    #[error("pepper must be at least {MIN_PEPPER_LEN} bytes")]
    TooShort,
    /// The system random source failed.
    #[error("random source failed")]
    Randomness,
}

impl Pepper {
    /// A pepper from existing key material (at least 32 bytes).
    pub fn new(bytes: Vec<u8>) -> Result<Self, PepperError> {
        if bytes.len() < MIN_PEPPER_LEN {
            return Err(PepperError::TooShort);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        Ok(Self {
            bytes: SecretBytes::new(bytes),
            key,
        })
    }

    /// A fresh random 32-byte pepper.
    pub fn generate() -> Result<Self, PepperError> {
        let mut bytes = vec![0u8; MIN_PEPPER_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| PepperError::Randomness)?;
        Self::new(bytes)
    }

    /// The raw pepper, for persisting it (encrypted) and nothing else.
    pub fn expose(&self) -> &[u8] {
        self.bytes.expose()
    }

    /// The keyed hash of a secret, as stored.
    pub fn hash(&self, secret: &ApiKey) -> KeyedHash {
        self.hash_bytes(secret.expose().as_bytes())
    }

    /// The keyed hash of arbitrary secret bytes (e.g. a legacy static key not in our format).
    pub fn hash_bytes(&self, secret: &[u8]) -> KeyedHash {
        KeyedHash(self.mac(b"gha-auth secret v1", secret))
    }

    /// HMAC-SHA256 over `domain || 0 || input`; domains keep different uses apart.
    pub(crate) fn mac(&self, domain: &[u8], input: &[u8]) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(domain);
        context.update(&[0]);
        context.update(input);
        let tag = context.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// HMAC-SHA256 of a secret under the [`Pepper`]: what the store keeps and indexes.
///
/// Not secret on its own (it is what a database row holds), but still compared in constant time.
#[derive(Clone, Copy, Eq)]
pub struct KeyedHash([u8; 32]);

impl KeyedHash {
    /// Lower-case hex, the form stored in the database.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the stored hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KeyedHash {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

// Equal values have equal bytes, so hashing the bytes agrees with the constant-time `PartialEq`.
impl std::hash::Hash for KeyedHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell rows apart in logs.
        write!(f, "KeyedHash({}…)", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikey::SecretKind;

    #[test]
    fn hash_is_stable_and_depends_on_the_pepper() {
        let key = ApiKey::generate(SecretKind::ClientSecret).unwrap();
        let pepper = Pepper::new(vec![1; 32]).unwrap();
        let other = Pepper::new(vec![2; 32]).unwrap();
        assert_eq!(pepper.hash(&key), pepper.hash(&key));
        assert_ne!(pepper.hash(&key), other.hash(&key));
        let hex = pepper.hash(&key).to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(KeyedHash::from_hex(&hex), Some(pepper.hash(&key)));
        assert!(!hex.contains(&key.expose()[5..15]));
    }

    #[test]
    fn hash_matches_hmac_sha256_of_domain_separated_input() {
        // Pins the construction so stored hashes stay valid across releases.
        let pepper = Pepper::new(vec![0x0b; 32]).unwrap();
        let hash = pepper.hash_bytes(b"abc");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[0x0b; 32]);
        let expected = hmac::sign(&key, b"gha-auth secret v1\0abc");
        assert_eq!(hash.as_bytes().as_slice(), expected.as_ref());
    }

    #[test]
    fn short_pepper_is_refused() {
        assert_eq!(Pepper::new(vec![0; 31]).err(), Some(PepperError::TooShort));
    }

    #[test]
    fn debug_never_shows_the_pepper() {
        let pepper = Pepper::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        let debug = format!("{pepper:?}");
        assert!(!debug.contains("0123456789"), "{debug}");
    }
}
