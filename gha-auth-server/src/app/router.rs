//! The router: every feature's routes merged, the OpenAPI document assembled from them, and the
//! cross-cutting layers.

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::{Router, middleware};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::state::AppState;
use crate::config::HttpConfig;
use crate::{broker, health, linkkeys, metrics, oauth, openapi, revocations, session, wellknown};

/// Every feature's routes, and the OpenAPI document they make up.
pub(super) fn routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(oauth::router(state))
        .merge(session::router(state))
        .merge(wellknown::router())
        .merge(revocations::router())
        .merge(broker::routes::router())
        .merge(linkkeys::http::router(state))
        .merge(health::router())
        .merge(metrics::router())
        .split_for_parts();
    (router.merge(openapi::router(&document)), document)
}

/// The cross-cutting layers: request tracing (no headers, `Authorization` and cookies marked
/// sensitive), a request timeout, the body limit and request metrics. Per-route limits (rate
/// limits, CORS) belong to the features' routers.
pub(super) fn with_layers(router: Router, http: &HttpConfig) -> Router {
    router
        .layer(middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            http.request_timeout.as_std(),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
}
