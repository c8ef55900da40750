//! The composition root: opens the services, builds every feature's state from its section of
//! the configuration, merges the features' routers and serves them with the background tasks.
//! Nothing imports this module; it imports every feature.
//!
//! [`build_app`] does everything up to a bound listener, so a test can run the service
//! in-process on `127.0.0.1:0` with a [`gha_auth::ManualClock`] and then [`App::spawn`] it;
//! `gha-auth serve` calls [`App::serve`] with a shutdown signal.

mod authority;
mod router;
mod serve;
mod state;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use gha_auth::{SharedClock, SystemClock};
use thiserror::Error;
use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::audit::aggregate::Refusals;
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::broker::Broker;
use crate::caller::Callers;
use crate::config::{Config, ConfigError};
use crate::health::{Health, HealthCheck};
use crate::keys::{SigningKeysCheck, node_name};
use crate::linkkeys::http::Validators;
use crate::linkkeys::{LinkKeys, LinkKeysError};
use crate::metrics::{Collector, Metrics};
use crate::monitor::{Monitor, MonitorError};
use crate::oauth::OAuth;
use crate::ratelimit::RateLimits;
use crate::refresh::Families;
use crate::revocations::Feed;
use crate::services::{OpenError, Services};
use crate::session::Sessions;
use crate::terminal::Output;
use crate::transport::tls::{CertReloader, TlsError};
use crate::users::{UserError, Users};
use crate::vault::VaultCheck;
use crate::wellknown::Discovery;

pub use authority::Authority;
pub use serve::{RunningApp, ServeError};
use state::AppState;

/// The service could not start. Separate from request-time errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store, keys or Vault could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The signing keys could not be brought up to date.
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyManagerError),
    /// The user store could not be set up (`[users]`).
    #[error("users: {0}")]
    Users(#[from] UserError),
    /// The link keys could not be set up.
    #[error(transparent)]
    LinkKeys(#[from] LinkKeysError),
    /// The broker could not reach Vault's engines.
    #[error("broker: {0}")]
    Broker(#[from] gha_auth::vault::VaultError),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The health board could not be set up.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
}

/// A configured service with a bound listener, ready to serve.
#[derive(Debug)]
pub struct App {
    authority: Arc<Authority>,
    state: AppState,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<CertReloader>>,
}

/// Checks `config`, opens the store and keys, runs missed rotations and binds the listener.
pub async fn build_app(config: Config, clock: SharedClock) -> Result<App, StartError> {
    config.check()?;
    if config.dev_mode {
        tracing::warn!(
            "dev_mode is on: development keys are accepted. Never run this in production"
        );
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let tls = match config.tls.files() {
        Some((cert, key)) => Some(Arc::new(CertReloader::new(cert, key)?)),
        None => None,
    };
    let actor = format!("scheduler@{}", node_name());
    let services = Services::open(&config, clock.clone(), &actor).await?;
    // The server makes the first signing key, so its configuration decides the algorithm.
    let keys = services.signing_keys().await?;
    // Missed rotations (the service was down) run now, before the first request.
    keys.sync().await?;
    let issuer = config.issuer_for(local_addr);
    let token_endpoint = format!(
        "{}{}",
        issuer.trim_end_matches('/'),
        crate::oauth::TOKEN_PATH
    );
    // Installs the process-wide metrics recorder before the first request.
    crate::metrics::install(describe_metrics);
    let authority =
        Arc::new(assemble(config, services, keys, &actor, issuer, token_endpoint).await?);
    let state = authority.app_state();
    authority
        .oauth
        .audit
        .record_or_log(
            AuditEvent::new(
                AuditKind::ServerStarted,
                &actor,
                authority.issuer(),
                Outcome::Success,
            )
            .detail("listen", local_addr.to_string())
            .detail("store", authority.oauth.store.backend().name()),
        )
        .await;
    Ok(App {
        authority,
        state,
        listener,
        local_addr,
        tls,
    })
}

/// Builds every feature's state from its section of `config` and the opened services.
async fn assemble(
    config: Config,
    services: Services,
    keys: Arc<crate::keys::KeyManager>,
    actor: &str,
    issuer: String,
    token_endpoint: String,
) -> Result<Authority, StartError> {
    let Services {
        store,
        audit,
        key_store,
        clients,
        vault,
        link_key_store,
        broker_secrets,
        clock,
        keys_in_vault,
        ..
    } = services;
    let limits = Arc::new(RateLimits::new(&config.rate_limit, clock.clone()));
    let users = Users::new(
        store.clone(),
        audit.clone(),
        clock.clone(),
        config.users.clone(),
    )
    .await?;
    let families = Families::new(
        store.clone(),
        clients.pepper_arc(),
        audit.clone(),
        clock.clone(),
        config.refresh.clone(),
    );
    let admin_link_key_store = link_key_store.clone();
    let link_keys = Arc::new(
        LinkKeys::open(
            &config.link_keys,
            &config.alerts,
            link_key_store,
            vault.clone(),
            clock.clone(),
            audit.clone(),
            actor,
        )
        .await?,
    );
    let local_secrets = broker_secrets.clone();
    let broker = Arc::new(Broker::open(
        &config.broker,
        config.broker_kv_mount(),
        config.broker_reserved_prefixes(),
        vault.as_ref(),
        broker_secrets,
        audit.clone(),
        clock.clone(),
    )?);
    let oauth = Arc::new(OAuth {
        issuer: issuer.clone(),
        token_endpoint: token_endpoint.clone(),
        introspection_endpoint: format!(
            "{}{}",
            issuer.trim_end_matches('/'),
            crate::oauth::INTROSPECT_PATH
        ),
        revocation_endpoint: format!(
            "{}{}",
            issuer.trim_end_matches('/'),
            crate::oauth::REVOKE_PATH
        ),
        clock: clock.clone(),
        keys: keys.clone(),
        store: store.clone(),
        clients,
        users,
        families,
        audit: audit.clone(),
        limits: limits.clone(),
        tokens: config.tokens.clone(),
        max_body_bytes: config.http.max_body_bytes,
    });
    let mut checks: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(crate::store::StoreCheck::new(
            store.clone(),
            clock.clone(),
            config.clients.outage_window.as_delta(),
        )),
        Arc::new(SigningKeysCheck {
            keys: keys.clone(),
            clock: clock.clone(),
            refresh_interval: config.keys.refresh_interval.as_delta(),
            key_store: key_store.describe(),
        }),
    ];
    if let Some(session) = &vault {
        checks.push(Arc::new(VaultCheck {
            session: session.clone(),
            holds_signing_keys: keys_in_vault,
        }));
    }
    checks.push(broker.clone());
    if !link_keys.is_empty() {
        checks.push(link_keys.clone());
    }
    let monitor = Arc::new(Monitor::new(
        config.monitor.clone(),
        config
            .alerts
            .url()
            .map_err(MonitorError::Setup)?
            .map(|url| {
                crate::linkkeys::alert::AlertWebhook::new(
                    url,
                    config.alerts.timeout.as_std(),
                    config.alerts.attempts,
                )
            })
            .transpose()
            .map_err(MonitorError::Setup)?,
        store.clone(),
        clock.clone(),
        format!("{actor}/{}", crate::monitor::instance_id()),
    )?);
    let mut collectors: Vec<Collector> = Vec::new();
    {
        let monitor = monitor.clone();
        collectors.push(Arc::new(move || monitor.update_gauges()));
    }
    {
        let (keys, clock) = (keys.clone(), clock.clone());
        collectors.push(Arc::new(move || {
            crate::keys::update_gauges(&keys, clock.now())
        }));
    }
    if let Some(session) = vault.clone() {
        collectors.push(Arc::new(move || crate::vault::update_gauges(&session)));
    }
    {
        let broker = broker.clone();
        collectors.push(Arc::new(move || broker.update_gauges()));
    }
    let admin = Arc::new(Admin {
        oauth: oauth.clone(),
        broker: broker.clone(),
        link_keys: config.link_keys.clone(),
        link_key_store: admin_link_key_store,
        local_secrets,
        secrets_vault_mount: config
            .vault
            .address
            .is_some()
            .then(|| config.broker_kv_mount().to_owned()),
    });
    Ok(Authority {
        admin,
        sessions: Arc::new(Sessions {
            oauth: oauth.clone(),
            config: config.session.clone(),
        }),
        discovery: Arc::new(Discovery::new(
            issuer.clone(),
            token_endpoint,
            keys.clone(),
            oauth.clients.clone(),
            clock.clone(),
        )),
        feed: Arc::new(Feed::new(
            issuer.clone(),
            clock.clone(),
            keys.clone(),
            store.clone(),
            config.revocations.clone(),
        )),
        callers: Arc::new(Callers::new(
            issuer,
            clock.clone(),
            keys,
            store,
            config.api_auth.clone(),
        )),
        validators: Arc::new(Validators {
            link_keys,
            audit,
            clock: clock.clone(),
            refusals: Refusals::new(crate::linkkeys::http::DENIALS_WRITTEN_AT_ONCE),
            limits,
        }),
        health: Health::new(checks, clock),
        metrics: Metrics::new(collectors),
        key_store_description: key_store.describe(),
        monitor,
        oauth,
        broker,
        config,
    })
}

/// `gha-auth serve`: builds the app and serves until SIGINT or SIGTERM.
pub(crate) async fn serve(config: Config, out: &Output) -> ExitCode {
    let app = match build_app(config, SystemClock::shared()).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return out.failure(&e.to_string());
        }
    };
    match app.serve(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => out.failure(&e.to_string()),
    }
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// HELP text of every series the service exports.
fn describe_metrics() {
    crate::oauth::describe_metrics();
    crate::ratelimit::describe_metrics();
    crate::keys::describe_metrics();
    crate::vault::describe_metrics();
    crate::broker::describe_metrics();
    crate::caller::describe_metrics();
    crate::linkkeys::driver::describe_metrics();
    crate::monitor::describe_metrics();
}
