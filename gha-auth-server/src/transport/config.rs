//! `[http]` and `[tls]`: how the service listens.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// HTTP server limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time allowed for one request.
    pub request_timeout: Duration,
    /// Time allowed for in-flight requests to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client (see `transport/forwarded.rs`).
    pub trusted_proxies: Vec<IpNet>,
    /// Longest wait for a request's complete header, counted from when the server waits for
    /// it: on a new connection and between keep-alive requests. A silent, half-sent or idle
    /// connection is closed after it.
    pub header_read_timeout: Duration,
    /// Most connections (plain or TLS, handshakes included) open at once; further clients wait
    /// until one closes.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            request_timeout: Duration::seconds(10),
            shutdown_grace: Duration::seconds(10),
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::seconds(10),
            max_connections: 2048,
        }
    }
}

/// HTTPS with rustls. Both files set: HTTPS; neither: plain HTTP (loopback, or behind a
/// TLS-terminating proxy with `allow_insecure_http`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// How often the files' modification times are checked; a change reloads them.
    pub reload_interval: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_interval: Duration::seconds(5),
        }
    }
}

impl TlsConfig {
    /// The certificate and key files, when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

impl HttpConfig {
    /// Reports what is wrong with `[http]`.
    pub fn check(&self, out: &mut Problems) {
        if !(1024..=1024 * 1024).contains(&self.max_body_bytes) {
            out.push("http.max_body_bytes", "must be between 1024 and 1048576");
        }
        if self.request_timeout <= Duration::seconds(0) {
            out.push("http.request_timeout", "must be greater than zero");
        }
        if self.header_read_timeout <= Duration::seconds(0)
            || self.header_read_timeout > Duration::minutes(5)
        {
            out.push(
                "http.header_read_timeout",
                "must be greater than zero and at most 5m",
            );
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            out.push("http.max_connections", "must be between 1 and 1000000");
        }
    }
}

impl TlsConfig {
    /// Reports what is wrong with `[tls]`.
    pub fn check(&self, out: &mut Problems) {
        if self.cert_file.is_some() != self.key_file.is_some() {
            out.push("tls", "set both tls.cert_file and tls.key_file, or neither");
        }
        if self.reload_interval <= Duration::seconds(0) {
            out.push("tls.reload_interval", "must be greater than zero");
        }
    }
}
