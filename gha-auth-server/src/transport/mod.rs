//! How the service listens: plain HTTP (loopback, or behind a TLS-terminating proxy) or HTTPS
//! with rustls, and the limits of the HTTP server.

pub(crate) mod config;
pub(crate) mod forwarded;
pub(crate) mod server;
pub(crate) mod tls;
