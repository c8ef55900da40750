//! The same handler served twice, unprotected (`/open`) and behind [`AuthLayer`]
//! (`/protected`), for the HTTP load comparison in `bench/middleware.sh`.
//!
//! Run with: `cargo run --release -p gha-auth-middleware --example bench_server -- 127.0.0.1:8781`
//! It prints one line, a valid access token for `/protected`, then serves until killed.

use std::io::Write;

use axum::Router;
use axum::routing::get;
use chrono::TimeDelta;
use gha_auth::clock::SystemClock;
use gha_auth::jwt::{self, AccessClaims};
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth_middleware::{AuthLayer, LocalKeys};

const ISSUER: &str = "https://auth.bench.invalid";
const AUDIENCE: &str = "bench";

async fn handler() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8781".to_owned());
    let key = SigningKey::generate(Algorithm::ES256)?;
    let clock = SystemClock::shared();
    let claims = AccessClaims::new(
        ISSUER,
        "bench-client",
        AUDIENCE,
        "bench-client",
        clock.unix_seconds(),
        TimeDelta::hours(1),
    )?
    .with_scopes(["jobs:read"]);
    let token = jwt::issue(&key, &claims)?;

    let auth = AuthLayer::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_source(LocalKeys::new([key.verifying_key()])?)
        .build()?;
    let app = Router::new()
        .route("/protected", get(handler).layer(auth))
        .route("/open", get(handler));

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{token}")?;
    stdout.flush()?;
    drop(stdout);
    axum::serve(listener, app).await?;
    Ok(())
}
