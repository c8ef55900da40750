//! Wiring: open the store and the keys, build the router, serve.
//!
//! [`build_app`] does everything up to a bound listener, so a test can run the service
//! in-process on `127.0.0.1:0` with a [`gha_auth::ManualClock`] and then [`App::spawn`] it;
//! `gha-auth serve` calls [`App::serve`] with a shutdown signal.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Router, middleware};
use gha_auth::SharedClock;
use gha_auth::vault::VaultSession;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::atrest::{AtRestError, MasterKey, create_private_dir};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::clients::ClientRegistry;
use crate::config::{Config, ConfigError};
use crate::keys::{
    KeyManager, KeyManagerError, KeySettings, KeyStore, KeyStoreError, LocalKeyStore,
    VaultKeyStore, load_import_pem, load_or_create_pepper, node_name, run_scheduler, schedule_from,
};
use crate::ratelimit::RateLimits;
use crate::store::{Store, StoreError};
use crate::transport::tls;
use crate::transport::tls::{CertReloader, TlsListener};
use crate::{health, metrics, oauth, openapi, ratelimit, revocations, session, wellknown};

/// The service could not start. Separate from request-time errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The master key failed.
    #[error(transparent)]
    AtRest(#[from] AtRestError),
    /// The key store failed.
    #[error("key store: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// The signing keys failed.
    #[error("signing keys: {0}")]
    Keys(#[from] KeyManagerError),
    /// Vault could not be reached or logged in to.
    #[error("vault: {0}")]
    Vault(String),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] crate::transport::tls::TlsError),
    /// `keys.import_pem` is unusable.
    #[error("{0}")]
    ImportKey(String),
}

/// Serving failed after start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("server task failed: {0}")]
    Task(String),
}

/// State shared by every handler.
pub struct AppState {
    pub(crate) config: Config,
    pub(crate) issuer: String,
    pub(crate) token_endpoint: String,
    pub(crate) store: Store,
    pub(crate) clients: ClientRegistry,
    pub(crate) keys: Arc<KeyManager>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) clock: SharedClock,
    pub(crate) key_store_description: String,
    pub(crate) limits: Arc<RateLimits>,
    pub(crate) vault: Option<VaultSession>,
    pub(crate) users: crate::users::Users,
    pub(crate) callers: crate::caller::TokenCache,
    pub(crate) link_keys: Arc<crate::linkkeys::LinkKeys>,
    pub(crate) revocation_feed: crate::revocations::FeedCache,
    pub(crate) broker: Arc<crate::broker::Broker>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.issuer)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The client registry (what `gha-auth clients …` uses).
    pub fn clients(&self) -> &ClientRegistry {
        &self.clients
    }

    /// The key manager.
    pub fn keys(&self) -> &Arc<KeyManager> {
        &self.keys
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the signing keys live, e.g. `local (sqlite)` or `vault (secret/gha-auth/keys)`.
    pub fn key_store_description(&self) -> &str {
        &self.key_store_description
    }

    /// The secrets broker.
    pub fn broker(&self) -> &Arc<crate::broker::Broker> {
        &self.broker
    }

    /// The configured link keys and their rotation drivers.
    pub fn link_keys(&self) -> &Arc<crate::linkkeys::LinkKeys> {
        &self.link_keys
    }

    pub(crate) fn keys_in_vault(&self) -> bool {
        self.vault.is_some() && self.config.keys_in_vault()
    }
}

/// The store, keys and registries, opened on one configuration. The server and every admin
/// command use the same, so they work on the same data.
#[derive(Debug)]
#[non_exhaustive]
pub struct Services {
    /// The store.
    pub store: Store,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Where key documents live.
    pub key_store: Arc<dyn KeyStore>,
    /// Clients.
    pub clients: ClientRegistry,
    /// Signing keys.
    pub keys: Arc<KeyManager>,
    /// The Vault session, when Vault is configured.
    pub vault: Option<VaultSession>,
    /// Where link-key state lives (Vault KV v2, else sealed in the store).
    pub link_key_store: Arc<dyn crate::linkkeys::LinkKeyStore>,
    /// The broker's local secrets (sealed in the store; served when Vault is not configured).
    pub broker_secrets: crate::broker::local::LocalSecrets,
    /// The clock everything was opened with.
    pub clock: SharedClock,
}

impl Services {
    /// Opens everything `config` describes. `actor` names this process in audit events
    /// (`cli`, `scheduler@host:pid`). The signing-key ring is created if missing, not advanced.
    pub async fn open(
        config: &Config,
        clock: SharedClock,
        actor: &str,
    ) -> Result<Self, StartError> {
        create_private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let schedule = schedule_from(&config.keys, config.tokens.max_lifetime).map_err(|e| {
            ConfigError::Invalid(vec![crate::config::ConfigProblem::new(
                "keys",
                e.to_string(),
            )])
        })?;
        let store = Store::open(&config.store_url(), config.store.max_connections).await?;
        let master = Arc::new(MasterKey::load_or_create(&config.master_key_path())?);
        let vault = match crate::vault::vault_config(&config.vault).map_err(|message| {
            ConfigError::Invalid(vec![crate::config::ConfigProblem::new("vault", message)])
        })? {
            Some(vault_config) => {
                let session = VaultSession::start(&vault_config, clock.clone())
                    .map_err(|e| StartError::Vault(e.to_string()))?;
                session
                    .ready(config.vault.request_timeout.as_std())
                    .await
                    .map_err(|e| StartError::Vault(e.to_string()))?;
                Some(session)
            }
            None => None,
        };
        let key_store: Arc<dyn KeyStore> = match (&vault, config.keys_in_vault()) {
            (Some(session), true) => {
                let kv = session
                    .kv2(&config.vault.kv_mount)
                    .map_err(|e| StartError::Vault(e.to_string()))?;
                Arc::new(VaultKeyStore::new(kv, &config.vault.key_prefix))
            }
            _ => Arc::new(LocalKeyStore::new(
                store.clone(),
                master.clone(),
                clock.clone(),
                node_name(),
            )),
        };
        let link_key_store = crate::linkkeys::link_key_store(
            vault.as_ref().map(|s| {
                (
                    s,
                    config.vault.kv_mount.as_str(),
                    config.vault.link_key_prefix.as_str(),
                )
            }),
            &store,
            master.clone(),
            clock.clone(),
            actor,
        )
        .map_err(|e| StartError::Vault(e.to_string()))?;
        let broker_secrets =
            crate::broker::local::LocalSecrets::new(store.clone(), master.clone(), clock.clone());
        let audit = Arc::new(AuditLog::new(store.clone(), clock.clone()));
        let pepper = Arc::new(load_or_create_pepper(&*key_store).await?);
        let initial_key = match &config.keys.import_pem {
            Some(path) => {
                Some(load_import_pem(path, config.dev_mode).map_err(StartError::ImportKey)?)
            }
            None => None,
        };
        let settings = KeySettings::new(schedule, config.keys.algorithm.algorithm())
            .dev_mode(config.dev_mode)
            .initial_key(initial_key);
        let keys = Arc::new(
            KeyManager::open(
                key_store.clone(),
                settings,
                clock.clone(),
                audit.clone(),
                actor,
            )
            .await?,
        );
        let clients = ClientRegistry::new(
            store.clone(),
            pepper,
            audit.clone(),
            clock.clone(),
            config.tokens.max_lifetime.as_delta(),
        )
        .with_cache_ttl(config.clients.cache_ttl.as_delta());
        Ok(Self {
            store,
            audit,
            key_store,
            clients,
            keys,
            vault,
            link_key_store,
            broker_secrets,
            clock,
        })
    }
}

/// A configured service with a bound listener, ready to serve.
#[derive(Debug)]
pub struct App {
    state: Arc<AppState>,
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
    // Missed rotations (the service was down) run now, before the first request.
    services.keys.sync().await?;
    let issuer = config.issuer_for(local_addr);
    let token_endpoint = format!("{}{}", issuer.trim_end_matches('/'), oauth::TOKEN_PATH);
    // Installs the process-wide metrics recorder before the first request.
    let _ = crate::metrics::handle();
    let limits = Arc::new(RateLimits::new(&config.rate_limit, clock.clone()));
    let users = crate::users::Users::new(
        services.store.clone(),
        services.audit.clone(),
        clock.clone(),
        config.users.clone(),
    )
    .await
    .map_err(|e| {
        ConfigError::Invalid(vec![crate::config::ConfigProblem::new(
            "users",
            e.to_string(),
        )])
    })?;
    let link_keys = Arc::new(
        crate::linkkeys::LinkKeys::open(
            &config.link_keys,
            &config.alerts,
            services.link_key_store.clone(),
            services.vault.clone(),
            clock.clone(),
            services.audit.clone(),
            &actor,
        )
        .await
        .map_err(|e| {
            ConfigError::Invalid(vec![crate::config::ConfigProblem::new(
                "link_keys",
                e.to_string(),
            )])
        })?,
    );
    let broker = Arc::new(
        crate::broker::Broker::open(
            &config.broker,
            config.broker_kv_mount(),
            config.broker_reserved_prefixes(),
            services.vault.as_ref(),
            services.broker_secrets.clone(),
            services.audit.clone(),
            clock.clone(),
        )
        .map_err(|e| StartError::Vault(e.to_string()))?,
    );
    let callers = crate::caller::TokenCache::new(config.api_auth.token_cache_size);
    let state = Arc::new(AppState {
        broker,
        callers,
        link_keys,
        limits,
        vault: services.vault,
        users,
        revocation_feed: crate::revocations::FeedCache::default(),
        key_store_description: services.key_store.describe(),
        config,
        issuer,
        token_endpoint,
        store: services.store,
        clients: services.clients,
        keys: services.keys,
        audit: services.audit,
        clock,
    });
    state
        .audit
        .record_or_log(
            AuditEvent::new(
                AuditKind::ServerStarted,
                &actor,
                &state.issuer,
                Outcome::Success,
            )
            .detail("listen", local_addr.to_string())
            .detail("store", state.store.backend().name()),
        )
        .await;
    Ok(App {
        state,
        listener,
        local_addr,
        tls,
    })
}

/// The routes, recorded as they are added so that [`route_list`] cannot drift from the router.
/// Every route must also be in the OpenAPI document ([`crate::openapi`]); a test checks it.
struct RouteTable {
    router: Router<Arc<AppState>>,
    list: Vec<(&'static str, &'static str)>,
}

impl RouteTable {
    fn add(
        self,
        method: &'static str,
        path: &'static str,
        route: axum::routing::MethodRouter<Arc<AppState>>,
    ) -> Self {
        self.add_documented(method, path, path, route)
    }

    /// A route whose axum path differs from its OpenAPI path (a `{*wildcard}` is `{wildcard}`
    /// there); the list records the documented one.
    fn add_documented(
        mut self,
        method: &'static str,
        path: &'static str,
        documented: &'static str,
        route: axum::routing::MethodRouter<Arc<AppState>>,
    ) -> Self {
        self.router = self.router.route(path, route);
        self.list.push((method, documented));
        self
    }
}

fn route_table(state: &AppState) -> RouteTable {
    let per_source = middleware::from_fn_with_state(state.limits.clone(), ratelimit::per_source);
    // CORS with credentials for the allowed origins, on the session routes only; outside the
    // rate limit so a 429 still reaches the page.
    let cors = session::cors_layer(&state.config.session);
    RouteTable {
        router: Router::new(),
        list: Vec::new(),
    }
    .add(
        "post",
        session::LOGIN_PATH,
        post(session::login_endpoint)
            .route_layer(per_source.clone())
            .layer(cors.clone()),
    )
    .add(
        "post",
        session::REFRESH_PATH,
        post(session::refresh_endpoint)
            .route_layer(per_source.clone())
            .layer(cors.clone()),
    )
    .add(
        "post",
        session::LOGOUT_PATH,
        post(session::logout_endpoint)
            .route_layer(per_source.clone())
            .layer(cors),
    )
    .add(
        "post",
        oauth::REVOKE_PATH,
        post(oauth::revoke_endpoint).route_layer(per_source.clone()),
    )
    .add(
        "post",
        oauth::INTROSPECT_PATH,
        post(oauth::introspect_endpoint).route_layer(per_source.clone()),
    )
    .add(
        "post",
        oauth::TOKEN_PATH,
        post(oauth::token_endpoint).route_layer(per_source),
    )
    .add(
        "get",
        revocations::FEED_PATH,
        get(revocations::revocations_endpoint),
    )
    .add("get", metrics::METRICS_PATH, get(metrics::metrics_endpoint))
    .add("get", wellknown::JWKS_PATH, get(wellknown::jwks))
    .add("get", wellknown::METADATA_PATH, get(wellknown::metadata))
    .add("get", health::HEALTH_PATH, get(health::health))
    .add("get", openapi::OPENAPI_PATH, get(openapi::openapi_json))
    .add(
        "get",
        crate::linkkeys::http::LIST_PATH,
        get(crate::linkkeys::http::list),
    )
    .add(
        "post",
        crate::linkkeys::http::USAGE_PATH,
        post(crate::linkkeys::http::usage),
    )
    .add_documented(
        "get",
        crate::broker::routes::SECRETS_ROUTE,
        crate::broker::routes::SECRETS_DOC_PATH,
        get(crate::broker::routes::read_secret),
    )
    .add(
        "post",
        crate::broker::routes::DATABASE_CREDS_ROUTE,
        post(crate::broker::routes::database_creds),
    )
}

/// The routes, without cross-cutting layers.
pub fn routes(state: Arc<AppState>) -> Router {
    route_table(&state).router.with_state(state)
}

/// Every route of [`routes`] as (lower-case method, path), for the OpenAPI completeness test.
pub fn route_list(state: &AppState) -> Vec<(&'static str, &'static str)> {
    route_table(state).list
}

/// The cross-cutting layers: request tracing (no headers, `Authorization` and cookies marked
/// sensitive), a request timeout, the body limit and request metrics. The per-source rate limit
/// is a route layer of the endpoints it guards (see [`routes`]).
pub fn http_layers(router: Router, config: &Config) -> Router {
    router
        .layer(middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(config.http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.http.request_timeout.as_std(),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
}

impl App {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (clients, keys, store) for tests and embedding.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The full router with its layers.
    pub fn router(&self) -> Router {
        http_layers(routes(self.state.clone()), &self.state.config)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to
    /// `http.shutdown_grace`) and stops the rotation scheduler.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router = self.router();
        let state = self.state;
        let grace = state.config.http.shutdown_grace.as_std();
        let (stop_tx, stop_rx) = watch::channel(false);
        let scheduler = tokio::spawn(run_scheduler(
            state.keys.clone(),
            state.clock.clone(),
            state.config.keys.refresh_interval.as_delta(),
            wait_for(stop_rx.clone()),
        ));
        let maintenance = tokio::spawn(maintenance(state.clone(), wait_for(stop_rx.clone())));
        let broker_audit = tokio::spawn(
            state
                .broker
                .clone()
                .run_audit_flush(state.clock.clone(), wait_for(stop_rx.clone())),
        );
        // Each link key's driver ticks at once: a rotation missed while down runs now.
        let rotators = state.link_keys.spawn(|| wait_for(stop_rx.clone()));
        tracing::info!(listen = %self.local_addr, issuer = %state.issuer, store = state.store.backend().name(), "gha-auth ready");

        let stop_signal = stop_tx.clone();
        let trigger = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop_signal.send(true);
        });
        let mut server = match &self.tls {
            Some(reloader) => {
                tokio::spawn(reloader.clone().watch(
                    state.config.tls.reload_interval.as_std(),
                    wait_for(stop_rx.clone()),
                ));
                let config = tls::server_config(reloader.clone())
                    .map_err(|e| ServeError::Task(e.to_string()))?;
                let listener = TlsListener::new(self.listener, config)?.tap_io(|_| {});
                tokio::spawn(
                    axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(wait_for(stop_rx.clone()))
                    .into_future(),
                )
            }
            None => tokio::spawn(
                axum::serve(
                    self.listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(wait_for(stop_rx.clone()))
                .into_future(),
            ),
        };
        let result = tokio::select! {
            joined = &mut server => match joined {
                Ok(result) => result.map_err(ServeError::from),
                Err(e) => Err(ServeError::Task(e.to_string())),
            },
            () = async {
                wait_for(stop_rx.clone()).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("in-flight requests did not finish within the shutdown grace period");
                server.abort();
                Ok(())
            }
        };
        let _ = stop_tx.send(true);
        trigger.abort();
        let _ = scheduler.await;
        let _ = maintenance.await;
        let _ = broker_audit.await;
        for rotator in rotators {
            let _ = rotator.await;
        }
        state.store.close().await;
        tracing::info!("stopped");
        result
    }

    /// Serves in a background task; for tests and embedding.
    pub fn spawn(self) -> RunningApp {
        let state = self.state.clone();
        let addr = self.local_addr;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(async move {
            let _ = stopped.await;
        }));
        RunningApp {
            state,
            addr,
            scheme,
            stop: Some(stop),
            task,
        }
    }
}

/// A service running in the background.
#[derive(Debug)]
pub struct RunningApp {
    state: Arc<AppState>,
    addr: SocketAddr,
    scheme: &'static str,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl RunningApp {
    /// `http://addr` (`https://addr` with TLS), for clients.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops the service gracefully and waits for it.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?
    }
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens at shutdown.
    let _ = rx.wait_for(|stopped| *stopped).await;
}

/// Housekeeping: forget expired assertion ids, refresh families, revocations and login failures.
async fn maintenance(state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        match state
            .store
            .purge_assertion_jtis(state.clock.unix_seconds())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired assertion ids removed"),
            Err(e) => tracing::warn!(error = %e, "could not purge assertion ids"),
        }
        let now = state.clock.unix_seconds();
        if let Err(e) = crate::refresh::purge_expired(&state.store, now).await {
            tracing::warn!(error = %e, "could not purge expired refresh-token families");
        }
        match revocations::prune_expired(&state.store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "expired revocations removed"),
            Err(e) => tracing::warn!(error = %e, "could not prune expired revocations"),
        }
        if let Err(e) =
            crate::users::purge_login_failures(&state.store, &state.config.users, now).await
        {
            tracing::warn!(error = %e, "could not purge login failures");
        }
        tokio::select! {
            () = state.clock.sleep(chrono::TimeDelta::minutes(10)) => {}
            () = &mut shutdown => break,
        }
    }
}
