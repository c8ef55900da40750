//! field-service: the MFS jobs API, protected by gha-auth-middleware.
//!
//! Run it against a running authority (`gha-auth serve`, default `http://127.0.0.1:8700`):
//!
//! ```text
//! cargo run --release -p field-service -- --authority http://127.0.0.1:8700 --listen 127.0.0.1:8080
//! ```
//!
//! Then, with a token for audience `field-service` and scope `jobs:read` (from
//! `POST /oauth2/token` on the authority):
//!
//! ```text
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/jobs
//! curl http://127.0.0.1:8080/HealthCheck
//! ```
//!
//! To accept the Epicor link key (`x-api-key`), read the valid keys from the authority
//! (`GET /v1/link-keys/epicor`, with a `client_credentials` token for audience
//! `gha-auth-link-keys`; register the client with that audience), and give the tenant the key
//! acts for:
//!
//! ```text
//! cargo run --release -p field-service -- --authority http://127.0.0.1:8700 \
//!     --link-keys-client-id field-service --link-keys-client-secret-file fs-secret \
//!     --epicor-tenant acme
//! ```
//!
//! Or, without the authority's link-key API (tests, migration), a static link-key file (`{"name":"epicor","keys":[{"id":…,"digest":<hex SHA-256 of the key>,
//! "state":"current"}]}`) and the tenant the key acts for:
//!
//! ```text
//! cargo run --release -p field-service -- --authority http://127.0.0.1:8700 \
//!     --link-keys-file epicor-keys.json --epicor-tenant acme
//! ```
//!
//! Revocations reach it without a call to the authority per request: it polls the authority's
//! signed feed (`<authority>/v1/revocations`) every `Cache-Control: max-age` seconds, bounded by
//! `--revocation-poll-min` and `--revocation-poll-max`; a token revoked at the authority
//! (`POST /oauth2/revoke`, a disabled user or client) is refused within that interval.
//!
//! Logs follow `RUST_LOG` (default `field_service=info,gha_auth_middleware=info`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use field_service::link_keys::{AuthorityLinkKeys, EPICOR_LINK_KEY};
use field_service::{DEFAULT_AUDIENCE, JobStore, SCOPE_EPICOR_UPDATE, app, with_cors};
use gha_auth::{SecretString, SystemClock};
use gha_auth_middleware::linkkey::{LinkKeyIntegration, LinkKeySource, StaticLinkKeys};
use gha_auth_middleware::{AuthLayer, RemoteJwks, RevocationFeed};
use tracing_subscriber::EnvFilter;

/// The field-service jobs API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Base URL of the gha-auth authority (its JWKS is read from
    /// `<authority>/.well-known/jwks.json`).
    #[arg(long, env = "FIELD_SERVICE_AUTHORITY")]
    authority: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "FIELD_SERVICE_LISTEN")]
    listen: SocketAddr,
    /// Audience tokens must be issued for.
    #[arg(long, default_value = DEFAULT_AUDIENCE)]
    audience: String,
    /// Issuer tokens must come from (default: the authority URL without a trailing slash).
    #[arg(long)]
    issuer: Option<String>,
    /// Static link-key file (digests of the valid Epicor keys) instead of the authority's list.
    #[arg(
        long,
        requires = "epicor_tenant",
        conflicts_with = "link_keys_client_id"
    )]
    link_keys_file: Option<PathBuf>,
    /// Client id to read the Epicor link keys from the authority with (`client_credentials`,
    /// audience `gha-auth-link-keys`).
    #[arg(long, requires_all = ["epicor_tenant", "link_keys_client_secret_file"])]
    link_keys_client_id: Option<String>,
    /// File holding that client's secret (mode 0600).
    #[arg(long, requires = "link_keys_client_id")]
    link_keys_client_secret_file: Option<PathBuf>,
    /// Shortest time between two link-key list refreshes, in seconds (the authority's
    /// `max-age` decides within 5 s .. 5 min by default).
    #[arg(long, default_value_t = 5)]
    link_keys_min_refresh_seconds: u64,
    /// Tenant the Epicor link key acts for.
    #[arg(long)]
    epicor_tenant: Option<String>,
    /// Also accept a pre-rotation Epicor key that is not in the `ghal_` format.
    #[arg(long)]
    accept_legacy_link_key: bool,
    /// Origin of a browser page allowed to call the API (CORS), e.g. the web portal's
    /// `http://127.0.0.1:8090`; repeatable. Default: none.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Poll the revocation feed at most this often (seconds, at least 1).
    #[arg(long, default_value_t = 5)]
    revocation_poll_min: u64,
    /// Poll the revocation feed at least this often (seconds, at most 3600).
    #[arg(long, default_value_t = 60)]
    revocation_poll_max: u64,
    /// Allow a plain-HTTP authority on a non-loopback host (behind a TLS-terminating proxy).
    #[arg(long)]
    danger_accept_plain_http: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "field_service=info,gha_auth_middleware=info".into()),
        )
        .init();
    let cli = Cli::parse();
    // First, so the key source's first fetch is counted too. The recorder drains its buffers on
    // a timer of its own: memory stays flat whether or not /metrics is scraped.
    let metrics = gha_auth_middleware::metrics::install_prometheus().context("metrics recorder")?;

    let authority = cli.authority.trim_end_matches('/').to_owned();
    let issuer = cli.issuer.unwrap_or_else(|| authority.clone());
    let jwks = RemoteJwks::builder(format!("{authority}/.well-known/jwks.json"))
        .danger_accept_plain_http(cli.danger_accept_plain_http)
        .build()
        .context("JWKS source")?;
    let mut builder = AuthLayer::builder()
        .issuer(issuer)
        .audience(&cli.audience)
        .key_source(jwks)
        .revocation_feed(
            RevocationFeed::for_authority(&authority)
                .poll_interval_bounds(
                    Duration::from_secs(cli.revocation_poll_min),
                    Duration::from_secs(cli.revocation_poll_max),
                )
                .danger_accept_plain_http(cli.danger_accept_plain_http),
        );
    let source: Option<Arc<dyn LinkKeySource>> = match (
        &cli.link_keys_file,
        &cli.link_keys_client_id,
        &cli.link_keys_client_secret_file,
    ) {
        (Some(path), _, _) => Some(Arc::new(
            StaticLinkKeys::from_file(path).context("link-key file")?,
        )),
        (None, Some(client_id), Some(secret_file)) => {
            let secret = read_secret_file(secret_file)?;
            let mut settings = AuthorityLinkKeys::new(&authority, client_id, secret);
            settings.refresh.min_interval =
                Duration::from_secs(cli.link_keys_min_refresh_seconds.max(1));
            settings.accept_plain_http = cli.danger_accept_plain_http;
            let source = settings
                .start(SystemClock::shared())
                .map_err(|e| anyhow::anyhow!("link-key source: {e}"))?;
            Some(Arc::new(source))
        }
        _ => None,
    };
    if let (Some(source), Some(tenant)) = (source, &cli.epicor_tenant) {
        builder = builder.link_key(
            LinkKeyIntegration::from_shared(EPICOR_LINK_KEY, source)
                .scopes([SCOPE_EPICOR_UPDATE])
                .tenant(tenant)
                .accept_legacy_format(cli.accept_legacy_link_key),
        );
    }
    let auth = builder.build().context("auth layer")?;
    if !auth.wait_ready(Duration::from_secs(5)).await {
        tracing::warn!(%authority, "no key set yet; requests are refused until the authority answers");
    }

    let router = app(auth, JobStore::new(SystemClock::shared()), Some(metrics));
    let router = with_cors(router, &cli.cors_origins).context("--cors-origin")?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listen on {}", cli.listen))?;
    tracing::info!(listen = %cli.listen, audience = %cli.audience, "field-service ready");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server")?;
    tracing::info!("field-service stopped");
    Ok(())
}

/// Reads a client secret from a file only its owner may read.
fn read_secret_file(path: &Path) -> anyhow::Result<SecretString> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("secret file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "secret file {} must be readable by its owner only (chmod 600)",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("secret file {}", path.display()))?;
    Ok(SecretString::from(text.trim()))
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
