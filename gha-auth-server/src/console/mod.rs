//! `/console`: the operators' web console. A static page, one script and one stylesheet, all
//! embedded in the binary ([`assets`]); the page signs in through the browser-session flow
//! (`POST /session/login` on this origin, asking for `api_auth.admin_audience`), keeps the access
//! token in memory only and reads and acts through the admin API. What a user may see or do is
//! the admin API's decision (403 without the `admin` role), never the page's.
//!
//! Every answer carries a Content-Security-Policy without inline script or style, `nosniff` and
//! `Referrer-Policy: no-referrer`. `/console/settings.json` tells the page whether sessions are on
//! and which audience to ask for, so that it can say what to configure when they are off.

mod assets;

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::caller::{ApiAuthConfig, Callers};
use crate::session::{SessionConfig, Sessions};

/// The page's policy: its own script, style, images and API calls; nothing inline, no frames.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The shell is revalidated on every visit; the assets it names carry their version.
const SHELL_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=86400";

/// The console's routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Sessions>: FromRef<S>,
    Arc<Callers>: FromRef<S>,
{
    files().routes(routes!(settings))
}

/// The page and its assets (no state).
fn files<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(script))
        .routes(routes!(stylesheet))
        .routes(routes!(icon))
}

/// `body` as `content_type` with the console's security headers and `cache`.
fn respond(content_type: &'static str, cache: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The console page (a shell the script fills in).
#[utoipa::path(get, path = "/console", tag = "console",
    responses((status = 200, description = "The operators' console (HTML; needs [session] and a user with the admin role)", content_type = "text/html")))]
async fn page() -> Response {
    respond("text/html; charset=utf-8", SHELL_CACHE, assets::shell())
}

/// The console's script.
#[utoipa::path(get, path = "/console/console.js", tag = "console",
    responses((status = 200, description = "The console's script", content_type = "text/javascript")))]
async fn script() -> Response {
    respond(
        "text/javascript; charset=utf-8",
        ASSET_CACHE,
        assets::SCRIPT,
    )
}

/// The console's stylesheet.
#[utoipa::path(get, path = "/console/console.css", tag = "console",
    responses((status = 200, description = "The console's stylesheet", content_type = "text/css")))]
async fn stylesheet() -> Response {
    respond("text/css; charset=utf-8", ASSET_CACHE, assets::STYLE)
}

/// The console's icon.
#[utoipa::path(get, path = "/console/icon.svg", tag = "console",
    responses((status = 200, description = "The console's icon", content_type = "image/svg+xml")))]
async fn icon() -> Response {
    respond("image/svg+xml", ASSET_CACHE, assets::ICON)
}

/// What the page needs to know to sign in (public: the same facts CORS answers reveal).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsoleSettings {
    /// Whether browser sessions are on (`session.client_id` is set).
    sessions: bool,
    /// The session client, when sessions are on.
    session_client: Option<String>,
    /// `session.allowed_origins`: the console's own origin must be one of them.
    allowed_origins: Vec<String>,
    /// The audience the page asks for (`api_auth.admin_audience`); the session client must be
    /// registered for it.
    admin_audience: String,
}

/// What the console needs to sign in, and what is missing when sessions are off.
#[utoipa::path(get, path = "/console/settings.json", tag = "console",
    responses((status = 200, description = "Whether sessions are on, the session client, the allowed origins and the admin audience", body = ConsoleSettings)))]
async fn settings(
    State(sessions): State<Arc<Sessions>>,
    State(callers): State<Arc<Callers>>,
) -> Response {
    respond(
        "application/json",
        "no-store",
        Json(settings_of(&sessions.config, &callers.config)),
    )
}

fn settings_of(session: &SessionConfig, api_auth: &ApiAuthConfig) -> ConsoleSettings {
    ConsoleSettings {
        sessions: session.client_id.is_some(),
        session_client: session.client_id.clone(),
        allowed_origins: session.allowed_origins.clone(),
        admin_audience: api_auth.admin_audience.clone(),
    }
}

#[cfg(test)]
mod tests;
