//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint, generated with utoipa from
//! the `#[utoipa::path]` attributes on the handlers, so it cannot drift from the code. A test
//! checks that every route of [`crate::app::routes`] (see [`crate::app::route_list`]) is in it.
//!
//! To add an endpoint: put `#[utoipa::path(...)]` on its handler and list it in [`ApiDoc`].

use std::collections::BTreeMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// Path of the document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// A token request (RFC 6749 §4.4, RFC 7523 §2.2, RFC 8693, RFC 8707), form-encoded.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenRequestDoc {
    /// `client_credentials`, `password`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    pub grant_type: String,
    /// Space-separated scopes; narrowed to what the client may have.
    pub scope: Option<String>,
    /// The audience (RFC 8693); a client with a single audience gets it by default.
    pub audience: Option<String>,
    /// The resource (RFC 8707), an alternative to `audience`.
    pub resource: Option<String>,
    /// The client id (`client_secret_post`, public clients).
    pub client_id: Option<String>,
    /// The client secret (`client_secret_post`); prefer HTTP Basic.
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (`private_key_jwt`).
    pub client_assertion_type: Option<String>,
    /// The signed client assertion (`private_key_jwt`).
    pub client_assertion: Option<String>,
    /// Token exchange: the subject token (an access token of this authority, or a legacy
    /// static API key imported with `gha-auth clients legacy-key add`).
    pub subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` or
    /// `urn:gha:params:oauth:token-type:legacy-api-key`.
    pub subject_token_type: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` (the default).
    pub requested_token_type: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponseDoc {
    /// An RFC 9068 JWT (`typ: at+jwt`).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The granted scopes.
    pub scope: Option<String>,
    /// A rotating refresh token (grants that issue one).
    pub refresh_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: Option<String>,
}

/// An error (RFC 6749 §5.2); `rate_limited` comes with `429` and `Retry-After`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorDoc {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`, `server_error`,
    /// `rate_limited`.
    pub error: String,
    /// A human-readable description; never says which half of a credential was wrong.
    pub error_description: String,
}

/// An RFC 7517 key set.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksDoc {
    /// The published keys (`next`, `active` and `retired`).
    pub keys: Vec<BTreeMap<String, String>>,
}

/// `/HealthCheck` output.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDoc {
    /// `Healthy`, `Degraded` or `Unhealthy`.
    pub status: String,
    /// When the checks ran (RFC 3339).
    pub checked_at: String,
    /// Per component (`store`, `signing_keys`, `vault`): `status` plus details.
    #[schema(value_type = Object)]
    pub checks: BTreeMap<String, String>,
}

/// A token-introspection or revocation request (RFC 7662, RFC 7009), form-encoded; the caller
/// authenticates as a client.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenParamDoc {
    /// The token.
    pub token: String,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
}

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "gha-auth",
        description = "Token authority, secrets broker and API-auth support for GHA services."
    ),
    paths(
        crate::oauth::token_endpoint,
        crate::oauth::revocation::revoke_endpoint,
        crate::oauth::revocation::introspect_endpoint,
        crate::session::login_endpoint,
        crate::session::refresh_endpoint,
        crate::session::logout_endpoint,
        crate::wellknown::jwks,
        crate::wellknown::metadata,
        crate::revocations::feed::revocations_endpoint,
        crate::health::health,
        crate::metrics::metrics_endpoint,
        crate::linkkeys::http::list,
        crate::linkkeys::http::usage,
        crate::broker::routes::read_secret,
        crate::broker::routes::database_creds,
        openapi_json,
    ),
    components(schemas(
        TokenRequestDoc,
        TokenResponseDoc,
        OAuthErrorDoc,
        JwksDoc,
        HealthDoc,
        TokenParamDoc,
        crate::linkkeys::ServedSet,
        crate::linkkeys::model::ServedKey,
        crate::linkkeys::http::UsageReport,
        crate::linkkeys::http::KeyUseReport,
        crate::session::SessionLoginDoc,
        crate::session::SessionTokenDoc
    )),
    tags(
        (name = "oauth", description = "OAuth 2.0 endpoints"),
        (name = "session", description = "Browser sessions: the refresh token in a __Host- cookie"),
        (name = "discovery", description = "Keys and metadata"),
        (name = "operations", description = "Health, metrics and this document"),
        (name = "broker", description = "Secrets broker: secrets and database credentials for authorized clients"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    Json(document()).into_response()
}
