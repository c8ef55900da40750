//! Where credentials come from: `Authorization: Bearer` (always), a cookie (opt-in, with a CSRF
//! check) and the legacy `x-api-key` header (when a link key is configured).

use gha_auth::bearer::{BearerError, bearer_token};
use gha_auth::outbound::UrlPolicy;
use http::header::{AUTHORIZATION, COOKIE, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::ConfigError;

/// Default name of the custom header a page must send with cookie-borne tokens.
pub const DEFAULT_CSRF_HEADER: &str = "x-gha-csrf";

/// Taking the access token from a cookie, for web pages.
///
/// A cookie is sent by the browser on its own, so a token read from one is only accepted when the
/// request also proves it was made by a page the service trusts (a CSRF defence in two parts):
///
/// - it carries the custom header (default `x-gha-csrf`, any non-empty value): a cross-origin
///   page cannot add one without a CORS preflight that this service's CORS policy refuses;
/// - its `Origin`, when the browser sends one, is on the allow-list (`null` never is); without
///   `Origin`, a `Sec-Fetch-Site: cross-site` request is refused.
///
/// A bearer header, when present, wins over the cookie: it is not sent by the browser on its own.
///
/// ```
/// # fn main() -> Result<(), gha_auth_middleware::ConfigError> {
/// use gha_auth_middleware::CookieSource;
/// let cookie = CookieSource::new("__Host-gha_at")?
///     .allow_origin("https://portal.gha.example")?
///     .csrf_header("x-gha-csrf")?;
/// # let _ = cookie; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CookieSource {
    pub(crate) name: String,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) csrf_header: HeaderName,
}

impl CookieSource {
    /// A source reading the cookie `name`; no origin is allowed until [`Self::allow_origin`].
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !valid {
            return Err(ConfigError::InvalidName {
                what: "cookie",
                name: name.to_owned(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            allowed_origins: Vec::new(),
            csrf_header: HeaderName::from_static(DEFAULT_CSRF_HEADER),
        })
    }

    /// Allows requests from `origin` (`scheme://host[:port]`, as browsers send it): https, or
    /// plain http for a page on a loopback host.
    pub fn allow_origin(mut self, origin: &str) -> Result<Self, ConfigError> {
        // The outbound-URL rules fit origins too: https (plain http only for loopback pages,
        // since a page served in clear can be rewritten in transit), a host, no credentials,
        // query or fragment; its errors never echo a password.
        let url = UrlPolicy::new().check(origin)?;
        if url.path() != "/" {
            return Err(ConfigError::InvalidOrigin {
                origin: origin.to_owned(),
                reason: "an origin has no path",
            });
        }
        let serialized = url.origin().ascii_serialization();
        if !self.allowed_origins.contains(&serialized) {
            self.allowed_origins.push(serialized);
        }
        Ok(self)
    }

    /// The custom header the page must send (default `x-gha-csrf`).
    pub fn csrf_header(mut self, name: &str) -> Result<Self, ConfigError> {
        self.csrf_header = HeaderName::try_from(name).map_err(|_| ConfigError::InvalidName {
            what: "header",
            name: name.to_owned(),
        })?;
        Ok(self)
    }

    /// The CSRF check for a request whose token came from the cookie. `Err` carries the reason.
    pub(crate) fn check_csrf(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let custom = headers
            .get(&self.csrf_header)
            .map(|v| !v.as_bytes().is_empty());
        if custom != Some(true) {
            return Err("cookie token without the CSRF header");
        }
        let mut origins = headers.get_all(ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (Some(_), Some(_)) => Err("more than one Origin header"),
            (Some(origin), None) => {
                let origin = origin.to_str().map_err(|_| "Origin is not ASCII")?;
                if self
                    .allowed_origins
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin))
                {
                    Ok(())
                } else {
                    Err("cookie token from an origin not on the allow-list")
                }
            }
            (None, _) => {
                let cross_site = headers
                    .get("sec-fetch-site")
                    .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"));
                if cross_site {
                    Err("cookie token on a cross-site request")
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The bearer token of the `Authorization` header, read by the core library's one rule
/// (RFC 6750 §2.1) that the authority's own APIs share. `Ok(None)` when the request presents none
/// (no header, or another scheme: not ours); `Err` when the header is malformed. No allocation.
pub(crate) fn find_bearer(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let values = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    match bearer_token(values) {
        Ok(token) => Ok(Some(token)),
        Err(BearerError::Missing) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The value of cookie `name` across every `Cookie` header. `Err` when it appears more than once
/// (cookie tossing: a sibling domain can add a second cookie of the same name).
pub(crate) fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        // A non-ASCII Cookie header cannot hold our cookie in a usable form; skip it.
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            let pair = pair.trim_matches(|c| c == ' ' || c == '\t');
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            if key != name {
                continue;
            }
            if found.is_some() {
                return Err(());
            }
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            found = Some(value);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origin_config_is_validated_and_normalized() {
        let source = CookieSource::new("at").unwrap();
        for bad in [
            "portal",
            "ftp://x.example",
            "http://portal.example",
            "https://x.example/path",
            "https://x.example/?q",
            "https://u@x.example",
            "https://:pw@x.example",
        ] {
            assert!(source.clone().allow_origin(bad).is_err(), "{bad}");
        }
        let source = source.allow_origin("HTTPS://Portal.Example:443").unwrap();
        assert_eq!(source.allowed_origins, ["https://portal.example"]);
        assert!(CookieSource::new("bad name").is_err());
        assert!(CookieSource::new("").is_err());
        assert!(
            CookieSource::new("at")
                .unwrap()
                .csrf_header("bad header")
                .is_err()
        );
    }

    #[test]
    fn csrf_cases() {
        let source = CookieSource::new("at")
            .unwrap()
            .allow_origin("https://portal.example")
            .unwrap();
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            Result<(), ()>,
        );
        let cases: &[Case] = &[
            (
                "allowed origin and header",
                &[("origin", "https://portal.example"), ("x-gha-csrf", "1")],
                Ok(()),
            ),
            (
                "origin compared case-insensitively",
                &[("origin", "https://PORTAL.example"), ("x-gha-csrf", "1")],
                Ok(()),
            ),
            ("no origin, same-site fetch", &[("x-gha-csrf", "1")], Ok(())),
            (
                "other origin",
                &[("origin", "https://evil.example"), ("x-gha-csrf", "1")],
                Err(()),
            ),
            (
                "null origin",
                &[("origin", "null"), ("x-gha-csrf", "1")],
                Err(()),
            ),
            (
                "missing custom header",
                &[("origin", "https://portal.example")],
                Err(()),
            ),
            (
                "empty custom header",
                &[("origin", "https://portal.example"), ("x-gha-csrf", "")],
                Err(()),
            ),
            (
                "no origin but cross-site",
                &[("sec-fetch-site", "cross-site"), ("x-gha-csrf", "1")],
                Err(()),
            ),
            (
                "two origins",
                &[
                    ("origin", "https://portal.example"),
                    ("origin", "https://evil.example"),
                    ("x-gha-csrf", "1"),
                ],
                Err(()),
            ),
            (
                "origin with a path-like suffix",
                &[
                    ("origin", "https://portal.example.evil.example"),
                    ("x-gha-csrf", "1"),
                ],
                Err(()),
            ),
        ];
        for (name, pairs, expected) in cases {
            let got = source.check_csrf(&headers(pairs)).map_err(|_| ());
            assert_eq!(got, *expected, "{name}");
        }
    }

    #[test]
    fn bearer_lookup() {
        let h = headers(&[("authorization", "Bearer a.b.c")]);
        assert_eq!(find_bearer(&h), Ok(Some("a.b.c")));
        assert_eq!(find_bearer(&headers(&[])), Ok(None));
        let h = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(find_bearer(&h), Ok(None));
        let h = headers(&[("authorization", "Bearer")]);
        assert_eq!(find_bearer(&h), Err(BearerError::EmptyToken));
        let h = headers(&[("authorization", "Bearer x y")]);
        assert_eq!(find_bearer(&h), Err(BearerError::MalformedToken));
    }

    #[test]
    fn cookie_lookup() {
        let h = headers(&[("cookie", "a=1; at=tok.en.x; b=2")]);
        assert_eq!(find_cookie(&h, "at"), Ok(Some("tok.en.x")));
        assert_eq!(find_cookie(&h, "c"), Ok(None));
        let h = headers(&[("cookie", "a=1"), ("cookie", "at=\"quoted\"")]);
        assert_eq!(find_cookie(&h, "at"), Ok(Some("quoted")));
        let h = headers(&[("cookie", "at=1; at=2")]);
        assert_eq!(find_cookie(&h, "at"), Err(()));
        let h = headers(&[("cookie", "at=1"), ("cookie", "at=2")]);
        assert_eq!(find_cookie(&h, "at"), Err(()));
        let h = headers(&[("cookie", "xat=1; atx=2")]);
        assert_eq!(find_cookie(&h, "at"), Ok(None));
    }
}
