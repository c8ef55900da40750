//! gha-auth-server: the token authority behind the `gha-auth` binary.
//!
//! The server is organised by feature; each owns its state (an axum `FromRef` sub-state), its
//! configuration section and its checks, its SQL, its router and OpenAPI paths, and its CLI
//! subcommand. `app` assembles them and nothing imports it. See `docs/architecture.md`.
//!
//! Features: [`oauth`] (the token endpoint, one module per grant, introspection, revocation),
//! [`session`] (browser sessions), [`clients`], [`users`], [`refresh`] (rotating refresh-token
//! families), [`keys`] (signing keys and their rotation), [`revocations`] (and the signed feed),
//! [`wellknown`] (JWKS and metadata), [`caller`] (bearer tokens on the authority's own APIs),
//! [`broker`] (the secrets broker), [`linkkeys`] (rotated link keys) with [`targets`] (where they
//! are installed), [`agent`] (`gha-auth agent`), [`health`] and [`metrics`].
//!
//! Shared ground they build on: [`settings`] (section building blocks), [`store`] (SQLite or
//! PostgreSQL), [`atrest`] (the master key), [`audit`], [`ratelimit`], [`vault`], [`transport`]
//! (HTTP and TLS), [`telemetry`], [`terminal`] (CLI output), [`caching`], [`openapi`].
//! [`config`] aggregates the sections; [`services`] opens what the server and the CLI share;
//! [`cli`] parses arguments and dispatches to the features.

pub mod agent;
mod app;
pub mod atrest;
pub mod audit;
pub mod broker;
pub mod caching;
pub mod caller;
pub mod cli;
pub mod clients;
pub mod config;
pub mod health;
pub mod keys;
pub mod linkkeys;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod ratelimit;
pub mod refresh;
pub mod revocations;
pub mod services;
pub mod session;
pub mod settings;
pub mod store;
pub mod targets;
pub mod telemetry;
pub mod terminal;
pub mod transport;
pub mod users;
pub mod vault;
pub mod wellknown;

use std::process::ExitCode;

pub use app::{App, Authority, RunningApp, ServeError, StartError, build_app};
use cli::{Cli, Command};
use terminal::Output;

/// Runs the command line; returns the process exit status.
pub async fn run(cli: Cli) -> ExitCode {
    let out = Output::new(cli.json);
    if let Some(Command::Agent(args)) = &cli.command {
        // The agent reads its own file, not the server's configuration.
        return agent::run_cli(args, &out).await;
    }
    let config = match cli.load_config() {
        Ok(config) => config,
        Err(e) => return out.failure(&e.to_string()),
    };
    if cli.serves() {
        telemetry::init_logging(
            config.log.format,
            &config.log.level,
            telemetry::LogTarget::Stdout,
        );
        app::serve(config, &out).await
    } else {
        cli::run(&cli, config, &out).await
    }
}
