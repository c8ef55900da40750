//! web-portal: a web page that signs in through gha-auth browser sessions and lists jobs from
//! the field-service API.
//!
//! The authority must have sessions on for this page's origin (`[session] client_id` and
//! `allowed_origins`) and the API must allow that origin (field-service `--cors-origin`);
//! `README.md` has the commands. Plain http works for loopback only: the session cookie is
//! `Secure`, which browsers accept over http from `localhost`/`127.0.0.1` alone.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use web_portal::{PortalConfig, app};

/// The MFS web portal.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Base URL of the gha-auth authority.
    #[arg(long)]
    authority: String,
    /// Base URL of the field-service API.
    #[arg(long)]
    api: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| "web_portal=info".into()),
        )
        .init();
    let cli = Cli::parse();
    let router = app(&PortalConfig::new(&cli.authority, &cli.api))?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listen on {}", cli.listen))?;
    tracing::info!(listen = %cli.listen, authority = %cli.authority, api = %cli.api, "web-portal ready");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server")?;
    tracing::info!("web-portal stopped");
    Ok(())
}

/// Resolves on SIGTERM (what Kubernetes and a managed restart send) or Ctrl-C (SIGINT). The
/// server then stops accepting connections and finishes the requests in flight.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let signal = tokio::select! {
        () = terminate => "SIGTERM",
        () = interrupt => "SIGINT",
    };
    tracing::info!(signal, "stopping: finishing the requests in flight");
}
