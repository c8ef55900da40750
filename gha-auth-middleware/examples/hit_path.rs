//! Runs the same in-process request loop as the criterion bench's `handler/*` group, a fixed
//! number of times, for instruction counts that do not depend on the machine's load:
//!
//! ```sh
//! cargo build --release -p gha-auth-middleware --example hit_path
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/examples/hit_path protected 20000
//! ```
//!
//! `protected` requests go through `AuthLayer` with a token already in the verified-token cache;
//! `unprotected` requests reach the same handler with the same header and no layer. The
//! difference of the two instruction totals, divided by the count, is the layer's cost per hit.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use chrono::TimeDelta;
use gha_auth::jwt::{AccessClaims, issue};
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth::{Clock, SystemClock};
use gha_auth_middleware::{AuthLayer, LocalKeys, Principal};
use tower::ServiceExt;

fn request(token: &str) -> Result<Request<Body>, http::Error> {
    Request::get("/jobs")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
}

/// The measured loop; a plain function (not inlined) so callgrind can collect inside it only.
#[inline(never)]
fn measured(
    runtime: &tokio::runtime::Runtime,
    router: &Router,
    token: &str,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    runtime.block_on(async {
        for _ in 0..count {
            let response = router.clone().oneshot(request(token)?).await?;
            if !response.status().is_success() {
                return Err(format!("status {}", response.status()).into());
            }
        }
        Ok(())
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "protected".to_owned());
    let count: u64 = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let key = SigningKey::generate(Algorithm::ES256)?;
    let mut claims = AccessClaims::new(
        "https://auth.gha.test",
        "user-1",
        "field-service",
        "mfs-app",
        SystemClock.unix_seconds(),
        TimeDelta::minutes(10),
    )?
    .with_scopes(["jobs:read", "jobs:write"]);
    claims.tenant = Some("acme".into());
    let token = issue(&key, &claims)?;
    let auth = AuthLayer::builder()
        .issuer("https://auth.gha.test")
        .audience("field-service")
        .key_source(LocalKeys::new([key.verifying_key()])?)
        .build()?;
    let router: Router = match which.as_str() {
        "unprotected" => Router::new().route("/jobs", get(|| async { "[]" })),
        "protected" => Router::new()
            .route(
                "/jobs",
                get(|principal: Principal| async move {
                    std::hint::black_box(principal.subject().len());
                    "[]"
                }),
            )
            .layer(auth),
        other => return Err(format!("unknown mode {other:?}").into()),
    };
    // The first request verifies the token; every measured one is a cache hit.
    let warm = runtime.block_on(router.clone().oneshot(request(&token)?))?;
    if !warm.status().is_success() {
        return Err(format!("warm-up status {}", warm.status()).into());
    }
    measured(&runtime, &router, &token, count)
}
