//! mobile-client: the MFS mobile app's token flow from the command line.
//!
//! Logs in with the password grant, lists jobs from the field-service API, refreshes (sending
//! the same refresh request again if a response is lost) and lists jobs with the new token;
//! prints a summary without tokens. `README.md` has the commands to register the app's client
//! and a user and to run it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use gha_auth::SecretString;
use mobile_client::{DEFAULT_CLIENT_ID, MobileClient, run};
use tracing_subscriber::EnvFilter;

/// The MFS mobile app's token flow.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Base URL of the gha-auth authority.
    #[arg(long)]
    authority: String,
    /// Base URL of the field-service API.
    #[arg(long)]
    api: String,
    /// The user to log in as.
    #[arg(long)]
    username: String,
    /// A file holding the user's password (a password on the command line would show in `ps`).
    #[arg(long)]
    password_file: PathBuf,
    /// The user's tenant, when the app's client serves several.
    #[arg(long)]
    tenant: Option<String>,
    /// The app's public client id.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "the summary is the CLI's output")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| "mobile_client=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let password = std::fs::read_to_string(&cli.password_file)
        .with_context(|| format!("read {}", cli.password_file.display()))?;
    let password = SecretString::from(password.trim_end_matches(['\r', '\n']));
    let client = MobileClient::new(&cli.authority, &cli.api)?.client_id(cli.client_id);
    let (report, tokens) = run(&client, &cli.username, &password, cli.tenant.as_deref()).await?;
    let summary = serde_json::json!({
        "jobs_after_login": report.jobs_after_login.len(),
        "jobs_after_refresh": report.jobs_after_refresh.len(),
        "titles": report.jobs_after_refresh.iter().map(|j| j.title.as_str()).collect::<Vec<_>>(),
        "access_token_expires_in": tokens.expires_in,
    });
    println!("{summary:#}");
    Ok(())
}
