//! gha-auth-server: the token authority behind the `gha-auth` binary.
//!
//! Its public surface is small: [`build_app`] and [`run`] with [`config`] and [`cli::Cli`], for
//! the binary, embedding programs and tests; everything else is the crate's own.
//!
//! The server is organised by feature; each owns its state (an axum `FromRef` sub-state), its
//! configuration section and its checks, its SQL, its router and OpenAPI paths, and its CLI
//! subcommand. `app` assembles them and nothing imports it. See `docs/architecture.md` in the
//! repository for the features, what each owns, and the path of a request through them.

// Without `test-util`, the items `testing` re-exports are public in private modules.
#![cfg_attr(not(feature = "test-util"), allow(unreachable_pub))]

mod admin;
mod agent;
mod app;
mod atrest;
mod audit;
mod broker;
mod caching;
mod caller;
pub mod cli;
mod clients;
pub mod config;
mod console;
mod health;
mod home;
mod keys;
mod linkkeys;
mod metrics;
mod monitor;
mod oauth;
mod openapi;
mod ratelimit;
mod refresh;
mod revocations;
mod services;
mod session;
mod settings;
mod store;
mod targets;
mod telemetry;
mod terminal;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod testing;
mod transport;
mod users;
mod vault;
mod wellknown;

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
        // Only now can they be heard: logging starts after the configuration is read.
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        app::serve(config, &out).await
    } else {
        cli::run(&cli, config, &out).await
    }
}
