//! Vault / OpenBao: the `[vault]` section and the client configuration it describes. The session
//! itself (login, renewal, re-login) is the core library's [`gha_auth::vault::VaultSession`];
//! signing keys, link keys and the broker each read through it.

pub(crate) mod config;

use async_trait::async_trait;
use gha_auth::vault::{AuthConfig, CredentialSource, VaultConfig, VaultSession};
use serde_json::json;

use crate::health::{ComponentHealth, HealthCheck, HealthStatus};

use config::VaultAuth;
pub(crate) use config::VaultSection;

/// The Vault client configuration `[vault]` describes, or `None` when Vault is not configured.
pub(crate) fn vault_config(vault: &VaultSection) -> Result<Option<VaultConfig>, String> {
    let Some(address) = &vault.address else {
        return Ok(None);
    };
    let auth = auth_config(vault)?;
    let mut out = VaultConfig::new(address.clone(), auth)
        .with_request_timeout(vault.request_timeout.as_std());
    if let Some(ca) = &vault.ca_file {
        out = out.with_ca_file(ca.clone());
    }
    out.validate().map_err(|e| e.to_string())?;
    Ok(Some(out))
}

/// The login `[vault]` describes: `auth`, or the one method whose keys are set.
fn auth_config(vault: &VaultSection) -> Result<AuthConfig, String> {
    let token = vault.token_file.is_some();
    let approle = vault.role_id_file.is_some() || vault.secret_id_file.is_some();
    let kubernetes = vault.kubernetes_role.is_some();
    let method = match (vault.auth, token, approle, kubernetes) {
        (Some(method), ..) => method,
        (None, true, false, false) => VaultAuth::Token,
        (None, false, true, false) => VaultAuth::AppRole,
        (None, false, false, true) => VaultAuth::Kubernetes,
        _ => {
            return Err("set one login: vault.token_file, vault.role_id_file and \
                 vault.secret_id_file, or vault.kubernetes_role"
                .to_owned());
        }
    };
    match (method, &vault.token_file, &vault.role_id_file, &vault.secret_id_file) {
        (VaultAuth::Token, Some(token), None, None) if !kubernetes => {
            Ok(AuthConfig::token(CredentialSource::file(token)))
        }
        (VaultAuth::AppRole, None, Some(role_id), Some(secret_id)) if !kubernetes => {
            Ok(AuthConfig::approle(
                CredentialSource::file(role_id),
                CredentialSource::file(secret_id),
            ))
        }
        (VaultAuth::Kubernetes, None, None, None) => {
            let role = vault
                .kubernetes_role
                .as_deref()
                .filter(|r| !r.trim().is_empty())
                .ok_or("vault.auth = \"kubernetes\" needs vault.kubernetes_role")?;
            let mount = vault.kubernetes_mount.trim_matches('/');
            if mount.is_empty() {
                return Err("vault.kubernetes_mount must not be empty".to_owned());
            }
            Ok(AuthConfig::kubernetes_with(
                role,
                CredentialSource::file(&vault.kubernetes_token_file),
            )
            .with_mount(mount))
        }
        (VaultAuth::Token, ..) => {
            Err("vault.auth = \"token\" needs vault.token_file and no other login".to_owned())
        }
        (VaultAuth::AppRole, ..) => Err(
            "vault.auth = \"approle\" needs vault.role_id_file and vault.secret_id_file and no other login"
                .to_owned(),
        ),
        (VaultAuth::Kubernetes, ..) => Err(
            "vault.auth = \"kubernetes\" takes no vault.token_file or AppRole files".to_owned(),
        ),
    }
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
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::{Path, State};
    use gha_auth::vault::{VaultConnection, VaultHealth};
    use serde_json::Value;

    use super::*;

    fn section(edit: impl FnOnce(&mut VaultSection)) -> VaultSection {
        let mut section = VaultSection {
            address: Some("http://127.0.0.1:8200".to_owned()),
            ..VaultSection::default()
        };
        edit(&mut section);
        section
    }

    #[test]
    fn the_login_method_follows_auth_or_the_keys_that_are_set() {
        let token = |s: &mut VaultSection| s.token_file = Some(PathBuf::from("/run/t"));
        let approle = |s: &mut VaultSection| {
            s.role_id_file = Some(PathBuf::from("/run/r"));
            s.secret_id_file = Some(PathBuf::from("/run/s"));
        };
        let kubernetes = |s: &mut VaultSection| s.kubernetes_role = Some("gha-auth".to_owned());
        let name = |s: VaultSection| auth_config(&s).map(|a| a.build().name().to_owned());
        assert_eq!(name(section(token)).unwrap(), "token");
        assert_eq!(name(section(approle)).unwrap(), "approle");
        assert_eq!(name(section(kubernetes)).unwrap(), "kubernetes");
        assert_eq!(
            name(section(|s| {
                kubernetes(s);
                s.auth = Some(VaultAuth::Kubernetes);
            }))
            .unwrap(),
            "kubernetes"
        );
        for broken in [
            section(|_| {}),
            section(|s| {
                token(s);
                kubernetes(s);
            }),
            section(|s| s.auth = Some(VaultAuth::Kubernetes)),
            section(|s| {
                token(s);
                s.auth = Some(VaultAuth::Kubernetes);
            }),
            section(|s| {
                kubernetes(s);
                s.auth = Some(VaultAuth::Token);
            }),
            section(|s| {
                kubernetes(s);
                s.kubernetes_mount = "/".to_owned();
            }),
        ] {
            assert!(auth_config(&broken).is_err(), "{broken:?}");
        }
        let problems = toml::from_str::<VaultSection>("auth = \"ldap\"");
        assert!(problems.is_err());
    }

    type Seen = Arc<Mutex<Vec<(String, Value)>>>;

    async fn login(
        State(seen): State<Seen>,
        Path(mount): Path<String>,
        body: axum::body::Bytes,
    ) -> Json<Value> {
        // Vault's clients send JSON without a content type.
        let body: Value = serde_json::from_slice(&body).unwrap();
        seen.lock().unwrap().push((mount, body));
        Json(serde_json::json!({
            "auth": {
                "client_token": "s.from-kubernetes",
                "lease_duration": 3600,
                "renewable": true,
                "policies": ["default", "gha-auth"],
            }
        }))
    }

    /// OpenBao's Kubernetes auth asks the Kubernetes API (TokenReview) to check the token, which
    /// no test here can offer offline; this checks the request gha-auth sends: the role and
    /// the token file's current content, on the configured mount, read again at each login.
    #[tokio::test]
    async fn kubernetes_login_sends_the_role_and_the_current_service_account_token() {
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/v1/auth/{mount}/login", axum::routing::post(login))
            .with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.first.sig\n").unwrap();
        let vault = section(|s| {
            s.address = Some(address);
            s.auth = Some(VaultAuth::Kubernetes);
            s.kubernetes_role = Some("gha-auth".to_owned());
            s.kubernetes_mount = "k8s-east".to_owned();
            s.kubernetes_token_file = token_file.clone();
        });
        let config = vault_config(&vault).unwrap().unwrap();
        let connection = VaultConnection::new(&config).unwrap();
        let method = config.auth.build();
        let result = method.login(&connection).await.unwrap();
        assert!(!format!("{result:?}").contains("s.from-kubernetes"));
        // The kubelet rotates the projected token: the next login reads the new one.
        std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.second.sig").unwrap();
        method.login(&connection).await.unwrap();

        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (
                    "k8s-east".to_owned(),
                    serde_json::json!({ "role": "gha-auth", "jwt": "eyJhbGciOiJSUzI1NiJ9.first.sig" })
                ),
                (
                    "k8s-east".to_owned(),
                    serde_json::json!({ "role": "gha-auth", "jwt": "eyJhbGciOiJSUzI1NiJ9.second.sig" })
                ),
            ]
        );
    }

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
