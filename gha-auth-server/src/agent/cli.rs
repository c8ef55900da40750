//! `gha-auth agent CONFIG`: runs the agent (see [`crate::agent`]) until SIGINT or SIGTERM. It
//! does not read the server's configuration; its own file names the authority, the client and
//! the files to write, and the edge key slots.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gha_auth::SystemClock;

use super::AgentConfig;
use crate::telemetry::{LogFormat, LogTarget, init_logging};
use crate::terminal::Output;

/// `gha-auth agent`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct AgentArgs {
    /// The agent's configuration file (TOML).
    #[arg(value_name = "AGENT_CONFIG")]
    pub agent_config: PathBuf,
    /// Write the files once and exit (e.g. in an init container).
    #[arg(long)]
    pub once: bool,
    /// Only check the configuration file and exit.
    #[arg(long, conflicts_with = "once")]
    pub check: bool,
}

/// Runs `gha-auth agent`.
pub(crate) async fn run_cli(args: &AgentArgs, out: &Output) -> ExitCode {
    let format = if out.is_json() {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    init_logging(format, "info", LogTarget::Stderr);
    let config = match AgentConfig::load(&args.agent_config) {
        Ok(config) => config,
        Err(e) => return out.failure(&e.to_string()),
    };
    if args.check {
        let edge_dir = config
            .edge_keys
            .as_ref()
            .map(|edge| edge.dir.display().to_string());
        let edge_text = edge_dir
            .as_deref()
            .map(|dir| format!(", edge key slots in {dir}"))
            .unwrap_or_default();
        out.print(
            &serde_json::json!({ "ok": true, "files": config.files.len(), "edge_keys": edge_dir }),
            &format!("OK: {} file(s){edge_text}", config.files.len()),
        );
        return ExitCode::SUCCESS;
    }
    match super::run(config, SystemClock::shared(), args.once, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => out.failure(&e.to_string()),
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
