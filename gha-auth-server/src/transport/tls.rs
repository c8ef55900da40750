//! HTTPS with rustls (aws-lc-rs provider): PEM certificate chain and key from files, reloaded
//! when the files change (their modification times are polled every `tls.reload_interval`), no
//! restart. A failed reload keeps the certificate in use and logs why.
//!
//! The handshakes run in the connection tasks of `transport::server`, each with a timeout, so a
//! slow or silent client cannot hold up others.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use thiserror::Error;

/// The certificate or key could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong (never key material).
        message: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("tls: {0}")]
    Rustls(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn file_error(path: &Path, message: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Loads a certificate chain and its private key from PEM files.
pub(crate) fn load_certified_key(
    cert_file: &Path,
    key_file: &Path,
) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error(cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_file, e))?;
    if certs.is_empty() {
        return Err(file_error(cert_file, "no certificate in the file"));
    }
    // The error of a key parse says nothing about the key's content.
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| file_error(key_file, e))?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| TlsError::Rustls(e.to_string()))
}

/// Serves the current certificate; [`CertReloader::reload_if_changed`] swaps it.
#[derive(Debug)]
pub(crate) struct CertReloader {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl CertReloader {
    /// Loads the files once; an error here stops the start.
    pub(crate) fn new(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let stamps = (modified(cert_file), modified(key_file));
        let key = load_certified_key(cert_file, key_file)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Arc::new(key)),
            stamps: RwLock::new(stamps),
        })
    }

    /// Reloads when either file's modification time changed. Returns whether a new certificate
    /// is now served. A broken new pair is logged and the old one kept (the files may be written
    /// one after the other: the next poll retries).
    pub(crate) fn reload_if_changed(&self) -> bool {
        let stamps = (modified(&self.cert_file), modified(&self.key_file));
        if *self.stamps.read().unwrap_or_else(PoisonError::into_inner) == stamps {
            return false;
        }
        match load_certified_key(&self.cert_file, &self.key_file) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                *self.stamps.write().unwrap_or_else(PoisonError::into_inner) = stamps;
                tracing::info!(cert_file = %self.cert_file.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate files changed but cannot be loaded; keeping the current certificate");
                false
            }
        }
    }

    /// Polls the files every `interval` until `shutdown`.
    pub(crate) async fn watch(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.reload_if_changed();
                }
                () = &mut shutdown => break,
            }
        }
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The rustls server configuration over `reloader` (TLS 1.2 and 1.3, HTTP/1.1).
pub(crate) fn server_config(reloader: Arc<CertReloader>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(reloader);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
