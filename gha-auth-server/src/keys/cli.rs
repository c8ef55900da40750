//! `gha-auth keys list|rotate [--emergency]`.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Value, json};

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

/// One key of `keys list` as its JSON gives it: the text is made from what the admin API
/// answers too, so `--server` prints the same.
#[derive(Debug, Deserialize)]
struct Listed {
    kid: String,
    alg: String,
    state: gha_auth::keys::KeyState,
    activates_at: DateTime<Utc>,
    remove_at: Option<DateTime<Utc>>,
}

/// The text of `keys list`, from its JSON.
pub(crate) fn list_text(keys: &Value) -> Result<String, String> {
    let keys: Vec<Listed> = serde_json::from_value(keys.clone()).map_err(|e| e.to_string())?;
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
    Ok(text)
}

/// The text of `keys rotate`.
pub(crate) fn rotated_text(kid: &str, activates_at: DateTime<Utc>) -> String {
    format!(
        "Published next key {kid}; it starts signing at {} (running servers pick it up within \
         keys.refresh_interval).",
        activates_at.to_rfc3339()
    )
}

/// The text of `keys rotate --emergency`.
pub(crate) fn emergency_text(kid: &str, removed: &[String]) -> String {
    format!(
        "Emergency rotation: {kid} signs now; removed {}. Tokens signed by the removed keys stop \
         verifying once verifiers refetch the JWKS.",
        removed.join(", ")
    )
}

/// Runs a `keys` command on `manager`.
pub(crate) async fn run(
    command: &KeysCommand,
    manager: &KeyManager,
    out: &Output,
) -> Result<ExitCode, String> {
    match command {
        KeysCommand::List => {
            let keys = serde_json::to_value(manager.list()).map_err(|e| e.to_string())?;
            out.print(&keys, &list_text(&keys)?);
        }
        KeysCommand::Rotate { emergency: false } => {
            let (kid, activates_at) = manager.rotate().await.map_err(|e| e.to_string())?;
            out.print(
                &json!({"kid": kid, "activates_at": activates_at}),
                &rotated_text(&kid, activates_at),
            );
        }
        KeysCommand::Rotate { emergency: true } => {
            let (kid, removed) = manager
                .emergency_rotate()
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"kid": kid, "removed": removed}),
                &emergency_text(&kid, &removed),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
