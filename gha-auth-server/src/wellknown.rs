//! `GET /.well-known/jwks.json` (RFC 7517) and `GET /.well-known/oauth-authorization-server`
//! (RFC 8414).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gha_auth::keys::Algorithm;
use serde::Serialize;
use utoipa::ToSchema;

use axum::extract::FromRef;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::caching::if_none_match;
use crate::keys::KeyManager;
use crate::oauth::client_auth::PresentedMethod;

/// What the discovery endpoints publish: who this authority is, where its endpoints are, and
/// its keys.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Discovery {
    /// The issuer URL.
    pub(crate) issuer: String,
    /// The token endpoint's URL.
    pub(crate) token_endpoint: String,
    /// The signing keys.
    pub(crate) keys: Arc<KeyManager>,
}

/// The discovery routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Discovery>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(metadata))
}

/// Path of the key set.
pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The key set, pre-rendered, with `Cache-Control: max-age` from the schedule and a strong
/// `ETag`; `304 Not Modified` when `If-None-Match` names it.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    responses(
        (status = 200, description = "RFC 7517 key set with Cache-Control and ETag", body = JwksDoc),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
    ),
)]
pub(crate) async fn jwks(State(state): State<Arc<Discovery>>, headers: HeaderMap) -> Response {
    let snapshot = state.keys.snapshot();
    let max_age = state.keys.schedule().cache_control_max_age();
    let etag = snapshot.etag();
    let mut response = if if_none_match(&headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = snapshot.jwks_json().to_vec().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[derive(Serialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    grant_types_supported: Vec<&'static str>,
    /// RFC 8693 subject token types (the legacy-key type is ours).
    token_exchange_subject_token_types_supported: Vec<&'static str>,
    /// The signed revocation feed (not an RFC 8414 member: gha-auth's own).
    revocation_feed_endpoint: String,
    response_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
}

/// RFC 8414 metadata. Later endpoints (introspection, revocation) add their members here.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    responses((status = 200, description = "RFC 8414 authorization-server metadata", body = Object)),
)]
pub(crate) async fn metadata(State(state): State<Arc<Discovery>>) -> Response {
    let base = state.issuer.trim_end_matches('/');
    let body = Metadata {
        issuer: state.issuer.clone(),
        token_endpoint: state.token_endpoint.clone(),
        jwks_uri: format!("{base}{JWKS_PATH}"),
        revocation_endpoint: format!("{base}{}", crate::oauth::REVOKE_PATH),
        introspection_endpoint: format!("{base}{}", crate::oauth::INTROSPECT_PATH),
        grant_types_supported: crate::oauth::grants::supported(),
        token_exchange_subject_token_types_supported:
            crate::oauth::grants::token_exchange::SUBJECT_TOKEN_TYPES.to_vec(),
        revocation_feed_endpoint: format!("{base}{}", crate::revocations::FEED_PATH),
        response_types_supported: Vec::new(),
        token_endpoint_auth_methods_supported: vec![
            PresentedMethod::Basic.as_str(),
            PresentedMethod::Post.as_str(),
            PresentedMethod::PrivateKeyJwt.as_str(),
        ],
        token_endpoint_auth_signing_alg_values_supported: Algorithm::ALL
            .iter()
            .map(|a| a.name())
            .collect(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// An RFC 7517 key set.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JwksDoc {
    /// The published keys (`next`, `active` and `retired`).
    pub(crate) keys: Vec<BTreeMap<String, String>>,
}
