//! `gha-auth clients legacy-key …`: import, list and revoke legacy static API keys. The key is
//! read from standard input (or a prompt without echo), never from the command line.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use gha_auth::SystemClock;
use gha_auth::{Clock as _, SecretString};
use serde_json::json;

use super::{LEGACY_API_KEY_TOKEN_TYPE, LegacyKey, NewLegacyKey};
use crate::audit::AuditLog;
use crate::clients::{ClientRegistry, GrantType};
use crate::store::Store;
use crate::terminal::{Output, read_secret};

/// `gha-auth clients legacy-key …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum LegacyKeyCommand {
    /// Import a legacy static API key (read from standard input) that `client_id` may exchange
    /// for short-lived tokens (token exchange, subject_token_type
    /// urn:gha:params:oauth:token-type:legacy-api-key).
    Add {
        /// The client that holds the key and will exchange it (needs the token-exchange grant).
        client_id: String,
        /// Subject (`sub`) of the tokens it is exchanged for.
        #[arg(long)]
        subject: String,
        /// Tenant of those tokens.
        #[arg(long)]
        tenant: Option<String>,
        /// Scope those tokens may have; repeatable.
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        /// Id to refer to the key by (default: generated `lk_…`).
        #[arg(long)]
        id: Option<String>,
    },
    /// List imported keys (never the keys themselves).
    List {
        /// Only this client's keys.
        client_id: Option<String>,
    },
    /// Revoke an imported key by id: it can no longer be exchanged.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// One key's line.
fn describe(key: &LegacyKey) -> String {
    format!(
        "{}  client={}  subject={}  tenant={}  scopes={}{}",
        key.id,
        key.client_id,
        key.subject,
        key.tenant.as_deref().unwrap_or("-"),
        key.scopes.join(","),
        if key.revoked_at.is_some() {
            "  (revoked)"
        } else {
            ""
        }
    )
}

/// The text of `legacy-key add`.
pub(crate) fn imported_text(added: &LegacyKey) -> String {
    format!(
        "Imported legacy key {}.\nThe holder exchanges it at the token endpoint with \
         grant_type=urn:ietf:params:oauth:grant-type:token-exchange, \
         subject_token_type={LEGACY_API_KEY_TOKEN_TYPE}, authenticating as {}.",
        describe(added),
        added.client_id
    )
}

/// The text of `legacy-key list`.
pub(crate) fn list_text(keys: &[LegacyKey]) -> String {
    let mut text = String::new();
    for key in keys {
        let _ = writeln!(text, "{}", describe(key));
    }
    if keys.is_empty() {
        text.push_str("no legacy keys");
    }
    text
}

/// The text of `legacy-key revoke`.
pub(crate) fn revoked_text(id: &str) -> String {
    format!("Revoked legacy key {id}.")
}

/// Runs a `legacy-key` command on `store`.
pub(crate) async fn run(
    command: &LegacyKeyCommand,
    clients: &ClientRegistry,
    store: &Store,
    audit: &AuditLog,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    let now = SystemClock.unix_seconds();
    match command {
        LegacyKeyCommand::Add {
            client_id,
            subject,
            tenant,
            scopes,
            id,
        } => {
            let client = clients.get(client_id).await.map_err(|e| e.to_string())?;
            if !client.allows_grant(GrantType::TokenExchange) {
                return Err(format!(
                    "client {client_id:?} does not have the token-exchange grant"
                ));
            }
            let key = read_key()?;
            let mut spec = NewLegacyKey::new(client_id.clone(), subject.clone());
            spec.tenant = tenant.clone().or(client.tenant.clone());
            spec.scopes.clone_from(scopes);
            spec.id.clone_from(id);
            let added = super::add(store, clients.pepper(), audit, now, spec, &key, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(&added, &imported_text(&added));
        }
        LegacyKeyCommand::List { client_id } => {
            let keys = super::list(store, client_id.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            out.print(&keys, &list_text(&keys));
        }
        LegacyKeyCommand::Revoke { id } => {
            super::revoke(store, audit, now, id, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(&json!({"id": id, "revoked": true}), &revoked_text(id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the key to import from standard input (or a prompt).
pub(crate) fn read_key() -> Result<SecretString, String> {
    let key = read_secret("Legacy API key: ", false)?;
    if key.expose().is_empty() {
        return Err("no key on standard input".into());
    }
    Ok(key)
}
