//! `GET /v1/keys`: the published signing keys with their lifecycle state, for programs that must
//! know which key is which (`gha-auth agent`'s edge key slots). The JWKS alone cannot say: it
//! lists the same keys newest first, and two keys may be "next and active" or "active and
//! retired". Public like the JWKS (public keys, states and times); see
//! `docs/decisions/0006-edge-key-slots.md`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use gha_auth::keys::{Jwk, KeyState};
use serde::{Deserialize, Serialize};

use super::Discovery;

/// Path of the key states.
pub(crate) const KEY_STATES_PATH: &str = "/v1/keys";

/// The body of `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyStates {
    /// The published keys, newest activation first (the keys of the JWKS).
    pub(crate) keys: Vec<KeyStatus>,
}

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyStatus {
    /// The key id (the JWK's `kid`).
    pub(crate) kid: String,
    /// `next`, `active` or `retired`, as of the response.
    pub(crate) state: KeyState,
    /// When it signs (or signed) first.
    pub(crate) activates_at: DateTime<Utc>,
    /// When it stopped signing, once retired.
    #[serde(default)]
    pub(crate) retires_at: Option<DateTime<Utc>>,
    /// When it leaves the JWKS, once retired.
    #[serde(default)]
    pub(crate) remove_at: Option<DateTime<Utc>>,
    /// The public key, exactly as the JWKS publishes it.
    pub(crate) jwk: Jwk,
}

/// The published keys and their states as of now, with the JWKS's `Cache-Control`.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "discovery",
    responses(
        (status = 200, description = "{keys: [{kid, state (next, active or retired), activates_at, retires_at, remove_at, jwk}]}: the keys of the JWKS with their lifecycle state, newest first", body = Object),
    ),
)]
pub(crate) async fn key_states(State(state): State<Arc<Discovery>>) -> Response {
    let body = KeyStates {
        keys: state
            .keys
            .published()
            .into_iter()
            .map(|(info, jwk)| KeyStatus {
                kid: info.kid,
                state: info.state,
                activates_at: info.activates_at,
                retires_at: info.retires_at,
                remove_at: info.remove_at,
                jwk,
            })
            .collect(),
    };
    let max_age = state.keys.schedule().cache_control_max_age();
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
