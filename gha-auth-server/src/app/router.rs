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
use crate::{
    admin, broker, console, health, home, linkkeys, metrics, monitor, oauth, openapi, revocations,
    session, wellknown,
};

/// Every feature's routes, and the OpenAPI document they make up.
pub(super) fn routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(oauth::router(state))
        .merge(session::router(state))
        .merge(wellknown::router(&state.discovery.issuer))
        .merge(revocations::router())
        .merge(broker::routes::router())
        .merge(linkkeys::http::router(state))
        .merge(health::router())
        .merge(home::router())
        .merge(console::router())
        .merge(metrics::router())
        .merge(monitor::http::router())
        .merge(admin::routes::router())
        .split_for_parts();
    openapi::complete(&mut document);
    (router.merge(openapi::router(&document)), document)
}

/// The cross-cutting layers: request tracing (the path, never the query string; no headers,
/// `Authorization` and cookies marked sensitive), a request timeout, the body limit and request metrics. Per-route limits (rate
/// limits, CORS) belong to the features' routers.
pub(super) fn with_layers(router: Router, http: &HttpConfig) -> Router {
    let router = if http.trusted_proxies.is_empty() {
        router
    } else {
        let trusted: std::sync::Arc<[ipnet::IpNet]> = http.trusted_proxies.clone().into();
        router.layer(middleware::from_fn(move |request, next| {
            crate::transport::forwarded::layer(trusted.clone(), request, next)
        }))
    };
    router
        .layer(middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            http.request_timeout.as_std(),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(crate::telemetry::request_span))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
}
