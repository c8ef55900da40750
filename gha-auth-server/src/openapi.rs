//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint.
//!
//! Each feature's router is a `utoipa_axum` `OpenApiRouter` whose routes carry their
//! `#[utoipa::path]` documentation, so the document is assembled from the very routes that are
//! served and cannot drift from them. This module gives the document its title and tags, and
//! serves it once assembled.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;

/// Path of the document.
pub(crate) const OPENAPI_PATH: &str = "/openapi.json";

/// The document's title, description and tags, and its own path.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "gha-auth",
        description = "Token authority, secrets broker and API-auth support for GHA services."
    ),
    paths(openapi_json),
    tags(
        (name = "oauth", description = "OAuth 2.0 endpoints"),
        (name = "session", description = "Browser sessions: the refresh token in a __Host- cookie"),
        (name = "discovery", description = "Keys and metadata"),
        (name = "operations", description = "Health, metrics and this document"),
        (name = "broker", description = "Secrets broker: secrets and database credentials for authorized clients"),
        (name = "link-keys", description = "Rotated link keys: digests for validators, usage reports"),
    )
)]
pub(crate) struct ApiDoc;

/// The route serving `document`, the whole assembled description.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    document: &utoipa::openapi::OpenApi,
) -> Router<S> {
    let json: Arc<str> = document.to_json().unwrap_or_default().into();
    Router::new()
        .route(OPENAPI_PATH, get(openapi_json))
        .with_state(json)
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)),
)]
async fn openapi_json(State(json): State<Arc<str>>) -> Response {
    let mut response = json.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
