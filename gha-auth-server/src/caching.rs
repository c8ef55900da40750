//! HTTP caching helpers shared by the endpoints that serve cacheable documents (the key set,
//! the revocation feed).

use axum::http::{HeaderMap, header};

/// Whether `If-None-Match` matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| {
            value
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
        })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"abc\"";
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            if_none_match(&h, etag)
        };
        assert!(with("\"abc\""));
        assert!(with("W/\"abc\""));
        assert!(with("\"x\", \"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
        assert!(!if_none_match(&HeaderMap::new(), etag));
    }
}
