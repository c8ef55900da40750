//! `GET /`: what this service is and where to go next, for a person who opens the authority's
//! address in a browser (HTML) or with curl (plain text). Static: no state, no secrets.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The home routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(home))
        .routes(routes!(stylesheet))
}

/// The places a visitor may want, as (path, what it is).
const LINKS: [(&str, &str); 5] = [
    (
        "/.well-known/oauth-authorization-server",
        "authorization server metadata (RFC 8414): the endpoints and what they support",
    ),
    (
        "/.well-known/jwks.json",
        "the public signing keys (JWKS) that verify this authority's tokens",
    ),
    ("/openapi.json", "the HTTP API, as an OpenAPI document"),
    (
        "/HealthCheck",
        "readiness: Healthy, Degraded or Unhealthy, per component",
    ),
    (
        "/metrics",
        "Prometheus metrics (keep it on an internal interface)",
    ),
];

const TITLE: &str = "gha-auth: GHA's token authority";
const SUMMARY: &str = "This service issues the access tokens of GHA's apps, web portals and \
services, rotates the Epicor link key and brokers secrets out of Vault. APIs verify its tokens \
with gha-auth-middleware or any OAuth 2.0 library that reads the metadata below.";
const DOCS: &str = "Documentation ships with the source: README.md (the first ten minutes), \
docs/operations.md (running it) and SECURITY.md (what it guarantees).";
const STYLESHEET_PATH: &str = "/home.css";

/// A page for people: HTML for a browser, plain text for anything else.
#[utoipa::path(
    get,
    path = "/",
    tag = "discovery",
    responses((status = 200, description = "What this service is and where its metadata, keys, API document and health are (HTML for browsers, plain text otherwise)", content((String = "text/html"), (String = "text/plain")))),
)]
async fn home(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        let mut response = (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html_page(),
        )
            .into_response();
        // No script at all; only the stylesheet from this origin.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
        );
        response
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text_page(),
        )
            .into_response()
    }
}

/// The page's stylesheet (a file of its own so the Content-Security-Policy needs no inline style).
#[utoipa::path(
    get,
    path = "/home.css",
    tag = "discovery",
    responses((status = 200, description = "The home page's stylesheet", content_type = "text/css")),
)]
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("home.css"),
    )
}

fn html_page() -> String {
    let links: String = LINKS
        .iter()
        .map(|(path, what)| format!("<li><a href=\"{path}\"><code>{path}</code></a> {what}</li>"))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{TITLE}</title><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
         <body><main><h1>{TITLE}</h1><p>{SUMMARY}</p><h2>Where to go</h2><ul>{links}</ul>\
         <p>{DOCS}</p></main></body></html>\n"
    )
}

fn text_page() -> String {
    let links: String = LINKS
        .iter()
        .map(|(path, what)| format!("  {path}\n      {what}\n"))
        .collect();
    format!("{TITLE}\n\n{SUMMARY}\n\nWhere to go:\n{links}\n{DOCS}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_pages_name_every_link() {
        let (html, text) = (html_page(), text_page());
        for (path, _) in LINKS {
            assert!(html.contains(&format!("href=\"{path}\"")), "{path} in HTML");
            assert!(text.contains(path), "{path} in text");
        }
        assert!(html.contains("name=\"viewport\""));
    }
}
