//! The session cookie: the refresh token, where page scripts cannot read it.
//!
//! `__Host-` makes the browser refuse the cookie unless it is `Secure`, has `Path=/` and no
//! `Domain`, so no sibling host can plant or shadow it. `HttpOnly` keeps it from scripts;
//! `SameSite=Strict` keeps other sites from sending it. Browsers accept `Secure` cookies over
//! plain http from loopback origins only, which is what development and the tests use.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use gha_auth::SecretString;

/// The cookie's name.
pub(crate) const COOKIE_NAME: &str = "__Host-gha-session";

const ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Strict";

/// Adds a `Set-Cookie` that stores `token` for `max_age_secs`.
pub(super) fn set(headers: &mut HeaderMap, token: &str, max_age_secs: i64) {
    // A refresh token is base62 with a prefix: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; Max-Age={}; {ATTRIBUTES}",
        max_age_secs.max(0)
    )) {
        headers.append(SET_COOKIE, value);
    }
}

/// Adds a `Set-Cookie` that deletes the cookie.
pub(super) fn clear(headers: &mut HeaderMap) {
    if let Ok(value) = HeaderValue::from_str(&format!("{COOKIE_NAME}=; Max-Age=0; {ATTRIBUTES}")) {
        headers.append(SET_COOKIE, value);
    }
}

/// The session cookie's value from the request's `Cookie` headers, if present and non-empty.
pub(crate) fn read(headers: &HeaderMap) -> Option<SecretString> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
        .map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_clear_carry_every_attribute() {
        let mut headers = HeaderMap::new();
        set(&mut headers, "ghar_abc", 3600);
        clear(&mut headers);
        let values: Vec<_> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            values,
            [
                "__Host-gha-session=ghar_abc; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Strict",
                "__Host-gha-session=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict",
            ]
        );
    }

    #[test]
    fn read_finds_the_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert!(read(&headers).is_none());
        headers.append(
            COOKIE,
            HeaderValue::from_static("x=y;__Host-gha-session=ghar_t ; z=1"),
        );
        assert_eq!(read(&headers).unwrap().expose(), "ghar_t");
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("__Host-gha-session="));
        assert!(read(&empty).is_none());
        let mut prefixed = HeaderMap::new();
        prefixed.append(COOKIE, HeaderValue::from_static("gha-session=ghar_t"));
        assert!(read(&prefixed).is_none(), "only the __Host- cookie counts");
    }
}
