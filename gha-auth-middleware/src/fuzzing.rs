//! Entry points for the fuzz targets in `fuzz/`. Not a stable API.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::auth::decide::{RequestPolicy, decide};
use crate::fetch::CacheDirectives;
use crate::source::CookieSource;

/// Runs the request decision (Authorization, cookie + CSRF, link-key header) on headers built
/// from `data`: lines of `name: value`, the first line being the method.
pub fn request_decision(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let method = lines
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::GET);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let cookie = CookieSource::new("__Host-gha_at")
        .and_then(|c| c.allow_origin("https://portal.example"))
        .ok();
    let policy = RequestPolicy {
        cookie,
        link_key_header: Some(HeaderName::from_static("x-api-key")),
        allow_anonymous: data.first().is_some_and(|b| b & 1 == 1),
        max_token_bytes: 8192,
    };
    let _ = decide(&policy, &method, &headers);
}

/// Parses a `Cache-Control` value as the key sources do.
pub fn cache_control(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CacheDirectives::parse(text);
    }
}

/// Parses a link-key set document as the HTTP link-key source does.
pub fn link_key_set(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::linkkey::LinkKeySet>(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_take_anything() {
        for input in [
            &b""[..],
            b"GET\nauthorization: Bearer a.b.c\ncookie: __Host-gha_at=x",
            b"\xff\xfe\n:\n::::\nx-api-key: \xff",
            b"OPTIONS\naccess-control-request-method: GET",
        ] {
            request_decision(input);
            cache_control(input);
            link_key_set(input);
        }
    }
}
