//! Generating and parsing `gha?_` secrets.

use std::convert::Infallible;
use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

use super::hash::Pepper;
use crate::secret::SecretString;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 43 base62 characters carry 43 * log2(62) = 256.03 bits.
const RANDOM_LEN: usize = 43;
/// 62^6 > 2^32, so six characters hold any CRC32.
const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 5;
/// Length of every secret in this format.
pub const ENCODED_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;
/// Largest multiple of 62 that fits in a byte: bytes at or above it are rejected so every
/// character is uniformly likely.
const UNBIASED_LIMIT: u8 = 248;

/// What a secret is for; the prefix says it to humans and scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// `ghac_`: an OAuth client secret.
    ClientSecret,
    /// `ghar_`: an opaque refresh token.
    RefreshToken,
    /// `ghal_`: a link key for a legacy integration such as Epicor.
    LinkKey,
}

impl SecretKind {
    /// Every kind, for scanners and documentation.
    pub const ALL: [SecretKind; 3] = [
        SecretKind::ClientSecret,
        SecretKind::RefreshToken,
        SecretKind::LinkKey,
    ];

    /// The five-character prefix, underscore included.
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "ghac_",
            SecretKind::RefreshToken => "ghar_",
            SecretKind::LinkKey => "ghal_",
        }
    }

    /// The regular expression secret scanners should use for this kind.
    pub fn scanner_regex(self) -> String {
        format!(
            "\\b{}[0-9A-Za-z]{{{}}}\\b",
            self.prefix(),
            RANDOM_LEN + CHECKSUM_LEN
        )
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.prefix() == prefix)
    }
}

/// Why a presented secret is not well-formed. Says nothing about the secret's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not the length every secret of this format has.
    #[error("secret has the wrong length")]
    WrongLength,
    /// The prefix is not one of ours, or not the kind expected here.
    #[error("secret has an unknown or unexpected prefix")]
    WrongPrefix,
    /// A character outside base62.
    #[error("secret contains characters outside base62")]
    BadCharacter,
    /// The checksum does not match: a typo, a truncation or a made-up value.
    #[error("secret checksum does not match")]
    BadChecksum,
    /// The system random source failed.
    #[error("random source failed")]
    Randomness,
}

/// A secret in the `gha?_` format. Redacted in `Debug`, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    kind: SecretKind,
    value: SecretString,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}[redacted])", self.kind.prefix())
    }
}

impl ApiKey {
    /// A fresh random secret of `kind`.
    pub fn generate(kind: SecretKind) -> Result<Self, FormatError> {
        let rng = SystemRandom::new();
        Self::from_byte_source(kind, |buf| {
            rng.fill(buf).map_err(|_| FormatError::Randomness)
        })
    }

    /// A secret derived deterministically from `context` under `pepper`: the same inputs always
    /// give the same secret, and without the pepper it cannot be predicted. Used to hand out the
    /// same refresh-token successor twice without storing it in clear.
    pub fn derive(kind: SecretKind, pepper: &Pepper, context: &[u8]) -> Self {
        let mut counter: u32 = 0;
        let derived = Self::from_byte_source(kind, |buf| -> Result<(), Infallible> {
            for chunk in buf.chunks_mut(32) {
                let mut input = Vec::with_capacity(context.len() + 4);
                input.extend_from_slice(&counter.to_be_bytes());
                input.extend_from_slice(context);
                let block = pepper.mac(b"gha-auth derive v1", &input);
                chunk.copy_from_slice(&block[..chunk.len()]);
                counter = counter.wrapping_add(1);
            }
            Ok(())
        });
        match derived {
            Ok(key) => key,
            Err(never) => match never {},
        }
    }

    fn from_byte_source<E>(
        kind: SecretKind,
        mut fill: impl FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<Self, E> {
        let mut encoded = String::with_capacity(ENCODED_LEN);
        encoded.push_str(kind.prefix());
        let mut buf = zeroize::Zeroizing::new([0u8; 64]);
        while encoded.len() < PREFIX_LEN + RANDOM_LEN {
            fill(buf.as_mut_slice())?;
            for &byte in buf.iter() {
                if byte < UNBIASED_LIMIT && encoded.len() < PREFIX_LEN + RANDOM_LEN {
                    encoded.push(char::from(BASE62[usize::from(byte % 62)]));
                }
            }
        }
        let checksum = checksum_chars(&encoded);
        encoded.push_str(&checksum);
        Ok(Self {
            kind,
            value: SecretString::new(encoded),
        })
    }

    /// Checks the format and checksum of a presented secret. Cheap, so a typo or a forged value
    /// is turned away before any lookup.
    pub fn parse(presented: &str) -> Result<Self, FormatError> {
        if presented.len() != ENCODED_LEN {
            return Err(FormatError::WrongLength);
        }
        let (prefix, rest) = presented
            .split_at_checked(PREFIX_LEN)
            .ok_or(FormatError::WrongLength)?;
        let kind = SecretKind::from_prefix(prefix).ok_or(FormatError::WrongPrefix)?;
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FormatError::BadCharacter);
        }
        let (body, checksum) = presented.split_at(PREFIX_LEN + RANDOM_LEN);
        let expected = checksum_chars(body);
        if !crate::secret::constant_time_eq(expected.as_bytes(), checksum.as_bytes()) {
            return Err(FormatError::BadChecksum);
        }
        Ok(Self {
            kind,
            value: SecretString::from(presented),
        })
    }

    /// Like [`ApiKey::parse`], and also requires the given kind.
    pub fn parse_kind(presented: &str, kind: SecretKind) -> Result<Self, FormatError> {
        let key = Self::parse(presented)?;
        if key.kind == kind {
            Ok(key)
        } else {
            Err(FormatError::WrongPrefix)
        }
    }

    /// What this secret is for.
    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// The secret text, to hand to its owner once.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// The secret as a [`SecretString`].
    pub fn into_secret(self) -> SecretString {
        self.value.clone()
    }
}

fn checksum_chars(body: &str) -> String {
    let mut crc = crc32fast::hash(body.as_bytes());
    let mut chars = [b'0'; CHECKSUM_LEN];
    for slot in chars.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    chars.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_have_the_documented_shape() {
        for kind in SecretKind::ALL {
            let key = ApiKey::generate(kind).unwrap();
            assert_eq!(key.expose().len(), ENCODED_LEN);
            assert!(key.expose().starts_with(kind.prefix()));
            let parsed = ApiKey::parse(key.expose()).unwrap();
            assert_eq!(parsed.kind(), kind);
            assert_eq!(parsed, key);
        }
    }

    #[test]
    fn generated_secrets_differ() {
        let a = ApiKey::generate(SecretKind::ClientSecret).unwrap();
        let b = ApiKey::generate(SecretKind::ClientSecret).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = ApiKey::generate(SecretKind::LinkKey).unwrap();
        let mut bytes = key.expose().as_bytes().to_vec();
        bytes[20] = if bytes[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(ApiKey::parse(&typo), Err(FormatError::BadChecksum));
    }

    #[test]
    fn rejects_bad_shapes_with_clear_errors() {
        let key = ApiKey::generate(SecretKind::RefreshToken).unwrap();
        let good = key.expose();
        let cases = [
            ("", FormatError::WrongLength),
            (&good[..good.len() - 1], FormatError::WrongLength),
            (&format!("ghax_{}", &good[5..]), FormatError::WrongPrefix),
            (
                &format!("{}!{}", &good[..10], &good[11..]),
                FormatError::BadCharacter,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(ApiKey::parse(input), Err(expected), "{input:?}");
        }
        assert_eq!(
            ApiKey::parse_kind(good, SecretKind::LinkKey),
            Err(FormatError::WrongPrefix)
        );
    }

    #[test]
    fn multibyte_input_of_the_right_length_is_rejected_not_panicking() {
        let input = "é".repeat(ENCODED_LEN / 2);
        assert!(ApiKey::parse(&input).is_err());
        let input = format!("ghac{}", "é".repeat(25));
        assert!(ApiKey::parse(&input).is_err());
    }

    #[test]
    fn derive_is_deterministic_and_peppered() {
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        let other = Pepper::new(vec![8; 32]).unwrap();
        let a = ApiKey::derive(SecretKind::RefreshToken, &pepper, b"family-1:ghar_x");
        let b = ApiKey::derive(SecretKind::RefreshToken, &pepper, b"family-1:ghar_x");
        let c = ApiKey::derive(SecretKind::RefreshToken, &other, b"family-1:ghar_x");
        let d = ApiKey::derive(SecretKind::RefreshToken, &pepper, b"family-1:ghar_y");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(ApiKey::parse(a.expose()).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let key = ApiKey::generate(SecretKind::ClientSecret).unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, "ApiKey(ghac_[redacted])");
    }

    #[test]
    fn scanner_regex_is_documented_shape() {
        assert_eq!(
            SecretKind::LinkKey.scanner_regex(),
            r"\bghal_[0-9A-Za-z]{49}\b"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,80}") {
            let _ = ApiKey::parse(&input);
        }

        #[test]
        fn parse_never_panics_on_near_misses(suffix in "[0-9A-Za-z]{49}", prefix in "gha[a-z]_") {
            let candidate = format!("{prefix}{suffix}");
            // Almost all random suffixes fail the checksum; none may panic.
            let _ = ApiKey::parse(&candidate);
        }
    }
}
