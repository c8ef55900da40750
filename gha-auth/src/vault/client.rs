//! The connection to Vault: one vaultrs client (rustls, timeout, CA, namespace) whose HTTP
//! connection pool is shared by every token the session obtains.
//!
//! The address passes the workspace's outbound-URL policy ([`VaultConfig::validate`]), but the
//! HTTP client is vaultrs's own, not one from [`crate::outbound::HttpClientBuilder`]: vaultrs
//! sends through reqwest 0.13, whose client is another type than the workspace's reqwest 0.12.
//! Its settings differ in that it has no separate connect timeout and follows redirects (which
//! Vault standbys answer with when request forwarding is off).

use std::fmt;

use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use super::config::VaultConfig;
use super::error::VaultError;
use crate::SecretString;

/// A connection to one Vault server, without a token. Logins go through
/// [`VaultConnection::unauthenticated`]; requests with a token through a client made by
/// [`VaultConnection::authenticated`].
pub struct VaultConnection {
    base: VaultClient,
    address: String,
}

impl fmt::Debug for VaultConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConnection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl VaultConnection {
    /// Builds the HTTP client (rustls) from the configuration. Nothing is sent yet.
    ///
    /// Every setting is given explicitly, so vaultrs's fallbacks to `VAULT_ADDR`, `VAULT_TOKEN`,
    /// `VAULT_CACERT` and friends never apply.
    pub fn new(config: &VaultConfig) -> Result<Self, VaultError> {
        config.validate()?;
        let ca_certs = match &config.ca_file {
            Some(path) => {
                if !path.is_file() {
                    return Err(VaultError::Config(format!(
                        "CA file {} does not exist",
                        path.display()
                    )));
                }
                vec![path.to_string_lossy().into_owned()]
            }
            None => Vec::new(),
        };
        let mut builder = VaultClientSettingsBuilder::default();
        // `address` panics on an invalid URL: validate() has parsed it already.
        builder
            .address(&config.address)
            .ca_certs(ca_certs)
            .identity(None)
            .timeout(Some(config.request_timeout))
            .token(String::new())
            .verify(true)
            .namespace(config.namespace.clone());
        let settings = builder
            .build()
            .map_err(|e| VaultError::Config(e.to_string()))?;
        let base = VaultClient::new(settings).map_err(|e| {
            VaultError::Config(format!("could not build the HTTP client for Vault: {e}"))
        })?;
        Ok(Self {
            base,
            address: config.address.clone(),
        })
    }

    /// The configured address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The client without a token, for logins.
    pub fn unauthenticated(&self) -> &VaultClient {
        &self.base
    }

    /// A client sending `token`, sharing this connection's pool and settings.
    ///
    /// The token must be visible ASCII (vaultrs would panic building the header otherwise).
    pub fn authenticated(&self, token: &SecretString) -> Result<VaultClient, VaultError> {
        check_token(token)?;
        let http = rustify::clients::reqwest::Client {
            http: self.base.http.http.clone(),
            base: self.base.http.base.clone(),
        };
        let middle = EndpointMiddleware {
            token: token.expose().to_owned(),
            version: self.base.middle.version.clone(),
            wrap: None,
            namespace: self.base.middle.namespace.clone(),
        };
        // The settings copy keeps an empty token: the middleware is what vaultrs sends, and one
        // plain copy of the token is enough (vaultrs stores it as a String).
        Ok(VaultClient {
            http,
            middle,
            settings: self.base.settings.clone(),
        })
    }
}

/// A token is sent as a header: visible ASCII only, not empty.
pub(crate) fn check_token(token: &SecretString) -> Result<(), VaultError> {
    if token.is_empty() {
        return Err(VaultError::InvalidCredential {
            what: "token",
            reason: "empty".to_owned(),
        });
    }
    if !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
        return Err(VaultError::InvalidCredential {
            what: "token",
            reason: "contains characters that are not visible ASCII".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::config::{AuthConfig, CredentialSource};

    #[test]
    fn tokens_must_be_header_safe() {
        assert!(check_token(&SecretString::from("s.abc-DEF_123")).is_ok());
        for bad in ["", "with space", "new\nline", "tab\t", "é"] {
            let error = check_token(&SecretString::from(bad)).unwrap_err();
            assert!(
                !error.to_string().contains(bad) || bad.is_empty(),
                "{error}"
            );
        }
    }

    #[test]
    fn connection_never_prints_the_token() {
        let config = VaultConfig::new(
            "http://127.0.0.1:1",
            AuthConfig::token(CredentialSource::value("root-token-xyz")),
        );
        let connection = VaultConnection::new(&config).unwrap();
        let client = connection
            .authenticated(&SecretString::from("s.token-abc"))
            .unwrap();
        assert_eq!(client.middle.token, "s.token-abc");
        assert!(client.settings.token.is_empty());
        let debug = format!("{connection:?}");
        assert!(!debug.contains("token"), "{debug}");
    }

    #[test]
    fn missing_ca_file_is_a_config_error() {
        let config = VaultConfig::new(
            "https://vault.example:8200",
            AuthConfig::token(CredentialSource::value("t")),
        )
        .with_ca_file("/nonexistent/ca.pem");
        assert!(matches!(
            VaultConnection::new(&config),
            Err(VaultError::Config(_))
        ));
    }
}
