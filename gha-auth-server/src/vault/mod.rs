//! Vault / OpenBao: the `[vault]` section and the client configuration it describes. The session
//! itself (login, renewal, re-login) is the core library's [`gha_auth::vault::VaultSession`];
//! signing keys, link keys and the broker each read through it.

mod config;

use gha_auth::vault::{AuthConfig, CredentialSource, VaultConfig};

pub use config::VaultSection;

/// The Vault client configuration `[vault]` describes, or `None` when Vault is not configured.
pub fn vault_config(vault: &VaultSection) -> Result<Option<VaultConfig>, String> {
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
