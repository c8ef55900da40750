//! db-consumer: queries PostgreSQL with credentials from the gha-auth secrets broker.
//!
//! Run it against a running authority with the broker (`gha-auth serve` with `[vault]` and a
//! `[[broker.grants]]` entry allowing the client the database role):
//!
//! ```text
//! cargo run --release -p db-consumer -- --authority http://127.0.0.1:8700 \
//!     --client-id db-consumer --client-secret-file db-consumer.secret \
//!     --role db-consumer --database-url postgres://127.0.0.1:5432/app --listen 127.0.0.1:8090
//! curl http://127.0.0.1:8090/query
//! ```
//!
//! The database URL names the server and the database only: the user and password come from
//! the broker. Logs follow `RUST_LOG` (default `db_consumer=info,gha_auth=info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use clap::Parser;
use db_consumer::{PoolSettings, RotatingPool, app};
use gha_auth::broker::DEFAULT_BROKER_AUDIENCE;
use gha_auth::consumer::{ClientAuth, SecretsClient, TokenKeeper};
use sqlx::postgres::PgConnectOptions;
use tracing_subscriber::EnvFilter;

/// Queries PostgreSQL with brokered, rotating credentials.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The authority (and broker) base URL.
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    authority: String,
    /// This service's client id at the authority.
    #[arg(long, default_value = "db-consumer")]
    client_id: String,
    /// File holding the client secret (re-read at every token request).
    #[arg(long, value_name = "FILE")]
    client_secret_file: PathBuf,
    /// The broker's database role.
    #[arg(long, default_value = "db-consumer")]
    role: String,
    /// The audience of the broker's tokens.
    #[arg(long, default_value = DEFAULT_BROKER_AUDIENCE)]
    audience: String,
    /// PostgreSQL server and database, without user or password.
    #[arg(long, value_name = "URL")]
    database_url: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("db_consumer=info,gha_auth=info")),
        )
        .init();
    if cli.database_url.contains('@') {
        bail!("--database-url must not hold credentials: they come from the broker");
    }
    let base = PgConnectOptions::from_str(&cli.database_url).context("--database-url")?;
    let keeper = TokenKeeper::builder(
        &cli.authority,
        ClientAuth::secret_file(&cli.client_id, &cli.client_secret_file),
    )
    .audience(&cli.audience)
    .build()?;
    let secrets = SecretsClient::builder(keeper).build()?;
    let creds = secrets
        .database_credentials(&cli.role)
        .await
        .with_context(|| format!("credentials for database role {}", cli.role))?;
    let pool = RotatingPool::start(creds, base, PoolSettings::default()).await?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listen on {}", cli.listen))?;
    tracing::info!(listen = %cli.listen, role = %cli.role, "db-consumer ready");
    axum::serve(listener, app(pool))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("db-consumer stopped");
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
