//! Vault / OpenBao: the `[vault]` section and the client configuration it describes. The session
//! itself (login, renewal, re-login) is the core library's [`gha_auth::vault::VaultSession`];
//! signing keys, link keys and the broker each read through it.

pub(crate) mod config;

use async_trait::async_trait;
use gha_auth::vault::{AuthConfig, CredentialSource, VaultConfig, VaultSession};
use serde_json::json;

use crate::health::{ComponentHealth, HealthCheck, HealthStatus};

pub(crate) use config::VaultSection;

/// The Vault client configuration `[vault]` describes, or `None` when Vault is not configured.
pub(crate) fn vault_config(vault: &VaultSection) -> Result<Option<VaultConfig>, String> {
    let Some(address) = &vault.address else {
        return Ok(None);
    };
    let auth = match (
        &vault.token_file,
        &vault.role_id_file,
        &vault.secret_id_file,
    ) {
        (Some(token), None, None) => AuthConfig::token(CredentialSource::file(token)),
        (None, Some(role_id), Some(secret_id)) => AuthConfig::approle(
            CredentialSource::file(role_id),
            CredentialSource::file(secret_id),
        ),
        _ => {
            return Err(
                "set either vault.token_file, or vault.role_id_file and vault.secret_id_file"
                    .to_owned(),
            );
        }
    };
    let mut out = VaultConfig::new(address.clone(), auth)
        .with_request_timeout(vault.request_timeout.as_std());
    if let Some(ca) = &vault.ca_file {
        out = out.with_ca_file(ca.clone());
    }
    out.validate().map_err(|e| e.to_string())?;
    Ok(Some(out))
}

impl VaultSection {
    /// Reports what is wrong with `[vault]`.
    pub fn check(&self, out: &mut crate::settings::Problems) {
        if self.address.is_none() {
            return;
        }
        if let Err(e) = vault_config(self) {
            out.push("vault", e);
        }
        if self.request_timeout <= crate::settings::Duration::seconds(0) {
            out.push("vault.request_timeout", "must be greater than zero");
        }
    }
}

/// Series: seconds the Vault token has left.
const TOKEN_TTL_METRIC: &str = "gha_auth_vault_token_ttl_seconds";
/// Series: re-logins of the identity loop.
const RELOGINS_METRIC: &str = "gha_auth_vault_relogins_total";

/// HELP text of the series set here.
pub(crate) fn describe_metrics() {
    metrics::describe_gauge!(
        TOKEN_TTL_METRIC,
        metrics::Unit::Seconds,
        "Seconds the Vault token has left"
    );
    metrics::describe_counter!(
        RELOGINS_METRIC,
        "Logins to Vault after the first (renewal failed or the TTL stopped growing)"
    );
}

/// What the Vault layer does not count as it goes, read from the identity loop's status at
/// scrape time: the token's remaining TTL and the re-logins. (`gha_auth::vault` counts logins
/// and renewals by result itself.)
pub(crate) fn update_gauges(session: &gha_auth::vault::VaultSession) {
    let status = session.status();
    metrics::gauge!(TOKEN_TTL_METRIC).set(
        status
            .token_ttl_remaining
            .map_or(0.0, |ttl| ttl.as_secs_f64()),
    );
    metrics::counter!(RELOGINS_METRIC).absolute(status.relogins);
}

/// The Vault identity loop's health check: never `Unhealthy` on its own. A Vault outage leaves a
/// replica able to sign with the keys it holds in memory (the `signing_keys` check says
/// `Unhealthy` when it holds none), so it is `Degraded`: pulling every replica from the load
/// balancer at once would turn a Vault blip into an outage.
#[derive(Debug)]
pub(crate) struct VaultCheck {
    /// The session.
    pub(crate) session: VaultSession,
    /// Whether the signing keys live in Vault.
    pub(crate) holds_signing_keys: bool,
}

#[async_trait]
impl HealthCheck for VaultCheck {
    fn name(&self) -> &'static str {
        "vault"
    }

    async fn check(&self) -> ComponentHealth {
        vault_health(&self.session, self.holds_signing_keys)
    }
}

/// The component's level for the session's health.
fn level(health: gha_auth::vault::VaultHealth) -> HealthStatus {
    match health {
        gha_auth::vault::VaultHealth::Healthy => HealthStatus::Healthy,
        _ => HealthStatus::Degraded,
    }
}

fn vault_health(session: &VaultSession, keys_in_vault: bool) -> ComponentHealth {
    let status = session.status();
    let level = level(status.health);
    ComponentHealth::new(level).with_details(json!({
        "address": session.connection().address(),
        "auth_method": status.method,
        "health": status.health,
        "token_ttl_remaining_seconds": status.token_ttl_remaining.map(|d| d.as_secs()),
        "token_expires_at": status.token_expires_at,
        "logins": status.logins,
        "relogins": status.relogins,
        "renewals": status.renewals,
        "login_failures": status.login_failures,
        "renewal_failures": status.renewal_failures,
        "consecutive_failures": status.consecutive_failures,
        "last_login_at": status.last_login_at,
        "last_error": status.last_error,
        "last_error_at": status.last_error_at,
        "next_step": status.next_step,
        "holds_signing_keys": keys_in_vault,
    }))
}

#[cfg(test)]
mod tests {
    use gha_auth::vault::VaultHealth;

    use super::*;

    #[test]
    fn vault_outage_is_degraded_never_unhealthy() {
        for (health, expected) in [
            (VaultHealth::Healthy, HealthStatus::Healthy),
            (VaultHealth::Starting, HealthStatus::Degraded),
            (VaultHealth::Degraded, HealthStatus::Degraded),
            (VaultHealth::Unhealthy, HealthStatus::Degraded),
            (VaultHealth::Stopped, HealthStatus::Degraded),
        ] {
            assert_eq!(level(health), expected, "{health:?}");
        }
    }
}
