//! The one reading of `Authorization: Bearer` (RFC 6750 §2.1, answers per §3.1), shared by the
//! middleware and the authority's own APIs so a malformed header gets the same answer from both.
//!
//! | `Authorization` header(s) | [`bearer_token`] | answer |
//! |---|---|---|
//! | none, or a scheme other than `Bearer` (case-insensitive) | [`BearerError::Missing`] | 401, bare `Bearer` challenge, no error code |
//! | more than one | [`BearerError::RepeatedHeader`] | 400 `invalid_request` |
//! | a byte other than visible ASCII or space | [`BearerError::NotVisibleAscii`] | 400 `invalid_request` |
//! | `Bearer` with no token | [`BearerError::EmptyToken`] | 400 `invalid_request` |
//! | a token with a space, or not a `b64token` | [`BearerError::MalformedToken`] | 400 `invalid_request` |
//! | `Bearer` `1*SP` `b64token` | the token | verify it |
//!
//! `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. Nothing may follow
//! the token, not even a space: HTTP already strips whitespace around a field value.

/// Why a request carries no usable bearer token.
///
/// [`BearerError::Missing`] means the request did not try to present one (401 with a bare
/// `Bearer` challenge, RFC 6750 §3.1); every other variant is a malformed request (400
/// `invalid_request`). The messages never contain the header's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header, or one with another scheme (`Basic`, `Negotiate`…).
    #[error("no bearer token")]
    Missing,
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    RepeatedHeader,
    /// The header holds a byte that is not visible ASCII or space (a tab, a control or a
    /// non-ASCII byte).
    #[error("Authorization header is not visible ASCII")]
    NotVisibleAscii,
    /// `Bearer` followed by nothing, or by spaces only.
    #[error("Bearer scheme without a token")]
    EmptyToken,
    /// The token holds a space or a character outside `b64token`, or `=` before its end.
    #[error("bearer token is not a b64token")]
    MalformedToken,
}

impl BearerError {
    /// Whether the request simply carries no bearer token: the caller may try other credentials
    /// or answer 401 without an error code.
    pub const fn is_missing(self) -> bool {
        matches!(self, Self::Missing)
    }

    /// The HTTP status of the answer: 401 for [`BearerError::Missing`], else 400.
    pub const fn status(self) -> u16 {
        if self.is_missing() { 401 } else { 400 }
    }

    /// The RFC 6750 `error` code: none for [`BearerError::Missing`], else `invalid_request`.
    pub const fn error_code(self) -> Option<&'static str> {
        if self.is_missing() {
            None
        } else {
            Some("invalid_request")
        }
    }
}

/// The bearer token among `values`, the request's `Authorization` header values in order
/// (with `http`: `headers.get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes)`).
///
/// Pure and allocation-free: the token borrows from the header. See the [module](self) table for
/// every answer.
pub fn bearer_token<'a, I>(values: I) -> Result<&'a str, BearerError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::RepeatedHeader);
    }
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => value.split_at(space),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return Err(if is_visible_ascii(value) {
            BearerError::Missing
        } else {
            BearerError::NotVisibleAscii
        });
    }
    let token = trim_leading_spaces(rest);
    if token.is_empty() {
        return Err(BearerError::EmptyToken);
    }
    // One pass on the hit path; the failure path looks again to say why.
    if !is_b64token(token) {
        return Err(if is_visible_ascii(token) {
            BearerError::MalformedToken
        } else {
            BearerError::NotVisibleAscii
        });
    }
    // A b64token is ASCII, so this never fails.
    std::str::from_utf8(token).map_err(|_| BearerError::NotVisibleAscii)
}

/// Whether `token` is an RFC 6750 `b64token`: at least one character of the alphabet, then `=`
/// padding only at the end. Also the shape check for tokens taken from elsewhere (a cookie).
pub fn is_b64token(token: &[u8]) -> bool {
    let mut body = token;
    while let [rest @ .., b'='] = body {
        body = rest;
    }
    // Over the whole token with one test at the end: this runs on every request, and the
    // branch-free loop compiles to vector instructions.
    !body.is_empty() && body.iter().fold(true, |ok, &b| ok & is_b64token_char(b))
}

/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, by comparisons only (no table, no branch).
#[inline]
fn is_b64token_char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// Visible ASCII (`VCHAR`) or space.
fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| (b' '..=b'~').contains(&b))
}

fn trim_leading_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn one(value: &[u8]) -> Result<&str, BearerError> {
        bearer_token([value])
    }

    #[test]
    fn header_table() {
        use BearerError::*;
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], Result<&str, BearerError>)] = &[
            ("plain", b"Bearer a.b.c", Ok("a.b.c")),
            ("scheme is case-insensitive", b"bEaReR a.b.c", Ok("a.b.c")),
            ("several spaces after the scheme", b"Bearer    a.b.c", Ok("a.b.c")),
            ("every b64token character", b"Bearer AZaz09-._~+/", Ok("AZaz09-._~+/")),
            ("padding at the end", b"Bearer abc==", Ok("abc==")),
            ("other scheme", b"Basic dXNlcjpwYXNz", Err(Missing)),
            ("other scheme without credentials", b"Negotiate", Err(Missing)),
            ("scheme glued to the token", b"Bearerabc", Err(Missing)),
            ("leading space before the scheme", b" Bearer abc", Err(Missing)),
            ("empty header", b"", Err(Missing)),
            ("Bearer alone", b"Bearer", Err(EmptyToken)),
            ("Bearer and spaces", b"Bearer   ", Err(EmptyToken)),
            ("two tokens", b"Bearer x y", Err(MalformedToken)),
            ("trailing space", b"Bearer abc ", Err(MalformedToken)),
            ("padding only", b"Bearer ==", Err(MalformedToken)),
            ("padding in the middle", b"Bearer ab=c", Err(MalformedToken)),
            ("quoted token", b"Bearer \"abc\"", Err(MalformedToken)),
            ("comma", b"Bearer a,b", Err(MalformedToken)),
            ("auth-param syntax", b"Bearer token=abc", Err(MalformedToken)),
            ("tab as separator", b"Bearer\tabc", Err(NotVisibleAscii)),
            ("tab in the token", b"Bearer a\tb", Err(NotVisibleAscii)),
            ("non-ASCII token", "Bearer été".as_bytes(), Err(NotVisibleAscii)),
            ("non-ASCII other scheme", "Basic été".as_bytes(), Err(NotVisibleAscii)),
            ("obs-text byte", b"Bearer ab\xff", Err(NotVisibleAscii)),
            ("control byte", b"Bearer ab\x7f", Err(NotVisibleAscii)),
        ];
        for (name, value, want) in cases {
            assert_eq!(one(value), *want, "{name}");
        }
    }

    #[test]
    fn header_count() {
        let none: [&[u8]; 0] = [];
        assert_eq!(bearer_token(none), Err(BearerError::Missing));
        assert_eq!(
            bearer_token([&b"Bearer a"[..], b"Bearer a"]),
            Err(BearerError::RepeatedHeader)
        );
        assert_eq!(
            bearer_token([&b"Basic x"[..], b"Bearer a"]),
            Err(BearerError::RepeatedHeader),
            "a second header of another scheme is still a second header"
        );
    }

    #[test]
    fn answers_follow_rfc_6750() {
        assert_eq!(BearerError::Missing.status(), 401);
        assert_eq!(BearerError::Missing.error_code(), None);
        for malformed in [
            BearerError::RepeatedHeader,
            BearerError::NotVisibleAscii,
            BearerError::EmptyToken,
            BearerError::MalformedToken,
        ] {
            assert_eq!(malformed.status(), 400, "{malformed:?}");
            assert_eq!(malformed.error_code(), Some("invalid_request"));
            assert!(!malformed.is_missing());
        }
    }

    #[test]
    fn b64token_characters_are_exactly_the_rfc_6750_alphabet() {
        for b in 0..=u8::MAX {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_b64token_char(b), expected, "byte {b:#04x}");
            assert_eq!(is_b64token(&[b]), expected, "byte {b:#04x}");
        }
        assert!(is_b64token(b"a="));
        assert!(!is_b64token(b""));
        assert!(!is_b64token(b"=a"));
    }

    proptest! {
        #[test]
        fn a_well_formed_header_yields_its_token(
            scheme in "(?i)bearer",
            spaces in " {1,4}",
            token in "[A-Za-z0-9._~+/-]{1,40}={0,2}",
        ) {
            let header = format!("{scheme}{spaces}{token}");
            prop_assert_eq!(one(header.as_bytes()), Ok(token.as_str()));
        }

        #[test]
        fn after_bearer_anything_is_a_token_or_a_bad_request(
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let header = [&b"Bearer "[..], &tail].concat();
            match one(&header) {
                Ok(token) => {
                    prop_assert!(is_b64token(token.as_bytes()));
                    prop_assert!(tail.ends_with(token.as_bytes()));
                }
                Err(error) => prop_assert_eq!(error.status(), 400),
            }
        }
    }
}
