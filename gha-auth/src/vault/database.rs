//! The database secrets engine: dynamic credentials **with their lease** (vaultrs drops it, its
//! issue #144), static-role credentials, and forced rotation of a static role.
//!
//! The loops that keep credentials fresh are in [`super::credentials`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustify::enums::RequestMethod;
use serde::Deserialize;

use super::error::VaultError;
use super::lease::{Lease, Leases};
use super::raw::{RawRequest, check_path, clean};
use super::session::VaultSession;
use crate::SecretString;

/// Dynamic database credentials and their lease. `Debug` shows the lease, never the username or
/// password.
#[derive(Clone)]
#[non_exhaustive]
pub struct DbCredentials {
    /// The generated user.
    pub username: SecretString,
    /// Its password.
    pub password: SecretString,
    /// The lease (id, duration, expiry as issued). A running [`super::DynamicCredentials`] renews
    /// it; its status has the current expiry.
    pub lease: Lease,
    /// Generation of the Vault token that created the lease: the lease dies with that token.
    pub token_generation: u64,
    /// 1 for the first credentials a loop published, then 2, 3, …
    pub serial: u64,
}

impl fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCredentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("lease", &self.lease)
            .field("token_generation", &self.token_generation)
            .field("serial", &self.serial)
            .finish()
    }
}

/// Credentials of a static role: an existing database user whose password Vault rotates.
#[derive(Clone)]
#[non_exhaustive]
pub struct StaticDbCredentials {
    /// The database user.
    pub username: SecretString,
    /// Its current password.
    pub password: SecretString,
    /// When Vault last rotated the password.
    pub last_vault_rotation: Option<DateTime<Utc>>,
    /// The rotation period.
    pub rotation_period: Duration,
    /// Time until the next scheduled rotation, when fetched.
    pub ttl: Duration,
    /// When the fetch started (our clock).
    pub fetched_at: DateTime<Utc>,
    /// 1 for the first credentials a loop published, then 2, 3, …
    pub serial: u64,
}

impl StaticDbCredentials {
    /// When the password is next due to rotate.
    pub fn next_rotation_at(&self) -> DateTime<Utc> {
        super::schedule::add(self.fetched_at, self.ttl)
    }

    /// True when `other` holds a different password or rotation time.
    pub fn differs_from(&self, other: &StaticDbCredentials) -> bool {
        self.password != other.password
            || self.username != other.username
            || self.last_vault_rotation != other.last_vault_rotation
    }
}

impl fmt::Debug for StaticDbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticDbCredentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("last_vault_rotation", &self.last_vault_rotation)
            .field("rotation_period", &self.rotation_period)
            .field("ttl", &self.ttl)
            .field("fetched_at", &self.fetched_at)
            .field("serial", &self.serial)
            .finish()
    }
}

#[derive(Deserialize)]
struct CredsData {
    username: SecretString,
    password: SecretString,
}

#[derive(Deserialize)]
struct StaticCredsData {
    username: SecretString,
    password: SecretString,
    #[serde(default)]
    last_vault_rotation: Option<DateTime<Utc>>,
    /// OpenBao's documentation names it this way; its code still sends `last_vault_rotation`.
    #[serde(default)]
    last_openbao_rotation: Option<DateTime<Utc>>,
    #[serde(default)]
    rotation_period: u64,
    #[serde(default)]
    ttl: u64,
}

/// A database secrets engine mount used with the session's current token.
#[derive(Debug, Clone)]
pub struct Database {
    session: VaultSession,
    mount: String,
}

impl Database {
    /// The database engine mounted at `mount` (e.g. `database`).
    pub fn new(session: VaultSession, mount: &str) -> Result<Self, VaultError> {
        check_path("database mount", mount)?;
        Ok(Self {
            session,
            mount: clean(mount).to_owned(),
        })
    }

    /// The session.
    pub fn session(&self) -> &VaultSession {
        &self.session
    }

    /// The mount path.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Lease operations through the same session.
    pub fn leases(&self) -> Leases {
        Leases::new(self.session.clone())
    }

    fn role_path(&self, kind: &str, role: &str) -> Result<String, VaultError> {
        check_path("database role", role)?;
        if clean(role).contains('/') {
            return Err(VaultError::Config(format!(
                "database role {role:?} contains '/'"
            )));
        }
        Ok(format!("{}/{kind}/{}", self.mount, clean(role)))
    }

    /// Issues new dynamic credentials for `role` (`GET <mount>/creds/<role>`), keeping the lease.
    /// `serial` is set to 0; loops number what they publish.
    pub async fn issue(&self, role: &str) -> Result<DbCredentials, VaultError> {
        let path = self.role_path("creds", role)?;
        let started = self.session.clock().now();
        let (envelope, generation) = self
            .session
            .call_tracked(|| Ok(RawRequest::<CredsData>::new(RequestMethod::GET, &path)))
            .await?;
        let lease_id = envelope.lease_id.clone();
        let (duration, renewable) = (envelope.lease_duration, envelope.renewable);
        let data = envelope.into_data(&path)?;
        if lease_id.is_empty() {
            return Err(VaultError::InvalidResponse {
                path,
                detail: "credentials response has no lease".to_owned(),
            });
        }
        tracing::info!(path = %path, lease_id = %lease_id, ttl_secs = duration, renewable,
            token_generation = generation, "issued dynamic database credentials");
        metrics::counter!("gha_auth_vault_db_credentials_issued_total", "role" => clean(role).to_owned())
            .increment(1);
        Ok(DbCredentials {
            username: data.username,
            password: data.password,
            lease: Lease::new(lease_id, Duration::from_secs(duration), renewable, started),
            token_generation: generation,
            serial: 0,
        })
    }

    /// Reads the current credentials of static role `role` (`GET <mount>/static-creds/<role>`).
    pub async fn static_credentials(&self, role: &str) -> Result<StaticDbCredentials, VaultError> {
        let path = self.role_path("static-creds", role)?;
        let fetched_at = self.session.clock().now();
        let data = self
            .session
            .call(|| {
                Ok(RawRequest::<StaticCredsData>::new(
                    RequestMethod::GET,
                    &path,
                ))
            })
            .await?
            .into_data(&path)?;
        Ok(StaticDbCredentials {
            username: data.username,
            password: data.password,
            last_vault_rotation: data.last_vault_rotation.or(data.last_openbao_rotation),
            rotation_period: Duration::from_secs(data.rotation_period),
            ttl: Duration::from_secs(data.ttl),
            fetched_at,
            serial: 0,
        })
    }

    /// Forces Vault to rotate the password of static role `role` now
    /// (`POST <mount>/rotate-role/<role>`).
    pub async fn rotate_static(&self, role: &str) -> Result<(), VaultError> {
        let path = self.role_path("rotate-role", role)?;
        self.session
            .call(|| {
                Ok(RawRequest::<serde_json::Value>::new(
                    RequestMethod::POST,
                    &path,
                ))
            })
            .await?;
        tracing::info!(path = %path, "forced rotation of a static database role");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_credentials() {
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        let creds = DbCredentials {
            username: SecretString::from("v-approle-app-xyz"),
            password: SecretString::from("A1a-very-secret"),
            lease: Lease::new(
                "database/creds/app/L1".into(),
                Duration::from_secs(3),
                true,
                at,
            ),
            token_generation: 1,
            serial: 1,
        };
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains("very-secret") && !debug.contains("v-approle"),
            "{debug}"
        );
        assert!(debug.contains("database/creds/app/L1"));

        let fixed = StaticDbCredentials {
            username: SecretString::from("app_user"),
            password: SecretString::from("pw-secret-1"),
            last_vault_rotation: Some(at),
            rotation_period: Duration::from_secs(3600),
            ttl: Duration::from_secs(60),
            fetched_at: at,
            serial: 1,
        };
        let debug = format!("{fixed:?}");
        assert!(
            !debug.contains("pw-secret") && !debug.contains("app_user"),
            "{debug}"
        );
        assert_eq!(fixed.next_rotation_at().timestamp(), 1_060);
        let mut rotated = fixed.clone();
        assert!(!rotated.differs_from(&fixed));
        rotated.password = SecretString::from("pw-secret-2");
        assert!(rotated.differs_from(&fixed));
    }

    #[test]
    fn static_creds_accept_both_rotation_field_names() {
        let vault = r#"{"username":"u","password":"p","last_vault_rotation":"2026-01-01T00:00:00.5Z",
            "rotation_period":3600,"ttl":3599}"#;
        let data: StaticCredsData = serde_json::from_str(vault).unwrap();
        assert!(data.last_vault_rotation.is_some());
        let bao =
            r#"{"username":"u","password":"p","last_openbao_rotation":"2026-01-01T00:00:00Z"}"#;
        let data: StaticCredsData = serde_json::from_str(bao).unwrap();
        assert!(data.last_openbao_rotation.is_some());
        assert_eq!(data.ttl, 0);
    }
}
