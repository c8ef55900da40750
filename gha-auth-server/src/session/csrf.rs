//! The CSRF defence of the session endpoints, and their CORS policy.
//!
//! Two independent checks, both required on every session request:
//! - `Origin` is one of `session.allowed_origins` (browsers set it on every cross-origin and
//!   every POST request; scripts cannot forge it);
//! - the custom header `X-GHA-CSRF: 1` is present. A plain HTML form cannot send it, and a
//!   cross-origin script can only send it after a CORS preflight that only the allowed origins
//!   pass.
//!
//! CORS with credentials is granted to exactly those origins, on the session routes only.

use std::time::Duration;

use axum::http::header::{CONTENT_TYPE, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::SessionConfig;

/// The custom request header every session request must carry, with value `1`.
pub(crate) const CSRF_HEADER: &str = "x-gha-csrf";

/// Why a request failed the CSRF defence (audited; the client sees one message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CsrfFailure {
    NoOrigin,
    OriginNotAllowed,
    NoCsrfHeader,
}

impl CsrfFailure {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CsrfFailure::NoOrigin => "no_origin",
            CsrfFailure::OriginNotAllowed => "origin_not_allowed",
            CsrfFailure::NoCsrfHeader => "no_csrf_header",
        }
    }
}

/// Checks both halves of the defence.
pub(super) fn check(config: &SessionConfig, headers: &HeaderMap) -> Result<(), CsrfFailure> {
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or(CsrfFailure::NoOrigin)?;
    if !config.allows_origin(origin) {
        return Err(CsrfFailure::OriginNotAllowed);
    }
    let marked = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if !marked {
        return Err(CsrfFailure::NoCsrfHeader);
    }
    Ok(())
}

/// The `Origin` of a request, cleaned for the audit log.
pub(super) fn origin_of(headers: &HeaderMap) -> String {
    headers
        .get(ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// CORS for the session routes: the allowed origins, with credentials, POST only, the two
/// request headers the page sends. No origin at all when sessions are off.
pub(crate) fn cors_layer(config: &SessionConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> = if config.client_id.is_some() {
        config
            .allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect()
    } else {
        Vec::new()
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::POST])
        .allow_headers([CONTENT_TYPE, HeaderName::from_static(CSRF_HEADER)])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig {
            client_id: Some("web-portal".into()),
            allowed_origins: vec!["https://portal.example".into()],
            ..SessionConfig::default()
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn both_the_origin_and_the_header_are_required() {
        let config = config();
        assert_eq!(
            check(
                &config,
                &headers(&[("origin", "https://portal.example"), ("x-gha-csrf", "1")])
            ),
            Ok(())
        );
        assert_eq!(
            check(&config, &headers(&[("x-gha-csrf", "1")])),
            Err(CsrfFailure::NoOrigin)
        );
        for origin in [
            "https://evil.example",
            "https://portal.example.evil",
            "http://portal.example",
            "https://PORTAL.example",
            "null",
        ] {
            let mut map = headers(&[("x-gha-csrf", "1")]);
            map.insert(ORIGIN, HeaderValue::from_static(origin));
            assert_eq!(
                check(&config, &map),
                Err(CsrfFailure::OriginNotAllowed),
                "{origin}"
            );
        }
        assert_eq!(
            check(&config, &headers(&[("origin", "https://portal.example")])),
            Err(CsrfFailure::NoCsrfHeader)
        );
        assert_eq!(
            check(
                &config,
                &headers(&[("origin", "https://portal.example"), ("x-gha-csrf", "0")])
            ),
            Err(CsrfFailure::NoCsrfHeader)
        );
    }

    #[test]
    fn no_configuration_allows_no_origin() {
        let config = SessionConfig::default();
        assert_eq!(
            check(
                &config,
                &headers(&[("origin", "https://portal.example"), ("x-gha-csrf", "1")])
            ),
            Err(CsrfFailure::OriginNotAllowed)
        );
    }
}
