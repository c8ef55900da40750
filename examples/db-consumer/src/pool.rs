//! A PostgreSQL pool that follows rotating credentials.
//!
//! The credentials come from the broker through a [`DatabaseCredsHandle`]. When a new set
//! arrives, a new pool is built with it and checked with one connection; only then is it
//! swapped in, and the old pool is closed gracefully: it takes no new queries and its
//! connections close as the queries running on them finish. A query the database refuses for a
//! bad password (`28P01`, or `28000` for a dropped role) makes the handle fetch at once
//! ([`DatabaseCredsHandle::refresh_now`]) and is retried on the next pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gha_auth::broker::DatabaseCredsResponse;
use gha_auth::consumer::DatabaseCredsHandle;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::watch;

/// SQLSTATE of a refused password.
const INVALID_PASSWORD: &str = "28P01";
/// SQLSTATE of a refused authorization (e.g. the role was dropped when its lease ended).
const INVALID_AUTHORIZATION: &str = "28000";

/// How the pools are built.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections per pool (default 4).
    pub max_connections: u32,
    /// Connections opened ahead (default 1): a pool keeps working on them through a rotation
    /// that refuses new connections.
    pub min_connections: u32,
    /// How long a query waits for a connection (default 5 s).
    pub acquire_timeout: Duration,
    /// How long a query waits for new credentials after an authentication failure (default
    /// 10 s).
    pub refresh_wait: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 4,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            refresh_wait: Duration::from_secs(10),
        }
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The database refused the query or could not be reached (no secret in the message:
    /// sqlx errors name the server, never the password).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker has no usable credentials (stale beyond their expiry).
    #[error("credentials: {0}")]
    Credentials(#[from] gha_auth::consumer::ConsumerError),
}

/// Counters of the pool switching, for the health endpoint and tests.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Serial of the credentials the current pool uses.
    pub credential_serial: u64,
    /// The database user of the current pool.
    pub username: String,
    /// Pools built (the first included).
    pub pools_built: u64,
    /// Pools built with new credentials that failed their first connection.
    pub pool_build_failures: u64,
    /// Old pools closed after a switch.
    pub pools_drained: u64,
    /// Queries refused for authentication (each triggered a refresh).
    pub auth_failures: u64,
    /// Queries retried (on a new pool, or after a pool closed under them).
    pub retries: u64,
    /// Queries that succeeded.
    pub queries_ok: u64,
    /// Queries that failed after the retry.
    pub queries_failed: u64,
}

#[derive(Clone)]
struct CurrentPool {
    serial: u64,
    username: String,
    pool: PgPool,
}

#[derive(Default)]
struct Counters {
    pools_built: AtomicU64,
    pool_build_failures: AtomicU64,
    pools_drained: AtomicU64,
    auth_failures: AtomicU64,
    retries: AtomicU64,
    queries_ok: AtomicU64,
    queries_failed: AtomicU64,
}

/// A pool that follows the broker's credentials. Cheap to clone.
#[derive(Clone)]
pub struct RotatingPool {
    inner: Arc<Inner>,
}

struct Inner {
    creds: DatabaseCredsHandle,
    base: PgConnectOptions,
    settings: PoolSettings,
    current: watch::Sender<CurrentPool>,
    counters: Counters,
}

impl std::fmt::Debug for RotatingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // PgConnectOptions' Debug would print the password: not shown.
        f.debug_struct("RotatingPool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// The answer of `SELECT current_user, now()`.
#[derive(Debug, Clone, Serialize)]
pub struct QueryAnswer {
    /// The database user that ran the query.
    pub current_user: String,
    /// The database's time, as text.
    pub now: String,
    /// Serial of the credentials used.
    pub credential_serial: u64,
}

impl RotatingPool {
    /// Builds the first pool from the handle's current credentials (an error if they do not
    /// connect) and starts following the handle. `base` names the server and database; its user
    /// and password are replaced by the broker's.
    pub async fn start(
        creds: DatabaseCredsHandle,
        base: PgConnectOptions,
        settings: PoolSettings,
    ) -> anyhow::Result<Self> {
        let first = creds.current()?;
        let serial = creds.status().serial;
        let pool = build_pool(&base, &settings, &first).await?;
        let (current, _) = watch::channel(CurrentPool {
            serial,
            username: first.username.clone(),
            pool,
        });
        let inner = Arc::new(Inner {
            creds,
            base,
            settings,
            current,
            counters: Counters::default(),
        });
        inner.counters.pools_built.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(follow(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Runs `SELECT current_user, now()`, retrying once on the next pool after an
    /// authentication failure or a pool that closed under the query.
    pub async fn query(&self) -> Result<QueryAnswer, QueryError> {
        let counters = &self.inner.counters;
        let outcome = self.query_once().await;
        let outcome = match outcome {
            Err((error, used)) if is_auth_failure(&error) => {
                counters.auth_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(serial = used.serial, user = %used.username,
                    "database refused the credentials: asking the broker for new ones");
                self.wait_for_switch(used.serial).await;
                counters.retries.fetch_add(1, Ordering::Relaxed);
                self.query_once().await
            }
            Err((sqlx::Error::PoolClosed, _)) => {
                // The pool was swapped out between taking it and running the query.
                counters.retries.fetch_add(1, Ordering::Relaxed);
                self.query_once().await
            }
            other => other,
        };
        match outcome {
            Ok(answer) => {
                counters.queries_ok.fetch_add(1, Ordering::Relaxed);
                Ok(answer)
            }
            Err((error, _)) => {
                counters.queries_failed.fetch_add(1, Ordering::Relaxed);
                Err(error.into())
            }
        }
    }

    async fn query_once(&self) -> Result<QueryAnswer, (sqlx::Error, CurrentPool)> {
        let current = self.inner.current.borrow().clone();
        let row: Result<(String, String), sqlx::Error> =
            sqlx::query_as("SELECT current_user::text, now()::text")
                .fetch_one(&current.pool)
                .await;
        match row {
            Ok((current_user, now)) => Ok(QueryAnswer {
                current_user,
                now,
                credential_serial: current.serial,
            }),
            Err(error) => Err((error, current)),
        }
    }

    /// Waits until a pool newer than `serial` is in place, up to the refresh wait, asking the
    /// broker again every second meanwhile: right after a forced rotation the broker may still
    /// hand out the old password until it has re-read it.
    async fn wait_for_switch(&self, serial: u64) {
        let mut rx = self.inner.current.subscribe();
        let asking = async {
            loop {
                self.inner.creds.refresh_now();
                let newer = rx.wait_for(|current| current.serial > serial);
                if tokio::time::timeout(Duration::from_secs(1), newer)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(self.inner.settings.refresh_wait, asking).await;
    }

    /// The current pool (for callers with their own queries).
    pub fn pool(&self) -> PgPool {
        self.inner.current.borrow().pool.clone()
    }

    /// The credentials handle.
    pub fn credentials(&self) -> &DatabaseCredsHandle {
        &self.inner.creds
    }

    /// A snapshot of the counters.
    pub fn status(&self) -> PoolStatus {
        let counters = &self.inner.counters;
        let current = self.inner.current.borrow();
        PoolStatus {
            credential_serial: current.serial,
            username: current.username.clone(),
            pools_built: counters.pools_built.load(Ordering::Relaxed),
            pool_build_failures: counters.pool_build_failures.load(Ordering::Relaxed),
            pools_drained: counters.pools_drained.load(Ordering::Relaxed),
            auth_failures: counters.auth_failures.load(Ordering::Relaxed),
            retries: counters.retries.load(Ordering::Relaxed),
            queries_ok: counters.queries_ok.load(Ordering::Relaxed),
            queries_failed: counters.queries_failed.load(Ordering::Relaxed),
        }
    }
}

/// Follows the credentials: a new pool for each new set, the old one drained. Stops when the
/// last [`RotatingPool`] is dropped.
async fn follow(inner: std::sync::Weak<Inner>) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let mut changes = strong.creds.subscribe();
    drop(strong);
    while changes.changed().await.is_ok() {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let creds = Arc::clone(&changes.borrow_and_update());
        let serial = inner.creds.status().serial;
        match build_pool(&inner.base, &inner.settings, &creds).await {
            Ok(pool) => {
                inner.counters.pools_built.fetch_add(1, Ordering::Relaxed);
                let old = inner.current.send_replace(CurrentPool {
                    serial,
                    username: creds.username.clone(),
                    pool,
                });
                tracing::info!(serial, user = %creds.username, old_user = %old.username,
                    "switched to a pool with new credentials; draining the old one");
                let drained = Arc::clone(&inner);
                tokio::spawn(async move {
                    // Waits for the queries on the old pool to finish, then closes it.
                    old.pool.close().await;
                    drained
                        .counters
                        .pools_drained
                        .fetch_add(1, Ordering::Relaxed);
                });
            }
            Err(error) => {
                inner
                    .counters
                    .pool_build_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(serial, user = %creds.username, error = %error,
                    "new credentials did not connect; keeping the current pool");
                if is_auth_failure(&error) {
                    inner.creds.refresh_now();
                }
            }
        }
    }
}

async fn build_pool(
    base: &PgConnectOptions,
    settings: &PoolSettings,
    creds: &DatabaseCredsResponse,
) -> Result<PgPool, sqlx::Error> {
    let options = base
        .clone()
        .username(&creds.username)
        .password(creds.password.expose());
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        // Connections live until the pool is drained, not past the credential: a dynamic
        // user's connections go when its pool is replaced.
        .max_lifetime(None)
        .idle_timeout(None)
        // Opens one connection now: credentials that do not work are never swapped in.
        .connect_with(options)
        .await
}

/// Whether the database refused the credentials.
pub fn is_auth_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code == INVALID_PASSWORD || code == INVALID_AUTHORIZATION),
        _ => false,
    }
}
