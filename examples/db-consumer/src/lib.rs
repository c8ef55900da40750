//! db-consumer: a service that queries PostgreSQL with credentials it gets from the gha-auth
//! secrets broker, and keeps serving while they rotate.
//!
//! | Route | What |
//! |---|---|
//! | `GET /query` | runs `SELECT current_user, now()` on the current pool |
//! | `GET /HealthCheck` | the credentials' freshness and the pool switching counters (no secret) |
//!
//! [`RotatingPool`] holds the pool: a new one for each new set of credentials the broker
//! publishes (dynamic leases re-issued, static roles rotated), the old one drained; a password
//! the database refuses triggers an immediate re-fetch. The binary (`src/main.rs`) wires it to a
//! running `gha-auth serve`; tests call [`app`].

mod pool;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gha_auth::consumer::Freshness;
use serde_json::json;

pub use pool::{PoolSettings, PoolStatus, QueryAnswer, QueryError, RotatingPool, is_auth_failure};

/// The routes.
pub fn app(pool: RotatingPool) -> Router {
    Router::new()
        .route("/query", get(query))
        .route("/HealthCheck", get(health))
        .with_state(pool)
}

async fn query(State(pool): State<RotatingPool>) -> Response {
    match pool.query().await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => {
            // Logged here with its cause; the body stays generic.
            tracing::error!(error = %error, "query failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "database_unavailable" })),
            )
                .into_response()
        }
    }
}

async fn health(State(pool): State<RotatingPool>) -> Response {
    let credentials = pool.credentials().status();
    let status = if credentials.freshness == Freshness::Expired {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({ "credentials": credentials, "pool": pool.status() });
    (status, Json(body)).into_response()
}
