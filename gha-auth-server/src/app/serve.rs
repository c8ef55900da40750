//! Serving: the listener (plain or TLS), the background tasks (key scheduler, link-key drivers,
//! broker audit flush, housekeeping) and a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use thiserror::Error;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::{App, Authority, router};
use crate::keys::run_scheduler;
use crate::transport::server::{self, ConnectionLimits};
use crate::transport::tls;

/// Serving failed after start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The server task panicked or was cancelled.
    #[error("server task failed: {0}")]
    Task(String),
}

impl App {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The authority's parts (clients, keys, store) for tests and embedding.
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }

    /// The full router with its layers.
    pub fn router(&self) -> Router {
        let (routes, _) = router::routes(&self.state);
        router::with_layers(
            routes.with_state(self.state.clone()),
            &self.authority.config.http,
        )
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to
    /// `http.shutdown_grace`) and stops the background tasks.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router = self.router();
        let authority = self.authority;
        let config = &authority.config;
        let oauth = &authority.oauth;
        let clock = oauth.clock.clone();
        let grace = config.http.shutdown_grace.as_std();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(run_scheduler(
                oauth.keys.clone(),
                clock.clone(),
                config.keys.refresh_interval.as_delta(),
                wait_for(stop_rx.clone()),
            )),
            tokio::spawn(maintenance(authority.clone(), wait_for(stop_rx.clone()))),
            tokio::spawn(oauth.audit.clone().run_flush(wait_for(stop_rx.clone()))),
            tokio::spawn(crate::keys::follow_changes(
                oauth.keys.clone(),
                oauth.store.clone(),
                wait_for(stop_rx.clone()),
            )),
            tokio::spawn(
                authority
                    .broker
                    .clone()
                    .run_audit_flush(clock.clone(), wait_for(stop_rx.clone())),
            ),
            tokio::spawn(
                authority
                    .validators
                    .clone()
                    .run_refusal_flush(wait_for(stop_rx.clone())),
            ),
        ];
        // Each link key's driver ticks at once: a rotation missed while down runs now.
        tasks.extend(
            authority
                .validators
                .link_keys
                .spawn(|| wait_for(stop_rx.clone())),
        );
        if !authority.monitor.is_empty() {
            tasks.push(tokio::spawn(
                authority.monitor.clone().run(wait_for(stop_rx.clone())),
            ));
        }
        tracing::info!(listen = %self.local_addr, issuer = %oauth.issuer, store = oauth.store.backend().name(), "gha-auth ready");

        let stop_signal = stop_tx.clone();
        let trigger = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop_signal.send(true);
        });
        let tls = match &self.tls {
            Some(reloader) => {
                tasks.push(tokio::spawn(reloader.clone().watch(
                    config.tls.reload_interval.as_std(),
                    wait_for(stop_rx.clone()),
                )));
                Some(TlsAcceptor::from(tls::server_config(reloader.clone())?))
            }
            None => None,
        };
        let limits = ConnectionLimits {
            header_read_timeout: config.http.header_read_timeout.as_std(),
            max_connections: config.http.max_connections,
        };
        let mut server = tokio::spawn(server::serve(
            self.listener,
            tls,
            router,
            limits,
            wait_for(stop_rx.clone()),
        ));
        let result = tokio::select! {
            joined = &mut server => joined.map_err(|e| ServeError::Task(e.to_string())),
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
        for task in tasks {
            let _ = task.await;
        }
        oauth.store.close().await;
        tracing::info!("stopped");
        result
    }

    /// Serves in a background task; for tests and embedding.
    pub fn spawn(self) -> RunningApp {
        let authority = self.authority.clone();
        let addr = self.local_addr;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(async move {
            let _ = stopped.await;
        }));
        RunningApp {
            authority,
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
    authority: Arc<Authority>,
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

    /// The authority's parts.
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
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
async fn maintenance(authority: Arc<Authority>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let store = &authority.oauth.store;
    let clock = &authority.oauth.clock;
    loop {
        let now = clock.unix_seconds();
        match crate::clients::purge_assertion_jtis(store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired assertion ids removed"),
            Err(e) => tracing::warn!(error = %e, "could not purge assertion ids"),
        }
        if let Err(e) = crate::refresh::purge_expired(store, now).await {
            tracing::warn!(error = %e, "could not purge expired refresh-token families");
        }
        match crate::revocations::prune_expired(store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "expired revocations removed"),
            Err(e) => tracing::warn!(error = %e, "could not prune expired revocations"),
        }
        if let Err(e) =
            crate::users::purge_login_failures(store, &authority.config.users, now).await
        {
            tracing::warn!(error = %e, "could not purge login failures");
        }
        tokio::select! {
            () = clock.sleep(chrono::TimeDelta::minutes(10)) => {}
            () = &mut shutdown => break,
        }
    }
}
