//! The web portal: one static page (vanilla JavaScript, no build step) that logs in through the
//! authority's browser sessions and lists jobs from the field-service API.
//!
//! The page keeps the access token in a variable only (never `localStorage`, never a cookie it
//! can read); the refresh token lives in the authority's `__Host-gha-session` cookie, which the
//! page cannot read either (`HttpOnly`). On load it tries `/session/refresh` to resume a session.
//!
//! This server only serves the files, `/config.json` (the authority and API URLs) and a strict
//! Content-Security-Policy: scripts from this origin only, connections to the authority and the
//! API only. The binary (`src/main.rs`) wires it up; tests call [`app`].

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");

/// Where the page sends its requests.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// Base URL of the gha-auth authority (no trailing slash).
    pub authority: String,
    /// Base URL of the field-service API (no trailing slash).
    pub api: String,
}

impl PortalConfig {
    /// The configuration, with trailing slashes removed.
    pub fn new(authority: &str, api: &str) -> Self {
        Self {
            authority: authority.trim_end_matches('/').to_owned(),
            api: api.trim_end_matches('/').to_owned(),
        }
    }
}

/// The origin (`scheme://host[:port]`) of a URL, as a browser sends it in `Origin`; `None` when
/// `url` is not an absolute http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.origin().ascii_serialization())
}

fn page(content_type: &'static str, body: String, csp: &HeaderValue) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The portal's routes: `/`, `/app.js`, `/config.json`.
pub fn app(config: &PortalConfig) -> anyhow::Result<Router> {
    let connect: Vec<String> = [&config.authority, &config.api]
        .into_iter()
        .map(|url| origin_of(url).ok_or_else(|| anyhow::anyhow!("{url} is not an http(s) URL")))
        .collect::<anyhow::Result<_>>()?;
    let csp = HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; connect-src 'self' {}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        connect.join(" ")
    ))?;
    let settings =
        serde_json::json!({ "authority": config.authority, "api": config.api }).to_string();
    let (csp_index, csp_js, csp_config) = (csp.clone(), csp.clone(), csp);
    Ok(Router::new()
        .route(
            "/",
            get(move || {
                std::future::ready(page(
                    "text/html; charset=utf-8",
                    INDEX_HTML.to_owned(),
                    &csp_index,
                ))
            }),
        )
        .route(
            "/app.js",
            get(move || {
                std::future::ready(page(
                    "text/javascript; charset=utf-8",
                    APP_JS.to_owned(),
                    &csp_js,
                ))
            }),
        )
        .route(
            "/config.json",
            get(move || {
                std::future::ready(page("application/json", settings.clone(), &csp_config))
            }),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[test]
    fn origins_are_serialized_like_browsers_do() {
        assert_eq!(
            origin_of("http://127.0.0.1:8700/").as_deref(),
            Some("http://127.0.0.1:8700")
        );
        assert_eq!(
            origin_of("https://Auth.Example:443/x").as_deref(),
            Some("https://auth.example")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("not a url"), None);
    }

    #[tokio::test]
    async fn serves_the_page_with_a_strict_policy_and_the_urls() {
        let router = app(&PortalConfig::new(
            "http://127.0.0.1:8700/",
            "http://127.0.0.1:8080",
        ))
        .unwrap();
        let response = router
            .clone()
            .oneshot(Request::get("/config.json").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let csp = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:8700 http://127.0.0.1:8080;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let settings: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(settings["authority"], "http://127.0.0.1:8700");
        let index = router
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(index.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(app(&PortalConfig::new("nope", "http://x")).is_err());
    }
}
