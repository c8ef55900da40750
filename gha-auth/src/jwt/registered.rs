//! The registered claims every token is checked on, whatever type the caller reads it as.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{JwtError, Validation};

/// `iss`, `aud`, `exp`, `nbf` and `iat`, borrowed from the payload where possible.
#[derive(Deserialize)]
pub(crate) struct Registered<'a> {
    #[serde(default, borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    aud: Option<Audiences<'a>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
}

/// The times a verified token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) exp: i64,
    pub(crate) iat: i64,
}

impl Registered<'_> {
    /// Applies `validation` at `now` (Unix seconds). `exp`, `iat`, `iss` and `aud` are required.
    pub(crate) fn check(&self, validation: &Validation, now: i64) -> Result<Times, JwtError> {
        let iss = self.iss.as_deref().ok_or(JwtError::MissingClaim("iss"))?;
        if iss != validation.issuer() {
            return Err(JwtError::WrongIssuer);
        }
        let aud = self.aud.as_ref().ok_or(JwtError::MissingClaim("aud"))?;
        if !aud
            .0
            .iter()
            .any(|a| validation.audiences().iter().any(|v| v == a))
        {
            return Err(JwtError::WrongAudience);
        }
        let leeway = validation.leeway().num_seconds();
        let exp = self.exp.ok_or(JwtError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(JwtError::NotYetValid);
        }
        let iat = self.iat.ok_or(JwtError::MissingClaim("iat"))?;
        if iat > now.saturating_add(validation.max_iat_skew().num_seconds()) {
            return Err(JwtError::IssuedInFuture);
        }
        Ok(Times { exp, iat })
    }
}

struct Audiences<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Audiences<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudVisitor;

        impl<'de> Visitor<'de> for AudVisitor {
            type Value = Audiences<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Audiences(vec![Cow::Borrowed(value)]))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Audiences(vec![Cow::Owned(value.to_owned())]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut audiences = Vec::new();
                while let Some(audience) = seq.next_element::<Cow<'de, str>>()? {
                    audiences.push(audience);
                }
                Ok(Audiences(audiences))
            }
        }

        deserializer.deserialize_any(AudVisitor)
    }
}

/// A NumericDate: integer or fractional seconds (RFC 7519 §2), truncated to whole seconds and
/// clamped to `i64`.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct DateVisitor;

    impl Visitor<'_> for DateVisitor {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of seconds")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
            Ok(i64::try_from(value).unwrap_or(i64::MAX))
        }

        #[allow(clippy::cast_possible_truncation)] // `as` saturates, which is the intent
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
            if value.is_finite() {
                Ok(value.floor() as i64)
            } else {
                Err(E::custom("not finite"))
            }
        }
    }

    deserializer.deserialize_any(DateVisitor).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, now: i64) -> Result<Times, JwtError> {
        let validation = Validation::new("iss", ["api", "other"]).unwrap();
        let registered: Registered<'_> =
            serde_json::from_str(json).map_err(|_| JwtError::InvalidClaims)?;
        registered.check(&validation, now)
    }

    #[test]
    fn boundaries_of_exp_nbf_and_iat() {
        let base = r#""iss":"iss","aud":"api","iat":1000"#;
        // exp = 1000, leeway 60: valid up to 1059, refused from 1060.
        assert!(check(&format!(r#"{{{base},"exp":1000}}"#), 1059).is_ok());
        assert_eq!(
            check(&format!(r#"{{{base},"exp":1000}}"#), 1060).unwrap_err(),
            JwtError::Expired
        );
        // nbf = 1100: valid from 1040.
        assert_eq!(
            check(&format!(r#"{{{base},"exp":2000,"nbf":1100}}"#), 1039).unwrap_err(),
            JwtError::NotYetValid
        );
        assert!(check(&format!(r#"{{{base},"exp":2000,"nbf":1100}}"#), 1040).is_ok());
        // iat = 1000: refused before 940.
        assert_eq!(
            check(&format!(r#"{{{base},"exp":2000}}"#), 939).unwrap_err(),
            JwtError::IssuedInFuture
        );
        assert!(check(&format!(r#"{{{base},"exp":2000}}"#), 940).is_ok());
        // Fractional and huge dates.
        assert!(
            check(
                r#"{"iss":"iss","aud":"api","iat":1000.9,"exp":1000.5}"#,
                1059
            )
            .is_ok()
        );
        assert!(
            check(
                r#"{"iss":"iss","aud":"api","iat":0,"exp":18446744073709551615}"#,
                i64::MAX - 1
            )
            .is_ok()
        );
    }

    #[test]
    fn required_claims() {
        assert_eq!(
            check(r#"{"aud":"api","iat":1,"exp":2}"#, 1),
            Err(JwtError::MissingClaim("iss"))
        );
        assert_eq!(
            check(r#"{"iss":"iss","iat":1,"exp":2}"#, 1),
            Err(JwtError::MissingClaim("aud"))
        );
        assert_eq!(
            check(r#"{"iss":"iss","aud":"api","iat":1}"#, 1),
            Err(JwtError::MissingClaim("exp"))
        );
        assert_eq!(
            check(r#"{"iss":"iss","aud":"api","exp":2}"#, 1),
            Err(JwtError::MissingClaim("iat"))
        );
        assert_eq!(
            check(r#"{"iss":"iss","aud":[],"iat":1,"exp":2}"#, 1),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            check(r#"{"iss":"iss","aud":["x","other"],"iat":1,"exp":2}"#, 1).map(|t| t.exp),
            Ok(2)
        );
        for bad in [
            r#"{"iss":"iss","aud":"api","iat":1,"exp":"2"}"#,
            r#"{"iss":"iss","aud":"api","iat":1,"exp":null}"#,
            r#"{"iss":"iss","aud":5,"iat":1,"exp":2}"#,
            r#"{"iss":"iss","aud":"api","iat":1,"exp":2,"exp":9999999999}"#,
        ] {
            assert_eq!(check(bad, 1).unwrap_err(), JwtError::InvalidClaims, "{bad}");
        }
    }
}
