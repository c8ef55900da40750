//! The smallest API behind gha-auth-middleware; the README's "first ten minutes" shows it whole.
//! Run: `cargo run -p hello-api` next to `gha-auth serve` (default `http://127.0.0.1:8700`).
use axum::{Router, routing::get};
use gha_auth_middleware::{AuthLayer, Principal, require_scope};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = AuthLayer::builder()
        .issuer("http://127.0.0.1:8700")
        .audience("hello-api")
        .jwks_url("http://127.0.0.1:8700/.well-known/jwks.json")
        .build()?;
    let hello = |caller: Principal| async move { format!("hello, {}\n", caller.subject()) };
    let app = Router::new()
        .route(
            "/hello",
            get(hello).route_layer(require_scope("hello:read")),
        )
        .layer(auth);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // Kubernetes and load balancers stop a service with SIGTERM: finish the requests in flight.
    let mut sigterm = signal(SignalKind::terminate())?;
    let stopped = async move { _ = sigterm.recv().await };
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await?;
    Ok(())
}
