//! The broker's HTTP handlers. Authentication is the [`Caller<BrokerApi>`] extractor (RFC 6750
//! refusals); authorization, caching and refusals are [`super::Broker`]'s. Responses are never
//! cacheable by intermediaries (`Cache-Control: no-store`): the freshness a consumer should use
//! is in the body (`max_age_seconds`, `refresh_at`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Broker;
use crate::caller::{BrokerApi, Caller, Callers};

/// Route of the secret endpoint (axum syntax: the path may contain `/`).
const SECRETS_ROUTE: &str = "/v1/secrets/{*path}";

/// The secret endpoint's documentation: its route is a wildcard, which OpenAPI writes `{path}`.
#[derive(OpenApi)]
#[openapi(paths(read_secret))]
struct SecretsDoc;

/// The broker's routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Broker>: FromRef<S>,
    Arc<Callers>: FromRef<S>,
{
    OpenApiRouter::with_openapi(SecretsDoc::openapi())
        .route(SECRETS_ROUTE, get(read_secret))
        .routes(routes!(database_creds))
}

fn no_store<T: Serialize>(body: &T) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A secret's fields, version and freshness.
#[utoipa::path(
    get,
    path = "/v1/secrets/{path}",
    tag = "broker",
    params(("path" = String, Path, description = "The secret's path, e.g. apps/billing/db (may contain /)",
        max_length = 512, pattern = "^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+)(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+))*$")),
    responses(
        (status = 200, description = "The fields (strings), version, fetched_at and max_age_seconds (gha_auth::broker::SecretResponse)", body = Object),
        (status = 400, description = "Malformed path"),
        (status = 401, description = "No or invalid bearer token for the broker audience (RFC 6750)"),
        (status = 403, description = "access_denied: the client's grants do not cover the path (audited)"),
        (status = 404, description = "not_found: no such secret"),
        (status = 503, description = "secrets_unavailable: the source fails and the cached value is past the stale window; Retry-After"),
    ),
)]
pub(crate) async fn read_secret(
    State(broker): State<Arc<Broker>>,
    caller: Caller<BrokerApi>,
    Path(path): Path<String>,
) -> Response {
    match broker.secret(&caller.client_id, &path).await {
        Ok(secret) => no_store(&secret),
        Err(refusal) => refusal.into_response(),
    }
}

/// Credentials of a database role: username, password, kind, and when they expire and when to
/// ask again.
#[utoipa::path(
    post,
    path = "/v1/database/creds/{role}",
    tag = "broker",
    params(("role" = String, Path, description = "The database role", max_length = 128,
        pattern = "^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+)$")),
    responses(
        (status = 200, description = "username, password, kind (dynamic or static), issued_at, expires_at, refresh_at (gha_auth::broker::DatabaseCredsResponse)", body = Object),
        (status = 400, description = "Malformed role name"),
        (status = 401, description = "No or invalid bearer token for the broker audience (RFC 6750)"),
        (status = 403, description = "access_denied: the client's grants do not cover the role (audited)"),
        (status = 404, description = "not_found: no such role, or no Vault database engine (embedded defaults)"),
        (status = 503, description = "temporarily_unavailable: Vault cannot issue credentials now; Retry-After"),
    ),
)]
pub(crate) async fn database_creds(
    State(broker): State<Arc<Broker>>,
    caller: Caller<BrokerApi>,
    Path(role): Path<String>,
) -> Response {
    match broker.database_credentials(&caller.client_id, &role).await {
        Ok(creds) => no_store(&creds),
        Err(refusal) => refusal.into_response(),
    }
}
