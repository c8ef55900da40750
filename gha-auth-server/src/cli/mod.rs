//! The `gha-auth` command line.
//!
//! `gha-auth [--config FILE] [--listen ADDR] [--data-dir DIR] [--issuer URL] [--json] <command>`
//! with `serve` as the default command. Admin commands open the same store as the server (which
//! may be running) and print JSON with `--json`. Exit status: 0 on success, 1 on any failure
//! (an invalid configuration, a broken audit chain), 2 for usage errors (from clap).

mod admin;
mod agent;
mod output;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, Duration, Overrides};
use crate::telemetry::{LogTarget, init_logging};

pub use agent::AgentArgs;
pub use output::Output;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "gha-auth",
    version,
    about = "gha-auth: token authority, secrets broker and rotation scheduler"
)]
#[non_exhaustive]
pub struct Cli {
    /// Configuration file (TOML). Without one, embedded defaults and GHA_AUTH_* variables apply.
    #[arg(long, global = true, env = "GHA_AUTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address (overrides `listen`).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Issuer URL (overrides `issuer`).
    #[arg(long, global = true, value_name = "URL")]
    pub issuer: Option<String>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage built-in users (password read from standard input or a prompt, never argv).
    #[command(subcommand)]
    Users(crate::users::UsersCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rotated link keys (the Epicor key): status, rotate, retire-previous.
    #[command(subcommand)]
    LinkKeys(crate::linkkeys::LinkKeysCommand),
    /// The secrets broker's local store (embedded defaults): put, get, list. Values are read
    /// from files or standard input, never from the command line.
    #[command(subcommand)]
    Secrets(crate::broker::SecretsCommand),
    /// Write secrets from the broker to files (0600) and run a reload command when they
    /// change, for programs that cannot use the consumer client. Uses its own configuration
    /// file, not the server's.
    Agent(AgentArgs),
}

/// `gha-auth config …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ConfigCommand {
    /// Load the configuration and report every problem (exit 1) or OK.
    Check,
}

/// `gha-auth clients …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ClientsCommand {
    /// Register a client; prints its secret once.
    Add(AddClient),
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// Client id.
        id: String,
    },
    /// Issue a new secret; the old one stays valid for the grace period. With --emergency (a
    /// leaked secret), the old one stops at once and every token issued so far is revoked.
    RotateSecret {
        /// Client id.
        id: String,
        /// How long the previous secret stays valid.
        #[arg(long, default_value = "24h", conflicts_with = "emergency")]
        grace: Duration,
        /// The secret leaked: no grace, and revoke the client's outstanding tokens.
        #[arg(long)]
        emergency: bool,
    },
    /// Disable a client: it can no longer authenticate, and the tokens it holds are revoked.
    Disable {
        /// Client id.
        id: String,
    },
    /// Legacy static API keys a client may exchange for short-lived tokens (token exchange).
    #[command(subcommand)]
    LegacyKey(crate::legacy_keys::LegacyKeyCommand),
}

/// `gha-auth clients add`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct AddClient {
    /// Client id: 1-128 characters of A-Z a-z 0-9 . _ ~ -
    pub id: String,
    /// Allowed grant (client_credentials, password, refresh_token, token-exchange); repeatable.
    #[arg(long = "grant", required = true, num_args = 1..)]
    pub grants: Vec<String>,
    /// Allowed scope; repeatable.
    #[arg(long = "scope", num_args = 1..)]
    pub scopes: Vec<String>,
    /// Allowed audience; repeatable.
    #[arg(long = "audience", required = true, num_args = 1..)]
    pub audiences: Vec<String>,
    /// Tenant (GHA customer).
    #[arg(long)]
    pub tenant: Option<String>,
    /// First-party client (may use the password grant).
    #[arg(long)]
    pub first_party: bool,
    /// Public client: holds no secret.
    #[arg(long)]
    pub public: bool,
    /// Public JWK file for private_key_jwt (no secret is issued then).
    #[arg(long, value_name = "FILE")]
    pub jwk: Option<PathBuf>,
    /// Access-token lifetime (default: tokens.default_lifetime).
    #[arg(long, value_name = "DURATION")]
    pub token_lifetime: Option<Duration>,
}

/// `gha-auth keys …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum KeysCommand {
    /// List signing keys and their states.
    List,
    /// Rotate: publish a new key that signs after `publish_ahead`. With --emergency, replace
    /// every key at once (breaks every outstanding token: for a leaked key).
    Rotate {
        /// Drop every key now and sign with a new one immediately.
        #[arg(long)]
        emergency: bool,
    },
}

/// `gha-auth audit …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum AuditCommand {
    /// Recompute the hash chain; exit 1 if it is broken.
    Verify,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides::new(self.listen, self.data_dir.clone(), self.issuer.clone())
    }

    /// Loads the configuration these arguments point at (file, environment, flags).
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        Config::load(self.config.as_deref(), std::env::vars(), &self.overrides())
    }
}

/// Runs the command line; returns the process exit status.
pub async fn run(cli: Cli) -> ExitCode {
    let out = Output::new(cli.json);
    if let Some(Command::Agent(args)) = &cli.command {
        return agent::run(args, &out).await;
    }
    let config = match cli.load_config() {
        Ok(config) => config,
        Err(e) => return out.failure(&e.to_string()),
    };
    match &cli.command {
        None | Some(Command::Serve) => {
            init_logging(config.log.format, &config.log.level, LogTarget::Stdout);
            admin::serve(config, &out).await
        }
        Some(Command::Config(ConfigCommand::Check)) => admin::config_check(&config, &out),
        Some(command) => {
            init_logging(config.log.format, "warn", LogTarget::Stderr);
            if let Err(e) = config.check() {
                return out.failure(&e.to_string());
            }
            admin::run(command, config, &out).await
        }
    }
}
