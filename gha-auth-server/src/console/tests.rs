//! The console's own routes: each file with its type, the security headers and its caching; the
//! shell with nothing inline and only its own versioned assets; the settings the page reads.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::*;

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let (router, _) = files::<()>().split_for_parts();
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn value(headers: &axum::http::HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_file_is_served_with_its_type_security_headers_and_caching() {
    let version = assets::version();
    let files = [
        ("/console", "text/html; charset=utf-8", SHELL_CACHE),
        (
            "/console/console.js",
            "text/javascript; charset=utf-8",
            ASSET_CACHE,
        ),
        (
            "/console/console.css",
            "text/css; charset=utf-8",
            ASSET_CACHE,
        ),
        ("/console/icon.svg", "image/svg+xml", ASSET_CACHE),
    ];
    for (path, content_type, cache) in files {
        for path in [path.to_owned(), format!("{path}?v={version}")] {
            let (status, headers, body) = get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(!body.is_empty(), "{path}");
            assert_eq!(
                value(&headers, header::CONTENT_TYPE),
                content_type,
                "{path}"
            );
            assert_eq!(value(&headers, header::CACHE_CONTROL), cache, "{path}");
            assert_eq!(
                value(&headers, header::CONTENT_SECURITY_POLICY),
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                 img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                "{path}"
            );
            assert_eq!(value(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert_eq!(value(&headers, header::REFERRER_POLICY), "no-referrer");
        }
    }
    let (status, _, _) = get("/console/other.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// What the shell links to: every `src` and `href` value.
fn links(html: &str) -> Vec<&str> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| html.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

#[tokio::test]
async fn the_shell_has_nothing_inline_and_names_only_its_own_versioned_assets() {
    let (_, _, html) = get("/console").await;
    assert!(html.contains("name=\"viewport\""));
    assert!(!html.contains("{{version}}"));
    // Should the script not run, the form still never puts the password into a URL.
    assert!(html.contains("<form id=\"login-form\" method=\"post\""));
    let lower = html.to_lowercase();
    assert_eq!(lower.matches("<script").count(), 1, "one script: {html}");
    assert!(lower.contains("<script src=\"/console/console.js?v="));
    for inline in [
        "<style",
        " style=",
        "javascript:",
        " onclick=",
        " onload=",
        "http://",
        "https://",
    ] {
        assert!(!lower.contains(inline), "{inline} in the shell");
    }
    let links = links(&html);
    assert!(links.len() >= 4, "{links:?}");
    for link in links {
        if let Some(fragment) = link.strip_prefix('#') {
            assert!(
                fragment.starts_with('/') || html.contains(&format!("id=\"{fragment}\"")),
                "{link} names no element"
            );
            continue;
        }
        assert!(
            link.starts_with("/console/") && link.ends_with(&format!("?v={}", assets::version())),
            "{link}"
        );
        let (status, _, _) = get(link).await;
        assert_eq!(status, StatusCode::OK, "{link}");
    }
}

#[test]
fn the_version_follows_the_content() {
    let version = assets::version();
    assert_eq!(version.len(), 16);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn the_settings_say_whether_sessions_are_on_and_which_audience_to_ask_for() {
    let mut session = SessionConfig::default();
    let api_auth = ApiAuthConfig::default();
    let off = serde_json::to_value(settings_of(&session, &api_auth)).unwrap();
    assert_eq!(
        off,
        serde_json::json!({"sessions": false, "session_client": null, "allowed_origins": [],
            "admin_audience": "gha-auth-admin"})
    );
    session.client_id = Some("gha-auth-console".to_owned());
    session.allowed_origins = vec!["https://auth.example.com".to_owned()];
    let on = serde_json::to_value(settings_of(&session, &api_auth)).unwrap();
    assert_eq!(on["sessions"], true);
    assert_eq!(on["session_client"], "gha-auth-console");
    assert_eq!(
        on["allowed_origins"],
        serde_json::json!(["https://auth.example.com"])
    );
}
