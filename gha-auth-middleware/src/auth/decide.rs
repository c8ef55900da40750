//! The pure decision: what a request presents and what to do with it, before any key or cache
//! is touched. No I/O, no clock: table-tested below and fuzzed.

use std::fmt;

use gha_auth::bearer::is_b64token;
use http::{HeaderMap, HeaderName, Method};

use crate::error::{AuthError, AuthErrorKind};
use crate::source::{CookieSource, find_bearer, find_cookie};

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenOrigin {
    /// `Authorization: Bearer`.
    Header,
    /// The configured cookie, after its CSRF check.
    Cookie,
}

/// What the request-level settings are.
#[derive(Debug, Clone)]
pub(crate) struct RequestPolicy {
    pub(crate) cookie: Option<CookieSource>,
    /// `Some` when a link-key integration is configured.
    pub(crate) link_key_header: Option<HeaderName>,
    pub(crate) allow_anonymous: bool,
    pub(crate) max_token_bytes: usize,
}

/// What to do with a request.
#[derive(PartialEq, Eq)]
pub(crate) enum Decision<'a> {
    /// A CORS preflight: pass it on untouched.
    Preflight,
    /// No credentials, and the route allows anonymous access.
    Anonymous,
    /// Verify this token.
    Token(&'a str, TokenOrigin),
    /// Check this link key.
    LinkKey(&'a str),
    /// Refuse.
    Reject(AuthError),
}

/// Never prints the token or link key it carries.
impl fmt::Debug for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Preflight => f.write_str("Preflight"),
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Token(_, origin) => f.debug_tuple("Token").field(origin).finish_non_exhaustive(),
            Self::LinkKey(_) => f.debug_tuple("LinkKey").finish_non_exhaustive(),
            Self::Reject(error) => f.debug_tuple("Reject").field(error).finish(),
        }
    }
}

fn reject(kind: AuthErrorKind, reason: &'static str) -> Decision<'static> {
    Decision::Reject(AuthError::new(kind, reason))
}

/// Decides what a request presents. Pure: the same method and headers always give the same
/// answer.
pub(crate) fn decide<'a>(
    policy: &RequestPolicy,
    method: &Method,
    headers: &'a HeaderMap,
) -> Decision<'a> {
    if method == Method::OPTIONS && headers.contains_key("access-control-request-method") {
        return Decision::Preflight;
    }

    let bearer = match find_bearer(headers) {
        Ok(bearer) => bearer,
        Err(error) => {
            return Decision::Reject(AuthError::new(
                AuthErrorKind::InvalidRequest,
                error.to_string(),
            ));
        }
    };
    if let Some(token) = bearer
        && let Err(decision) = check_token_size(token.as_bytes(), policy.max_token_bytes)
    {
        return decision;
    }

    let link_key = match &policy.link_key_header {
        None => None,
        Some(name) => {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (_, Some(_)) => {
                    return reject(AuthErrorKind::InvalidRequest, "repeated link-key header");
                }
                (Some(value), None) => match value.to_str() {
                    Ok("") => {
                        return reject(AuthErrorKind::InvalidRequest, "empty link-key header");
                    }
                    Ok(text) => Some(text),
                    Err(_) => {
                        return reject(AuthErrorKind::InvalidLinkKey, "link key is not ASCII");
                    }
                },
                (None, None) => None,
            }
        }
    };

    match (bearer, link_key) {
        (Some(_), Some(_)) => {
            return reject(
                AuthErrorKind::InvalidRequest,
                "both a bearer token and a link key were presented",
            );
        }
        (Some(token), None) => return Decision::Token(token, TokenOrigin::Header),
        (None, Some(key)) => return Decision::LinkKey(key),
        (None, None) => {}
    }

    if let Some(cookie) = &policy.cookie {
        match find_cookie(headers, &cookie.name) {
            Err(()) => {
                return reject(
                    AuthErrorKind::InvalidRequest,
                    "token cookie appears more than once",
                );
            }
            Ok(Some(token)) if !token.is_empty() => {
                if let Err(reason) = cookie.check_csrf(headers) {
                    return reject(AuthErrorKind::CsrfRejected, reason);
                }
                if let Err(decision) = check_token_size(token.as_bytes(), policy.max_token_bytes) {
                    return decision;
                }
                if !is_b64token(token.as_bytes()) {
                    return reject(
                        AuthErrorKind::InvalidToken,
                        "cookie token has characters outside b64token",
                    );
                }
                return Decision::Token(token, TokenOrigin::Cookie);
            }
            Ok(_) => {}
        }
    }

    if policy.allow_anonymous {
        Decision::Anonymous
    } else {
        reject(
            AuthErrorKind::MissingCredentials,
            "no credentials presented",
        )
    }
}

/// The size cap, checked before any hashing or parsing.
fn check_token_size(token: &[u8], max_bytes: usize) -> Result<(), Decision<'static>> {
    if token.len() > max_bytes {
        return Err(reject(
            AuthErrorKind::InvalidToken,
            "token larger than the size cap",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn policy() -> RequestPolicy {
        RequestPolicy {
            cookie: Some(
                CookieSource::new("at")
                    .unwrap()
                    .allow_origin("https://portal.example")
                    .unwrap(),
            ),
            link_key_header: Some(HeaderName::from_static("x-api-key")),
            allow_anonymous: false,
            max_token_bytes: 64,
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Want {
        Preflight,
        Anonymous,
        Token(&'static str, TokenOrigin),
        LinkKey(&'static str),
        Reject(AuthErrorKind),
    }

    fn run(policy: &RequestPolicy, method: Method, pairs: &[(&str, &str)]) -> Want {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        run_headers(policy, method, &headers)
    }

    fn run_headers(policy: &RequestPolicy, method: Method, headers: &HeaderMap) -> Want {
        match decide(policy, &method, headers) {
            Decision::Preflight => Want::Preflight,
            Decision::Anonymous => Want::Anonymous,
            Decision::Token(t, o) => Want::Token(t.to_owned().leak(), o),
            Decision::LinkKey(k) => Want::LinkKey(k.to_owned().leak()),
            Decision::Reject(e) => Want::Reject(e.kind()),
        }
    }

    #[test]
    fn decision_table() {
        use AuthErrorKind::*;
        use TokenOrigin::*;
        let long: &str = format!("Bearer {}", "a".repeat(65)).leak();
        let long_cookie: &str = format!("at={}", "a".repeat(65)).leak();
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&'static str, &'static str)> =
                vec![("origin", "https://portal.example"), ("x-gha-csrf", "1")];
            v.extend_from_slice(extra);
            v
        };
        type Case = (
            &'static str,
            Method,
            Vec<(&'static str, &'static str)>,
            Want,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("nothing", Method::GET, vec![], Want::Reject(MissingCredentials)),
            ("bearer", Method::GET, vec![("authorization", "Bearer a.b.c")], Want::Token("a.b.c", Header)),
            ("scheme is case-insensitive", Method::GET, vec![("authorization", "bEaReR a.b.c")], Want::Token("a.b.c", Header)),
            ("extra spaces", Method::GET, vec![("authorization", "Bearer   a.b.c")], Want::Token("a.b.c", Header)),
            ("basic is not ours", Method::GET, vec![("authorization", "Basic dXNlcjpwYXNz")], Want::Reject(MissingCredentials)),
            ("bearer without token", Method::GET, vec![("authorization", "Bearer")], Want::Reject(InvalidRequest)),
            ("bearer with blank token", Method::GET, vec![("authorization", "Bearer    ")], Want::Reject(InvalidRequest)),
            ("two authorization headers", Method::GET, vec![("authorization", "Bearer a"), ("authorization", "Bearer b")], Want::Reject(InvalidRequest)),
            ("token with a space inside", Method::GET, vec![("authorization", "Bearer a b")], Want::Reject(InvalidRequest)),
            ("token with a trailing space", Method::GET, vec![("authorization", "Bearer a.b.c ")], Want::Reject(InvalidRequest)),
            ("token with quotes", Method::GET, vec![("authorization", "Bearer \"a\"")], Want::Reject(InvalidRequest)),
            ("token not ASCII", Method::GET, vec![("authorization", "Bearer été")], Want::Reject(InvalidRequest)),
            ("tab after the scheme", Method::GET, vec![("authorization", "Bearer\ta.b.c")], Want::Reject(InvalidRequest)),
            ("other scheme, not ASCII", Method::GET, vec![("authorization", "Basic été")], Want::Reject(InvalidRequest)),
            ("padding at the end", Method::GET, vec![("authorization", "Bearer abc==")], Want::Token("abc==", Header)),
            ("padding inside", Method::GET, vec![("authorization", "Bearer ab=c")], Want::Reject(InvalidRequest)),
            ("padding only", Method::GET, vec![("authorization", "Bearer ==")], Want::Reject(InvalidRequest)),
            ("second header of another scheme", Method::GET, vec![("authorization", "Bearer a"), ("authorization", "Basic b")], Want::Reject(InvalidRequest)),
            ("other scheme and a link key", Method::POST, vec![("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "k")], Want::LinkKey("k")),
            ("bad bearer beats a link key", Method::POST, vec![("authorization", "Bearer a b"), ("x-api-key", "k")], Want::Reject(InvalidRequest)),
            ("oversized token", Method::GET, vec![("authorization", long)], Want::Reject(InvalidToken)),
            ("link key", Method::POST, vec![("x-api-key", "ghal_abc")], Want::LinkKey("ghal_abc")),
            ("two link keys", Method::POST, vec![("x-api-key", "a"), ("x-api-key", "b")], Want::Reject(InvalidRequest)),
            ("empty link key", Method::POST, vec![("x-api-key", "")], Want::Reject(InvalidRequest)),
            ("bearer and link key", Method::POST, vec![("authorization", "Bearer a"), ("x-api-key", "k")], Want::Reject(InvalidRequest)),
            ("preflight", Method::OPTIONS, vec![("origin", "https://x"), ("access-control-request-method", "POST")], Want::Preflight),
            ("preflight ignores a bad header", Method::OPTIONS, vec![("access-control-request-method", "GET"), ("authorization", "Bearer a b")], Want::Preflight),
            ("plain OPTIONS is not a preflight", Method::OPTIONS, vec![], Want::Reject(MissingCredentials)),
            ("cookie with CSRF proof", Method::POST, with(&[("cookie", "at=c.o.k")]), Want::Token("c.o.k", Cookie)),
            ("cookie without CSRF header", Method::POST, vec![("origin", "https://portal.example"), ("cookie", "at=c.o.k")], Want::Reject(CsrfRejected)),
            ("cookie from another origin", Method::POST, vec![("origin", "https://evil.example"), ("x-gha-csrf", "1"), ("cookie", "at=c.o.k")], Want::Reject(CsrfRejected)),
            ("cookie twice", Method::POST, with(&[("cookie", "at=a; at=b")]), Want::Reject(InvalidRequest)),
            ("empty cookie is no cookie", Method::POST, with(&[("cookie", "at=")]), Want::Reject(MissingCredentials)),
            ("other cookies only", Method::POST, with(&[("cookie", "session=x")]), Want::Reject(MissingCredentials)),
            ("malformed cookie token", Method::POST, with(&[("cookie", "at=a,b")]), Want::Reject(InvalidToken)),
            ("oversized cookie token", Method::POST, with(&[("cookie", long_cookie)]), Want::Reject(InvalidToken)),
            ("bearer wins over cookie", Method::POST, with(&[("cookie", "at=c.o.k"), ("authorization", "Bearer h.d.r")]), Want::Token("h.d.r", Header)),
        ];
        let policy = policy();
        for (name, method, pairs, want) in cases {
            assert_eq!(run(&policy, method, &pairs), want, "{name}");
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(
            run_headers(&policy, Method::POST, &headers),
            Want::Reject(InvalidLinkKey),
            "link key not ASCII"
        );
    }

    #[test]
    fn optional_mode_and_unconfigured_sources() {
        let mut policy = policy();
        policy.allow_anonymous = true;
        assert_eq!(run(&policy, Method::GET, &[]), Want::Anonymous);
        // Bad credentials are still refused when anonymous access is allowed; another scheme is
        // no credentials.
        assert_eq!(
            run(&policy, Method::GET, &[("authorization", "Bearer a b")]),
            Want::Reject(AuthErrorKind::InvalidRequest)
        );
        assert_eq!(
            run(
                &policy,
                Method::GET,
                &[("authorization", "Basic dXNlcjpwYXNz")]
            ),
            Want::Anonymous
        );
        policy.link_key_header = None;
        policy.cookie = None;
        // Without a link-key integration the header is not ours; same for the cookie.
        assert_eq!(
            run(&policy, Method::GET, &[("x-api-key", "k")]),
            Want::Anonymous
        );
        assert_eq!(
            run(&policy, Method::GET, &[("cookie", "at=a.b.c")]),
            Want::Anonymous
        );
    }

    #[test]
    fn debug_never_shows_the_credential() {
        let token = Decision::Token("secret.jwt.text", TokenOrigin::Header);
        let key = Decision::LinkKey("ghal_secret-link-key");
        for debug in [format!("{token:?}"), format!("{key:?}")] {
            assert!(!debug.contains("secret"), "{debug}");
        }
        assert_eq!(format!("{token:?}"), "Token(Header, ..)");
    }
}
