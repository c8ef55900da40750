//! How the service listens: plain HTTP (loopback, or behind a TLS-terminating proxy) or HTTPS
//! with rustls, and the limits of the HTTP server.

mod config;
pub mod tls;

pub use config::{HttpConfig, TlsConfig};
