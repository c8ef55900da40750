//! Strict parsing of the JWS compact form and its protected header, done here rather than
//! trusted to a library: everything is decided before a key is looked up.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use super::JwtError;
use crate::keys::{Algorithm, b64};

/// The `typ` of RFC 9068 access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Default upper bound on a token's length in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest accepted `kid`.
pub const MAX_KID_LEN: usize = 128;

/// What the header says, once it has passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    /// The algorithm the token claims; must still equal the key's.
    pub alg: Algorithm,
    /// The key id, known to be 1–128 characters of `[A-Za-z0-9_-]`.
    pub kid: String,
}

/// Checks a token's shape and header without verifying anything, with the default size limit.
///
/// Cheap: for choosing a key (and perhaps fetching a key set) before the full verification.
/// Never trust the claims of a token that has only passed this.
pub fn parse_header(token: &str) -> Result<TokenHeader, JwtError> {
    let parts = Parts::split(token, DEFAULT_MAX_TOKEN_BYTES)?;
    parse_header_segment(parts.header)
}

/// The three segments of a compact JWS.
pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
}

impl<'a> Parts<'a> {
    /// Size check first, then exactly three dot-separated segments.
    pub(crate) fn split(token: &'a str, max_bytes: usize) -> Result<Self, JwtError> {
        if token.len() > max_bytes {
            return Err(JwtError::TooLarge { max: max_bytes });
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(JwtError::Malformed("a token has exactly three segments"));
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }
}

/// The members of the protected header that matter. Everything else is ignored, notably
/// `jwk`, `jku`, `x5u` and `x5c`: a key is never taken from the token itself.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(default, borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// True whenever the member exists, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Decodes and checks the header segment of an access token.
pub(crate) fn parse_header_segment(segment: &str) -> Result<TokenHeader, JwtError> {
    parse_typed_header_segment(segment, is_access_token_type)
}

/// Decodes and checks a header segment whose `typ` must satisfy `accept_typ` (the revocation
/// feed has its own type, so a feed can never pass for an access token or the reverse); every
/// other rule is the access token's.
pub(crate) fn parse_typed_header_segment(
    segment: &str,
    accept_typ: fn(&str) -> bool,
) -> Result<TokenHeader, JwtError> {
    let json = b64::decode(segment).ok_or(JwtError::Malformed("header is not base64url"))?;
    let raw = parse_object::<RawHeader<'_>>(&json)
        .ok_or(JwtError::Malformed("header is not a JSON object"))?;
    let alg = raw
        .alg
        .as_deref()
        .and_then(Algorithm::from_name)
        .ok_or(JwtError::UnsupportedAlgorithm)?;
    if raw.crit {
        return Err(JwtError::CriticalHeader);
    }
    match raw.typ.as_deref() {
        Some(typ) if accept_typ(typ) => {}
        _ => return Err(JwtError::WrongType),
    }
    let kid = raw.kid.ok_or(JwtError::BadKeyId)?;
    if !is_valid_kid(&kid) {
        return Err(JwtError::BadKeyId);
    }
    Ok(TokenHeader {
        alg,
        kid: kid.into_owned(),
    })
}

/// Parses a JSON object into `T`; `None` for anything else (serde would also read an array into
/// a struct) or for duplicate known members.
pub(crate) fn parse_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// `at+jwt`, or the full media type `application/at+jwt` (RFC 9068 §2.1); media types are
/// case-insensitive.
fn is_access_token_type(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
}

/// 1–128 characters of `[A-Za-z0-9_-]`: thumbprints fit, and nothing that could mean something
/// to a path, a query or a log line gets through to a key lookup.
fn is_valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_header(header: &str) -> String {
        format!("{}.e30.AAAA", b64::encode(header.as_bytes()))
    }

    #[test]
    fn accepts_a_well_formed_header() {
        let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"abc_DEF-123","x5u":"https://evil","extra":[1]}"#;
        let parsed = parse_header(&token_with_header(header)).unwrap();
        assert_eq!(
            parsed,
            TokenHeader {
                alg: Algorithm::ES256,
                kid: "abc_DEF-123".into()
            }
        );
    }

    #[test]
    fn typ_accepts_the_media_type_forms() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            let header = format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"k"}}"#);
            assert!(parse_header(&token_with_header(&header)).is_ok(), "{typ}");
        }
        for typ in [
            "JWT",
            "jwt",
            "at+jwt ",
            "application/jwt",
            "applicationat+jwt",
            "",
            "application/",
        ] {
            let header = format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"k"}}"#);
            assert_eq!(
                parse_header(&token_with_header(&header)),
                Err(JwtError::WrongType),
                "{typ}"
            );
        }
    }

    #[test]
    fn refusals_say_why() {
        let long_kid = "a".repeat(MAX_KID_LEN + 1);
        let max_kid = "a".repeat(MAX_KID_LEN);
        let cases: Vec<(String, Result<(), JwtError>)> = vec![
            (
                r#"{"alg":"none","typ":"at+jwt","kid":"k"}"#.into(),
                Err(JwtError::UnsupportedAlgorithm),
            ),
            (
                r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#.into(),
                Err(JwtError::UnsupportedAlgorithm),
            ),
            (
                r#"{"alg":"es256","typ":"at+jwt","kid":"k"}"#.into(),
                Err(JwtError::UnsupportedAlgorithm),
            ),
            (
                r#"{"typ":"at+jwt","kid":"k"}"#.into(),
                Err(JwtError::UnsupportedAlgorithm),
            ),
            (
                r#"{"alg":"ES256","kid":"k"}"#.into(),
                Err(JwtError::WrongType),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k","crit":["exp"]}"#.into(),
                Err(JwtError::CriticalHeader),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k","crit":null}"#.into(),
                Err(JwtError::CriticalHeader),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt"}"#.into(),
                Err(JwtError::BadKeyId),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":""}"#.into(),
                Err(JwtError::BadKeyId),
            ),
            (
                format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{long_kid}"}}"#),
                Err(JwtError::BadKeyId),
            ),
            (
                format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{max_kid}"}}"#),
                Ok(()),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"../../etc/passwd"}"#.into(),
                Err(JwtError::BadKeyId),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"' OR 1=1 --"}"#.into(),
                Err(JwtError::BadKeyId),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"a\u0000b"}"#.into(),
                Err(JwtError::BadKeyId),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":7}"#.into(),
                Err(JwtError::Malformed("header is not a JSON object")),
            ),
            (
                r#"{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"k"}"#.into(),
                Err(JwtError::Malformed("header is not a JSON object")),
            ),
            (
                r#"["ES256","at+jwt","k"]"#.into(),
                Err(JwtError::Malformed("header is not a JSON object")),
            ),
            (
                "null".into(),
                Err(JwtError::Malformed("header is not a JSON object")),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k"} x"#.into(),
                Err(JwtError::Malformed("header is not a JSON object")),
            ),
        ];
        for (header, expected) in cases {
            let got = parse_header(&token_with_header(&header)).map(|_| ());
            assert_eq!(got, expected, "{header}");
        }
    }

    #[test]
    fn shape_is_checked_before_anything_else() {
        assert_eq!(
            parse_header("a.b"),
            Err(JwtError::Malformed("a token has exactly three segments"))
        );
        assert_eq!(
            parse_header("a.b.c.d"),
            Err(JwtError::Malformed("a token has exactly three segments"))
        );
        assert_eq!(
            parse_header(""),
            Err(JwtError::Malformed("a token has exactly three segments"))
        );
        assert_eq!(
            parse_header("!!.e30.AA"),
            Err(JwtError::Malformed("header is not base64url"))
        );
        assert_eq!(
            parse_header("e+J9.e30.AA"),
            Err(JwtError::Malformed("header is not base64url"))
        );
        assert_eq!(
            parse_header("eyJ9.e30.AA"),
            Err(JwtError::Malformed("header is not a JSON object"))
        );
        let huge = "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1);
        assert_eq!(
            parse_header(&huge),
            Err(JwtError::TooLarge {
                max: DEFAULT_MAX_TOKEN_BYTES
            })
        );
    }
}
