//! `gha-auth keys list|rotate [--emergency]`.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::KeyManager;
use crate::terminal::Output;

/// `gha-auth keys …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum KeysCommand {
    /// List signing keys and their states.
    List,
    /// Rotate: publish a new key that signs after `publish_ahead`. With --emergency, replace
    /// every key at once (breaks every outstanding token: for a leaked key). Running servers on
    /// the same PostgreSQL database pick the change up within about a second (a change notice);
    /// otherwise at their next sync (`keys.refresh_interval`).
    Rotate {
        /// Drop every key now and sign with a new one immediately.
        #[arg(long)]
        emergency: bool,
    },
}

/// Runs a `keys` command on `manager`.
pub(crate) async fn run(
    command: &KeysCommand,
    manager: &KeyManager,
    out: &Output,
) -> Result<ExitCode, String> {
    match command {
        KeysCommand::List => {
            let keys = manager.list();
            let mut text = String::new();
            for k in &keys {
                let _ = writeln!(
                    text,
                    "{}\t{}\t{:?}\tactivates {}{}",
                    k.kid,
                    k.alg,
                    k.state,
                    k.activates_at.to_rfc3339(),
                    k.remove_at
                        .map(|t| format!("\tremoved {}", t.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            out.print(&keys, &text);
        }
        KeysCommand::Rotate { emergency: false } => {
            let (kid, activates_at) = manager.rotate().await.map_err(|e| e.to_string())?;
            out.print(
                &json!({"kid": kid, "activates_at": activates_at}),
                &format!(
                    "Published next key {kid}; it starts signing at {} (running servers pick it \
                     up within keys.refresh_interval).",
                    activates_at.to_rfc3339()
                ),
            );
        }
        KeysCommand::Rotate { emergency: true } => {
            let (kid, removed) = manager
                .emergency_rotate()
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"kid": kid, "removed": removed}),
                &format!(
                    "Emergency rotation: {kid} signs now; removed {}. Tokens signed by the removed \
                     keys stop verifying once verifiers refetch the JWKS.",
                    removed.join(", ")
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
