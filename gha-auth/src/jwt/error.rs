//! Why a token was refused, and why a validation configuration was.

/// Why a token could not be issued or was refused.
///
/// Each refusal says why, for logs and metrics; none carries any part of the token or key
/// material. Map all refusals to one `401 invalid_token` for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS: wrong number of segments, bad base64url, not JSON, not an object.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Longer than the configured limit (checked before any decoding).
    #[error("token is longer than {max} bytes")]
    TooLarge {
        /// The limit in force.
        max: usize,
    },
    /// `alg` is missing or not ES256, EdDSA or RS256 (`none` and HMAC included).
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `alg` is one of ours but not the algorithm of the key named by `kid`.
    #[error("token algorithm does not match the key")]
    AlgorithmMismatch,
    /// `typ` is missing or not `at+jwt`.
    #[error("token type is not at+jwt")]
    WrongType,
    /// The header has a `crit` member; no extension is understood, so none may be critical.
    #[error("token has critical header parameters")]
    CriticalHeader,
    /// `kid` is missing, too long or has characters outside `[A-Za-z0-9_-]`.
    #[error("token key id is missing or invalid")]
    BadKeyId,
    /// No trusted key has the token's `kid`.
    #[error("no trusted key has this key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    InvalidSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` has not been reached (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is further in the future than the allowed skew.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// None of the token's audiences is accepted.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// A claim the profile requires is absent.
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    /// The claims do not have the expected types or shape.
    #[error("token claims are invalid")]
    InvalidClaims,
    /// Signing failed in the crypto backend.
    #[error("signing failed")]
    Signing,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// The claims could not be encoded.
    #[error("claims could not be encoded")]
    Encoding,
}

/// A [`Validation`](super::Validation) that would be unsafe or could never accept a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer is empty.
    #[error("issuer must not be empty")]
    EmptyIssuer,
    /// No audience, or an empty one: every token names at least one audience.
    #[error("at least one non-empty audience is required")]
    NoAudience,
    /// A duration is negative or above the maximum.
    #[error("{field} is {secs} s; it must be between 0 and {max_secs} s")]
    DurationOutOfRange {
        /// The setting.
        field: &'static str,
        /// The refused value.
        secs: i64,
        /// The largest accepted value.
        max_secs: i64,
    },
    /// The token size limit is outside the accepted range.
    #[error("max_token_bytes is {bytes}; it must be between {min} and {max}")]
    TokenSizeOutOfRange {
        /// The refused value.
        bytes: usize,
        /// Smallest accepted limit.
        min: usize,
        /// Largest accepted limit.
        max: usize,
    },
}
