//! The signature algorithms gha-auth issues and accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::KeyError;

/// A JWS signature algorithm (RFC 7518 / RFC 8037 names).
///
/// The set is closed on purpose: a token naming anything else (`none`, `HS256`, `PS256`, …) is
/// refused before a key is even looked up. The algorithm belongs to the key, never to the token.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256: the default, because the customer's .NET APIs verify it.
    #[default]
    ES256,
    /// Ed25519: smallest and fastest, for verifiers that support it.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and a key of at least 2048 bits, for legacy verifiers.
    RS256,
}

impl Algorithm {
    /// Every supported algorithm, default first.
    pub const ALL: [Algorithm; 3] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256];

    /// The `alg` value, as written in JWS headers and JWKs.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
        }
    }

    /// Parses an `alg` value; exact and case-sensitive, as RFC 7515 §4.1.1 requires.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Algorithm::ES256),
            "EdDSA" => Some(Algorithm::EdDSA),
            "RS256" => Some(Algorithm::RS256),
            _ => None,
        }
    }

    /// The JWK `kty` of keys for this algorithm.
    pub const fn key_type(self) -> &'static str {
        match self {
            Algorithm::ES256 => "EC",
            Algorithm::EdDSA => "OKP",
            Algorithm::RS256 => "RSA",
        }
    }

    /// The same algorithm in jsonwebtoken's terms, for code that talks to it directly.
    pub const fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(KeyError::UnsupportedAlgorithm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
            assert_eq!(
                serde_json::to_string(&alg).unwrap(),
                format!("\"{}\"", alg.name())
            );
            assert_eq!(alg.to_string().parse::<Algorithm>().unwrap(), alg);
        }
        assert_eq!(Algorithm::default(), Algorithm::ES256);
    }

    #[test]
    fn other_names_are_refused() {
        for name in [
            "none", "None", "HS256", "es256", "PS256", "ES384", "Ed25519", "",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
        assert!(serde_json::from_str::<Algorithm>("\"HS256\"").is_err());
    }
}
