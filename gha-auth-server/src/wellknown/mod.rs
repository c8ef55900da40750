//! `GET /.well-known/jwks.json` (RFC 7517), `GET /.well-known/oauth-authorization-server`
//! (RFC 8414), `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0), and
//! `GET /v1/keys` (the same keys with their lifecycle states).

mod metadata;
mod states;

pub(crate) use states::{KEY_STATES_PATH, KeyStates, KeyStatus};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gha_auth::SharedClock;
use serde::Serialize;
use utoipa::ToSchema;

use axum::extract::FromRef;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::caching::if_none_match;
use crate::clients::ClientRegistry;
use crate::keys::KeyManager;

/// How long the published scopes are reused before the clients are read again.
const SCOPES_TTL_SECONDS: i64 = 60;

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
    /// The clients, whose scopes make `scopes_supported`.
    pub(crate) clients: ClientRegistry,
    /// The injected clock (the scopes' cache).
    pub(crate) clock: SharedClock,
    /// The last scopes read and when (unix seconds).
    pub(crate) scopes: Mutex<Option<(i64, Vec<String>)>>,
}

impl Discovery {
    /// What discovery publishes, with an empty scope cache.
    pub(crate) fn new(
        issuer: String,
        token_endpoint: String,
        keys: Arc<KeyManager>,
        clients: ClientRegistry,
        clock: SharedClock,
    ) -> Self {
        Self {
            issuer,
            token_endpoint,
            keys,
            clients,
            clock,
            scopes: Mutex::new(None),
        }
    }

    /// The scopes of the enabled clients, read at most once a minute (the metadata is public:
    /// a request must not cost a store query each time). `None` when the store failed and
    /// nothing was read before.
    async fn scopes(&self) -> Option<Vec<String>> {
        let now = self.clock.unix_seconds();
        let cached = self
            .scopes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((at, scopes)) = &cached
            && now.saturating_sub(*at) < SCOPES_TTL_SECONDS
        {
            return Some(scopes.clone());
        }
        match self.clients.list().await {
            Ok(clients) => {
                let scopes = metadata::scopes_of(&clients);
                *self.scopes.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((now, scopes.clone()));
                Some(scopes)
            }
            Err(error) => {
                tracing::warn!(error = %error, "discovery: the clients' scopes could not be read");
                cached.map(|(_, scopes)| scopes)
            }
        }
    }
}

/// The discovery routes; for an issuer with a path also the path-inserted and appended
/// metadata URLs (RFC 8414 §3.1, OIDC Discovery 1.0 §4).
pub(crate) fn router<S>(issuer: &str) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Discovery>: FromRef<S>,
{
    let mut router = OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(states::key_states))
        .routes(routes!(metadata))
        .routes(routes!(openid_configuration));
    for path in metadata::issuer_paths(&metadata::path_of(issuer)) {
        router = router.route(&path, get(serve_issuer_path));
    }
    router
}

async fn serve_issuer_path(State(state): State<Arc<Discovery>>) -> Response {
    serve_metadata(&state).await
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

/// RFC 8414 metadata (the same document as [`openid_configuration`]).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    responses((status = 200, description = "RFC 8414 authorization-server metadata", body = Object)),
)]
pub(crate) async fn metadata(State(state): State<Arc<Discovery>>) -> Response {
    serve_metadata(&state).await
}

/// OpenID Connect discovery: the RFC 8414 metadata with the members OIDC Discovery 1.0
/// requires, for clients and frameworks configured with an authority URL.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    responses((status = 200, description = "OpenID Connect Discovery 1.0 provider metadata", body = Object)),
)]
pub(crate) async fn openid_configuration(State(state): State<Arc<Discovery>>) -> Response {
    serve_metadata(&state).await
}

async fn serve_metadata(state: &Discovery) -> Response {
    let signing_algs = state.keys.list().iter().map(|k| k.alg).collect();
    let body = metadata::document(metadata::Inputs {
        issuer: &state.issuer,
        token_endpoint: &state.token_endpoint,
        signing_algs,
        scopes: state.scopes().await,
    });
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
