//! The `gha-auth` command line: the arguments, and the dispatch of admin commands to the
//! features that own them (each feature's `cli` module implements its subcommand).
//!
//! `gha-auth [--config FILE] [--data-dir DIR] [--json] <command>`, and `gha-auth serve [--listen
//! ADDR] [--issuer URL]`
//! with `serve` as the default command. Admin commands open the same store as the server (which
//! may be running) and print JSON with `--json`. Exit status: 0 on success, 1 on any failure
//! (an invalid configuration, a broken audit chain), 2 for usage errors (from clap).

mod config_check;
mod remote;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gha_auth::{SharedClock, SystemClock};

use crate::agent::AgentArgs;
use crate::audit::AuditCommand;
use crate::broker::SecretsCommand;
use crate::clients::ClientsCommand;
use crate::config::{Config, ConfigError, Overrides};
use crate::keys::KeysCommand;
use crate::linkkeys::LinkKeysCommand;
use crate::services::Services;
use crate::terminal::Output;
use crate::users::{Users, UsersCommand};

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
    /// Listen address of `serve` (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Issuer URL of `serve` (overrides `issuer`).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Act through this running authority's admin API instead of a local store (no database or
    /// master key needed): a token from --client-id/--client-secret-file, or `gha-auth login`.
    #[arg(long, global = true, env = "GHA_AUTH_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// With --server: a client of the authority with admin scopes (client_credentials).
    // Its own id: a global argument shares its value with a subcommand's argument of the same
    // id (`legacy-key add CLIENT_ID` would otherwise log in as that client).
    #[arg(
        long = "client-id",
        id = "server_client_id",
        global = true,
        env = "GHA_AUTH_CLIENT_ID",
        value_name = "ID"
    )]
    pub client_id: Option<String>,
    /// With --server: the file holding that client's secret.
    #[arg(
        long,
        global = true,
        env = "GHA_AUTH_CLIENT_SECRET_FILE",
        value_name = "FILE"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Run the service (the default).
    Serve(ServeArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage built-in users (password read from standard input or a prompt, never argv).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rotated link keys (the Epicor key): status, rotate, retire-previous.
    #[command(subcommand)]
    LinkKeys(LinkKeysCommand),
    /// The secrets broker's local store (embedded defaults): put, get, list. Values are read
    /// from files or standard input, never from the command line.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Log in to --server as a user (password read from standard input or a prompt); the
    /// short-lived token is kept, mode 0600, in the user's configuration directory.
    Login(LoginArgs),
    /// Write secrets from the broker to files (0600) and run a reload command when they
    /// change, for programs that cannot use the consumer client. Uses its own configuration
    /// file, not the server's.
    Agent(AgentArgs),
    /// Exit 0 when the local server's /HealthCheck answers 200 (Healthy or Degraded), 1
    /// otherwise (3 s timeout). Reads the listen address from the configuration; for container
    /// health checks.
    Healthcheck,
}

/// `gha-auth serve`: the flags that only mean something to a running service.
#[derive(Debug, Default, Args)]
#[non_exhaustive]
pub struct ServeArgs {
    /// Listen address (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Issuer URL (overrides `issuer`).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
}

/// `gha-auth login`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct LoginArgs {
    /// Login name.
    #[arg(long)]
    pub username: String,
    /// Tenant of the user; none by default.
    #[arg(long, default_value = "")]
    pub tenant: String,
    /// The first-party public client that may use the password grant for the admin audience.
    #[arg(long, default_value = "gha-auth-cli")]
    pub login_client: String,
}

/// `gha-auth config …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ConfigCommand {
    /// Load the configuration and report every problem (exit 1) or OK.
    Check,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        let serve = match &self.command {
            Some(Command::Serve(args)) => Some(args),
            _ => None,
        };
        let listen = serve.and_then(|s| s.listen).or(self.listen);
        let issuer = serve.and_then(|s| s.issuer.clone()).or(self.issuer.clone());
        Overrides::new(listen, self.data_dir.clone(), issuer)
    }

    /// Loads the configuration these arguments point at (file, environment, flags).
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        Config::load(self.config.as_deref(), std::env::vars(), &self.overrides())
    }

    /// Whether this runs the service (no command, or `serve`).
    pub fn serves(&self) -> bool {
        matches!(self.command, None | Some(Command::Serve(_)))
    }
}

/// Runs the commands that work on a configuration's store (not `serve`, which the composition
/// root runs, nor `agent`, which has a configuration of its own); returns the exit status.
pub async fn run(cli: &Cli, config: Config, out: &Output) -> ExitCode {
    match &cli.command {
        None | Some(Command::Serve(_) | Command::Agent(_)) => {
            out.failure("not a command on the server's configuration")
        }
        Some(Command::Config(ConfigCommand::Check)) => config_check::run(&config, out),
        Some(Command::Healthcheck) => crate::health::cli::run(&config, out).await,
        Some(command) if cli.server.is_some() || matches!(command, Command::Login(_)) => {
            through_server(cli, command, &config, out).await
        }
        Some(command) => {
            crate::telemetry::init_logging(
                config.log.format,
                "warn",
                crate::telemetry::LogTarget::Stderr,
            );
            for warning in config.warnings() {
                tracing::warn!("{warning}");
            }
            if let Err(e) = config.check() {
                return out.failure(&e.to_string());
            }
            admin(command, config, out).await
        }
    }
}

/// An admin command (or `login`) through `--server`'s admin API.
async fn through_server(cli: &Cli, command: &Command, config: &Config, out: &Output) -> ExitCode {
    let Some(server) = cli.server.as_deref() else {
        return out.failure("login needs --server URL (or GHA_AUTH_SERVER)");
    };
    let audience = config.api_auth.admin_audience.as_str();
    let result = match remote::base_url(server) {
        Err(e) => Err(e),
        Ok(base) => {
            eprintln!("gha-auth: server {base}");
            match command {
                Command::Login(args) => {
                    remote::login(
                        &base,
                        &args.login_client,
                        &args.username,
                        &args.tenant,
                        audience,
                        out,
                    )
                    .await
                }
                _ => {
                    let session = remote::Remote::open(
                        &base,
                        cli.client_id.as_deref(),
                        cli.client_secret_file.as_deref(),
                        audience,
                    )
                    .await;
                    match session {
                        Ok(session) => remote::run(command, &session, out).await,
                        Err(e) => Err(e),
                    }
                }
            }
        }
    };
    result.unwrap_or_else(|message| out.failure(&message))
}

/// Whether `command` only reads (so it never creates a store).
fn only_reads(command: &Command) -> bool {
    use crate::clients::legacy_keys::LegacyKeyCommand;
    match command {
        Command::Clients(c) => matches!(
            c,
            ClientsCommand::List
                | ClientsCommand::Show { .. }
                | ClientsCommand::LegacyKey(LegacyKeyCommand::List { .. })
        ),
        Command::Users(c) => matches!(c, UsersCommand::List { .. }),
        Command::Keys(c) => matches!(c, KeysCommand::List),
        Command::Audit(_) => true,
        Command::LinkKeys(c) => matches!(c, LinkKeysCommand::Status { .. }),
        Command::Secrets(c) => matches!(c, SecretsCommand::Get { .. } | SecretsCommand::List),
        Command::Serve(_)
        | Command::Config(_)
        | Command::Agent(_)
        | Command::Login(_)
        | Command::Healthcheck => false,
    }
}

/// The store `config` names, for a person: the SQLite file, or the PostgreSQL URL without its
/// credentials.
fn store_description(config: &Config) -> String {
    match &config.store.url {
        None => config
            .data_dir
            .join(crate::config::SQLITE_FILE)
            .display()
            .to_string(),
        Some(url) => match (url.split_once("://"), url.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
            _ => url.clone(),
        },
    }
}

/// Admin commands against the store.
async fn admin(command: &Command, config: Config, out: &Output) -> ExitCode {
    let store = store_description(&config);
    // Which store the command acts on, so a wrong directory is seen at once.
    eprintln!("gha-auth: store {store}");
    let sqlite_missing =
        config.store.url.is_none() && !config.data_dir.join(crate::config::SQLITE_FILE).exists();
    if sqlite_missing && only_reads(command) {
        return out.failure(&format!(
            "no store at {store}: nothing to read (pass --data-dir or --config of the server, \
             or --server URL)"
        ));
    }
    let actor = format!(
        "cli:{}",
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
    let clock: SharedClock = SystemClock::shared();
    let services = match Services::open(&config, clock.clone(), &actor).await {
        Ok(services) => services,
        Err(e) => return out.failure(&e.to_string()),
    };
    let result = dispatch(command, &config, &services, &actor, out).await;
    services.store.close().await;
    match result {
        Ok(code) => code,
        Err(message) => out.failure(&message),
    }
}

async fn dispatch(
    command: &Command,
    config: &Config,
    services: &Services,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    match command {
        Command::Clients(command) => {
            crate::clients::run_cli(
                command,
                &services.clients,
                &services.store,
                &services.audit,
                actor,
                out,
            )
            .await
        }
        Command::Users(command) => {
            let users = Users::new(
                services.store.clone(),
                services.audit.clone(),
                services.clock.clone(),
                config.users.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
            crate::users::run_cli(command, &users, actor, out).await
        }
        Command::Keys(command) => {
            let keys = services
                .existing_signing_keys()
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    "no signing keys yet: the server makes the first one when it starts \
                     (with keys.algorithm of its configuration)"
                        .to_owned()
                })?;
            crate::keys::run_cli(command, &keys, out).await
        }
        Command::LinkKeys(command) => {
            crate::linkkeys::run_cli(
                command,
                &config.link_keys,
                &*services.link_key_store,
                &services.audit,
                services.clock.now(),
                actor,
                out,
            )
            .await
        }
        Command::Audit(command) => crate::audit::run_cli(command, &services.store, out).await,
        Command::Secrets(command) => {
            let vault_mount = config
                .vault
                .address
                .is_some()
                .then(|| config.broker_kv_mount());
            crate::broker::run_cli(
                command,
                &services.broker_secrets,
                vault_mount,
                &services.audit,
                actor,
                out,
            )
            .await
        }
        Command::Serve(_)
        | Command::Config(_)
        | Command::Agent(_)
        | Command::Healthcheck
        | Command::Login(_) => Err("not an admin command".to_owned()),
    }
}
