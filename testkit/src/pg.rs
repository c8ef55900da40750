//! Throwaway databases on the machine's shared PostgreSQL.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::util::random_hex;

/// Admin URL of the shared server, unless `GHA_AUTH_TEST_PG_URL` says otherwise.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const NAME_PREFIX: &str = "gha_test_";
/// Databases of this fixture older than this are assumed leaked and dropped by the sweeper.
const SWEEP_AGE_SECS: i64 = 3600;

/// A uniquely named database `gha_test_<unix seconds>_<random>` on the shared PostgreSQL
/// server (`GHA_AUTH_TEST_PG_URL`, default [`DEFAULT_PG_URL`]), with a connection pool.
///
/// Dropped (`DROP DATABASE … WITH (FORCE)`) by [`PgDatabase::drop_db`], or, if that was not
/// called, synchronously in `Drop` (on a short-lived thread with its own runtime). Databases
/// that still leak (a killed test process) are dropped by the next [`PgDatabase::create`] once
/// they are an hour old.
pub struct PgDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
    dropped: bool,
}

impl fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDatabase")
            .field("name", &self.name)
            // GHA_AUTH_TEST_PG_URL may carry a password.
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// The admin URL used by [`PgDatabase::create`].
    pub fn admin_url_from_env() -> String {
        std::env::var("GHA_AUTH_TEST_PG_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
    }

    /// Creates a fresh database on the shared server.
    pub async fn create() -> Result<Self> {
        Self::create_on(&Self::admin_url_from_env()).await
    }

    /// Creates a fresh database on the server of `admin_url` (a superuser, or a role with
    /// CREATEDB, connected to an existing database).
    pub async fn create_on(admin_url: &str) -> Result<Self> {
        let mut admin = admin_connection(admin_url).await?;
        sweep_old_databases(&mut admin).await;

        let now: i64 = sqlx::query_scalar("SELECT floor(extract(epoch FROM now()))::bigint")
            .fetch_one(&mut admin)
            .await
            .context("reading the server clock")?;
        let name = format!("{NAME_PREFIX}{now}_{}", random_hex(6)?);
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let _ = admin.close().await;

        let mut url = url::Url::parse(admin_url).context("parsing the admin URL")?;
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let pool = match PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
        {
            Ok(pool) => pool,
            Err(e) => {
                let _ = drop_database(admin_url, &name).await;
                return Err(e).with_context(|| format!("connecting to new database {name}"));
            }
        };
        Ok(PgDatabase {
            name,
            url,
            admin_url: admin_url.to_owned(),
            pool,
            dropped: false,
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection URL of the database (same credentials as the admin URL).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool connected to the database (at most 5 connections).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool and drops the database, reporting errors.
    pub async fn drop_db(mut self) -> Result<()> {
        self.dropped = true;
        self.pool.close().await;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        self.dropped = true;
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and may run inside a runtime (where block_on is forbidden), so
        // drop on a separate thread with its own runtime and wait for it. `WITH (FORCE)` ends
        // the pool's sessions server-side, so nothing here depends on the test's runtime.
        let worker = std::thread::spawn(move || -> Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a runtime")?
                .block_on(drop_database(&admin_url, &name))
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "gha-auth-testkit: could not drop database {}: {e:#}",
                self.name
            ),
            Err(_) => eprintln!("gha-auth-testkit: dropping database {} panicked", self.name),
        }
    }
}

async fn admin_connection(admin_url: &str) -> Result<PgConnection> {
    let options: PgConnectOptions = admin_url.parse().context("parsing the admin URL")?;
    tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .map_err(|_| anyhow!("timed out connecting to {}", redact(admin_url)))?
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {} (is it running? scripts/test starts it)",
                redact(admin_url)
            )
        })
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    if !is_fixture_name(name) {
        bail!("refusing to drop {name:?}: not a test database name");
    }
    let mut admin = admin_connection(admin_url).await?;
    sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
    let _ = admin.close().await;
    Ok(())
}

/// Drops `gha_test_<secs>_<hex>` databases created more than an hour ago (by the server's
/// clock). Best effort: a concurrent sweeper may have dropped one already.
async fn sweep_old_databases(admin: &mut PgConnection) {
    let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
        r"SELECT datname, floor(extract(epoch FROM now()))::bigint
          FROM pg_database WHERE datname LIKE 'gha\_test\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    for (name, now) in rows {
        let Some(created) = created_at(&name) else {
            continue;
        };
        if now - created > SWEEP_AGE_SECS {
            let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Creation time encoded in a fixture database name, if it is one.
fn created_at(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (secs, random) = rest.split_once('_')?;
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    secs.parse().ok()
}

fn is_fixture_name(name: &str) -> bool {
    created_at(name).is_some()
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_names_carry_their_creation_time() {
        assert_eq!(
            created_at("gha_test_1700000000_0a1b2c"),
            Some(1_700_000_000)
        );
        assert_eq!(created_at("gha_test_1700000000_"), None);
        assert_eq!(created_at("gha_test_abc_0a1b2c"), None);
        assert_eq!(created_at("gha_test_1700000000_x; DROP"), None);
        assert_eq!(created_at("postgres"), None);
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
    }
}
