//! Errors about key material: parsing, generation, JWKs and stored key rings.

/// Why a key could not be generated, imported, exported or used.
///
/// Messages name the problem, never the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm is not one of ES256, EdDSA and RS256.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The text is not a PEM `PRIVATE KEY` (PKCS#8) block.
    #[error("not a PEM PKCS#8 private key ({0})")]
    InvalidPem(&'static str),
    /// The PKCS#8 document does not hold a usable key of the expected type.
    #[error("invalid {alg} private key: {reason}")]
    InvalidPrivateKey {
        /// The algorithm the key was read for.
        alg: super::Algorithm,
        /// The backend's reason, a fixed string.
        reason: &'static str,
    },
    /// The PKCS#8 document holds a P-256, Ed25519 or RSA key of none of those kinds.
    #[error("private key is not a P-256, Ed25519 or RSA key")]
    UnrecognisedPrivateKey,
    /// RSA keys below 2048 bits are refused.
    #[error("RSA key has {bits} bits; at least 2048 are required")]
    RsaKeyTooSmall {
        /// The size of the refused key.
        bits: usize,
    },
    /// RSA keys above 8192 bits are refused (verification cost).
    #[error("RSA key has {bits} bits; at most 8192 are accepted")]
    RsaKeyTooLarge {
        /// The size of the refused key.
        bits: usize,
    },
    /// A well-formed key known to be insecure: an Ed25519 point of small order, an RSA modulus
    /// with the ROCA fingerprint.
    #[error("insecure key: {0}")]
    WeakKey(&'static str),
    /// Key generation or the random number generator failed.
    #[error("key generation failed")]
    Generation,
    /// Signing failed in the crypto backend.
    #[error("signing failed")]
    Signing,
    /// A JWK is malformed (missing or badly encoded members, a point not on the curve…).
    #[error("invalid JWK: {0}")]
    InvalidJwk(&'static str),
    /// A JWK is well formed but of a type, curve, algorithm or use this crate does not verify.
    #[error("unsupported JWK: {0}")]
    UnsupportedJwk(&'static str),
    /// A JWK set is not a JSON object with a `keys` array.
    #[error("invalid JWK set")]
    InvalidJwkSet,
    /// A stored key ring could not be read back.
    #[error("invalid stored key ring: {0}")]
    InvalidStored(&'static str),
    /// A key ring operation would break the lifecycle (see the message).
    #[error("key ring: {0}")]
    Lifecycle(&'static str),
    /// A value could not be encoded.
    #[error("encoding failed")]
    Encoding,
}
