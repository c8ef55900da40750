//! The web portal: one static page (vanilla JavaScript, no build step) that logs in through the
//! authority's browser sessions and lists jobs from the field-service API.
//!
//! The page keeps the access token in a variable only (never `localStorage`, never a cookie it
//! can read); the refresh token lives in the authority's `__Host-gha-session` cookie, which the
//! page cannot read either (`HttpOnly`). It remembers in `localStorage` only that a session was
//! started here and the login name it was started with, and tries `/session/refresh` on load
//! only then.
//!
//! This server only serves the files, `/config.json` (the authority and API URLs) and a strict
//! Content-Security-Policy: scripts and styles from this origin only (no inline script or
//! style), connections to the authority and the API only. The binary (`src/main.rs`) wires it
//! up; tests call [`app`].

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");
const FAVICON_SVG: &str = include_str!("../static/favicon.svg");

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

/// The policy every response carries. Styles are as strict as scripts: the page sets classes
/// and `data-` attributes, never a `style` attribute. Trusted Types with no policy make any
/// HTML-from-string sink (`innerHTML`) throw: the page builds elements and sets `textContent`.
fn content_security_policy(config: &PortalConfig) -> anyhow::Result<HeaderValue> {
    let connect: Vec<String> = [&config.authority, &config.api]
        .into_iter()
        .map(|url| origin_of(url).ok_or_else(|| anyhow::anyhow!("{url} is not an http(s) URL")))
        .collect::<anyhow::Result<_>>()?;
    Ok(HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
         require-trusted-types-for 'script'; trusted-types 'none'",
        connect.join(" ")
    ))?)
}

/// The portal's routes: `/`, `/app.js`, `/app.css`, `/favicon.svg`, `/config.json`.
pub fn app(config: &PortalConfig) -> anyhow::Result<Router> {
    let csp = content_security_policy(config)?;
    let settings =
        serde_json::json!({ "authority": config.authority, "api": config.api }).to_string();
    let files = [
        ("/", "text/html; charset=utf-8", INDEX_HTML.to_owned()),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            APP_JS.to_owned(),
        ),
        ("/app.css", "text/css; charset=utf-8", APP_CSS.to_owned()),
        ("/favicon.svg", "image/svg+xml", FAVICON_SVG.to_owned()),
        ("/config.json", "application/json", settings),
    ];
    Ok(files
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            let csp = csp.clone();
            router.route(
                path,
                get(move || std::future::ready(page(content_type, body.clone(), &csp))),
            )
        }))
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
        for directive in [
            "script-src 'self';",
            "style-src 'self';",
            "default-src 'none';",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let settings: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(settings["authority"], "http://127.0.0.1:8700");
        for (path, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/app.css", "text/css; charset=utf-8"),
            ("/favicon.svg", "image/svg+xml"),
        ] {
            let response = router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.headers()[CONTENT_TYPE], content_type, "{path}");
            assert_eq!(response.headers()[CONTENT_SECURITY_POLICY], csp.as_str());
        }
        assert!(app(&PortalConfig::new("nope", "http://x")).is_err());
    }

    /// The policy forbids inline script and style; this keeps the files from needing them.
    #[test]
    fn the_page_needs_no_inline_script_or_style() {
        let html = INDEX_HTML.to_ascii_lowercase();
        assert_eq!(html.matches("<script").count(), 1, "one script element");
        assert!(html.contains(r#"<script src="/app.js" defer></script>"#));
        assert!(html.contains(r#"<link rel="stylesheet" href="/app.css">"#));
        for inline in [
            "<style",
            " style=",
            "javascript:",
            " onclick=",
            " onsubmit=",
        ] {
            assert!(!html.contains(inline), "{inline} in index.html");
        }
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            ),
            "phones lay the page out at their own width"
        );
        for sink in [
            ".innerHTML",
            ".outerHTML",
            "insertAdjacentHTML",
            ".style.",
            "eval(",
        ] {
            assert!(!APP_JS.contains(sink), "{sink} in app.js");
        }
    }
}
