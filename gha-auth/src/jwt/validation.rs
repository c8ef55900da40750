//! What a verifier accepts: issuer, audiences, leeway and limits.

use chrono::TimeDelta;

use super::{ConfigError, DEFAULT_MAX_TOKEN_BYTES};
use crate::keys::MAX_LEEWAY;

/// Default clock leeway on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: TimeDelta = TimeDelta::seconds(60);

/// Smallest and largest accepted token size limits.
const TOKEN_BYTES_RANGE: (usize, usize) = (512, 64 * 1024);

/// The rules a token must meet. Strict by default; the constructors refuse settings that would
/// be unsafe (no audience, leeway above 300 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    issuer: String,
    audiences: Vec<String>,
    leeway: TimeDelta,
    max_iat_skew: TimeDelta,
    max_token_bytes: usize,
}

impl Validation {
    /// Accept tokens from `issuer` naming at least one of `audiences`, with a 60 s leeway, `iat`
    /// at most 60 s in the future and tokens up to 8 KiB.
    pub fn new<I, A>(issuer: impl Into<String>, audiences: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        let issuer = issuer.into();
        if issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        let audiences: Vec<String> = audiences.into_iter().map(Into::into).collect();
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(ConfigError::NoAudience);
        }
        Ok(Self {
            issuer,
            audiences,
            leeway: DEFAULT_LEEWAY,
            max_iat_skew: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        })
    }

    /// Sets the leeway on `exp` and `nbf` (0 to 300 s).
    pub fn with_leeway(mut self, leeway: TimeDelta) -> Result<Self, ConfigError> {
        self.leeway = bounded("leeway", leeway)?;
        Ok(self)
    }

    /// Sets how far in the future `iat` may be (0 to 300 s).
    pub fn with_max_iat_skew(mut self, skew: TimeDelta) -> Result<Self, ConfigError> {
        self.max_iat_skew = bounded("max_iat_skew", skew)?;
        Ok(self)
    }

    /// Sets the token size limit (512 bytes to 64 KiB).
    pub fn with_max_token_bytes(mut self, bytes: usize) -> Result<Self, ConfigError> {
        let (min, max) = TOKEN_BYTES_RANGE;
        if !(min..=max).contains(&bytes) {
            return Err(ConfigError::TokenSizeOutOfRange { bytes, min, max });
        }
        self.max_token_bytes = bytes;
        Ok(self)
    }

    /// The accepted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The leeway on `exp` and `nbf`.
    pub fn leeway(&self) -> TimeDelta {
        self.leeway
    }

    /// How far in the future `iat` may be.
    pub fn max_iat_skew(&self) -> TimeDelta {
        self.max_iat_skew
    }

    /// The token size limit in bytes.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }
}

fn bounded(field: &'static str, value: TimeDelta) -> Result<TimeDelta, ConfigError> {
    if value < TimeDelta::zero() || value > MAX_LEEWAY {
        return Err(ConfigError::DurationOutOfRange {
            field,
            secs: value.num_seconds(),
            max_secs: MAX_LEEWAY.num_seconds(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        let v = Validation::new("https://auth", ["api"]).unwrap();
        assert_eq!(
            (v.leeway(), v.max_iat_skew(), v.max_token_bytes()),
            (DEFAULT_LEEWAY, DEFAULT_LEEWAY, 8192)
        );
        assert!(v.clone().with_leeway(TimeDelta::seconds(300)).is_ok());
        assert_eq!(
            v.clone().with_leeway(TimeDelta::seconds(301)),
            Err(ConfigError::DurationOutOfRange {
                field: "leeway",
                secs: 301,
                max_secs: 300
            })
        );
        assert!(v.clone().with_leeway(TimeDelta::seconds(-1)).is_err());
        assert!(v.clone().with_max_iat_skew(TimeDelta::minutes(10)).is_err());
        assert!(v.clone().with_max_token_bytes(100).is_err());
        assert_eq!(
            v.with_max_token_bytes(4096).unwrap().max_token_bytes(),
            4096
        );
    }

    #[test]
    fn issuer_and_audience_are_required() {
        assert_eq!(Validation::new("", ["api"]), Err(ConfigError::EmptyIssuer));
        assert_eq!(
            Validation::new("iss", Vec::<String>::new()),
            Err(ConfigError::NoAudience)
        );
        assert_eq!(Validation::new("iss", [""]), Err(ConfigError::NoAudience));
    }
}
