//! gha-auth-server: the token authority behind the `gha-auth` binary.
//!
//! - [`config`]: one TOML file, `GHA_AUTH_` overrides, invariants;
//! - [`store`]: SQLite or PostgreSQL behind one interface, shared migrations;
//! - [`atrest`]: the master key and AES-256-GCM sealing of keys and the pepper at rest;
//! - [`keys`]: the [`keys::KeyStore`] seam, the key manager and the rotation scheduler;
//! - [`clients`]: client registration, secrets and authentication material;
//! - [`audit`]: the append-only, hash-chained audit log;
//! - [`broker`]: the secrets broker (`/v1/secrets`, `/v1/database/creds`), its policy and cache;
//! - [`caller`]: the bearer-token extractor of the authority's own APIs (broker, link keys);
//! - [`revocations`]: what was revoked, and the signed feed `GET /v1/revocations` verifiers poll;
//! - [`oauth`]: `POST /oauth2/token`, one module per grant, RFC 6749 errors in one place;
//! - [`app`]: wiring ([`build_app`]) and serving, so tests can run the server in-process;
//! - [`health`], [`wellknown`]: `/HealthCheck`, the JWKS and RFC 8414 metadata;
//! - [`ratelimit`]: per-source and per-client rate limits, backoff after failed authentication;
//! - [`metrics`]: `GET /metrics` (Prometheus);
//! - [`tls`]: HTTPS with rustls, certificate reloaded when its files change;
//! - [`openapi`]: `GET /openapi.json`, generated from the handlers;
//! - [`telemetry`]: structured JSON logs;
//! - [`users`], [`refresh`]: the built-in user store and rotating refresh-token families;
//! - [`targets`]: where rotated link keys are installed (Epicor User Codes, webhooks);
//! - [`session`]: browser sessions (`/session/*`): the refresh token in a `__Host-` cookie;
//! - [`agent`]: `gha-auth agent`, broker secrets written to 0600 files with a reload command;
//! - [`cli`]: the `gha-auth` command line.

pub mod agent;
pub mod app;
pub mod atrest;
pub mod audit;
pub mod broker;
pub mod caller;
pub mod cli;
pub mod clients;
pub mod config;
pub mod health;
pub mod keys;
pub mod legacy_keys;
pub mod linkkeys;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod ratelimit;
pub mod refresh;
pub mod revocations;
pub mod session;
pub mod settings;
pub mod store;
pub mod targets;
pub mod telemetry;
pub mod transport;
pub mod users;
pub mod vault;
pub mod wellknown;

pub use app::{App, AppState, RunningApp, Services, StartError, build_app};
