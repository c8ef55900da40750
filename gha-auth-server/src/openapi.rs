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
        (name = "console", description = "The operators' web console and its assets"),
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

/// Name of the HTTP Basic client-authentication scheme (`client_secret_basic`).
const CLIENT_BASIC: &str = "client_basic";
/// Name of the bearer-token scheme (an access token of this authority, RFC 6750).
const BEARER: &str = "bearer";

/// What the operations' own annotations leave out, stated once for the whole document: how each
/// operation authenticates (security schemes), the answers every route can give (405 for another
/// method, 408 past `http.request_timeout`, 413 past `http.max_body_bytes`, 429 with
/// `Retry-After`), and that path values are never empty.
pub(crate) fn complete(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };

    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        CLIENT_BASIC,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "client_secret_basic (RFC 6749 §2.3.1); the form may carry client_secret_post \
                     or a private_key_jwt assertion instead, and a public client only its client_id",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token of this authority for the API's audience (RFC 6750)",
                ))
                .build(),
        ),
    );
    for (path, item) in &mut document.paths.paths {
        let path_params = item.parameters.iter_mut().flatten();
        for parameter in path_params {
            constrain_path_parameter(parameter);
        }
        for (method, operation) in [
            ("get", item.get.as_mut()),
            ("post", item.post.as_mut()),
            ("put", item.put.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ] {
            let Some(operation) = operation else { continue };
            if operation.security.is_none() {
                operation.security = Some(match security_of(path) {
                    Security::Client => vec![
                        SecurityRequirement::new(CLIENT_BASIC, Vec::<String>::new()),
                        SecurityRequirement::default(),
                    ],
                    Security::Bearer => {
                        vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]
                    }
                    Security::Admin => vec![SecurityRequirement::new(
                        crate::admin::routes::SCHEME,
                        Vec::<String>::new(),
                    )],
                    Security::None => vec![SecurityRequirement::default()],
                });
            }
            for parameter in operation.parameters.iter_mut().flatten() {
                constrain_path_parameter(parameter);
            }
            add_common_responses(&mut operation.responses, method == "post");
            if matches!(security_of(path), Security::Bearer | Security::Admin) {
                add_response(
                    &mut operation.responses,
                    "400",
                    "A malformed Authorization header (RFC 6750 §3.1), or an invalid request",
                );
            }
            if operation.request_body.is_some() {
                add_response(
                    &mut operation.responses,
                    "415",
                    "The body is not of the documented Content-Type",
                );
            }
            let has_query = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
            if has_query {
                add_response(
                    &mut operation.responses,
                    "400",
                    "A query parameter is not valid",
                );
            }
        }
    }
}

/// How the operations under a path authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// A client of this authority (the OAuth endpoints).
    Client,
    /// A bearer access token (the broker and link-key APIs).
    Bearer,
    /// A bearer access token for the admin audience (`/admin/v1`).
    Admin,
    /// None (discovery, health, metrics, sessions: the cookie and CSRF header are their own).
    None,
}

fn security_of(path: &str) -> Security {
    if path.starts_with("/oauth2/") {
        Security::Client
    } else if path.starts_with("/v1/secrets")
        || path.starts_with("/v1/database")
        || path.starts_with("/v1/link-keys")
    {
        Security::Bearer
    } else if path.starts_with("/admin/") {
        Security::Admin
    } else {
        Security::None
    }
}

fn constrain_path_parameter(parameter: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{RefOr, Schema};

    if parameter.parameter_in != ParameterIn::Path {
        return;
    }
    if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
        object.min_length.get_or_insert(1);
        object.max_length.get_or_insert(1024);
        // No control characters or spaces in a path segment.
        object
            .pattern
            .get_or_insert_with(|| "^[^\\s\\x00-\\x1f]+$".to_owned());
    }
}

/// Documents the answer `status` unless the operation already does.
fn add_response(responses: &mut utoipa::openapi::Responses, status: &str, description: &str) {
    use utoipa::openapi::{RefOr, Response};

    responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(Response::new(description)));
}

fn add_common_responses(responses: &mut utoipa::openapi::Responses, has_body: bool) {
    use utoipa::openapi::{ObjectBuilder, RefOr, Response, Type, header::Header};

    let retry_after = || {
        let mut header = Header::new(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        );
        header.description = Some("Seconds to wait before trying again".to_owned());
        header
    };
    let mut answers = vec![
        ("405", "Method not allowed on this path"),
        ("408", "The request took longer than http.request_timeout"),
        (
            "429",
            "Rate limited or backing off after failed authentication; see Retry-After",
        ),
    ];
    if has_body {
        answers.push(("413", "The body is larger than http.max_body_bytes"));
    }
    for (status, description) in answers {
        let entry = responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
        if status == "429"
            && let RefOr::T(response) = entry
        {
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(retry_after);
        }
    }
}
