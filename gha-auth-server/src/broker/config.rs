//! `[broker]`: the secrets broker (`GET /v1/secrets/{path}`, `POST /v1/database/creds/{role}`)
//! and its policy, `[[broker.grants]]`.
//!
//! Everything is denied unless a grant names the caller's client id and the path or role. Grants
//! may not reach the authority's own documents in Vault (signing keys, pepper, link keys): the
//! broker reads with the authority's Vault token, so a grant on `gha-auth/*` would hand out the
//! signing keys. [`problems`] refuses such grants, and the broker refuses such paths again at
//! request time.

use serde::Deserialize;

use super::policy::{PathPattern, is_valid_role, is_valid_secret_path};
use crate::settings::{Duration, Problems};

/// The secrets broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// KV v2 mount the secrets are read from (with `[vault]`). Unset: `vault.kv_mount`.
    pub kv_mount: Option<String>,
    /// Mount of the Vault database secrets engine.
    pub database_mount: String,
    /// How long a secret read from its source is served from memory before it is read again.
    pub cache_ttl: Duration,
    /// How long after the last successful read a cached secret is still served while its source
    /// fails; after that the broker answers 503.
    pub stale_window: Duration,
    /// Allowed reads are audited as one event per client and path per interval, with a count.
    pub read_audit_interval: Duration,
    /// Database roles that are Vault static roles (the others are dynamic roles).
    pub static_roles: Vec<String>,
    /// How often a static role's password is re-read even when its TTL says nothing changed
    /// (`rotate-role` forced by an operator does not announce itself).
    pub static_poll_interval: Duration,
    /// Who may read what. Empty: nobody may read anything.
    pub grants: Vec<BrokerGrant>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            kv_mount: None,
            database_mount: "database".to_owned(),
            cache_ttl: Duration::seconds(30),
            stale_window: Duration::minutes(10),
            read_audit_interval: Duration::seconds(10),
            static_roles: Vec::new(),
            static_poll_interval: Duration::seconds(30),
            grants: Vec::new(),
        }
    }
}

/// One `[[broker.grants]]` table: what one client may read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BrokerGrant {
    /// The OAuth client (the `client_id` of its token).
    pub client_id: String,
    /// Secret paths: exact (`apps/billing/db`) or a prefix ending in `/*` (`apps/billing/*`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Database roles it may get credentials for.
    #[serde(default)]
    pub database_roles: Vec<String>,
}

impl BrokerConfig {
    /// Reports what is wrong with `[broker]`; `reserved` are the path prefixes of the
    /// authority's own documents in the broker's mount, which no grant may reach.
    pub fn check(&self, reserved: &[String], out: &mut Problems) {
        let broker = self;
        let mut push = |key: &'static str, message: String| out.push(key, message);
        if broker.cache_ttl < Duration::seconds(1) || broker.cache_ttl > Duration::hours(24) {
            push("broker.cache_ttl", "must be between 1s and 24h".into());
        }
        if broker.stale_window < Duration::seconds(0) || broker.stale_window > Duration::days(7) {
            push("broker.stale_window", "must be between 0s and 7d".into());
        }
        if broker.read_audit_interval < Duration::seconds(1)
            || broker.read_audit_interval > Duration::hours(1)
        {
            push(
                "broker.read_audit_interval",
                "must be between 1s and 1h".into(),
            );
        }
        if broker.static_poll_interval < Duration::seconds(1) {
            push("broker.static_poll_interval", "must be at least 1s".into());
        }
        for (key, mount) in [
            (
                "broker.kv_mount",
                broker.kv_mount.as_deref().unwrap_or("secret"),
            ),
            ("broker.database_mount", broker.database_mount.as_str()),
        ] {
            if !is_valid_secret_path(mount) {
                push(key, format!("{mount:?} is not a valid mount path"));
            }
        }
        for role in &broker.static_roles {
            if !is_valid_role(role) {
                push(
                    "broker.static_roles",
                    format!("{role:?} is not a valid role name"),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for grant in &broker.grants {
            if !crate::clients::is_valid_client_id(&grant.client_id) {
                push(
                    "broker.grants",
                    format!("client_id {:?} is not a valid client id", grant.client_id),
                );
            }
            if !seen.insert(grant.client_id.as_str()) {
                push(
                    "broker.grants",
                    format!(
                        "client {:?} has several grants; put its paths and roles in one",
                        grant.client_id
                    ),
                );
            }
            for path in &grant.paths {
                match PathPattern::parse(path) {
                    Some(pattern) => {
                        if let Some(prefix) = reserved.iter().find(|r| pattern.may_reach(r)) {
                            push(
                                "broker.grants",
                                format!(
                                    "path {path:?} of client {:?} reaches {prefix:?}, where the \
                                 authority keeps its own keys; grant paths outside it",
                                    grant.client_id
                                ),
                            );
                        }
                    }
                    None => push(
                        "broker.grants",
                        format!(
                            "path {path:?} of client {:?} must be a secret path (segments of \
                         A-Z a-z 0-9 . _ -), optionally ending in /*",
                            grant.client_id
                        ),
                    ),
                }
            }
            for role in &grant.database_roles {
                if !is_valid_role(role) {
                    push(
                        "broker.grants",
                        format!(
                            "database role {role:?} of client {:?} is not a valid role name",
                            grant.client_id
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(config: &Config) -> Vec<crate::settings::ConfigProblem> {
        let mut out = crate::settings::Problems::default();
        config
            .broker
            .check(&config.broker_reserved_prefixes(), &mut out);
        out.into_vec()
    }

    fn problems_of(text: &str) -> Vec<String> {
        let config = Config::from_toml(text).unwrap();
        problems(&config).into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn defaults_and_ordinary_grants_are_valid() {
        assert!(problems(&Config::default()).is_empty());
        let found = problems_of(
            r#"
            [[broker.grants]]
            client_id = "billing"
            paths = ["apps/billing/*", "shared/smtp"]
            database_roles = ["billing"]
            "#,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn grants_reaching_the_authoritys_own_documents_are_refused() {
        for path in [
            "*",
            "gha-auth/*",
            "gha-auth/keys/*",
            "gha-auth/keys/signing-keys",
        ] {
            let found = problems_of(&format!(
                "[[broker.grants]]\nclient_id = \"x\"\npaths = [\"{path}\"]\n"
            ));
            assert!(
                found.iter().any(|m| m.contains("own keys")),
                "{path}: {found:?}"
            );
        }
        // Another mount holds none of them.
        let found = problems_of(
            "[broker]\nkv_mount = \"apps\"\n[[broker.grants]]\nclient_id = \"x\"\npaths = [\"*\"]\n",
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn malformed_grants_and_settings_are_reported() {
        for (text, needle) in [
            (
                "[[broker.grants]]\nclient_id = \"x\"\npaths = [\"../etc\"]\n",
                "must be a secret path",
            ),
            (
                "[[broker.grants]]\nclient_id = \"x\"\npaths = [\"a/*/b\"]\n",
                "must be a secret path",
            ),
            (
                "[[broker.grants]]\nclient_id = \"x\"\ndatabase_roles = [\"a b\"]\n",
                "not a valid role",
            ),
            (
                "[[broker.grants]]\nclient_id = \"x\"\n[[broker.grants]]\nclient_id = \"x\"\n",
                "several grants",
            ),
            ("[broker]\ncache_ttl = \"0s\"\n", "between 1s"),
            ("[broker]\nstatic_roles = [\"\"]\n", "not a valid role"),
        ] {
            let found = problems_of(text);
            assert!(
                found.iter().any(|m| m.contains(needle)),
                "{text}: {found:?}"
            );
        }
    }
}
