//! The secrets broker: `GET /v1/secrets/{path}` and `POST /v1/database/creds/{role}` for callers
//! with a bearer token of this authority for `api_auth.broker_audience`
//! ([`crate::caller::Caller<crate::caller::BrokerApi>`]).
//!
//! - [`policy`]: `[[broker.grants]]`, default deny, the decision as a pure function;
//! - [`source`]: where secrets come from — Vault KV v2 with `[vault]`, else [`local`], the
//!   store sealed with the master key (`gha-auth secrets put|get|list`, [`cli`]);
//! - [`cache`]: per-path cache with a TTL, single-flight refresh and a stale window;
//! - [`database`]: one credentials loop per database role, started on first use;
//! - [`audit`]: denials audited one by one, allowed reads aggregated per interval;
//! - [`routes`], [`error`]: the handlers and the one mapping of refusals to responses.
//!
//! Wire format: [`gha_auth::broker`].

pub(crate) mod audit;
pub(crate) mod cache;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod database;
pub(crate) mod error;
pub(crate) mod local;
pub(crate) mod policy;
pub(crate) mod routes;
pub(crate) mod source;

use std::future::Future;
use std::sync::Arc;

use gha_auth::SharedClock;
use gha_auth::broker::{DatabaseCredsResponse, SecretResponse};
use gha_auth::vault::{VaultError, VaultSession};
use serde_json::json;

use self::audit::{DenialRecord, ReadAudit};
use self::cache::{CacheError, CachePolicy, SecretCache};
use self::database::{CredsError, DatabaseBroker};
pub(crate) use self::error::BrokerError;
use self::local::LocalSecrets;
use self::policy::{Decision, Policy, Target, is_valid_role, is_valid_secret_path};
use self::source::{SecretSource, VaultKvSource};
use crate::audit::AuditLog;
use crate::health::{ComponentHealth, HealthCheck, HealthStatus};

pub(crate) use cli::{SecretsCommand, run_cli};
pub(crate) use config::{BrokerConfig, BrokerGrant};

/// Series: broker requests by kind (`secret`, `database`) and outcome (`hit`, `miss`, `stale`,
/// `issued`, `denied`, `not_found`, `unavailable`, `invalid`).
pub(crate) const READS_METRIC: &str = "gha_auth_broker_reads_total";

fn count(kind: &'static str, outcome: &'static str) {
    metrics::counter!(READS_METRIC, "kind" => kind, "outcome" => outcome).increment(1);
}

/// The broker: policy, secret cache, database credentials and read audit.
#[derive(Debug)]
pub struct Broker {
    grants: Vec<BrokerGrant>,
    policy: Policy,
    secrets: SecretCache,
    database: Option<DatabaseBroker>,
    reads: ReadAudit,
}

impl Broker {
    /// The broker `broker` describes: Vault KV v2 (at `kv_mount`) and the database engine
    /// through `vault` when it is set, else `local`. `reserved` are the path prefixes no grant
    /// may reach (the authority's own documents).
    pub fn open(
        broker: &BrokerConfig,
        kv_mount: &str,
        reserved: Vec<String>,
        vault: Option<&VaultSession>,
        local: LocalSecrets,
        audit: Arc<AuditLog>,
        clock: SharedClock,
    ) -> Result<Self, VaultError> {
        let (source, database) = match vault {
            Some(session) => {
                let kv = session.kv2(kv_mount)?;
                let db = session.database(&broker.database_mount)?;
                let source: Arc<dyn SecretSource> = Arc::new(VaultKvSource::new(kv));
                let database = DatabaseBroker::new(
                    db,
                    &broker.static_roles,
                    broker.static_poll_interval.as_std(),
                );
                (source, Some(database))
            }
            None => {
                let source: Arc<dyn SecretSource> = Arc::new(local);
                (source, None)
            }
        };
        let policy = CachePolicy::new(broker.cache_ttl.as_delta(), broker.stale_window.as_delta());
        Ok(Self {
            grants: broker.grants.clone(),
            policy: Policy::new(&broker.grants, reserved),
            secrets: SecretCache::new(source, clock, policy),
            database,
            reads: ReadAudit::new(audit, broker.read_audit_interval.as_delta()),
        })
    }

    async fn authorize(&self, client_id: &str, target: Target<'_>) -> Result<(), BrokerError> {
        match self.policy.decide(client_id, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => {
                // A flood of denials is aggregated in the audit log, and not logged line by line.
                if self.reads.denied(client_id, target, reason).await == DenialRecord::Written {
                    tracing::info!(
                        client_id,
                        kind = target.kind(),
                        name = target.name(),
                        reason,
                        "broker: access denied"
                    );
                }
                Err(BrokerError::Denied(reason))
            }
        }
    }

    /// `GET /v1/secrets/{path}` for `client_id`.
    pub async fn secret(&self, client_id: &str, path: &str) -> Result<SecretResponse, BrokerError> {
        let result = self.secret_inner(client_id, path).await;
        if let Err(error) = &result {
            count("secret", error.outcome());
        }
        result
    }

    async fn secret_inner(
        &self,
        client_id: &str,
        path: &str,
    ) -> Result<SecretResponse, BrokerError> {
        if !is_valid_secret_path(path) {
            return Err(BrokerError::InvalidRequest);
        }
        let target = Target::Secret(path);
        self.authorize(client_id, target).await?;
        let read = self.secrets.get(path).await.map_err(|e| match e {
            CacheError::NotFound => BrokerError::NotFound,
            CacheError::Unavailable { retry_after } => {
                BrokerError::SecretsUnavailable { retry_after }
            }
        })?;
        count("secret", read.outcome.as_str());
        self.reads.note(client_id, target);
        Ok(SecretResponse::new(
            path,
            read.secret.version,
            read.secret.data.clone(),
            read.secret.fetched_at,
            read.max_age_seconds,
        ))
    }

    /// `POST /v1/database/creds/{role}` for `client_id`.
    pub async fn database_credentials(
        &self,
        client_id: &str,
        role: &str,
    ) -> Result<DatabaseCredsResponse, BrokerError> {
        let result = self.database_inner(client_id, role).await;
        match &result {
            Ok(_) => count("database", "issued"),
            Err(error) => count("database", error.outcome()),
        }
        result
    }

    async fn database_inner(
        &self,
        client_id: &str,
        role: &str,
    ) -> Result<DatabaseCredsResponse, BrokerError> {
        if !is_valid_role(role) {
            return Err(BrokerError::InvalidRequest);
        }
        let target = Target::DatabaseRole(role);
        self.authorize(client_id, target).await?;
        let Some(database) = &self.database else {
            return Err(BrokerError::NoDatabaseEngine);
        };
        let creds = database.credentials(role).await.map_err(|e| match e {
            CredsError::NotFound => BrokerError::NotFound,
            CredsError::Unavailable(reason) => BrokerError::DatabaseUnavailable(reason),
        })?;
        self.reads.note(client_id, target);
        Ok(creds)
    }

    /// Writes the aggregated read and denial events now (also done every `read_audit_interval`).
    pub async fn flush_audit(&self) {
        self.reads.flush().await;
    }

    /// Flushes the read audit every interval until `shutdown`, then once more.
    pub async fn run_audit_flush(
        self: Arc<Self>,
        clock: SharedClock,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = clock.sleep(self.reads.interval()) => self.reads.flush().await,
                () = &mut shutdown => break,
            }
        }
        self.reads.flush().await;
    }

    /// Sets the broker's gauges (scrape time).
    /// What an administrator may see: the grants, the source and the cache (paths, versions and
    /// read times; never a secret value), and the database roles with running credentials.
    pub(crate) fn state(&self) -> serde_json::Value {
        let grants: Vec<_> = self
            .grants
            .iter()
            .map(|g| {
                json!({"client_id": g.client_id, "paths": g.paths, "database_roles": g.database_roles})
            })
            .collect();
        let cached: Vec<_> = self
            .secrets
            .cached()
            .into_iter()
            .map(|(path, version, fetched_at)| {
                json!({"path": path, "version": version, "fetched_at": fetched_at})
            })
            .collect();
        json!({
            "grants": grants,
            "source": self.secrets.describe(),
            "cache": {
                "ttl_secs": self.secrets.policy().ttl.num_seconds(),
                "stale_window_secs": self.secrets.policy().stale_window.num_seconds(),
                "secrets": cached,
            },
            "database": {
                "engine": self.database.is_some(),
                "roles_with_credentials": self.database.as_ref().map_or(0, |d| d.running()),
            },
        })
    }

    pub fn update_gauges(&self) {
        let (cached, oldest) = self.secrets.ages();
        metrics::gauge!(CACHED_SECRETS_METRIC).set(cached as f64);
        metrics::gauge!(OLDEST_SECRET_METRIC)
            .set(oldest.map_or(0.0, |age| age.num_seconds().max(0) as f64));
        metrics::gauge!(DATABASE_ROLES_METRIC)
            .set(self.database.as_ref().map_or(0.0, |d| d.running() as f64));
    }
}

/// Series: secrets held in the cache.
const CACHED_SECRETS_METRIC: &str = "gha_auth_broker_cached_secrets";
/// Series: age of the oldest cached secret.
const OLDEST_SECRET_METRIC: &str = "gha_auth_broker_oldest_secret_age_seconds";
/// Series: database roles whose credentials loop runs.
const DATABASE_ROLES_METRIC: &str = "gha_auth_broker_database_roles";

/// HELP text of the broker's series.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(READS_METRIC, "Secrets-broker requests by kind and outcome");
    metrics::describe_gauge!(CACHED_SECRETS_METRIC, "Secrets held in the broker's cache");
    metrics::describe_gauge!(
        OLDEST_SECRET_METRIC,
        metrics::Unit::Seconds,
        "Age of the oldest secret in the broker's cache"
    );
    metrics::describe_gauge!(
        DATABASE_ROLES_METRIC,
        "Database roles whose credentials the broker keeps fresh"
    );
}

/// The broker's `/HealthCheck` component: always Healthy (a failing source shows in the
/// answers and their metrics); the details never hold a value.
#[async_trait::async_trait]
impl HealthCheck for Broker {
    fn name(&self) -> &'static str {
        "broker"
    }

    async fn check(&self) -> ComponentHealth {
        let (cached, oldest) = self.secrets.ages();
        ComponentHealth::new(HealthStatus::Healthy).with_details(json!({
            "source": self.secrets.describe(),
            "database_engine": self.database.is_some(),
            "cached_secrets": cached,
            "oldest_secret_age_seconds": oldest.map(|age| age.num_seconds()),
            "database_roles_running": self.database.as_ref().map_or(0, DatabaseBroker::running),
        }))
    }
}
