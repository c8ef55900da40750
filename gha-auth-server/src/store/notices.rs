//! Change notices between processes sharing a PostgreSQL database (`LISTEN`/`NOTIFY`).
//!
//! A process that changes shared state other replicas hold in memory (the signing-key ring)
//! sends a notice on its channel after the change is committed; every replica listens and
//! re-reads at once, so an emergency rotation reaches them within about a second instead of at
//! their next periodic sync (which stays, as the fallback for a lost notice or a broken
//! listening connection). SQLite is one node: notices are no-ops there.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{Backend, Store};

/// The channel of signing-key ring changes.
pub(crate) const KEYS_CHANNEL: &str = "gha_auth_keys";

/// How long to wait before listening again after the connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// Listens on one channel of a PostgreSQL store.
#[derive(Debug)]
pub(crate) struct Notices {
    store: Store,
    channel: &'static str,
}

impl Store {
    /// Tells the other processes that the state behind `channel` changed (PostgreSQL; nothing on
    /// SQLite). A failure is logged: the listeners' periodic sync still picks the change up.
    pub(crate) async fn notify(&self, channel: &'static str) {
        if self.backend != Backend::Postgres {
            return;
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(channel)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(channel, error = %e, "could not send a change notice; replicas pick the change up at their next sync");
        }
    }

    /// Notices on `channel`, or `None` on SQLite (one node: nothing to hear).
    pub(crate) fn notices(&self, channel: &'static str) -> Option<Notices> {
        (self.backend == Backend::Postgres).then(|| Notices {
            store: self.clone(),
            channel,
        })
    }
}

impl Notices {
    /// Calls `on_notice` for every notice until `shutdown`, and once each time listening
    /// (re)starts, since notices sent while not listening are lost. Reconnects after a failure.
    pub(crate) async fn follow<F, Fut>(self, mut on_notice: F, shutdown: impl Future<Output = ()>)
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = ()> + Send,
    {
        tokio::pin!(shutdown);
        let Some(url) = self.store.listen_url.clone() else {
            return;
        };
        loop {
            let listening = async {
                let mut listener = PgListener::connect(url.expose()).await?;
                listener.listen(self.channel).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                result = listening => match result {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::debug!(channel = self.channel, error = %e, "cannot listen for change notices yet");
                        tokio::select! {
                            () = tokio::time::sleep(RELISTEN_AFTER) => continue,
                            () = &mut shutdown => return,
                        }
                    }
                },
                () = &mut shutdown => return,
            };
            tracing::debug!(channel = self.channel, "listening for change notices");
            on_notice().await;
            loop {
                tokio::select! {
                    received = listener.try_recv() => match received {
                        Ok(Some(_)) => on_notice().await,
                        // The connection was lost: listen again (and catch up).
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(channel = self.channel, error = %e, "change notices interrupted");
                            break;
                        }
                    },
                    () = &mut shutdown => return,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
                () = &mut shutdown => return,
            }
        }
    }
}
