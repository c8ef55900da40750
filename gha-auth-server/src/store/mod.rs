//! The store: SQLite (embedded default) or PostgreSQL, one implementation over
//! [`sqlx::AnyPool`] with portable SQL and shared migrations (see
//! `docs/decisions/0002-store.md`).
//!
//! Conventions that keep the SQL portable: `$1` placeholders (SQLite accepts them too), TEXT and
//! BIGINT columns only, times as Unix seconds, booleans as 0/1, hashes as lower-case hex, and
//! compare-and-set written as single conditional statements (`UPDATE … WHERE version = $n`,
//! `INSERT … ON CONFLICT DO NOTHING`) whose affected-row count says who won.

mod cas;
pub(crate) mod config;
mod health;
mod notices;
mod sealed;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use thiserror::Error;

pub(crate) use cas::{Change, MAX_ATTEMPTS, Versioned, read_modify_write};
pub(crate) use health::StoreCheck;
pub(crate) use notices::KEYS_CHANNEL;
pub(crate) use sealed::{CasOutcome, DocumentTable, SealedDocuments, SealedError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection by default: well under the request
/// timeout, so a database outage is answered promptly with 503 rather than a hang.
pub(crate) const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite (WAL mode).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// A short name for logs and health output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A store operation failed. The message never contains a secret or a full database URL.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported store URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    /// Could not prepare the SQLite directory.
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The SQLite database file could not be opened.
    #[error("cannot open the SQLite database {path}: {source}")]
    OpenFile {
        /// The file.
        path: String,
        /// What SQLite said.
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A row holds something this version cannot read.
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An insert collided with an existing row.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The row to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, no free connection in
    /// time): the request may succeed later, so it is answered 503 with `Retry-After`, and
    /// writes that can wait (audit rows) are kept until the database is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => is_unavailable(e),
            _ => false,
        }
    }
}

/// Connection-level failures of `sqlx`: pool timeouts, I/O, and the server's own "shutting
/// down" / "cannot connect now" / connection-exception codes (SQLSTATE classes 08 and 57P).
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// The database, shared by the server, the scheduler and the admin commands.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, for `LISTEN` connections (`None` on SQLite).
    listen_url: Option<Arc<gha_auth::SecretString>>,
    writer_turn: write::WriterTurn,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (creating the SQLite file and its directory if needed) and runs the
    /// migrations, waiting at most [`DEFAULT_ACQUIRE_TIMEOUT`] for a pooled connection.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::open_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// Like [`Store::open`], waiting at most `acquire_timeout` for a pooled connection: when the
    /// database is down, a request that needs it fails after this time (and is answered 503),
    /// so keep it well under the request timeout.
    pub async fn open_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url, file) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout.max(Duration::from_millis(50)));
        let pool = match backend {
            Backend::Sqlite => {
                pool_options
                    // A file does not drop connections; the check is a thread round trip.
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // Several processes (the server and admin commands) share the file.
                            sqlx::query("PRAGMA busy_timeout = 10000")
                                .execute(&mut *conn)
                                .await?;
                            // With WAL, NORMAL syncs at checkpoints instead of at every commit:
                            // still never corrupt and durable across process crashes; a power
                            // loss may undo the last commits (decision 0002).
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::OpenFile {
                        path: file
                            .as_deref()
                            .map_or_else(String::new, |f| f.display().to_string()),
                        source,
                    })?
            }
            Backend::Postgres => pool_options.connect_with(options).await?,
        };
        if backend == Backend::Sqlite {
            if let Some(file) = &file {
                restrict_permissions(file);
            }
            // Persistent in the file; lets readers proceed while one process writes.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let writer_turn =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let listen_url = (backend == Backend::Postgres)
            .then(|| Arc::new(gha_auth::SecretString::new(url.clone())));
        let store = Self {
            pool,
            backend,
            listen_url,
            writer_turn,
        };
        MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Checks the scheme and, for SQLite, creates the directory and asks for the file to be created;
/// returns the SQLite file's absolute path too.
fn normalize_url(url: &str) -> Result<(Backend, String, Option<PathBuf>), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned(), None));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(StoreError::UnsupportedUrl);
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::UnsupportedUrl);
    }
    let path = Path::new(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    // An absolute path keeps the URL unambiguous (`sqlite://./x` would parse `.` as a host).
    let absolute = std::path::absolute(path).map_err(|source| StoreError::Directory {
        path: path.display().to_string(),
        source,
    })?;
    let mut query = query.map(str::to_owned).unwrap_or_default();
    if !query.split('&').any(|pair| pair.starts_with("mode=")) {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    let encoded: String = absolute
        .display()
        .to_string()
        .chars()
        .map(|c| match c {
            '%' => "%25".to_owned(),
            '?' => "%3F".to_owned(),
            '#' => "%23".to_owned(),
            ' ' => "%20".to_owned(),
            other => other.to_string(),
        })
        .collect();
    Ok((
        Backend::Sqlite,
        format!("sqlite://{encoded}?{query}"),
        Some(absolute),
    ))
}

/// Makes a SQLite file readable by its owner only (its WAL and SHM files inherit this).
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(error = %e, "could not restrict the database file to mode 0600");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Converts a stored BIGINT flag.
pub(crate) fn flag(value: i64) -> bool {
    value != 0
}

/// Splits a stored space-separated list.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests;

/// Throwaway stores for the features' own SQL tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Store;

    /// A SQLite store in a temporary directory (dropped with it).
    pub(crate) async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let url = format!("sqlite://{}", dir.path().join("gha-auth.db").display());
        let store = Store::open(&url, 4)
            .await
            .unwrap_or_else(|e| panic!("sqlite store: {e}"));
        (store, dir)
    }

    /// A store on a throwaway PostgreSQL database (dropped with it).
    pub(crate) async fn postgres() -> (Store, gha_auth_testkit::PgDatabase) {
        let db = gha_auth_testkit::PgDatabase::create()
            .await
            .unwrap_or_else(|e| panic!("postgres database: {e}"));
        let store = Store::open(db.url(), 4)
            .await
            .unwrap_or_else(|e| panic!("postgres store: {e}"));
        (store, db)
    }
}
