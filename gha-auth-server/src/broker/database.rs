//! Database credentials through the broker: one credentials loop per role, started on the first
//! request for it and shared by every caller since.
//!
//! A dynamic role gets a [`DynamicCredentials`] (lease renewed at about 2/3 of its TTL, new
//! credentials issued before the max TTL and after a Vault re-login); a role listed in
//! `[broker] static_roles` gets a [`StaticCredentials`] (re-read when its TTL says the password
//! rotated, and every `static_poll_interval`). A request returns whatever the loop holds now, so
//! when the loop replaces the credentials the next call gets the new ones.
//!
//! `expires_at` of dynamic credentials is the lease's expiry, capped at the expiry of the Vault
//! token that issued the lease (Vault revokes a token's leases with it), so `refresh_at` brings
//! consumers back before either ends.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::broker::{CredentialKind, DatabaseCredsResponse};
use gha_auth::vault::{Database, DynamicCredentials, StaticCredentials, VaultError};
use tokio::sync::OnceCell;

/// The loop behind one role.
enum RoleLoop {
    Dynamic(DynamicCredentials),
    Static(StaticCredentials),
}

/// Why credentials could not be handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredsError {
    /// Vault has no such role.
    NotFound,
    /// Vault failed; the message names no secret.
    Unavailable(String),
}

/// The credentials loops, by role.
pub(crate) struct DatabaseBroker {
    db: Database,
    static_roles: HashSet<String>,
    poll_interval: Duration,
    roles: Mutex<HashMap<String, Arc<OnceCell<RoleLoop>>>>,
}

impl fmt::Debug for DatabaseBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseBroker")
            .field("mount", &self.db.mount())
            .field("static_roles", &self.static_roles)
            .finish_non_exhaustive()
    }
}

/// When to ask again: 2/3 of the way from `now` to `expires_at`, at least a second ahead.
pub(crate) fn refresh_at(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let left = (expires_at - now).max(TimeDelta::zero());
    now + (left * 2 / 3).max(TimeDelta::seconds(1))
}

/// Vault answers 400 `unknown role` (not 404) for a role it does not have.
fn is_unknown_role(error: &VaultError) -> bool {
    error.is_not_found()
        || matches!(error, VaultError::Api { status: 400, message, .. }
            if message.contains("unknown role"))
}

impl DatabaseBroker {
    /// Loops on `db`; roles in `static_roles` are static roles.
    pub(crate) fn new(db: Database, static_roles: &[String], poll_interval: Duration) -> Self {
        Self {
            db,
            static_roles: static_roles.iter().cloned().collect(),
            poll_interval,
            roles: Mutex::new(HashMap::new()),
        }
    }

    fn cell(&self, role: &str) -> Arc<OnceCell<RoleLoop>> {
        let mut roles = self.roles.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(roles.entry(role.to_owned()).or_default())
    }

    async fn start(&self, role: &str) -> Result<RoleLoop, VaultError> {
        if self.static_roles.contains(role) {
            StaticCredentials::start(self.db.clone(), role, self.poll_interval)
                .await
                .map(RoleLoop::Static)
        } else {
            DynamicCredentials::start(self.db.clone(), role)
                .await
                .map(RoleLoop::Dynamic)
        }
    }

    /// The current credentials of `role` (a valid, authorized role), starting its loop if this
    /// is the first request. A failed start is retried by the next request.
    pub(crate) async fn credentials(
        &self,
        role: &str,
    ) -> Result<DatabaseCredsResponse, CredsError> {
        let cell = self.cell(role);
        let running = cell
            .get_or_try_init(|| self.start(role))
            .await
            .map_err(|e| {
                if is_unknown_role(&e) {
                    CredsError::NotFound
                } else {
                    tracing::warn!(role, error = %e, kind = e.kind(),
                        "broker: cannot start database credentials");
                    CredsError::Unavailable(e.to_string())
                }
            })?;
        let now = self.db.session().clock().now();
        Ok(match running {
            RoleLoop::Dynamic(creds) => {
                let current = creds.current();
                // The loop renews the lease; its status has the expiry in force. A lease dies
                // with the Vault token that created it, so it ends no later than that token.
                let lease_expiry = creds
                    .status()
                    .expires_at
                    .unwrap_or(current.lease.expires_at);
                let session = self.db.session().status();
                let expires_at = match session.token_expires_at {
                    Some(token_expiry) if session.generation == current.token_generation => {
                        lease_expiry.min(token_expiry)
                    }
                    _ => lease_expiry,
                };
                DatabaseCredsResponse::new(
                    role,
                    CredentialKind::Dynamic,
                    current.username.expose(),
                    current.password.clone(),
                    current.lease.issued_at,
                    expires_at,
                    refresh_at(now, expires_at),
                )
            }
            RoleLoop::Static(creds) => {
                let current = creds.current();
                let rotates_at = current.next_rotation_at();
                DatabaseCredsResponse::new(
                    role,
                    CredentialKind::Static,
                    current.username.expose(),
                    current.password.clone(),
                    current.last_vault_rotation.unwrap_or(current.fetched_at),
                    rotates_at,
                    // Just after the rotation, when the loop has read the new password.
                    (rotates_at + TimeDelta::seconds(1)).max(now + TimeDelta::seconds(1)),
                )
            }
        })
    }

    /// How many role loops run.
    pub(crate) fn running(&self) -> usize {
        self.roles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|cell| cell.initialized())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_two_thirds_of_the_way_to_expiry() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let secs = |s| now + TimeDelta::seconds(s);
        assert_eq!(refresh_at(now, secs(300)), secs(200));
        assert_eq!(refresh_at(now, secs(3)), secs(2));
        // Almost or already expired: ask again in a second, not in the past.
        assert_eq!(refresh_at(now, secs(1)), secs(1));
        assert_eq!(refresh_at(now, secs(-5)), secs(1));
    }
}
